//! Builders that make signed operations ready to POST: a genesis operation
//! for a PDS account, updates derived from the last operation, and
//! tombstones.
//!
//! Every builder checks what the directory would check before returning:
//! the handle is a full domain name (it becomes `at://<handle>`), the PDS
//! endpoint is an `http(s)://` URL, the signer is a rotation key in force,
//! `prev` is `null` for a genesis operation and the CID of the last
//! operation for an update, and the result passes
//! [`assert_valid_incoming_op`] and [`assure_valid_op`].

use std::collections::BTreeMap;

use atp_crypto::SigningKey;

use crate::did::did_for_genesis;
use crate::operation::{Operation, PlcOperation, Service, TombstoneOperation, UnsignedOperation};
use crate::validate::{assert_valid_incoming_op, assure_valid_op};
use crate::Error;

/// Verification method id of the atproto signing key.
pub const ATPROTO_VERIFICATION_METHOD: &str = "atproto";
/// Service id of the PDS.
pub const ATPROTO_PDS_SERVICE: &str = "atproto_pds";
/// Service type of the PDS.
pub const ATPROTO_PDS_TYPE: &str = "AtprotoPersonalDataServer";

/// Checks that `handle` is a full domain-name handle and returns it in
/// lower case (handles are case-insensitive; the normalized form is what
/// goes in `alsoKnownAs`).
///
/// Rejects an `at://` or `http(s)://` prefix, a bare name without a dot
/// (`alice`), and anything that is not a syntactically valid hostname of at
/// most 253 characters whose last label starts with a letter.
pub fn normalize_handle(handle: &str) -> Result<String, Error> {
    let fail = |reason: &str| {
        Err(Error::InvalidHandle {
            handle: handle.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if handle.contains("://") {
        return fail("give the bare handle (e.g. alice.example.com); the at:// prefix is added");
    }
    if handle.len() > 253 {
        return fail("longer than 253 characters");
    }
    if !handle.is_ascii() {
        return fail("handles are ASCII (use punycode for international names)");
    }
    let labels: Vec<&str> = handle.split('.').collect();
    if labels.len() < 2 {
        return fail(
            "a handle is a full domain name with at least one dot, e.g. alice.example.com",
        );
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return fail("each dot-separated part must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return fail("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return fail("a part may not start or end with a hyphen");
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if !tld.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return fail("the last part (top-level domain) must start with a letter");
    }
    Ok(handle.to_ascii_lowercase())
}

/// Checks a PDS endpoint: `https://` or `http://`, a non-empty host, no
/// whitespace, query or fragment. A trailing `/` is removed.
pub fn normalize_endpoint(endpoint: &str) -> Result<String, Error> {
    let fail = |reason: &str| {
        Err(Error::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let Some(rest) = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
    else {
        return fail("must start with https:// (or http:// for local testing)");
    };
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return fail("contains whitespace");
    }
    if endpoint.contains(['?', '#']) {
        return fail("must not have a query or fragment");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return fail("has no host");
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
}

fn check_signer(signer: &SigningKey, rotation_keys: &[String]) -> Result<(), Error> {
    let did_key = signer.did_key();
    if rotation_keys.contains(&did_key) {
        Ok(())
    } else {
        Err(Error::SignerNotAuthorized(did_key))
    }
}

fn finish(unsigned: UnsignedOperation, signer: &SigningKey) -> Result<Operation, Error> {
    let op = unsigned.sign(signer)?;
    assert_valid_incoming_op(&op)?;
    assure_valid_op(&op)?;
    Ok(op)
}

/// A signed genesis operation and the DID it creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// `did:plc:` + 24 lower-case base32 characters.
    pub did: String,
    /// The signed operation to POST to `<directory>/<did>`.
    pub operation: Operation,
}

/// Builds the genesis operation of a PDS account.
///
/// ```
/// # fn main() -> Result<(), atp_did_plc::Error> {
/// use atp_crypto::{Algorithm, SigningKey};
/// use atp_did_plc::GenesisBuilder;
///
/// let rotation = SigningKey::generate(Algorithm::K256);
/// let signing = SigningKey::generate(Algorithm::K256);
/// let genesis = GenesisBuilder::new()
///     .rotation_key(rotation.did_key())
///     .signing_key(signing.did_key())
///     .handle("alice.example.com")
///     .pds_endpoint("https://pds.example.com")
///     .sign(&rotation)?;
/// assert!(genesis.did.starts_with("did:plc:"));
/// assert_eq!(genesis.operation.prev(), None);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct GenesisBuilder {
    rotation_keys: Vec<String>,
    signing_key: Option<String>,
    handle: Option<String>,
    pds_endpoint: Option<String>,
    also_known_as: Vec<String>,
}

impl GenesisBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a rotation key (`did:key`); the first has the highest
    /// priority.
    pub fn rotation_key(mut self, did_key: impl Into<String>) -> Self {
        self.rotation_keys.push(did_key.into());
        self
    }

    /// Sets the atproto signing key (`did:key`), the `atproto` verification
    /// method.
    pub fn signing_key(mut self, did_key: impl Into<String>) -> Self {
        self.signing_key = Some(did_key.into());
        self
    }

    /// Sets the handle (a full domain name such as `alice.example.com`).
    pub fn handle(mut self, handle: impl Into<String>) -> Self {
        self.handle = Some(handle.into());
        self
    }

    /// Sets the PDS endpoint (e.g. `https://pds.example.com`).
    pub fn pds_endpoint(mut self, url: impl Into<String>) -> Self {
        self.pds_endpoint = Some(url.into());
        self
    }

    /// Appends another `alsoKnownAs` URI after the handle.
    pub fn also_known_as(mut self, uri: impl Into<String>) -> Self {
        self.also_known_as.push(uri.into());
        self
    }

    /// Signs with `signer`, which must be one of the rotation keys, and
    /// derives the DID.
    pub fn sign(self, signer: &SigningKey) -> Result<Genesis, Error> {
        let missing = |what: &str| Error::ImproperOperation(format!("genesis needs {what}"));
        let signing_key = self.signing_key.ok_or_else(|| missing("a signing key"))?;
        let handle = normalize_handle(&self.handle.ok_or_else(|| missing("a handle"))?)?;
        let endpoint =
            normalize_endpoint(&self.pds_endpoint.ok_or_else(|| missing("a PDS endpoint"))?)?;
        check_signer(signer, &self.rotation_keys)?;
        let mut verification_methods = BTreeMap::new();
        verification_methods.insert(ATPROTO_VERIFICATION_METHOD.to_owned(), signing_key);
        let mut services = BTreeMap::new();
        services.insert(
            ATPROTO_PDS_SERVICE.to_owned(),
            Service {
                service_type: ATPROTO_PDS_TYPE.to_owned(),
                endpoint,
            },
        );
        let mut also_known_as = vec![format!("at://{handle}")];
        also_known_as.extend(self.also_known_as);
        let unsigned = UnsignedOperation::Plc(PlcOperation {
            rotation_keys: self.rotation_keys,
            verification_methods,
            also_known_as,
            services,
            prev: None,
        });
        let operation = finish(unsigned, signer)?;
        let did = did_for_genesis(&operation)?;
        Ok(Genesis { did, operation })
    }
}

/// Builds an update from the last operation of a log: starts from its
/// content (a legacy `create` is converted to a regular operation first),
/// applies the changes, and points `prev` at its CID.
///
/// ```
/// # fn main() -> Result<(), atp_did_plc::Error> {
/// use atp_crypto::{Algorithm, SigningKey};
/// use atp_did_plc::{GenesisBuilder, UpdateBuilder};
///
/// let rotation = SigningKey::generate(Algorithm::P256);
/// let genesis = GenesisBuilder::new()
///     .rotation_key(rotation.did_key())
///     .signing_key(SigningKey::generate(Algorithm::K256).did_key())
///     .handle("alice.example.com")
///     .pds_endpoint("https://pds.example.com")
///     .sign(&rotation)?;
/// let update = UpdateBuilder::from_last(&genesis.operation)?
///     .handle("alice.example.org")?
///     .sign(&rotation)?;
/// assert_eq!(update.prev(), Some(genesis.operation.cid()?.to_string().as_str()));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UpdateBuilder {
    body: PlcOperation,
    authorized_keys: Vec<String>,
}

impl UpdateBuilder {
    /// Starts an update after `last` (the last operation in force).
    pub fn from_last(last: &Operation) -> Result<Self, Error> {
        let Some(mut body) = last.normalized() else {
            return Err(Error::Misordered);
        };
        let authorized_keys = body.rotation_keys.clone();
        body.prev = Some(last.cid()?.to_string());
        Ok(UpdateBuilder {
            body,
            authorized_keys,
        })
    }

    /// Replaces the atproto signing key.
    pub fn signing_key(mut self, did_key: impl Into<String>) -> Self {
        self.body
            .verification_methods
            .insert(ATPROTO_VERIFICATION_METHOD.to_owned(), did_key.into());
        self
    }

    /// Changes the handle: replaces the first `at://` entry of
    /// `alsoKnownAs`, or puts it first if there is none.
    pub fn handle(mut self, handle: &str) -> Result<Self, Error> {
        let uri = format!("at://{}", normalize_handle(handle)?);
        let aka = &mut self.body.also_known_as;
        match aka.iter().position(|a| a.starts_with("at://")) {
            Some(i) => aka[i] = uri,
            None => aka.insert(0, uri),
        }
        Ok(self)
    }

    /// Changes the PDS endpoint (`atproto_pds` service).
    pub fn pds_endpoint(mut self, url: &str) -> Result<Self, Error> {
        let endpoint = normalize_endpoint(url)?;
        self.body.services.insert(
            ATPROTO_PDS_SERVICE.to_owned(),
            Service {
                service_type: ATPROTO_PDS_TYPE.to_owned(),
                endpoint,
            },
        );
        Ok(self)
    }

    /// Replaces the whole rotation key list.
    pub fn rotation_keys(mut self, keys: Vec<String>) -> Self {
        self.body.rotation_keys = keys;
        self
    }

    /// Inserts a rotation key at `position` (0 = highest priority; past the
    /// end appends). A key already present is moved.
    pub fn add_rotation_key(mut self, did_key: impl Into<String>, position: usize) -> Self {
        let key = did_key.into();
        self.body.rotation_keys.retain(|k| *k != key);
        let at = position.min(self.body.rotation_keys.len());
        self.body.rotation_keys.insert(at, key);
        self
    }

    /// Removes a rotation key (no effect if absent).
    pub fn remove_rotation_key(mut self, did_key: &str) -> Self {
        self.body.rotation_keys.retain(|k| k != did_key);
        self
    }

    /// Replaces the whole `alsoKnownAs` list (entries kept as given, in
    /// order).
    pub fn also_known_as(mut self, uris: Vec<String>) -> Self {
        self.body.also_known_as = uris;
        self
    }

    /// Replaces every verification method (id without `#` to `did:key`).
    pub fn verification_methods(mut self, methods: BTreeMap<String, String>) -> Self {
        self.body.verification_methods = methods;
        self
    }

    /// Replaces every service (id without `#`).
    pub fn services(mut self, services: BTreeMap<String, Service>) -> Self {
        self.body.services = services;
        self
    }

    /// The operation body as it stands.
    pub fn body(&self) -> &PlcOperation {
        &self.body
    }

    /// Signs with `signer`, which must be a rotation key of the last
    /// operation (not of the new one).
    pub fn sign(self, signer: &SigningKey) -> Result<Operation, Error> {
        check_signer(signer, &self.authorized_keys)?;
        finish(UnsignedOperation::Plc(self.body), signer)
    }
}

/// A tombstone after `last`, signed by one of its rotation keys.
pub fn tombstone(last: &Operation, signer: &SigningKey) -> Result<Operation, Error> {
    let Some(body) = last.normalized() else {
        return Err(Error::Misordered);
    };
    check_signer(signer, &body.rotation_keys)?;
    let unsigned = UnsignedOperation::Tombstone(TombstoneOperation {
        prev: last.cid()?.to_string(),
    });
    finish(unsigned, signer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::validate::validate_operation_log;
    use atp_crypto::Algorithm;

    #[test]
    fn update_replaces_whole_fields() {
        let rotation = SigningKey::generate(Algorithm::K256);
        let genesis = GenesisBuilder::new()
            .rotation_key(rotation.did_key())
            .signing_key(SigningKey::generate(Algorithm::K256).did_key())
            .handle("alice.example.com")
            .pds_endpoint("https://pds.example.com")
            .sign(&rotation)
            .unwrap();
        let new_signing = SigningKey::generate(Algorithm::P256).did_key();
        let methods = BTreeMap::from([("atproto".to_owned(), new_signing.clone())]);
        let services = BTreeMap::from([(
            "atproto_pds".to_owned(),
            Service {
                service_type: ATPROTO_PDS_TYPE.to_owned(),
                endpoint: "https://elsewhere.example.org".to_owned(),
            },
        )]);
        let aka = vec![
            "at://alice.example.org".to_owned(),
            "https://alice.example.org".to_owned(),
        ];
        let update = UpdateBuilder::from_last(&genesis.operation)
            .unwrap()
            .also_known_as(aka.clone())
            .verification_methods(methods.clone())
            .services(services.clone())
            .sign(&rotation)
            .unwrap();
        let data = validate_operation_log(&genesis.did, &[genesis.operation, update])
            .unwrap()
            .unwrap();
        assert_eq!(data.also_known_as, aka);
        assert_eq!(data.verification_methods, methods);
        assert_eq!(data.services, services);
        assert_eq!(data.atproto_signing_key(), Some(new_signing.as_str()));
        assert_eq!(data.pds_endpoint(), Some("https://elsewhere.example.org"));
    }
}
