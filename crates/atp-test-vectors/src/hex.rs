//! Bytes as lowercase hexadecimal, the form the Node.js scripts exchange
//! binary data in.

/// `bytes` as lowercase hexadecimal.
///
/// ```
/// assert_eq!(atp_test_vectors::hex_encode(&[0x0a, 0xff]), "0aff");
/// ```
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hexadecimal `text` (either case). Panics on anything else:
/// a script that answers bad hex is a test failure.
///
/// ```
/// assert_eq!(atp_test_vectors::hex_decode("0aFF"), vec![0x0a, 0xff]);
/// ```
pub fn hex_decode(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("not hex: {text}"))
        })
        .collect()
}
