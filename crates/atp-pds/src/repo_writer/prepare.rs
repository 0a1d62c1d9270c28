//! Checking and converting one record write before anything is locked:
//! `$type` against the collection, record key, lexicon validation, JSON to
//! DAG-CBOR, blob references; and the `swapRecord` rules and new revs the
//! commit builder applies.

use std::sync::OnceLock;

use atp_crypto::{Cid, Ipld};
use atp_repo_mst::repo::WriteAction;
use atp_syntax::{Nsid, RecordKey, Tid, TidClock};
use atp_xrpc::lexicon::{LexiconError, Lexicons, ValidationStatus};
use atp_xrpc::server::XrpcError;
use serde_json::Value;

use crate::blob_refs::{find_blob_refs, BlobRef};

/// One record write, checked and converted, ready to be applied.
#[derive(Clone, Debug)]
pub struct PreparedWrite {
    /// Create, update or delete.
    pub action: WriteAction,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    /// The record as DAG-CBOR data (`None` for a delete).
    pub record: Option<Ipld>,
    /// The record's CID (`None` for a delete).
    pub cid: Option<Cid>,
    /// The blobs the record references.
    pub blobs: Vec<BlobRef>,
    /// The lexicon check's outcome; `None` when validation was turned off
    /// (and for deletes).
    pub validation_status: Option<ValidationStatus>,
    /// `swapRecord`: `None` checks nothing, `Some(None)` requires that no
    /// record exists, `Some(Some(cid))` that the current record is `cid`.
    pub swap_record: Option<Option<Cid>>,
}

impl PreparedWrite {
    /// The same write with a `swapRecord` condition.
    pub fn with_swap_record(mut self, swap: Option<Option<Cid>>) -> Self {
        self.swap_record = swap;
        self
    }

    /// The MST key, `<collection>/<rkey>`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

pub(super) fn invalid(message: impl Into<String>) -> XrpcError {
    XrpcError::invalid_request(message)
}
/// The bundled lexicons, parsed once.
pub fn lexicons() -> &'static Lexicons {
    static LEXICONS: OnceLock<Lexicons> = OnceLock::new();
    LEXICONS.get_or_init(Lexicons::bundled)
}

/// The record types the reference PDS validates writes of; records of
/// other types are `unknown` (refused when validation is required), as
/// there.
pub const VALIDATED_RECORD_TYPES: &[&str] = &[
    "app.bsky.actor.profile",
    "app.bsky.actor.status",
    "app.bsky.feed.generator",
    "app.bsky.feed.like",
    "app.bsky.feed.post",
    "app.bsky.feed.postgate",
    "app.bsky.feed.repost",
    "app.bsky.feed.threadgate",
    "app.bsky.graph.block",
    "app.bsky.graph.follow",
    "app.bsky.graph.list",
    "app.bsky.graph.listblock",
    "app.bsky.graph.listitem",
    "app.bsky.graph.starterpack",
    "app.bsky.graph.verification",
    "app.bsky.labeler.service",
    "app.bsky.notification.declaration",
    "chat.bsky.actor.declaration",
    "com.atproto.lexicon.schema",
    "com.germnetwork.declaration",
];

fn lexicon_message(err: LexiconError) -> String {
    match err {
        LexiconError::Validation(message) => message,
        other => other.to_string(),
    }
}

fn check_collection(collection: &str) -> Result<(), XrpcError> {
    if Nsid::is_valid(collection) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid collection: {collection}")))
    }
}

fn check_rkey(rkey: &str) -> Result<(), XrpcError> {
    if RecordKey::is_valid(rkey) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid record key: {rkey}")))
    }
}

/// Validates `record` (JSON, `$type` set) against the bundled lexicons as
/// the reference does: `validate == Some(false)` skips it; a type outside
/// [`VALIDATED_RECORD_TYPES`] or without a bundled schema is `unknown`, or
/// refused when `validate == Some(true)`.
fn validate_record(
    collection: &str,
    rkey: &str,
    record: &Value,
    validate: Option<bool>,
) -> Result<Option<ValidationStatus>, XrpcError> {
    if validate == Some(false) {
        return Ok(None);
    }
    let lexicons = lexicons();
    if !VALIDATED_RECORD_TYPES.contains(&collection) || lexicons.get_def(collection).is_none() {
        if validate == Some(true) {
            return Err(invalid(format!("Unknown lexicon type: {collection}")));
        }
        return Ok(Some(ValidationStatus::Unknown));
    }
    lexicons
        .validate_record_key(collection, rkey)
        .map_err(|err| {
            invalid(format!(
                "Invalid record key for {collection}: {}",
                lexicon_message(err)
            ))
        })?;
    let status = lexicons
        .validate_record(collection, record)
        .map_err(|err| {
            invalid(format!(
                "Invalid {collection} record: {}",
                lexicon_message(err)
            ))
        })?;
    Ok(Some(status))
}

fn prepare_record_write(
    action: WriteAction,
    did: &str,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    check_collection(collection)?;
    let Some(object) = record.as_object() else {
        return Err(invalid("Record must be an object"));
    };
    let mut object = object.clone();
    match object.get("$type") {
        None => {
            object.insert("$type".to_owned(), Value::String(collection.to_owned()));
        }
        Some(Value::String(ty)) if ty == collection => {}
        Some(other) => {
            let got = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(invalid(format!(
                "Invalid $type: expected {collection}, got {got}"
            )));
        }
    }
    let rkey = match rkey {
        Some(rkey) => {
            check_rkey(rkey)?;
            rkey.to_owned()
        }
        None => TidClock::global().next().as_str().to_owned(),
    };
    let record = Value::Object(object);
    let validation_status = validate_record(collection, &rkey, &record, validate)?;
    let ipld = atp_crypto::data_model::json_record_to_ipld(&record)
        .map_err(|err| invalid(format!("Invalid {collection} record: {err}")))?;
    let blobs = find_blob_refs(&ipld);
    if let Some(legacy) = blobs.iter().find(|blob| blob.size.is_none()) {
        return Err(invalid(format!(
            "Legacy blobs are not allowed ({})",
            legacy.cid
        )));
    }
    let (cid, _) = atp_crypto::dagcbor::cid_of_ipld(&ipld)
        .map_err(|err| invalid(format!("Invalid {collection} record: {err}")))?;
    Ok(PreparedWrite {
        action,
        collection: collection.to_owned(),
        uri: format!("at://{did}/{collection}/{rkey}"),
        rkey,
        record: Some(ipld),
        cid: Some(cid),
        blobs,
        validation_status,
        swap_record: None,
    })
}

/// Prepares a record creation in `did`'s repository; without `rkey` the
/// record key is a new TID. A record without `$type` gets the collection.
pub fn prepare_create(
    did: &str,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    prepare_record_write(WriteAction::Create, did, collection, rkey, record, validate)
}

/// Prepares the replacement of an existing record.
pub fn prepare_update(
    did: &str,
    collection: &str,
    rkey: &str,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    prepare_record_write(
        WriteAction::Update,
        did,
        collection,
        Some(rkey),
        record,
        validate,
    )
}

/// Prepares the deletion of a record.
pub fn prepare_delete(did: &str, collection: &str, rkey: &str) -> Result<PreparedWrite, XrpcError> {
    check_collection(collection)?;
    check_rkey(rkey)?;
    Ok(PreparedWrite {
        action: WriteAction::Delete,
        collection: collection.to_owned(),
        rkey: rkey.to_owned(),
        uri: format!("at://{did}/{collection}/{rkey}"),
        record: None,
        cid: None,
        blobs: Vec::new(),
        validation_status: None,
        swap_record: None,
    })
}

/// A rev greater than `previous`: the next TID of the process clock,
/// moved past `previous` first if the clock is behind it.
pub fn next_rev(previous: &str) -> String {
    let clock = TidClock::global();
    let rev = clock.next();
    if rev.as_str() > previous {
        return rev.as_str().to_owned();
    }
    if let Ok(previous) = Tid::new(previous) {
        clock.advance_past(previous);
    }
    clock.next().as_str().to_owned()
}

/// The reference's answer to a failed `swapCommit`.
pub(super) fn bad_commit_swap(current: &Cid) -> XrpcError {
    invalid(format!("Commit was at {current}")).with_name("InvalidSwap")
}

/// The reference's answer to a failed `swapRecord`.
fn bad_record_swap(current: Option<&Cid>) -> XrpcError {
    let at = current.map_or_else(|| "null".to_owned(), Cid::to_string);
    invalid(format!("Record was at {at}")).with_name("InvalidSwap")
}

/// Checks one write's `swapRecord` against the current record, with the
/// reference's rules.
pub(super) fn check_record_swap(
    write: &PreparedWrite,
    current: Option<&Cid>,
) -> Result<(), XrpcError> {
    let Some(swap) = &write.swap_record else {
        return Ok(());
    };
    let mismatch = match (write.action, swap) {
        (WriteAction::Create, Some(_)) => true,
        (WriteAction::Update | WriteAction::Delete, None) => true,
        _ => match (swap, current) {
            (None, None) => false,
            (Some(swap), Some(current)) => swap != current,
            _ => true,
        },
    };
    if mismatch {
        Err(bad_record_swap(current))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[test]
    fn type_is_added_or_must_match() {
        let write = prepare_create(DID, "com.example.thing", None, &json!({"a": 1}), None).unwrap();
        let Some(Ipld::Map(map)) = &write.record else {
            panic!("a record")
        };
        assert_eq!(
            map.get("$type"),
            Some(&Ipld::String("com.example.thing".to_owned()))
        );
        assert_eq!(write.validation_status, Some(ValidationStatus::Unknown));
        assert!(Tid::is_valid(&write.rkey));

        let err = prepare_create(
            DID,
            "com.example.thing",
            None,
            &json!({"$type": "com.example.other"}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid $type: expected com.example.thing, got com.example.other"
        );
    }

    #[test]
    fn validation_flag_follows_the_reference() {
        let post = json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"});
        let write = prepare_create(DID, "app.bsky.feed.post", None, &post, None).unwrap();
        assert_eq!(write.validation_status, Some(ValidationStatus::Valid));
        let write = prepare_create(DID, "app.bsky.feed.post", None, &post, Some(false)).unwrap();
        assert_eq!(write.validation_status, None);
        let bad = json!({"$type": "app.bsky.feed.post", "text": 5, "createdAt": "2024-01-01T00:00:00.000Z"});
        let err = prepare_create(DID, "app.bsky.feed.post", None, &bad, None).unwrap_err();
        assert!(err
            .message()
            .starts_with("Invalid app.bsky.feed.post record:"));
        assert!(prepare_create(DID, "app.bsky.feed.post", None, &bad, Some(false)).is_ok());
        let err =
            prepare_create(DID, "com.example.thing", None, &json!({}), Some(true)).unwrap_err();
        assert_eq!(err.message(), "Unknown lexicon type: com.example.thing");
        let err =
            prepare_create(DID, "app.bsky.feed.post", Some("bad key!"), &post, None).unwrap_err();
        assert_eq!(err.message(), "Invalid record key: bad key!");
        let err = prepare_create(DID, "com.example.thing", Some(""), &json!({}), None).unwrap_err();
        assert_eq!(err.message(), "Invalid record key: ");
        // A post's key must be a TID.
        let err = prepare_create(DID, "app.bsky.feed.post", Some("self"), &post, None).unwrap_err();
        assert!(err
            .message()
            .starts_with("Invalid record key for app.bsky.feed.post"));
    }

    #[test]
    fn only_the_reference_s_record_types_are_validated() {
        let record = json!({"$type": "app.bsky.graph.referencelistoptout"});
        let write = prepare_create(
            DID,
            "app.bsky.graph.referencelistoptout",
            None,
            &record,
            None,
        )
        .unwrap();
        assert_eq!(write.validation_status, Some(ValidationStatus::Unknown));
        for collection in VALIDATED_RECORD_TYPES {
            assert!(Nsid::is_valid(collection));
        }
    }

    #[test]
    fn record_swap_rules() {
        let cid = atp_crypto::cid_for_dag_cbor(b"x");
        let other = atp_crypto::cid_for_dag_cbor(b"y");
        let create = prepare_create(DID, "com.example.thing", Some("a"), &json!({}), None).unwrap();
        let update = prepare_update(DID, "com.example.thing", "a", &json!({}), None).unwrap();
        let delete = prepare_delete(DID, "com.example.thing", "a").unwrap();
        // No condition: anything goes.
        assert!(check_record_swap(&create, Some(&cid)).is_ok());
        // Create with "must not exist".
        let c = create.clone().with_swap_record(Some(None));
        assert!(check_record_swap(&c, None).is_ok());
        assert_eq!(
            check_record_swap(&c, Some(&cid)).unwrap_err().message(),
            format!("Record was at {cid}")
        );
        assert!(check_record_swap(&create.with_swap_record(Some(Some(cid))), None).is_err());
        // Update and delete need the current CID.
        for write in [update, delete] {
            assert!(check_record_swap(&write.clone().with_swap_record(Some(None)), None).is_err());
            let w = write.with_swap_record(Some(Some(cid)));
            assert!(check_record_swap(&w, Some(&cid)).is_ok());
            let err = check_record_swap(&w, Some(&other)).unwrap_err();
            assert_eq!(err.name(), "InvalidSwap");
            assert_eq!(err.message(), format!("Record was at {other}"));
            assert_eq!(
                check_record_swap(&w, None).unwrap_err().message(),
                "Record was at null"
            );
        }
    }

    #[test]
    fn next_rev_passes_a_rev_from_the_future() {
        let now = chrono::Utc::now().timestamp_micros() as u64;
        let future = Tid::from_parts(now + 5_000_000, 0).unwrap();
        let rev = next_rev(future.as_str());
        assert!(rev.as_str() > future.as_str());
        let later = next_rev(&rev);
        assert!(later > rev);
    }
}
