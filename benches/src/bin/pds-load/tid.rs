//! Record keys in TID form that carry a number, so a firehose subscriber
//! can tell which write a commit announces.

const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The 13-character TID of `value` (the top bit must be clear).
pub fn encode(value: u64) -> String {
    let value = value & 0x7fff_ffff_ffff_ffff;
    (0..13)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

/// The value of a 13-character TID, if it is one.
pub fn decode(tid: &[u8]) -> Option<u64> {
    if tid.len() != 13 {
        return None;
    }
    tid.iter().try_fold(0u64, |acc, &c| {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u64;
        Some((acc << 5) | digit)
    })
}

/// A TID for write number `n` of a run that started at `base_micros`
/// (microseconds since the epoch): the timestamp part is base + n, the
/// clock id 0, so keys are distinct and in order.
pub fn for_write(base_micros: u64, n: u64) -> String {
    encode((base_micros + n) << 10)
}

/// The write number carried by a TID made by [`for_write`].
pub fn write_number(base_micros: u64, tid: &[u8]) -> Option<u64> {
    (decode(tid)? >> 10).checked_sub(base_micros)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let base = 1_700_000_000_000_000;
        let t = super::for_write(base, 42);
        assert_eq!(t.len(), 13);
        assert_eq!(super::write_number(base, t.as_bytes()), Some(42));
    }
}
