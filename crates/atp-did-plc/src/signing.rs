//! Signing operations and verifying their signatures.
//!
//! The signed bytes are the canonical DAG-CBOR of the operation *without*
//! its `sig` member (not with `sig: null`). The signature is the 64-byte
//! compact `r||s` in low-S form, written as base64url without padding.
//!
//! Verification is strict, as the current reference (`@atproto/crypto`
//! `verifySignature`, which rejects malleable signatures unless asked not
//! to) and the method specification require: high-S signatures, DER
//! signatures, padded or otherwise non-canonical base64url are rejected.
//! (The old `@atproto/crypto` 0.1 used by `@did-plc/lib` 0.0.4 rejects
//! high-S only for secp256k1; for P-256 it relied on WebCrypto, which
//! accepts both forms.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use atp_crypto::{PublicKey, SigningKey};

use crate::operation::{Operation, UnsignedOperation};
use crate::Error;

/// Encodes signature bytes the way operations carry them (base64url, no
/// padding).
pub fn encode_sig(sig: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sig)
}

/// Decodes an operation's `sig` strictly: base64url without padding, zero
/// trailing bits. The length is checked by the verifier.
pub fn decode_sig(sig: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(sig).ok()
}

impl UnsignedOperation {
    /// Signs the operation with `key` (which should be one of the rotation
    /// keys in force: the operation's own for a genesis operation, the
    /// previous operation's for an update).
    pub fn sign(self, key: &SigningKey) -> Result<Operation, Error> {
        let bytes = self.to_cbor()?;
        let sig = key.sign(&bytes);
        Ok(Operation {
            unsigned: self,
            sig: encode_sig(&sig),
        })
    }
}

impl Operation {
    /// Checks the signature against `allowed_keys` (`did:key` strings) in
    /// order and returns the index of the first key that verifies it.
    ///
    /// Keys that do not parse as a supported `did:key` are skipped (they can
    /// verify nothing). Fails with [`Error::InvalidSignature`] when no key
    /// verifies the signature.
    pub fn verify_signature(&self, allowed_keys: &[String]) -> Result<usize, Error> {
        let message = self.unsigned.to_cbor()?;
        if let Some(sig) = decode_sig(&self.sig) {
            for (index, key) in allowed_keys.iter().enumerate() {
                let Ok(public) = PublicKey::from_did_key(key) else {
                    continue;
                };
                if public.verify(&message, &sig).is_ok() {
                    return Ok(index);
                }
            }
        }
        Err(Error::InvalidSignature(self.to_json()))
    }
}
