//! The JWS compact serialization: `base64url(header).base64url(claims).base64url(signature)`.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// base64url without padding when writing; padding optional when reading
/// (as Node's `Buffer.from(text, "base64url")` is).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The protected header of a JWT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtHeader {
    /// The token type (`JWT`, `at+jwt`, `refresh+jwt`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The signature algorithm (`HS256`, `ES256`, `ES256K`).
    pub alg: String,
}

/// A compact JWS split into its parts, signature not yet checked.
pub(crate) struct CompactJws<'a> {
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The decoded header.
    pub header: JwtHeader,
    /// The decoded claims JSON.
    pub claims: serde_json::Value,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes `token` (three segments, JSON-object header and
    /// claims, header with a string `alg`).
    pub fn parse(token: &'a str) -> Result<Self, AuthError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("expected three segments".into()));
        };
        let header: JwtHeader = decode_json_segment(header_b64, "header")?;
        let claims: serde_json::Value = decode_json_segment(claims_b64, "claims")?;
        if !claims.is_object() {
            return Err(AuthError::Malformed("claims are not a JSON object".into()));
        }
        let signature = B64URL
            .decode(sig_b64)
            .map_err(|_| AuthError::Malformed("signature is not base64url".into()))?;
        let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
        Ok(CompactJws {
            signing_input,
            header,
            claims,
            signature,
        })
    }

    /// The claims as a typed structure.
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, AuthError> {
        serde_json::from_value(self.claims.clone())
            .map_err(|e| AuthError::Malformed(format!("claims: {e}")))
    }

    /// The claims as a typed structure, consuming the token (no copy of
    /// the claims).
    pub fn into_claims<T: DeserializeOwned>(self) -> Result<T, AuthError> {
        serde_json::from_value(self.claims)
            .map_err(|e| AuthError::Malformed(format!("claims: {e}")))
    }
}

fn decode_json_segment<T: DeserializeOwned>(segment: &str, what: &str) -> Result<T, AuthError> {
    let bytes = B64URL
        .decode(segment)
        .map_err(|_| AuthError::Malformed(format!("{what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed(format!("{what}: {e}")))
}

/// `base64url(json(header)).base64url(json(claims))`.
pub(crate) fn signing_input<C: Serialize>(
    header: &JwtHeader,
    claims: &C,
) -> Result<String, AuthError> {
    let header = serde_json::to_vec(header).map_err(|e| AuthError::Malformed(e.to_string()))?;
    let claims = serde_json::to_vec(claims).map_err(|e| AuthError::Malformed(e.to_string()))?;
    Ok(format!(
        "{}.{}",
        B64URL.encode(header),
        B64URL.encode(claims)
    ))
}

/// Appends `.base64url(signature)`.
pub(crate) fn attach_signature(signing_input: String, signature: &[u8]) -> String {
    let mut token = signing_input;
    token.push('.');
    token.push_str(&B64URL.encode(signature));
    token
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use rand_core::RngCore;
    let mut bytes = [0u8; N];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes
}
