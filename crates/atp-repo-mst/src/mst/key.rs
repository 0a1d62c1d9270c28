//! MST keys: validation, layer (height) and shared prefixes.

use crate::Error;

/// Longest valid MST key, in bytes (keys are ASCII).
pub const MAX_KEY_LEN: usize = 1024;

/// Highest possible layer: a SHA-256 digest of all zeros has 256 leading
/// zero bits, counted in 2-bit steps.
pub const MAX_LAYER: u32 = 128;

fn valid_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-' | b':' | b'.')
}

/// Whether `key` is a valid MST key: at most [`MAX_KEY_LEN`] characters,
/// exactly one `/`, non-empty collection and record-key parts, each made of
/// `[a-zA-Z0-9_~\-:.]`.
///
/// ```
/// use atp_repo_mst::mst::is_valid_key;
/// assert!(is_valid_key("app.bsky.feed.post/3jzfcijpj2z2a"));
/// assert!(!is_valid_key("app.bsky.feed.post/"));
/// assert!(!is_valid_key("a/b/c"));
/// ```
pub fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.len() > MAX_KEY_LEN {
        return false;
    }
    let mut slash = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' {
            if slash.is_some() {
                return false;
            }
            slash = Some(i);
        } else if !valid_key_byte(b) {
            return false;
        }
    }
    matches!(slash, Some(i) if i > 0 && i + 1 < bytes.len())
}

/// Checks `key` with [`is_valid_key`], returning [`Error::InvalidMstKey`].
pub fn ensure_valid_key(key: &str) -> Result<(), Error> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(Error::InvalidMstKey(key.to_owned()))
    }
}

/// The MST layer ("height") of a key: the number of leading zero bits of
/// SHA-256(key), counted in 2-bit steps (fanout 4). Any bytes are accepted.
///
/// ```
/// use atp_repo_mst::mst::key_height;
/// assert_eq!(key_height(b"blue"), 1);
/// assert_eq!(key_height(b"app.bsky.feed.post/9adeb165882c"), 8);
/// ```
pub fn key_height(key: &[u8]) -> u32 {
    let digest = atp_crypto::sha256(key);
    let mut zeros = 0;
    for byte in digest {
        if byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    zeros / 2
}

/// Length in bytes of the prefix shared by `a` and `b`.
///
/// ```
/// use atp_repo_mst::mst::common_prefix_len;
/// assert_eq!(common_prefix_len(b"abcde", b"abc1"), 3);
/// ```
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Builds the MST key of a record: `<collection>/<rkey>`, validated.
pub fn record_key(collection: &str, rkey: &str) -> Result<String, Error> {
    let key = format!("{collection}/{rkey}");
    ensure_valid_key(&key)?;
    Ok(key)
}
