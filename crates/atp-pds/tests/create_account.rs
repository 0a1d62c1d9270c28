//! Account creation end to end against the embedded PLC directory server.

#![allow(clippy::unwrap_used)]

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig};
use atp_did_plc::Operation;
use atp_pds::account::NewAccount;
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::storage::{CreateAccountRequest, DidDirectory};
use atp_pds::{Error, Storage};

fn request(handle: &str, email: &str) -> CreateAccountRequest {
    CreateAccountRequest {
        handle: handle.to_owned(),
        email: email.to_owned(),
        password: "a long password".to_owned(),
        invite_code: None,
    }
}

fn config(dir: &tempfile::TempDir) -> ServiceConfig {
    let mut config = ServiceConfig::new(dir.path(), "https://pds.example.test");
    config.handle_domains = vec![".example.test".to_owned()];
    config
}

#[tokio::test]
async fn the_directory_resolves_the_new_account() {
    let server = PlcServer::start(ServerConfig::in_memory()).await.unwrap();
    let client = PlcClient::new(&server.url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let recovery = SigningKey::generate(Algorithm::P256);
    let mut config = config(&dir);
    config.recovery_did_key = Some(recovery.did_key());
    let storage = Storage::open(config).unwrap();
    let keys = ServiceKeys {
        plc_rotation_key: SigningKey::generate(Algorithm::K256),
    };

    let created = storage
        .create_account(
            &keys,
            &client,
            request("Alice.Example.Test", "alice@example.com"),
        )
        .await
        .unwrap();
    let did = created.account.did.clone();
    assert!(did.starts_with("did:plc:"));
    assert_eq!(created.account.handle, "alice.example.test");
    assert!(!format!("{:?}", request("a.example.test", "a@b.c")).contains("a long password"));

    // What the directory says about the DID.
    let data = client.data(&did).await.unwrap();
    assert_eq!(
        data["alsoKnownAs"],
        serde_json::json!(["at://alice.example.test"])
    );
    assert_eq!(
        data["services"]["atproto_pds"]["endpoint"],
        "https://pds.example.test"
    );
    assert_eq!(
        data["verificationMethods"]["atproto"],
        created.signing_did_key
    );
    assert_eq!(
        data["rotationKeys"],
        serde_json::json!([recovery.did_key(), keys.plc_rotation_key.did_key()])
    );

    // The local state agrees: the key on disk is the one in the document,
    // and the first commit is signed by it.
    let store = storage.actors().open(&did).unwrap();
    let key = store.signing_key().unwrap();
    assert_eq!(key.did_key(), created.signing_did_key);
    let root = store.root().unwrap().unwrap();
    assert_eq!(root.cid, created.commit.cid);
    let repo = store.open_repo().unwrap();
    repo.verify_head(&key.public_key()).unwrap();
    assert_eq!(repo.mst().len().unwrap(), 0);
    storage
        .accounts()
        .verify_password(&did, "a long password")
        .unwrap();

    // A second account: a different key and DID; duplicates refused
    // before anything is created.
    let bob = storage
        .create_account(
            &keys,
            &client,
            request("bob.example.test", "bob@example.com"),
        )
        .await
        .unwrap();
    assert_ne!(bob.signing_did_key, created.signing_did_key);
    assert_ne!(bob.account.did, did);
    assert!(matches!(
        storage
            .create_account(
                &keys,
                &client,
                request("ALICE.example.test", "new@example.com")
            )
            .await,
        Err(Error::HandleTaken(_))
    ));
    assert!(matches!(
        storage
            .create_account(
                &keys,
                &client,
                request("carol.example.test", "Alice@Example.com")
            )
            .await,
        Err(Error::EmailTaken)
    ));
    assert!(matches!(
        storage
            .create_account(
                &keys,
                &client,
                request("carol.elsewhere.test", "c@example.com")
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(storage.accounts().list_accounts().unwrap().len(), 2);
    assert_eq!(storage.actors().list_dids().unwrap().len(), 2);

    // Restart: everything is still there.
    drop(storage);
    let storage = Storage::open(self::config(&dir)).unwrap();
    assert_eq!(storage.accounts().list_accounts().unwrap().len(), 2);
    let store = storage.actors().open(&did).unwrap();
    assert_eq!(store.root().unwrap().unwrap().cid, created.commit.cid);
    assert!(storage.remove_orphaned_actor_stores().unwrap().is_empty());
    server.shutdown().await.unwrap();
}

/// A directory that forwards to the real one, then lets another request
/// take the handle, as a concurrent creation would.
struct RacingDirectory<'a> {
    client: &'a PlcClient,
    storage: &'a Storage,
}

impl DidDirectory for RacingDirectory<'_> {
    async fn submit_operation(&self, did: &str, op: &Operation) -> Result<(), atp_did_plc::Error> {
        self.client.submit(did, op).await?;
        if op.prev().is_none() {
            self.storage
                .accounts()
                .create_account(&NewAccount {
                    did: "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz".to_owned(),
                    handle: "race.example.test".to_owned(),
                    email: "winner@example.com".to_owned(),
                    password: "whatever".to_owned(),
                    invite_code: None,
                })
                .expect("the racing account is created");
        }
        Ok(())
    }
}

/// A directory that refuses everything.
struct RefusingDirectory;

impl DidDirectory for RefusingDirectory {
    async fn submit_operation(&self, _: &str, _: &Operation) -> Result<(), atp_did_plc::Error> {
        Err(atp_did_plc::Error::InvalidOperation("refused".to_owned()))
    }
}

#[tokio::test]
async fn failures_leave_no_half_created_account() {
    let server = PlcServer::start(ServerConfig::in_memory()).await.unwrap();
    let client = PlcClient::new(&server.url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(config(&dir)).unwrap();
    let keys = ServiceKeys {
        plc_rotation_key: SigningKey::generate(Algorithm::K256),
    };

    // The directory refuses: no row, no files.
    let refused = storage
        .create_account(
            &keys,
            &RefusingDirectory,
            request("a.example.test", "a@example.com"),
        )
        .await;
    assert!(matches!(refused, Err(Error::Plc(_))));
    assert!(storage.accounts().list_accounts().unwrap().is_empty());
    assert!(storage.actors().list_dids().unwrap().is_empty());

    // The directory accepts, then the handle is taken before the row is
    // written: the store is removed and the DID tombstoned.
    let racing = RacingDirectory {
        client: &client,
        storage: &storage,
    };
    let lost = storage
        .create_account(
            &keys,
            &racing,
            request("race.example.test", "loser@example.com"),
        )
        .await;
    assert!(matches!(lost, Err(Error::HandleTaken(_))));
    let accounts = storage.accounts().list_accounts().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].email, "winner@example.com");
    assert!(storage.actors().list_dids().unwrap().is_empty());
    assert!(storage
        .accounts()
        .account_by_email("loser@example.com")
        .unwrap()
        .is_none());
    let exported = client.export(None, None).await.unwrap();
    assert_eq!(exported.len(), 2, "genesis and tombstone");
    let loser_did = exported[0].did.clone();
    assert!(client.resolve(&loser_did).await.is_err(), "tombstoned");
    server.shutdown().await.unwrap();
}
