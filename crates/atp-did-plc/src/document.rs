//! The state of a DID (`GET /:did/data`) and the DID document the directory
//! serves for it (`GET /:did`).
//!
//! The document follows the current reference (`@did-plc/lib`
//! `document.ts`): `@context` starts with the DID and Multikey contexts and
//! adds the suite context of each recognised key type once; every
//! verification method is `{"id": "<did>#<name>", "type": "Multikey",
//! "controller": <did>, "publicKeyMultibase": <did:key without "did:key:">}`;
//! every service is `{"id": "#<name>", "type": ..., "serviceEndpoint": ...}`.
//!
//! JSON members come in the reference's order. The reference lists
//! verification methods and services in the order of the stored operation's
//! map members; the production directory stores operations as Postgres
//! `jsonb`, which orders object keys shortest first, then bytewise. Both the
//! document and the data here use that order.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use atp_crypto::{Algorithm, PublicKey};

use crate::operation::{PlcOperation, Service};

/// The W3C DID context, always first.
pub const DID_CONTEXT: &str = "https://www.w3.org/ns/did/v1";
/// The Multikey context, always second.
pub const MULTIKEY_CONTEXT: &str = "https://w3id.org/security/multikey/v1";
/// Suite context added for P-256 keys.
pub const P256_CONTEXT: &str = "https://w3id.org/security/suites/ecdsa-2019/v1";
/// Suite context added for secp256k1 keys.
pub const K256_CONTEXT: &str = "https://w3id.org/security/suites/secp256k1-2019/v1";

/// The state of a `did:plc` after its last operation (the `/data` form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentData {
    /// The DID.
    pub did: String,
    /// Verification methods (id without `#` to `did:key`).
    #[serde(rename = "verificationMethods", serialize_with = "canonical_map")]
    pub verification_methods: BTreeMap<String, String>,
    /// Rotation keys, highest priority first.
    #[serde(rename = "rotationKeys")]
    pub rotation_keys: Vec<String>,
    /// Also-known-as URIs.
    #[serde(rename = "alsoKnownAs")]
    pub also_known_as: Vec<String>,
    /// Services (id without `#`).
    #[serde(serialize_with = "canonical_map")]
    pub services: BTreeMap<String, Service>,
}

impl DocumentData {
    /// The data of `did` after an operation with this body.
    pub fn from_operation(did: &str, op: &PlcOperation) -> Self {
        DocumentData {
            did: did.to_owned(),
            verification_methods: op.verification_methods.clone(),
            rotation_keys: op.rotation_keys.clone(),
            also_known_as: op.also_known_as.clone(),
            services: op.services.clone(),
        }
    }

    /// The DID document for this data.
    pub fn to_document(&self) -> DidDocument {
        let mut context = vec![DID_CONTEXT.to_owned(), MULTIKEY_CONTEXT.to_owned()];
        let mut verification_method = Vec::new();
        for (name, key) in canonical_order(&self.verification_methods) {
            let suite = match PublicKey::from_did_key(key).map(|k| k.algorithm()) {
                Ok(Algorithm::P256) => Some(P256_CONTEXT),
                Ok(Algorithm::K256) => Some(K256_CONTEXT),
                Err(_) => None,
            };
            if let Some(suite) = suite {
                if !context.iter().any(|c| c == suite) {
                    context.push(suite.to_owned());
                }
            }
            verification_method.push(VerificationMethod {
                id: format!("{}#{name}", self.did),
                method_type: "Multikey".to_owned(),
                controller: self.did.clone(),
                public_key_multibase: key.strip_prefix("did:key:").unwrap_or(key).to_owned(),
            });
        }
        let service = canonical_order(&self.services)
            .map(|(name, s)| DocumentService {
                id: format!("#{name}"),
                service_type: s.service_type.clone(),
                service_endpoint: s.endpoint.clone(),
            })
            .collect();
        DidDocument {
            context,
            id: self.did.clone(),
            also_known_as: self.also_known_as.clone(),
            verification_method,
            service,
        }
    }

    /// The `at://` handle (first `alsoKnownAs` entry starting with `at://`),
    /// without the prefix.
    pub fn handle(&self) -> Option<&str> {
        self.also_known_as
            .iter()
            .find_map(|aka| aka.strip_prefix("at://"))
    }

    /// The `atproto` signing key.
    pub fn atproto_signing_key(&self) -> Option<&str> {
        self.verification_methods.get("atproto").map(String::as_str)
    }

    /// The endpoint of the `atproto_pds` service.
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.services
            .get("atproto_pds")
            .map(|s| s.endpoint.as_str())
    }

    /// The JSON served at `GET /:did/data`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A DID document as the directory serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DidDocument {
    /// JSON-LD contexts.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The DID.
    pub id: String,
    /// Also-known-as URIs.
    #[serde(rename = "alsoKnownAs")]
    pub also_known_as: Vec<String>,
    /// Verification methods.
    #[serde(rename = "verificationMethod")]
    pub verification_method: Vec<VerificationMethod>,
    /// Services.
    pub service: Vec<DocumentService>,
}

impl DidDocument {
    /// The JSON served at `GET /:did` (compact, members in the reference's
    /// order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A verification method of a DID document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerificationMethod {
    /// `<did>#<name>`.
    pub id: String,
    /// Always `Multikey`.
    #[serde(rename = "type")]
    pub method_type: String,
    /// The DID.
    pub controller: String,
    /// The key in multibase (`z...`).
    #[serde(rename = "publicKeyMultibase")]
    pub public_key_multibase: String,
}

/// A service of a DID document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentService {
    /// `#<name>`.
    pub id: String,
    /// The service type.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The endpoint URL.
    #[serde(rename = "serviceEndpoint")]
    pub service_endpoint: String,
}

/// Map entries shortest key first, then bytewise (Postgres `jsonb` order,
/// also DAG-CBOR's).
fn canonical_order<V>(map: &BTreeMap<String, V>) -> impl Iterator<Item = (&String, &V)> {
    let mut entries: Vec<(&String, &V)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
    entries.into_iter()
}

fn canonical_map<S: Serializer, V: Serialize>(
    map: &BTreeMap<String, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut out = serializer.serialize_map(Some(map.len()))?;
    for (k, v) in canonical_order(map) {
        out.serialize_entry(k, v)?;
    }
    out.end()
}
