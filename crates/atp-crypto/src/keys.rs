//! P-256 and secp256k1 key pairs, signing with low-S, strict verification.

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

/// A private key on one of the two curves.
#[derive(Clone)]
pub struct SigningKey {
    _todo: (),
}

impl SigningKey {
    /// Generates a new random key.
    pub fn generate(alg: Algorithm) -> Self {
        let _ = alg;
        todo!()
    }
    /// Imports a 32-byte secret scalar.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        let _ = (alg, bytes);
        todo!()
    }
    /// Imports a secret scalar written as 64 hex digits.
    pub fn from_hex(alg: Algorithm, hex: &str) -> Result<Self, Error> {
        let _ = (alg, hex);
        todo!()
    }
    /// The 32-byte secret scalar.
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
    /// The secret scalar as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        todo!()
    }
    /// The curve of this key.
    pub fn algorithm(&self) -> Algorithm {
        todo!()
    }
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        todo!()
    }
    /// The `did:key` of the matching public key.
    pub fn did_key(&self) -> String {
        self.public_key().to_did_key()
    }
    /// Signs SHA-256 of `msg`; returns compact `r||s` in low-S form.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let _ = msg;
        todo!()
    }
}

/// A public key on one of the two curves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    _todo: (),
}

impl PublicKey {
    /// Imports SEC1 bytes (33-byte compressed or 65-byte uncompressed).
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        let _ = (alg, bytes);
        todo!()
    }
    /// The 33-byte compressed SEC1 point.
    pub fn to_compressed_bytes(&self) -> Vec<u8> {
        todo!()
    }
    /// Parses a `did:key:z...` string.
    pub fn from_did_key(did: &str) -> Result<Self, Error> {
        let _ = did;
        todo!()
    }
    /// The `did:key:z...` string (compressed point, multicodec prefix).
    pub fn to_did_key(&self) -> String {
        todo!()
    }
    /// Parses multibase `z...` (base58btc of multicodec prefix + point).
    pub fn from_multibase(text: &str) -> Result<Self, Error> {
        let _ = text;
        todo!()
    }
    /// Multibase `z...` form, as in DID documents' `publicKeyMultibase`.
    pub fn to_multibase(&self) -> String {
        todo!()
    }
    /// The curve of this key.
    pub fn algorithm(&self) -> Algorithm {
        todo!()
    }
    /// Strictly verifies a 64-byte compact low-S signature over SHA-256 of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        self.verify_with(msg, sig, VerifyMode::Strict)
    }
    /// Verifies with the given strictness.
    pub fn verify_with(&self, msg: &[u8], sig: &[u8], mode: VerifyMode) -> Result<(), Error> {
        let _ = (msg, sig, mode);
        todo!()
    }
}
