//! Workloads shared by the benchmarks in this folder.
//!
//! Every workload here is the one `tests/interop/bench-reference.mjs` runs
//! on the reference TypeScript implementation, generated the same way, so
//! the two sets of figures in `docs/benchmarks.md` measure the same work.
//! Generation is deterministic: no randomness, no clock.
//!
//! ```
//! use atp_benches::{mst_workload, signature_message};
//!
//! let records = mst_workload(3);
//! assert_eq!(records[0].0, "app.bsky.feed.post/3m6f72q6k222b");
//! assert_eq!(signature_message().len(), 116);
//! ```

use std::collections::BTreeMap;

use atp_crypto::{cid_for_dag_cbor, data_model, Cid, Ipld};
use atp_syntax::Tid;

/// Number of records in the MST and CAR workloads.
pub const RECORDS: usize = 100_000;

/// The typical post record (text, langs, a facet, an image embed with a
/// blob), in its JSON form.
pub const POST_JSON: &str = include_str!("data/post.json");

/// First TID timestamp of the MST workload, in microseconds since the epoch.
pub const FIRST_TID_MICROS: u64 = 1_764_000_000_000_000;

/// Microseconds between two consecutive TIDs of the MST workload.
pub const TID_STEP_MICROS: u64 = 1_000;

/// Clock identifier of every TID of the MST workload.
pub const TID_CLOCK_ID: u16 = 7;

/// The `createdAt` of every generated record.
pub const CREATED_AT: &str = "2026-11-24T08:00:00.000Z";

/// The message signed and verified by the signature benchmarks: 116 bytes,
/// about the size of a commit.
pub fn signature_message() -> Vec<u8> {
    "a commit is about this long: ".repeat(4).into_bytes()
}

/// The post of `data/post.json` in the data model (the blob `ref` as a CID).
pub fn post_value() -> Result<Ipld, atp_crypto::Error> {
    let json: serde_json::Value =
        serde_json::from_str(POST_JSON).map_err(|e| atp_crypto::Error::DataModel(e.to_string()))?;
    data_model::json_record_to_ipld(&json)
}

/// The MST key of record `index`: `app.bsky.feed.post/<TID>`, the TIDs
/// taken from increasing microsecond stamps.
pub fn mst_key(index: usize) -> String {
    let micros = FIRST_TID_MICROS + index as u64 * TID_STEP_MICROS;
    match Tid::from_parts(micros, TID_CLOCK_ID) {
        Ok(tid) => format!("app.bsky.feed.post/{}", tid.as_str()),
        // Unreachable for any index a benchmark uses (53 bits of
        // microseconds last until the year 2255).
        Err(_) => format!("app.bsky.feed.post/overflow{index}"),
    }
}

/// The DAG-CBOR bytes of record `index`:
/// `{$type: "app.bsky.feed.post", text: "record <index>", createdAt}`.
pub fn record_bytes(index: usize) -> Vec<u8> {
    let record = Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("text".to_owned(), Ipld::String(format!("record {index}"))),
        ("createdAt".to_owned(), Ipld::String(CREATED_AT.to_owned())),
    ]));
    // A map of strings always encodes; an empty block would only change
    // the CID, never panic.
    atp_crypto::dagcbor::encode_ipld(&record).unwrap_or_default()
}

/// The first `count` (key, value CID) pairs of the MST workload, in
/// insertion (time) order. Each value is the CID of [`record_bytes`].
pub fn mst_workload(count: usize) -> Vec<(String, Cid)> {
    (0..count)
        .map(|i| (mst_key(i), cid_for_dag_cbor(&record_bytes(i))))
        .collect()
}

/// The same pairs in a fixed pseudo-random order (xorshift64 Fisher-Yates),
/// as in an import of a repository whose keys are not in time order.
pub fn shuffled<T>(mut items: Vec<T>) -> Vec<T> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}
