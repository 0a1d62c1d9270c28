//! `did:key` strings: multibase (base58btc) of a multicodec-prefixed
//! compressed public key.
//!
//! The encoding (cryptography spec, "Public Key Encoding"):
//!
//! 1. the 33-byte compressed SEC1 point;
//! 2. prefixed with the varint of the curve's multicodec: `p256-pub` (0x1200,
//!    bytes `80 24`) or `secp256k1-pub` (0xe7, bytes `e7 01`);
//! 3. encoded in base58btc with the multibase prefix `z` (a "multikey");
//! 4. for a `did:key`, prefixed with `did:key:`.
//!
//! Parsing is strict, like the reference implementation (`@atproto/crypto`):
//! only the `z` base, only the two multicodecs above, and exactly 33 bytes of
//! compressed point after the prefix. An uncompressed point inside a
//! `did:key` is rejected (the reference rejects it too). The deprecated
//! "legacy" DID document form, which has no multicodec and names the curve in
//! the verification method's `type` instead, is read by
//! [`parse_legacy_multibase`].
//!
//! ```
//! use atp_crypto::did_key;
//!
//! // The P-256 example of the cryptography spec.
//! let did = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";
//! let key = did_key::parse(did)?;
//! assert_eq!(key.algorithm(), atp_crypto::Algorithm::P256);
//! assert_eq!(did_key::format(&key), did);
//! # Ok::<(), atp_crypto::Error>(())
//! ```

use crate::keys::{Algorithm, PublicKey};
use crate::Error;

/// Prefix of every `did:key`.
pub const DID_KEY_PREFIX: &str = "did:key:";

/// Multibase prefix character of base58btc, the only base `did:key` uses.
pub const BASE58BTC_MULTIBASE_PREFIX: char = 'z';

/// Varint bytes of the `p256-pub` multicodec (0x1200).
pub const P256_MULTICODEC_PREFIX: [u8; 2] = [0x80, 0x24];

/// Varint bytes of the `secp256k1-pub` multicodec (0xe7).
pub const K256_MULTICODEC_PREFIX: [u8; 2] = [0xe7, 0x01];

/// Length of a compressed SEC1 point on either curve.
pub const COMPRESSED_POINT_LEN: usize = 33;

/// The multicodec varint bytes that announce a public key on `alg`.
pub fn multicodec_prefix(alg: Algorithm) -> [u8; 2] {
    match alg {
        Algorithm::P256 => P256_MULTICODEC_PREFIX,
        Algorithm::K256 => K256_MULTICODEC_PREFIX,
    }
}

/// Parses a `did:key:z...` string into a public key.
pub fn parse(did: &str) -> Result<PublicKey, Error> {
    let multikey = did.strip_prefix(DID_KEY_PREFIX).ok_or_else(|| {
        Error::InvalidDidKey(format!("does not start with {DID_KEY_PREFIX:?}: {did:?}"))
    })?;
    parse_multikey(multikey)
}

/// Formats a public key as `did:key:z...`.
pub fn format(key: &PublicKey) -> String {
    format!("{DID_KEY_PREFIX}{}", format_multikey(key))
}

/// Parses a multikey: `z` + base58btc of (multicodec varint + compressed point).
pub fn parse_multikey(text: &str) -> Result<PublicKey, Error> {
    let bytes = decode_base58btc_multibase(text)?;
    let (alg, point) = if let Some(rest) = bytes.strip_prefix(&P256_MULTICODEC_PREFIX) {
        (Algorithm::P256, rest)
    } else if let Some(rest) = bytes.strip_prefix(&K256_MULTICODEC_PREFIX) {
        (Algorithm::K256, rest)
    } else {
        return Err(Error::UnsupportedKeyType(describe_multicodec(&bytes)));
    };
    if point.len() != COMPRESSED_POINT_LEN {
        return Err(Error::InvalidKey(format!(
            "a multikey holds a {COMPRESSED_POINT_LEN}-byte compressed point, found {} bytes",
            point.len()
        )));
    }
    PublicKey::from_sec1_bytes(alg, point)
}

/// Formats a public key as a multikey: `z` + base58btc of the multicodec
/// varint followed by the compressed point, as in DID documents'
/// `publicKeyMultibase` for the `Multikey` type.
pub fn format_multikey(key: &PublicKey) -> String {
    let mut bytes = Vec::with_capacity(2 + COMPRESSED_POINT_LEN);
    bytes.extend_from_slice(&multicodec_prefix(key.algorithm()));
    bytes.extend_from_slice(&key.to_compressed_bytes());
    let mut text = String::with_capacity(50);
    text.push(BASE58BTC_MULTIBASE_PREFIX);
    text.push_str(&bs58::encode(bytes).into_string());
    text
}

/// Parses the deprecated "legacy" `publicKeyMultibase` of DID documents whose
/// verification method `type` is `EcdsaSecp256r1VerificationKey2019` (P-256)
/// or `EcdsaSecp256k1VerificationKey2019` (secp256k1): `z` + base58btc of the
/// SEC1 point, compressed or uncompressed, with no multicodec prefix. The
/// curve comes from the method type, given here as `alg`.
///
/// The reference implementation also accepts other multibase bases in this
/// legacy form; only base58btc is accepted here, which is what the legacy
/// documents and the interop fixtures use.
pub fn parse_legacy_multibase(alg: Algorithm, text: &str) -> Result<PublicKey, Error> {
    let bytes = decode_base58btc_multibase(text)?;
    PublicKey::from_sec1_bytes(alg, &bytes)
}

/// Verifies `sig` over `msg` (strictly: 64-byte compact, low-S) with the key
/// of a `did:key`.
///
/// Like `verifySignature(didKey, data, sig)` of the reference.
pub fn verify_signature(did_key: &str, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
    parse(did_key)?.verify(msg, sig)
}

/// Decodes `z` + base58btc; any other multibase prefix is an error.
fn decode_base58btc_multibase(text: &str) -> Result<Vec<u8>, Error> {
    let mut chars = text.chars();
    match chars.next() {
        Some(BASE58BTC_MULTIBASE_PREFIX) => {}
        Some(other) => {
            return Err(Error::InvalidMultibase(format!(
                "expected base58btc (prefix 'z'), found prefix {other:?}"
            )))
        }
        None => return Err(Error::InvalidMultibase("empty string".to_owned())),
    }
    let body = chars.as_str();
    if body.is_empty() {
        return Err(Error::InvalidMultibase("no data after 'z'".to_owned()));
    }
    bs58::decode(body)
        .into_vec()
        .map_err(|e| Error::InvalidMultibase(format!("bad base58btc: {e}")))
}

/// Names the multicodec at the start of `bytes` for an error message.
fn describe_multicodec(bytes: &[u8]) -> String {
    let mut code: u64 = 0;
    for (i, byte) in bytes.iter().take(9).enumerate() {
        code |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return format!(
                "multicodec 0x{code:x} (expected p256-pub 0x1200 or secp256k1-pub 0xe7)"
            );
        }
    }
    "no valid multicodec varint (expected p256-pub 0x1200 or secp256k1-pub 0xe7)".to_owned()
}
