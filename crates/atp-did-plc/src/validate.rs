//! Validation of operations and logs with the semantics of the reference
//! directory (`@did-plc/lib` `data.ts` / `operations.ts` and
//! `@did-plc/server` `constraints.ts`).
//!
//! A directory receiving `POST /:did` runs, in this order:
//!
//! 1. [`assert_valid_incoming_op`]: the size and count limits of the
//!    server's `constraints.ts` (the version with
//!    `MAX_VERIFICATION_METHOD_ENTRIES`, matching spec v0.2 of June 2025:
//!    4000 bytes of DAG-CBOR, at most 10 `alsoKnownAs` entries of at most
//!    258 characters without duplicates, at most 10 rotation keys, services
//!    and verification methods, ids of at most 32 characters, service types
//!    of at most 256 and endpoints of at most 512 characters,
//!    verification-method keys of at most 256 characters that are
//!    syntactically `did:key:z<base58btc>`);
//! 2. [`assure_valid_next_op`]: the library's rules: rotation keys are
//!    P-256 or secp256k1 `did:key`s, 1 to 5 of them; a genesis operation has
//!    `prev: null`, a valid signature by one of its own rotation keys and
//!    hashes to the DID; an update's `prev` is the CID of an operation in
//!    the log that is not a tombstone, and it is signed by a rotation key of
//!    that operation; if it forks history (nullifying later operations) it
//!    must be signed by a key of strictly higher priority than the one that
//!    signed the first nullified operation, within 72 hours of it;
//! 3. [`enforce_ops_rate_limit`] for operations that nullify nothing.
//!
//! [`assure_valid_submission`] runs the first two. Lengths are counted in
//! UTF-16 code units, as JavaScript's `String.length` does.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use atp_crypto::{Cid, PublicKey};

use crate::did::full_did_for_genesis;
use crate::document::DocumentData;
use crate::operation::{Operation, OperationType, UnsignedOperation};
use crate::Error;

/// Largest DAG-CBOR encoding of an operation, in bytes.
pub const MAX_OP_BYTES: usize = 4000;
/// Most `alsoKnownAs` entries.
pub const MAX_AKA_ENTRIES: usize = 10;
/// Longest `alsoKnownAs` entry (a 253-character handle plus `at://`).
pub const MAX_AKA_LENGTH: usize = 258;
/// Most rotation keys the server's first check accepts.
pub const MAX_ROTATION_ENTRIES: usize = 10;
/// Most rotation keys the library accepts (the limit that applies).
pub const MAX_ROTATION_KEYS: usize = 5;
/// Most services.
pub const MAX_SERVICE_ENTRIES: usize = 10;
/// Longest service type.
pub const MAX_SERVICE_TYPE_LENGTH: usize = 256;
/// Longest service endpoint.
pub const MAX_SERVICE_ENDPOINT_LENGTH: usize = 512;
/// Most verification methods.
pub const MAX_VERIFICATION_METHOD_ENTRIES: usize = 10;
/// Longest service or verification method id.
pub const MAX_ID_LENGTH: usize = 32;
/// Longest verification method key.
pub const MAX_DID_KEY_LENGTH: usize = 256;
/// How long after an operation a higher-priority rotation key may still
/// nullify it, in milliseconds (72 hours).
pub const RECOVERY_WINDOW_MS: i64 = 72 * 60 * 60 * 1000;

/// An operation as a directory stores it: with its CID, its arrival time,
/// and whether a later recovery nullified it. The JSON form is an entry of
/// the audit log (`GET /:did/log/audit`): `{did, operation, cid, nullified,
/// createdAt}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedOperation {
    /// The DID the operation belongs to.
    pub did: String,
    /// The signed operation.
    pub operation: Operation,
    /// The CID of the operation.
    pub cid: Cid,
    /// Whether a recovery operation nullified it.
    pub nullified: bool,
    /// When the directory accepted it.
    pub created_at: DateTime<Utc>,
}

impl IndexedOperation {
    /// Indexes a newly accepted operation (not nullified), computing its CID.
    pub fn new(did: &str, operation: Operation, created_at: DateTime<Utc>) -> Result<Self, Error> {
        let cid = operation.cid()?;
        Ok(IndexedOperation {
            did: did.to_owned(),
            operation,
            cid,
            nullified: false,
            created_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexedWire {
    did: String,
    operation: Operation,
    cid: String,
    nullified: bool,
    #[serde(rename = "createdAt")]
    created_at: String,
}

impl Serialize for IndexedOperation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IndexedWire {
            did: self.did.clone(),
            operation: self.operation.clone(),
            cid: self.cid.to_string(),
            nullified: self.nullified,
            created_at: self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IndexedOperation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = IndexedWire::deserialize(deserializer)?;
        let cid = atp_crypto::parse_cid(&wire.cid).map_err(D::Error::custom)?;
        let created_at = DateTime::parse_from_rfc3339(&wire.created_at)
            .map_err(|e| D::Error::custom(format!("createdAt: {e}")))?
            .with_timezone(&Utc);
        Ok(IndexedOperation {
            did: wire.did,
            operation: wire.operation,
            cid,
            nullified: wire.nullified,
            created_at,
        })
    }
}

/// What accepting an operation does to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextOp {
    /// CIDs of the operations the new one nullifies (empty unless it is a
    /// recovery).
    pub nullified: Vec<Cid>,
    /// The CID the new operation builds on, `None` for a genesis operation.
    pub prev: Option<Cid>,
}

fn js_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Whether `key` is a syntactically valid `did:key` of any key type:
/// `did:key:z` followed by base58btc that decodes to at least one byte.
pub fn is_syntactic_did_key(key: &str) -> bool {
    match key.strip_prefix("did:key:z") {
        Some(rest) => matches!(bs58::decode(rest).into_vec(), Ok(bytes) if !bytes.is_empty()),
        None => false,
    }
}

/// The server's constraints on an incoming operation (step 1 above).
pub fn assert_valid_incoming_op(op: &Operation) -> Result<(), Error> {
    let size = op.to_cbor()?.len();
    if size > MAX_OP_BYTES {
        return Err(Error::OperationTooLarge {
            max: MAX_OP_BYTES,
            size,
        });
    }
    let body = match &op.unsigned {
        UnsignedOperation::Plc(body) => body,
        UnsignedOperation::Tombstone(_) => return Ok(()),
        UnsignedOperation::LegacyCreate(_) => {
            return Err(Error::InvalidOperation(
                "the legacy `create` format is no longer accepted for new operations".into(),
            ))
        }
    };
    if body.also_known_as.len() > MAX_AKA_ENTRIES {
        return Err(Error::TooManyAlsoKnownAs {
            max: MAX_AKA_ENTRIES,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for aka in &body.also_known_as {
        if js_len(aka) > MAX_AKA_LENGTH {
            return Err(Error::AlsoKnownAsTooLong {
                max: MAX_AKA_LENGTH,
                entry: aka.clone(),
            });
        }
        if !seen.insert(aka.as_str()) {
            return Err(Error::DuplicateAlsoKnownAs(aka.clone()));
        }
    }
    if body.rotation_keys.len() > MAX_ROTATION_ENTRIES {
        return Err(Error::TooManyRotationKeyEntries {
            max: MAX_ROTATION_ENTRIES,
        });
    }
    for key in &body.rotation_keys {
        if PublicKey::from_did_key(key).is_err() {
            return Err(Error::InvalidRotationKey(key.clone()));
        }
    }
    if body.services.len() > MAX_SERVICE_ENTRIES {
        return Err(Error::TooManyServices {
            max: MAX_SERVICE_ENTRIES,
        });
    }
    for (id, service) in &body.services {
        if js_len(id) > MAX_ID_LENGTH {
            return Err(Error::ServiceIdTooLong {
                max: MAX_ID_LENGTH,
                id: id.clone(),
            });
        }
        if js_len(&service.service_type) > MAX_SERVICE_TYPE_LENGTH {
            return Err(Error::ServiceTypeTooLong {
                max: MAX_SERVICE_TYPE_LENGTH,
            });
        }
        if js_len(&service.endpoint) > MAX_SERVICE_ENDPOINT_LENGTH {
            return Err(Error::ServiceEndpointTooLong {
                max: MAX_SERVICE_ENDPOINT_LENGTH,
            });
        }
    }
    if body.verification_methods.len() > MAX_VERIFICATION_METHOD_ENTRIES {
        return Err(Error::TooManyVerificationMethods {
            max: MAX_VERIFICATION_METHOD_ENTRIES,
        });
    }
    for (id, key) in &body.verification_methods {
        if js_len(id) > MAX_ID_LENGTH {
            return Err(Error::VerificationMethodIdTooLong {
                max: MAX_ID_LENGTH,
                id: id.clone(),
            });
        }
        if js_len(key) > MAX_DID_KEY_LENGTH {
            return Err(Error::VerificationMethodKeyTooLong {
                max: MAX_DID_KEY_LENGTH,
                key: key.clone(),
            });
        }
        if !is_syntactic_did_key(key) {
            return Err(Error::InvalidVerificationMethodKey(key.clone()));
        }
    }
    Ok(())
}

/// The library's checks on one operation on its own: every rotation key is
/// a supported `did:key`, and there are 1 to [`MAX_ROTATION_KEYS`] of them.
/// Tombstones always pass.
pub fn assure_valid_op(op: &Operation) -> Result<(), Error> {
    let Some(body) = op.normalized() else {
        return Ok(());
    };
    for key in &body.rotation_keys {
        if let Err(e) = PublicKey::from_did_key(key) {
            return Err(Error::UnsupportedKey {
                key: key.clone(),
                reason: e.to_string(),
            });
        }
    }
    if body.rotation_keys.len() > MAX_ROTATION_KEYS {
        return Err(Error::ImproperOperation("too many rotation keys".into()));
    }
    if body.rotation_keys.is_empty() {
        return Err(Error::ImproperOperation(
            "need at least one rotation key".into(),
        ));
    }
    Ok(())
}

/// Checks a genesis operation for `did` and returns the DID's data.
///
/// The DID must be at least 32 characters and a prefix of
/// `did:plc:<base32 of the hash>`: case matters, so an upper-case DID does
/// not match.
pub fn assure_valid_creation_op(did: &str, op: &Operation) -> Result<DocumentData, Error> {
    let Some(body) = op.normalized() else {
        return Err(Error::Misordered);
    };
    assure_valid_op(op)?;
    op.verify_signature(&body.rotation_keys)?;
    let expected = full_did_for_genesis(op)?;
    if did.len() < 32 {
        return Err(Error::ImproperlyFormattedDid("too short".into()));
    }
    if !expected.starts_with(did) {
        return Err(Error::GenesisHash { expected });
    }
    if op.prev().is_some() {
        return Err(Error::ImproperOperation(
            "expected null prev on create".into(),
        ));
    }
    Ok(DocumentData::from_operation(did, &body))
}

fn parse_prev(prev: &str) -> Result<Cid, Error> {
    atp_crypto::parse_cid(prev)
        .map_err(|e| Error::ImproperOperation(format!("could not parse prev {prev:?}: {e}")))
}

/// Decides whether `proposed` may be appended to the log of `did`.
///
/// `ops` is the log in order; entries marked nullified are ignored, as the
/// directory only considers the operations still in force. `proposed_at` is
/// the time the directory receives the operation (the recovery window is
/// measured from the first nullified operation's `created_at` to it).
pub fn assure_valid_next_op(
    did: &str,
    ops: &[IndexedOperation],
    proposed: &Operation,
    proposed_at: DateTime<Utc>,
) -> Result<NextOp, Error> {
    assure_valid_op(proposed)?;
    let active: Vec<&IndexedOperation> = ops.iter().filter(|op| !op.nullified).collect();
    if active.is_empty() {
        assure_valid_creation_op(did, proposed)?;
        return Ok(NextOp {
            nullified: Vec::new(),
            prev: None,
        });
    }
    let prev = match proposed.prev() {
        Some(prev) => parse_prev(prev)?,
        None => return Err(Error::Misordered),
    };
    let Some(index_of_prev) = active.iter().position(|op| op.cid == prev) else {
        return Err(Error::Misordered);
    };
    let last = active[index_of_prev];
    let nullified = &active[index_of_prev + 1..];
    let Some(last_body) = last.operation.normalized() else {
        // Nothing may follow a tombstone.
        return Err(Error::Misordered);
    };
    let Some(first_nullified) = nullified.first() else {
        proposed.verify_signature(&last_body.rotation_keys)?;
        return Ok(NextOp {
            nullified: Vec::new(),
            prev: Some(prev),
        });
    };
    let disputed_signer = first_nullified
        .operation
        .verify_signature(&last_body.rotation_keys)?;
    let more_powerful = &last_body.rotation_keys[..disputed_signer];
    proposed.verify_signature(more_powerful)?;
    let elapsed_ms = (proposed_at - first_nullified.created_at).num_milliseconds();
    if elapsed_ms > RECOVERY_WINDOW_MS {
        return Err(Error::LateRecovery { elapsed_ms });
    }
    Ok(NextOp {
        nullified: nullified.iter().map(|op| op.cid).collect(),
        prev: Some(prev),
    })
}

/// Everything a directory checks before accepting `proposed`:
/// [`assert_valid_incoming_op`] then [`assure_valid_next_op`].
pub fn assure_valid_submission(
    did: &str,
    ops: &[IndexedOperation],
    proposed: &Operation,
    proposed_at: DateTime<Utc>,
) -> Result<NextOp, Error> {
    assert_valid_incoming_op(proposed)?;
    assure_valid_next_op(did, ops, proposed, proposed_at)
}

/// Validates a log of operations in force (no nullified ones), first to
/// last, and returns the resulting DID data, or `None` if the log ends with
/// a tombstone.
pub fn validate_operation_log(did: &str, ops: &[Operation]) -> Result<Option<DocumentData>, Error> {
    let Some((first, rest)) = ops.split_first() else {
        return Err(Error::EmptyLog);
    };
    if first.is_tombstone() {
        return Err(Error::ImproperOperation("incorrect structure".into()));
    }
    if rest
        .iter()
        .any(|op| op.operation_type() == OperationType::LegacyCreate)
    {
        return Err(Error::ImproperOperation("incorrect structure".into()));
    }
    let mut doc = assure_valid_creation_op(did, first)?;
    let mut prev = first.cid()?;
    for (i, op) in rest.iter().enumerate() {
        match op.prev().map(atp_crypto::parse_cid) {
            Some(Ok(cid)) if cid == prev => {}
            _ => return Err(Error::Misordered),
        }
        op.verify_signature(&doc.rotation_keys)?;
        match op.normalized() {
            Some(body) => doc = DocumentData::from_operation(did, &body),
            None if i + 1 == rest.len() => return Ok(None),
            None => return Err(Error::Misordered),
        }
        prev = op.cid()?;
    }
    Ok(Some(doc))
}

/// The result of replaying an audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReplay {
    /// CIDs of the operations that recoveries nullified, in log order.
    pub nullified: Vec<Cid>,
    /// The operations still in force, in order.
    pub active: Vec<Operation>,
    /// The DID data they lead to (`None` after a tombstone).
    pub document: Option<DocumentData>,
}

/// Replays a full audit log (every operation ever accepted, nullified ones
/// included, in arrival order) through [`assure_valid_next_op`], each at
/// its `created_at`, and works out which operations are nullified.
///
/// Each entry's `cid` must be the CID of its operation. The `nullified`
/// flags of the entries are not trusted; compare them with
/// [`AuditReplay::nullified`] (see [`check_audit_log`]).
pub fn replay_audit_log(did: &str, entries: &[IndexedOperation]) -> Result<AuditReplay, Error> {
    let mut chain: Vec<IndexedOperation> = Vec::new();
    let mut nullified = Vec::new();
    for entry in entries {
        if entry.operation.cid()? != entry.cid {
            return Err(Error::ImproperOperation(format!(
                "audit log entry {} does not carry the CID of its operation",
                entry.cid
            )));
        }
        let next = assure_valid_next_op(did, &chain, &entry.operation, entry.created_at)?;
        chain.retain(|op| !next.nullified.contains(&op.cid));
        nullified.extend(next.nullified);
        let mut accepted = entry.clone();
        accepted.nullified = false;
        chain.push(accepted);
    }
    let active: Vec<Operation> = chain.into_iter().map(|op| op.operation).collect();
    let document = validate_operation_log(did, &active)?;
    Ok(AuditReplay {
        nullified,
        active,
        document,
    })
}

/// Replays an audit log and checks that its `nullified` flags are exactly
/// the ones the rules produce.
pub fn check_audit_log(did: &str, entries: &[IndexedOperation]) -> Result<AuditReplay, Error> {
    let replay = replay_audit_log(did, entries)?;
    for entry in entries {
        let computed = replay.nullified.contains(&entry.cid);
        if computed != entry.nullified {
            return Err(Error::ImproperOperation(format!(
                "audit log marks {} as nullified={} but the rules give nullified={}",
                entry.cid, entry.nullified, computed
            )));
        }
    }
    Ok(replay)
}

/// The directory's per-DID rate limit on operations that nullify nothing:
/// fewer than 10 in the last hour, 30 in the last day and 100 in the last
/// week (counting the operations already in `ops`).
pub fn enforce_ops_rate_limit(ops: &[IndexedOperation], now: DateTime<Utc>) -> Result<(), Error> {
    const HOUR_LIMIT: usize = 10;
    const DAY_LIMIT: usize = 30;
    const WEEK_LIMIT: usize = 100;
    let hour_ago = now - chrono::Duration::hours(1);
    let day_ago = now - chrono::Duration::days(1);
    let week_ago = now - chrono::Duration::days(7);
    let (mut hour, mut day, mut week) = (0, 0, 0);
    for op in ops {
        if op.created_at > week_ago {
            week += 1;
            if week >= WEEK_LIMIT {
                return Err(Error::RateLimited {
                    window: "week",
                    max: WEEK_LIMIT,
                });
            }
        }
        if op.created_at > day_ago {
            day += 1;
            if day >= DAY_LIMIT {
                return Err(Error::RateLimited {
                    window: "day",
                    max: DAY_LIMIT,
                });
            }
        }
        if op.created_at > hour_ago {
            hour += 1;
            if hour >= HOUR_LIMIT {
                return Err(Error::RateLimited {
                    window: "hour",
                    max: HOUR_LIMIT,
                });
            }
        }
    }
    Ok(())
}
