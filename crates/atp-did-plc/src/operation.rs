//! The three kinds of `did:plc` operation, unsigned and signed, and their
//! JSON and DAG-CBOR forms.
//!
//! * `plc_operation`: `rotationKeys`, `verificationMethods`, `alsoKnownAs`,
//!   `services`, `prev` (a CID string, or `null` for a genesis operation:
//!   the member is always written) and `sig`.
//! * `plc_tombstone`: `prev` (never `null`) and `sig`.
//! * `create`: the legacy genesis format (`signingKey`, `recoveryKey`,
//!   `handle`, `service`, `prev: null`, `sig`), accepted only for reading
//!   old logs.
//!
//! Parsing is strict: every member of the type must be present, with the
//! right JSON type, and no unknown member is accepted. Whatever parses
//! re-encodes to the same DAG-CBOR bytes. (The reference directory ignores
//! unknown members but then signs and hashes them; rejecting them keeps the
//! bytes we hash equal to the bytes we model.)

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use atp_crypto::Cid;

use crate::Error;

/// The `type` of the regular operation.
pub const TYPE_PLC_OPERATION: &str = "plc_operation";
/// The `type` of a tombstone.
pub const TYPE_PLC_TOMBSTONE: &str = "plc_tombstone";
/// The `type` of the legacy genesis operation.
pub const TYPE_LEGACY_CREATE: &str = "create";

/// Which of the three operation types an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationType {
    /// `plc_operation`.
    PlcOperation,
    /// `plc_tombstone`.
    Tombstone,
    /// `create` (legacy genesis).
    LegacyCreate,
}

impl OperationType {
    /// The `type` string of this operation type.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::PlcOperation => TYPE_PLC_OPERATION,
            OperationType::Tombstone => TYPE_PLC_TOMBSTONE,
            OperationType::LegacyCreate => TYPE_LEGACY_CREATE,
        }
    }
}

/// A service entry: `{"type": ..., "endpoint": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service type, e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The endpoint URL, e.g. `https://pds.example.com`.
    pub endpoint: String,
}

/// The body of a `plc_operation` (everything but `type` and `sig`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlcOperation {
    /// `did:key` strings, highest authority first.
    pub rotation_keys: Vec<String>,
    /// Verification method id (without `#`) to `did:key`; `atproto` is the
    /// repository signing key.
    pub verification_methods: BTreeMap<String, String>,
    /// URIs, the handle first as `at://<handle>`.
    pub also_known_as: Vec<String>,
    /// Service id (without `#`) to service; `atproto_pds` is the PDS.
    pub services: BTreeMap<String, Service>,
    /// CID string of the operation this one builds on, `None` (written as
    /// `null`) for a genesis operation.
    pub prev: Option<String>,
}

/// The body of a `plc_tombstone`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TombstoneOperation {
    /// CID string of the operation this one ends the log after.
    pub prev: String,
}

/// The body of a legacy `create` genesis operation (its `prev` is always
/// `null`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LegacyCreateOperation {
    /// The atproto signing key (`did:key`); also the second rotation key.
    pub signing_key: String,
    /// The recovery key (`did:key`); the first rotation key.
    pub recovery_key: String,
    /// The handle, without `at://`.
    pub handle: String,
    /// The PDS URL.
    pub service: String,
}

/// An operation without its signature: the value whose DAG-CBOR is signed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnsignedOperation {
    /// `plc_operation`.
    Plc(PlcOperation),
    /// `plc_tombstone`.
    Tombstone(TombstoneOperation),
    /// Legacy `create`.
    LegacyCreate(LegacyCreateOperation),
}

/// A signed operation, as POSTed to a directory and stored in logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The signed content.
    pub unsigned: UnsignedOperation,
    /// base64url (no padding) of the 64-byte compact low-S signature over
    /// the DAG-CBOR of [`Operation::unsigned`].
    pub sig: String,
}

impl UnsignedOperation {
    /// The operation type.
    pub fn operation_type(&self) -> OperationType {
        match self {
            UnsignedOperation::Plc(_) => OperationType::PlcOperation,
            UnsignedOperation::Tombstone(_) => OperationType::Tombstone,
            UnsignedOperation::LegacyCreate(_) => OperationType::LegacyCreate,
        }
    }

    /// The `prev` CID string, `None` for a genesis operation.
    pub fn prev(&self) -> Option<&str> {
        match self {
            UnsignedOperation::Plc(op) => op.prev.as_deref(),
            UnsignedOperation::Tombstone(op) => Some(&op.prev),
            UnsignedOperation::LegacyCreate(_) => None,
        }
    }

    /// The canonical DAG-CBOR bytes: exactly what gets signed.
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        Ok(atp_crypto::dagcbor::to_vec(&self.wire(None))?)
    }

    /// Parses the JSON form of an unsigned operation (no `sig` member).
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let wire: WireIn = serde_json::from_str(text).map_err(invalid)?;
        wire.into_unsigned()
    }

    /// The operation as a regular `plc_operation` body, converting a legacy
    /// `create` the way the reference does (rotation keys `[recoveryKey,
    /// signingKey]`, `at://` handle, `https://` service). `None` for a
    /// tombstone.
    pub fn normalized(&self) -> Option<PlcOperation> {
        match self {
            UnsignedOperation::Plc(op) => Some(op.clone()),
            UnsignedOperation::Tombstone(_) => None,
            UnsignedOperation::LegacyCreate(op) => {
                let mut verification_methods = BTreeMap::new();
                verification_methods.insert("atproto".to_owned(), op.signing_key.clone());
                let mut services = BTreeMap::new();
                services.insert(
                    "atproto_pds".to_owned(),
                    Service {
                        service_type: "AtprotoPersonalDataServer".to_owned(),
                        endpoint: ensure_http_prefix(&op.service),
                    },
                );
                Some(PlcOperation {
                    rotation_keys: vec![op.recovery_key.clone(), op.signing_key.clone()],
                    verification_methods,
                    also_known_as: vec![ensure_atproto_prefix(&op.handle)],
                    services,
                    prev: None,
                })
            }
        }
    }

    fn wire<'a>(&'a self, sig: Option<&'a str>) -> WireOut<'a> {
        let mut out = WireOut {
            kind: self.operation_type().as_str(),
            rotation_keys: None,
            verification_methods: None,
            also_known_as: None,
            services: None,
            signing_key: None,
            recovery_key: None,
            handle: None,
            service: None,
            prev: Some(self.prev()),
            sig,
        };
        match self {
            UnsignedOperation::Plc(op) => {
                out.rotation_keys = Some(&op.rotation_keys);
                out.verification_methods = Some(&op.verification_methods);
                out.also_known_as = Some(&op.also_known_as);
                out.services = Some(&op.services);
            }
            UnsignedOperation::Tombstone(_) => {}
            UnsignedOperation::LegacyCreate(op) => {
                out.signing_key = Some(&op.signing_key);
                out.recovery_key = Some(&op.recovery_key);
                out.handle = Some(&op.handle);
                out.service = Some(&op.service);
            }
        }
        out
    }
}

impl Operation {
    /// The operation type.
    pub fn operation_type(&self) -> OperationType {
        self.unsigned.operation_type()
    }

    /// The `prev` CID string, `None` for a genesis operation.
    pub fn prev(&self) -> Option<&str> {
        self.unsigned.prev()
    }

    /// Whether this is a genesis operation (`prev` is `null`).
    pub fn is_genesis(&self) -> bool {
        self.prev().is_none()
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        matches!(self.unsigned, UnsignedOperation::Tombstone(_))
    }

    /// The canonical DAG-CBOR bytes of the signed operation (what is hashed
    /// for the DID and for CIDs).
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        Ok(atp_crypto::dagcbor::to_vec(
            &self.unsigned.wire(Some(&self.sig)),
        )?)
    }

    /// The CID (`dag-cbor`, sha2-256) of the signed operation: what the next
    /// operation puts in `prev`.
    pub fn cid(&self) -> Result<Cid, Error> {
        Ok(atp_crypto::cid_for_dag_cbor(&self.to_cbor()?))
    }

    /// Parses an operation from its JSON form (as POSTed to a directory).
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let wire: WireIn = serde_json::from_str(text).map_err(invalid)?;
        wire.into_signed()
    }

    /// Parses an operation from a JSON value.
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self, Error> {
        let wire = WireIn::deserialize(value).map_err(invalid)?;
        wire.into_signed()
    }

    /// Parses an operation from strict canonical DAG-CBOR.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Error> {
        let wire: WireIn = atp_crypto::dagcbor::from_slice(bytes).map_err(|e| match e {
            atp_crypto::Error::Decode(msg) => Error::InvalidOperation(msg),
            other => Error::Crypto(other),
        })?;
        wire.into_signed()
    }

    /// The JSON form (member order is not significant).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and maps to JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The JSON form as a value.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// See [`UnsignedOperation::normalized`].
    pub fn normalized(&self) -> Option<PlcOperation> {
        self.unsigned.normalized()
    }
}

impl Serialize for UnsignedOperation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire(None).serialize(serializer)
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.unsigned.wire(Some(&self.sig)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        wire.into_signed()
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

impl<'de> Deserialize<'de> for UnsignedOperation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        wire.into_unsigned()
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// Adds `https://` unless the string already starts with `http://` or
/// `https://` (what the reference does to legacy `service` values).
pub fn ensure_http_prefix(text: &str) -> String {
    if text.starts_with("http://") || text.starts_with("https://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    }
}

/// Makes an `at://` URI of a handle as the reference does for legacy
/// `handle` values: kept if it already starts with `at://`, otherwise the
/// first `http://` and `https://` are removed and `at://` is prepended.
pub fn ensure_atproto_prefix(text: &str) -> String {
    if text.starts_with("at://") {
        return text.to_owned();
    }
    let stripped = text.replacen("http://", "", 1).replacen("https://", "", 1);
    format!("at://{stripped}")
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidOperation(e.to_string())
}

/// What is written: members absent from the type are skipped, `prev` is
/// always written (as `null` when there is none).
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "rotationKeys", skip_serializing_if = "Option::is_none")]
    rotation_keys: Option<&'a Vec<String>>,
    #[serde(
        rename = "verificationMethods",
        skip_serializing_if = "Option::is_none"
    )]
    verification_methods: Option<&'a BTreeMap<String, String>>,
    #[serde(rename = "alsoKnownAs", skip_serializing_if = "Option::is_none")]
    also_known_as: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<&'a BTreeMap<String, Service>>,
    #[serde(rename = "signingKey", skip_serializing_if = "Option::is_none")]
    signing_key: Option<&'a str>,
    #[serde(rename = "recoveryKey", skip_serializing_if = "Option::is_none")]
    recovery_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handle: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<&'a str>,
}

/// What is read: every member optional so that a missing one gets a clear
/// message; `prev` distinguishes "absent" (`None`) from `null`
/// (`Some(None)`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "rotationKeys", default)]
    rotation_keys: Option<Vec<String>>,
    #[serde(rename = "verificationMethods", default)]
    verification_methods: Option<BTreeMap<String, String>>,
    #[serde(rename = "alsoKnownAs", default)]
    also_known_as: Option<Vec<String>>,
    #[serde(default)]
    services: Option<BTreeMap<String, Service>>,
    #[serde(rename = "signingKey", default)]
    signing_key: Option<String>,
    #[serde(rename = "recoveryKey", default)]
    recovery_key: Option<String>,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default, deserialize_with = "present")]
    prev: Option<Option<String>>,
    #[serde(default)]
    sig: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn require<T>(value: Option<T>, kind: &str, field: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::InvalidOperation(format!("{kind} requires field `{field}`")))
}

impl WireIn {
    fn into_signed(mut self) -> Result<Operation, Error> {
        let sig = self.sig.take().ok_or_else(|| {
            Error::InvalidOperation("missing field `sig` (the operation is not signed)".into())
        })?;
        let unsigned = self.into_unsigned()?;
        Ok(Operation { unsigned, sig })
    }

    fn into_unsigned(self) -> Result<UnsignedOperation, Error> {
        if self.sig.is_some() {
            return Err(Error::InvalidOperation(
                "an unsigned operation must not have a `sig` field".into(),
            ));
        }
        let kind = self
            .kind
            .ok_or_else(|| Error::InvalidOperation("missing field `type`".into()))?;
        let unexpected = |present: bool, field: &str| -> Result<(), Error> {
            if present {
                Err(Error::InvalidOperation(format!(
                    "field `{field}` does not belong in a `{kind}` operation"
                )))
            } else {
                Ok(())
            }
        };
        match kind.as_str() {
            TYPE_PLC_OPERATION => {
                unexpected(self.signing_key.is_some(), "signingKey")?;
                unexpected(self.recovery_key.is_some(), "recoveryKey")?;
                unexpected(self.handle.is_some(), "handle")?;
                unexpected(self.service.is_some(), "service")?;
                let prev = self.prev.ok_or_else(|| {
                    Error::InvalidOperation(
                        "plc_operation requires field `prev` (written as null for a genesis operation)"
                            .into(),
                    )
                })?;
                Ok(UnsignedOperation::Plc(PlcOperation {
                    rotation_keys: require(self.rotation_keys, &kind, "rotationKeys")?,
                    verification_methods: require(
                        self.verification_methods,
                        &kind,
                        "verificationMethods",
                    )?,
                    also_known_as: require(self.also_known_as, &kind, "alsoKnownAs")?,
                    services: require(self.services, &kind, "services")?,
                    prev,
                }))
            }
            TYPE_PLC_TOMBSTONE => {
                unexpected(self.rotation_keys.is_some(), "rotationKeys")?;
                unexpected(self.verification_methods.is_some(), "verificationMethods")?;
                unexpected(self.also_known_as.is_some(), "alsoKnownAs")?;
                unexpected(self.services.is_some(), "services")?;
                unexpected(self.signing_key.is_some(), "signingKey")?;
                unexpected(self.recovery_key.is_some(), "recoveryKey")?;
                unexpected(self.handle.is_some(), "handle")?;
                unexpected(self.service.is_some(), "service")?;
                match self.prev {
                    Some(Some(prev)) => {
                        Ok(UnsignedOperation::Tombstone(TombstoneOperation { prev }))
                    }
                    _ => Err(Error::InvalidOperation(
                        "plc_tombstone requires a non-null `prev`".into(),
                    )),
                }
            }
            TYPE_LEGACY_CREATE => {
                unexpected(self.rotation_keys.is_some(), "rotationKeys")?;
                unexpected(self.verification_methods.is_some(), "verificationMethods")?;
                unexpected(self.also_known_as.is_some(), "alsoKnownAs")?;
                unexpected(self.services.is_some(), "services")?;
                match self.prev {
                    Some(None) => {}
                    _ => {
                        return Err(Error::InvalidOperation(
                            "create requires field `prev` with the value null".into(),
                        ))
                    }
                }
                Ok(UnsignedOperation::LegacyCreate(LegacyCreateOperation {
                    signing_key: require(self.signing_key, &kind, "signingKey")?,
                    recovery_key: require(self.recovery_key, &kind, "recoveryKey")?,
                    handle: require(self.handle, &kind, "handle")?,
                    service: require(self.service, &kind, "service")?,
                }))
            }
            other => Err(Error::InvalidOperation(format!(
                "unknown operation type {other:?} (expected plc_operation, plc_tombstone or create)"
            ))),
        }
    }
}
