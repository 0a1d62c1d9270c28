//! P-256 and secp256k1 key pairs, signing with low-S, strict verification.
//!
//! # Signatures
//!
//! The protocol signs SHA-256 of the bytes (usually DAG-CBOR) with ECDSA and
//! writes the signature as 64 bytes of compact `r || s`. The cryptography
//! spec requires the "low-S" variant (`s <= n/2`) on both curves, because a
//! high-S signature `(r, n - s)` is a second valid signature for the same
//! message and key (malleability).
//!
//! * [`SigningKey::sign`] is deterministic (RFC 6979, like the reference,
//!   which uses `@noble/curves` without extra entropy) and always returns the
//!   low-S form.
//! * [`PublicKey::verify`] ([`VerifyMode::Strict`]) is what the spec requires
//!   and what the reference's `verifySignature` does by default: exactly 64
//!   bytes (so no DER), low-S only.
//! * [`VerifyMode::Lenient`] matches the reference's
//!   `verifySignature(..., { allowMalleableSig: true })`: high-S compact
//!   signatures are accepted, and so are DER-encoded ones (in either S form).
//!   The reference tries DER first and then compact on any length; here a
//!   64-byte signature is always read as compact and any other length as
//!   DER (a DER signature is never exactly 64 bytes in practice). Use this
//!   only for data written before the rule was enforced.

use std::fmt;
use std::hash::{Hash, Hasher};

use ecdsa::signature::{Signer, Verifier};
use rand_core::OsRng;

use crate::did_key;
use crate::Error;

/// The two curves the protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// NIST P-256 (`ES256`, multicodec `p256-pub` 0x1200).
    P256,
    /// secp256k1 (`ES256K`, multicodec `secp256k1-pub` 0xe7).
    K256,
}

impl Algorithm {
    /// The JWT `alg` name: `ES256` or `ES256K`.
    pub fn jwt_alg(self) -> &'static str {
        match self {
            Algorithm::P256 => "ES256",
            Algorithm::K256 => "ES256K",
        }
    }

    /// The algorithm of a JWT `alg` name (`ES256` or `ES256K`).
    pub fn from_jwt_alg(name: &str) -> Result<Self, Error> {
        match name {
            "ES256" => Ok(Algorithm::P256),
            "ES256K" => Ok(Algorithm::K256),
            other => Err(Error::UnsupportedKeyType(format!(
                "JWT alg {other:?} (expected ES256 or ES256K)"
            ))),
        }
    }
}

/// How strictly [`PublicKey::verify_with`] treats signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// Only 64-byte compact low-S signatures (what the protocol requires).
    #[default]
    Strict,
    /// Also accept high-S compact signatures and DER (for old data).
    Lenient,
}

/// Length of a secret scalar on either curve.
pub const SECRET_KEY_LEN: usize = 32;

/// Length of a compact `r || s` signature on either curve.
pub const SIGNATURE_LEN: usize = 64;

#[derive(Clone)]
enum SecretInner {
    P256(p256::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
}

/// A private key on one of the two curves.
///
/// The secret is wiped from memory when the key is dropped, and `Debug` shows
/// only the public `did:key`.
///
/// ```
/// use atp_crypto::{Algorithm, SigningKey};
///
/// let key = SigningKey::generate(Algorithm::K256);
/// let sig = key.sign(b"hello");
/// key.public_key().verify(b"hello", &sig)?;
///
/// // Round trip through hex, and the did:key that identifies the key.
/// let again = SigningKey::from_hex(Algorithm::K256, &key.to_hex())?;
/// assert_eq!(again.did_key(), key.did_key());
/// assert!(key.did_key().starts_with("did:key:zQ3s"));
/// # Ok::<(), atp_crypto::Error>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: SecretInner,
}

impl SigningKey {
    /// Generates a new random key (from the operating system's generator).
    pub fn generate(alg: Algorithm) -> Self {
        let inner = match alg {
            Algorithm::P256 => SecretInner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::K256 => SecretInner::K256(k256::ecdsa::SigningKey::random(&mut OsRng)),
        };
        SigningKey { inner }
    }

    /// Imports a 32-byte secret scalar (big-endian; zero and values not below
    /// the curve order are rejected).
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != SECRET_KEY_LEN {
            return Err(Error::InvalidKey(format!(
                "a secret key is {SECRET_KEY_LEN} bytes, found {}",
                bytes.len()
            )));
        }
        let out_of_range =
            || Error::InvalidKey("secret scalar is zero or not below the curve order".to_owned());
        let inner = match alg {
            Algorithm::P256 => SecretInner::P256(
                p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?,
            ),
            Algorithm::K256 => SecretInner::K256(
                k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?,
            ),
        };
        Ok(SigningKey { inner })
    }

    /// Imports a secret scalar written as 64 hex digits (either case).
    pub fn from_hex(alg: Algorithm, hex: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex)
            .map_err(|e| Error::InvalidKey(format!("secret key is not hex: {e}")))?;
        Self::from_bytes(alg, &bytes)
    }

    /// The 32-byte secret scalar.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            SecretInner::P256(k) => k.to_bytes().to_vec(),
            SecretInner::K256(k) => k.to_bytes().to_vec(),
        }
    }

    /// The secret scalar as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// The curve of this key.
    pub fn algorithm(&self) -> Algorithm {
        match &self.inner {
            SecretInner::P256(_) => Algorithm::P256,
            SecretInner::K256(_) => Algorithm::K256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            SecretInner::P256(k) => PublicKey::from_p256(*k.verifying_key()),
            SecretInner::K256(k) => PublicKey::from_k256(*k.verifying_key()),
        }
    }

    /// The `did:key` of the matching public key.
    pub fn did_key(&self) -> String {
        self.public_key().to_did_key()
    }

    /// Signs SHA-256 of `msg`; returns compact `r||s` in low-S form.
    ///
    /// Deterministic (RFC 6979): the same key and message always give the
    /// same signature.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; SIGNATURE_LEN];
        match &self.inner {
            SecretInner::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
            SecretInner::K256(k) => {
                let sig: k256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
        }
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("did_key", &self.did_key())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum PublicInner {
    P256(p256::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
}

/// A public key on one of the two curves.
///
/// Two keys are equal when they are on the same curve and are the same point.
///
/// ```
/// use atp_crypto::{Algorithm, PublicKey};
///
/// // The secp256k1 example of the cryptography spec.
/// let did = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
/// let key = PublicKey::from_did_key(did)?;
/// assert_eq!(key.algorithm(), Algorithm::K256);
/// assert_eq!(key.to_did_key(), did);
/// assert_eq!(key.to_multibase(), &did["did:key:".len()..]);
///
/// // The same point from its SEC1 bytes.
/// let point = key.to_compressed_bytes();
/// assert_eq!(PublicKey::from_sec1_bytes(Algorithm::K256, &point)?, key);
///
/// // Signatures must be compact (64 bytes): anything else is refused.
/// assert!(key.verify(b"msg", &[0u8; 70]).is_err());
/// # Ok::<(), atp_crypto::Error>(())
/// ```
#[derive(Clone)]
pub struct PublicKey {
    inner: PublicInner,
    compressed: [u8; did_key::COMPRESSED_POINT_LEN],
}

impl PublicKey {
    fn from_p256(key: p256::ecdsa::VerifyingKey) -> Self {
        let mut compressed = [0u8; did_key::COMPRESSED_POINT_LEN];
        compressed.copy_from_slice(key.to_encoded_point(true).as_bytes());
        PublicKey {
            inner: PublicInner::P256(key),
            compressed,
        }
    }

    fn from_k256(key: k256::ecdsa::VerifyingKey) -> Self {
        let mut compressed = [0u8; did_key::COMPRESSED_POINT_LEN];
        compressed.copy_from_slice(key.to_encoded_point(true).as_bytes());
        PublicKey {
            inner: PublicInner::K256(key),
            compressed,
        }
    }

    /// Imports SEC1 bytes (33-byte compressed or 65-byte uncompressed).
    ///
    /// Other lengths and tags, the point at infinity and points not on the
    /// curve are rejected.
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        match (bytes.len(), bytes.first()) {
            (33, Some(0x02 | 0x03)) | (65, Some(0x04)) => {}
            (33 | 65, Some(tag)) => {
                return Err(Error::InvalidKey(format!(
                    "SEC1 tag 0x{tag:02x} does not match a {}-byte point",
                    bytes.len()
                )))
            }
            (len, _) => {
                return Err(Error::InvalidKey(format!(
                    "a SEC1 public key is 33 (compressed) or 65 (uncompressed) bytes, found {len}"
                )))
            }
        }
        let not_on_curve = || {
            Error::InvalidKey(format!(
                "not a point on the {} curve",
                match alg {
                    Algorithm::P256 => "P-256",
                    Algorithm::K256 => "secp256k1",
                }
            ))
        };
        Ok(match alg {
            Algorithm::P256 => Self::from_p256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| not_on_curve())?,
            ),
            Algorithm::K256 => Self::from_k256(
                k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| not_on_curve())?,
            ),
        })
    }

    /// The 33-byte compressed SEC1 point.
    pub fn to_compressed_bytes(&self) -> Vec<u8> {
        self.compressed.to_vec()
    }

    /// The 65-byte uncompressed SEC1 point (`04 || x || y`).
    pub fn to_uncompressed_bytes(&self) -> Vec<u8> {
        match &self.inner {
            PublicInner::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            PublicInner::K256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// Parses a `did:key:z...` string.
    pub fn from_did_key(did: &str) -> Result<Self, Error> {
        did_key::parse(did)
    }

    /// The `did:key:z...` string (compressed point, multicodec prefix).
    pub fn to_did_key(&self) -> String {
        did_key::format(self)
    }

    /// Parses multibase `z...` (base58btc of multicodec prefix + point).
    pub fn from_multibase(text: &str) -> Result<Self, Error> {
        did_key::parse_multikey(text)
    }

    /// Multibase `z...` form, as in DID documents' `publicKeyMultibase`.
    pub fn to_multibase(&self) -> String {
        did_key::format_multikey(self)
    }

    /// The curve of this key.
    pub fn algorithm(&self) -> Algorithm {
        match &self.inner {
            PublicInner::P256(_) => Algorithm::P256,
            PublicInner::K256(_) => Algorithm::K256,
        }
    }

    /// Strictly verifies a 64-byte compact low-S signature over SHA-256 of `msg`.
    ///
    /// Errors: [`Error::MalformedSignature`] for anything that is not 64
    /// bytes of compact `r || s` with `r` and `s` in `1..n` (DER included),
    /// [`Error::HighS`] for a high-S signature, [`Error::BadSignature`] when
    /// it does not verify.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        self.verify_with(msg, sig, VerifyMode::Strict)
    }

    /// Verifies with the given strictness (see [`VerifyMode`] and the module
    /// documentation).
    pub fn verify_with(&self, msg: &[u8], sig: &[u8], mode: VerifyMode) -> Result<(), Error> {
        match &self.inner {
            PublicInner::P256(key) => {
                let sig = parse_p256_signature(sig, mode)?;
                key.verify(msg, &sig).map_err(|_| Error::BadSignature)
            }
            PublicInner::K256(key) => {
                // k256 refuses high-S itself: give it the normalized form.
                let sig = parse_k256_signature(sig, mode)?;
                key.verify(msg, &sig).map_err(|_| Error::BadSignature)
            }
        }
    }
}

/// Defines a function that reads a signature on one curve according to a
/// [`VerifyMode`] and returns it in low-S form (verifying `(r, s)` and
/// `(r, n - s)` is equivalent).
macro_rules! signature_parser {
    ($name:ident, $sig:ty) => {
        fn $name(sig: &[u8], mode: VerifyMode) -> Result<$sig, Error> {
            let parsed = if sig.len() == SIGNATURE_LEN {
                <$sig>::from_slice(sig).map_err(|_| {
                    Error::MalformedSignature(
                        "r or s is zero or not below the curve order".to_owned(),
                    )
                })?
            } else if mode == VerifyMode::Lenient {
                <$sig>::from_der(sig).map_err(|_| {
                    Error::MalformedSignature(format!(
                        "{} bytes: neither 64-byte compact nor valid DER",
                        sig.len()
                    ))
                })?
            } else {
                return Err(Error::MalformedSignature(format!(
                    "expected {SIGNATURE_LEN} bytes of compact r||s, found {} bytes{}",
                    sig.len(),
                    if sig.first() == Some(&0x30) {
                        " (DER encoding is not allowed)"
                    } else {
                        ""
                    }
                )));
            };
            match parsed.normalize_s() {
                Some(_) if mode == VerifyMode::Strict => Err(Error::HighS),
                Some(low) => Ok(low),
                None => Ok(parsed),
            }
        }
    };
}

signature_parser!(parse_p256_signature, p256::ecdsa::Signature);
signature_parser!(parse_k256_signature, k256::ecdsa::Signature);

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm() == other.algorithm() && self.compressed == other.compressed
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm().hash(state);
        self.compressed.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey")
            .field(&self.to_did_key())
            .finish()
    }
}

impl fmt::Display for PublicKey {
    /// Displays the `did:key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}
