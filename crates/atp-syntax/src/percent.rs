//! Percent-decoding (`%XX` escapes) of URL components: path segments,
//! query names and values, object keys.

/// The bytes of `text` with every `%XX` escape (two hexadecimal digits,
/// either case) decoded and every other byte kept as is; `None` when a `%`
/// is not followed by two hexadecimal digits. `+` is not a space here: a
/// form-encoded query replaces it before decoding. The caller decides what
/// bytes that are not UTF-8 mean.
///
/// ```
/// use atp_syntax::percent_decode;
/// assert_eq!(percent_decode("did%3Aplc%3aabc").as_deref(), Some(&b"did:plc:abc"[..]));
/// assert_eq!(percent_decode("%ff"), Some(vec![0xff]));
/// assert_eq!(percent_decode("a+b"), Some(b"a+b".to_vec()));
/// assert!(percent_decode("%4").is_none());
/// assert!(percent_decode("%zz").is_none());
/// assert!(percent_decode("%+5").is_none());
/// ```
pub fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_digit(*bytes.get(i + 1)?)?;
            let low = hex_digit(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
