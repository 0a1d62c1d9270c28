//! Replacing a whole repository with an imported CAR
//! ([`LockedRepo::import`](super::LockedRepo::import)).

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::Cid;
use atp_repo_mst::car::{BlockMap, CarLimits};
use atp_repo_mst::import::{import_car, ImportOptions};
use atp_syntax::{Tid, TidClock};
use atp_xrpc::server::XrpcError;
use serde_json::Value;

use super::blocking;
use super::prepare::invalid;
use crate::actor_store::ActorStore;
use crate::blob_refs::find_blob_refs;
use crate::http::errors::to_xrpc;
use crate::http::PdsState;

/// What an import stored.
#[derive(Clone, Debug)]
pub struct ImportedRepo {
    /// The new head commit.
    pub commit_cid: Cid,
    /// Its rev.
    pub rev: String,
    /// Number of records indexed.
    pub records: usize,
    /// Number of blocks stored.
    pub blocks: usize,
}

/// [`LockedRepo::import`], run with the lock held.
pub(super) async fn import_locked(
    state: &PdsState,
    did: &str,
    store: &Arc<ActorStore>,
    car: Vec<u8>,
    limits: CarLimits,
) -> Result<ImportedRepo, XrpcError> {
    let reading = Arc::clone(store);
    let owner = did.to_owned();
    let (verified, local_key) = blocking(move || {
        let key = reading.signing_key().map_err(to_xrpc)?;
        let options = ImportOptions {
            did: Some(owner),
            signing_key: None,
            limits,
            ..ImportOptions::default()
        };
        let verified = import_car(car.as_slice(), &options).map_err(|err| match err {
            atp_repo_mst::Error::InvalidCar(message) if message.contains("root") => {
                invalid("expected one root")
            }
            other => invalid(format!("Invalid repository: {other}")),
        })?;
        Ok((verified, key.public_key()))
    })
    .await?;
    if verified.commit.verify(&local_key).is_err() {
        let listed = document_signing_key(state, did).await;
        let signed_by_listed = listed
            .as_ref()
            .is_some_and(|key| verified.commit.verify(key).is_ok());
        if !signed_by_listed {
            return Err(invalid(
                "Invalid repository: the commit is not signed by the account's key",
            ));
        }
    }

    let store = Arc::clone(store);
    let did = did.to_owned();
    let sequencer = state.sequencer.clone();
    blocking(move || {
        let mut keep = BlockMap::new();
        let mut blobs: BTreeMap<String, Vec<Cid>> = BTreeMap::new();
        let commit_bytes = verified
            .blocks
            .get(&verified.commit_cid)
            .ok_or_else(|| invalid("expected one root"))?;
        keep.insert(verified.commit_cid, commit_bytes.clone());
        for node in &verified.nodes {
            if let Some(bytes) = verified.blocks.get(node) {
                keep.insert(*node, bytes.clone());
            }
        }
        for (path, cid) in &verified.records {
            let bytes = verified
                .blocks
                .get(cid)
                .ok_or_else(|| invalid(format!("Could not parse record at '{path}'")))?;
            let record = atp_crypto::dagcbor::decode_ipld(bytes)
                .map_err(|_| invalid(format!("Could not parse record at '{path}'")))?;
            let refs: Vec<Cid> = find_blob_refs(&record).iter().map(|r| r.cid).collect();
            if !refs.is_empty() {
                blobs.insert(path.clone(), refs);
            }
            keep.insert(*cid, bytes.clone());
        }
        let rev = verified.commit.rev.clone();
        if let Ok(tid) = Tid::new(&rev) {
            TidClock::global().advance_past(tid);
        }
        store
            .transact(|tx| {
                tx.replace_repo(&verified.commit_cid, &rev, &keep, &verified.records, &blobs)
            })
            .map_err(to_xrpc)?;
        if let Err(err) = sequencer.sequence_sync(&did, &verified.commit_cid, commit_bytes, &rev) {
            tracing::error!(%did, %rev, error = %err, "could not sequence an imported repository");
        }
        Ok(ImportedRepo {
            commit_cid: verified.commit_cid,
            rev,
            records: verified.records.len(),
            blocks: keep.len(),
        })
    })
    .await
}

/// The `#atproto` signing key `did`'s document lists now (`did:plc`
/// through the directory), if it can be found.
async fn document_signing_key(state: &PdsState, did: &str) -> Option<atp_crypto::PublicKey> {
    if !did.starts_with("did:plc:") {
        return None;
    }
    let doc = match state.directory.resolve(did).await {
        Ok(doc) => doc,
        Err(err) => {
            tracing::warn!(%did, error = %err, "could not resolve the DID document for an import");
            return None;
        }
    };
    signing_key_in_document(&doc)
}

/// The key of the `#atproto` verification method of a DID document: a
/// `Multikey` (multicodec-prefixed), or the legacy
/// `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`
/// form (the bare point), which the PLC directory still serves.
pub fn signing_key_in_document(doc: &Value) -> Option<atp_crypto::PublicKey> {
    let method = doc
        .get("verificationMethod")?
        .as_array()?
        .iter()
        .find(|method| {
            method
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.ends_with("#atproto"))
        })?;
    let text = method.get("publicKeyMultibase")?.as_str()?;
    let legacy = match method.get("type").and_then(Value::as_str) {
        Some("EcdsaSecp256k1VerificationKey2019") => Some(atp_crypto::Algorithm::K256),
        Some("EcdsaSecp256r1VerificationKey2019") => Some(atp_crypto::Algorithm::P256),
        _ => None,
    };
    match legacy {
        Some(alg) => atp_crypto::did_key::parse_legacy_multibase(alg, text).ok(),
        None => atp_crypto::PublicKey::from_multibase(text).ok(),
    }
}
