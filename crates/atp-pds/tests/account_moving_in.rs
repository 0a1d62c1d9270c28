//! `createAccount` with `did`: an account moving in from another PDS
//! proves control of its existing DID with a service token its current
//! PDS signed (issuer the DID, audience this service, method
//! createAccount); it is created deactivated, with a new signing key, and
//! the directory is not touched.
#![allow(clippy::unwrap_used)]

mod common;

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::GenesisBuilder;
use atp_xrpc::auth::{create_service_jwt, ServiceJwtParams};
use common::{procedure, query, refused_procedure, refused_query, Pds};
use serde_json::{json, Value};

const CREATE_ACCOUNT: &str = "com.atproto.server.createAccount";

/// A DID registered at `pds`'s directory as if another PDS hosted it;
/// returns it and its signing key.
async fn existing_did(pds: &Pds) -> (String, SigningKey) {
    let rotation = SigningKey::generate(Algorithm::K256);
    let signing = SigningKey::generate(Algorithm::K256);
    let genesis = GenesisBuilder::new()
        .rotation_key(rotation.did_key())
        .signing_key(signing.did_key())
        .handle("mover.elsewhere.example")
        .pds_endpoint("https://old-pds.example")
        .sign(&rotation)
        .unwrap();
    pds.directory()
        .submit(&genesis.did, &genesis.operation)
        .await
        .unwrap();
    (genesis.did, signing)
}

fn token(key: &SigningKey, iss: &str, aud: &str, lxm: &str) -> String {
    create_service_jwt(key, &ServiceJwtParams::new(iss, aud, Some(lxm))).unwrap()
}

fn input(did: &str) -> Value {
    json!({
        "did": did,
        "handle": "mover.test",
        "email": "mover@example.com",
        "password": "moving-in-pw",
    })
}

#[tokio::test]
async fn a_service_token_from_the_did_creates_a_deactivated_account() {
    let pds = Pds::start().await;
    let (did, key) = existing_did(&pds).await;
    let before: Value = pds.directory().data(&did).await.unwrap();

    let good = token(&key, &did, "did:web:localhost", CREATE_ACCOUNT);
    let created = procedure(&pds.bearer(&good), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!(created["did"], did);
    assert_eq!(created["handle"], "mover.test");
    assert_eq!(created["didDoc"]["id"], did);
    let access = created["accessJwt"].as_str().unwrap();

    let status = query(
        &pds.bearer(access),
        "com.atproto.server.checkAccountStatus",
        &(),
    )
    .await;
    assert_eq!(status["activated"], false);
    assert_eq!(status["validDid"], false);
    // a new signing key is recommended; the directory is unchanged
    let recommended = query(
        &pds.bearer(access),
        "com.atproto.identity.getRecommendedDidCredentials",
        &(),
    )
    .await;
    assert_ne!(
        recommended["verificationMethods"]["atproto"],
        json!(key.did_key())
    );
    assert_eq!(pds.directory().data(&did).await.unwrap(), before);

    // the same DID cannot come in twice
    let again = token(&key, &did, "did:web:localhost", CREATE_ACCOUNT);
    let mut second = input(&did);
    second["handle"] = json!("mover2.test");
    second["email"] = json!("mover2@example.com");
    let (status, _, _) = refused_procedure(&pds.bearer(&again), CREATE_ACCOUNT, &second).await;
    assert_eq!(status, 400);
    pds.stop().await;
}

#[tokio::test]
async fn without_a_valid_token_for_the_did_it_is_refused() {
    let pds = Pds::start().await;
    let (did, key) = existing_did(&pds).await;

    // no token at all
    let (status, error, message) =
        refused_procedure(&pds.client(), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!((status, error.as_str()), (401, "AuthenticationRequired"));
    assert_eq!(
        message,
        format!("Missing auth to create account with did: {did}")
    );

    // a token for another service
    let elsewhere = token(&key, &did, "did:web:other.example", CREATE_ACCOUNT);
    let (status, error, _) =
        refused_procedure(&pds.bearer(&elsewhere), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!((status, error.as_str()), (401, "BadJwtAudience"));

    // a token for another method
    let other_method = token(
        &key,
        &did,
        "did:web:localhost",
        "com.atproto.repo.uploadBlob",
    );
    let (status, error, _) =
        refused_procedure(&pds.bearer(&other_method), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!((status, error.as_str()), (401, "BadJwtLexiconMethod"));

    // a token signed by a key the DID document does not list
    let stranger = SigningKey::generate(Algorithm::K256);
    let forged = token(&stranger, &did, "did:web:localhost", CREATE_ACCOUNT);
    let (status, error, _) =
        refused_procedure(&pds.bearer(&forged), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!((status, error.as_str()), (401, "BadJwtSignature"));

    // a token from another DID
    let (other_did, other_key) = existing_did(&pds).await;
    let someone_else = token(&other_key, &other_did, "did:web:localhost", CREATE_ACCOUNT);
    let (status, error, _) =
        refused_procedure(&pds.bearer(&someone_else), CREATE_ACCOUNT, &input(&did)).await;
    assert_eq!((status, error.as_str()), (401, "AuthenticationRequired"));

    // nothing was created
    let (status, _, _) = refused_query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({ "repo": did }),
    )
    .await;
    assert_eq!(status, 400);
    pds.stop().await;
}
