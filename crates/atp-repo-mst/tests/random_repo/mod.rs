//! Inputs for the tests that drive a repository through random commits:
//! the account, the collections, short record keys and increasing revs.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::Rng;

/// The repository's DID.
pub const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
/// The collections records are written to.
pub const COLLECTIONS: [&str; 3] = ["app.bsky.feed.post", "app.bsky.feed.like", "com.example.a"];

/// One of [`COLLECTIONS`].
pub fn collection(rng: &mut StdRng) -> String {
    COLLECTIONS[rng.gen_range(0..COLLECTIONS.len())].to_owned()
}

/// A record key of 1 to `max_len` characters: short keys make trees of a
/// few hundred records span several layers.
pub fn rkey(rng: &mut StdRng, max_len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let len = rng.gen_range(1..=max_len);
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// A valid TID for rev number `n` (increasing with `n`).
pub fn tid(n: u64) -> String {
    const ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";
    let value = (1_700_000_000_000_000u64 + n) << 10;
    (0..13)
        .rev()
        .map(|i| char::from(ALPHABET[((value >> (i * 5)) & 31) as usize]))
        .collect()
}
