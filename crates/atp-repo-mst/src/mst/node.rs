//! MST node encoding: the wire format `{l, e: [{p, k, v, t}]}` and the
//! in-memory node the tree operates on.
//!
//! On the wire, each entry's key is compressed against the previous key of
//! the same node: `p` is the length of the shared prefix and `k` the rest
//! (bytes). `l` is the subtree left of the first entry and `t` the subtree
//! right of its entry; absent subtrees are written as explicit `null`s.

use atp_crypto::{cid_for_dag_cbor, dagcbor, Cid};
use serde::{Deserialize, Deserializer};

use super::key::{common_prefix_len, is_valid_key, key_height, MAX_LAYER};
use crate::blockstore::BlockStore;
use crate::Error;

/// One entry of a decoded node: a full key, its value and the subtree to
/// its right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The full (decompressed) key, `<collection>/<rkey>`.
    pub key: String,
    /// The value: CID of the record.
    pub value: Cid,
    /// The subtree holding keys between this key and the next one (`t`).
    pub right: Option<Cid>,
}

/// A decoded MST node with full keys and child CIDs.
///
/// [`decode_node`] and [`encode_node`] convert it from and to the canonical
/// block bytes. Useful to walk stored trees directly (diffs, proofs, CAR
/// verification).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedNode {
    /// The subtree left of the first entry (`l`).
    pub left: Option<Cid>,
    /// The entries, keys strictly ascending.
    pub entries: Vec<NodeEntry>,
}

impl DecodedNode {
    /// The layer given by the node's first key, or `None` if it has none.
    pub fn key_layer(&self) -> Option<u32> {
        self.entries.first().map(|e| key_height(e.key.as_bytes()))
    }

    /// CIDs of the subtrees, left to right: `left`, then each entry's
    /// `right`.
    pub fn children(&self) -> impl Iterator<Item = Cid> + '_ {
        self.left
            .iter()
            .copied()
            .chain(self.entries.iter().filter_map(|e| e.right))
    }

    /// Whether the node has neither entries nor subtrees.
    pub fn is_empty(&self) -> bool {
        self.left.is_none() && self.entries.is_empty()
    }
}

#[cfg(test)]
#[derive(serde::Serialize)]
struct WireNode<'a> {
    e: Vec<WireEntry<'a>>,
    l: Option<&'a Cid>,
}

#[cfg(test)]
#[derive(serde::Serialize)]
struct WireEntry<'a> {
    #[serde(with = "serde_bytes")]
    k: &'a [u8],
    p: usize,
    t: Option<&'a Cid>,
    v: &'a Cid,
}

/// Encodes a node: keys prefix-compressed against the previous key of the
/// node, explicit nulls, canonical DAG-CBOR. Keys are not re-validated.
pub fn encode_node(node: &DecodedNode) -> Result<Vec<u8>, Error> {
    encode_parts(
        node.left.as_ref(),
        node.entries
            .iter()
            .map(|e| (e.key.as_bytes(), &e.value, e.right.as_ref())),
    )
}

/// Encodes a node's parts as canonical DAG-CBOR, written directly: the
/// shape is fixed (a map `{e, l}`, entries `{k, p, t, v}`, keys already in
/// canonical order), so no generic serializer is needed.
fn encode_parts<'a>(
    left: Option<&'a Cid>,
    entries: impl ExactSizeIterator<Item = (&'a [u8], &'a Cid, Option<&'a Cid>)>,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(16 + entries.len() * 80);
    out.extend_from_slice(&[0xa2, 0x61, b'e']);
    cbor_head(&mut out, 4, entries.len() as u64);
    let mut previous: &[u8] = b"";
    for (key, value, right) in entries {
        let p = common_prefix_len(previous, key);
        out.extend_from_slice(&[0xa4, 0x61, b'k']);
        cbor_head(&mut out, 2, (key.len() - p) as u64);
        out.extend_from_slice(&key[p..]);
        out.extend_from_slice(&[0x61, b'p']);
        cbor_head(&mut out, 0, p as u64);
        out.extend_from_slice(&[0x61, b't']);
        cbor_link_or_null(&mut out, right)?;
        out.extend_from_slice(&[0x61, b'v']);
        cbor_link_or_null(&mut out, Some(value))?;
        previous = key;
    }
    out.extend_from_slice(&[0x61, b'l']);
    cbor_link_or_null(&mut out, left)?;
    Ok(out)
}

/// A CBOR head: major type `major`, argument `n`, in the shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A DAG-CBOR link (tag 42 on the CID's bytes after a 0x00 prefix), or
/// `null`.
fn cbor_link_or_null(out: &mut Vec<u8>, cid: Option<&Cid>) -> Result<(), Error> {
    let Some(cid) = cid else {
        out.push(0xf6);
        return Ok(());
    };
    out.extend_from_slice(&[0xd8, 0x2a]);
    cbor_head(out, 2, cid.encoded_len() as u64 + 1);
    out.push(0);
    cid.write_bytes(&mut *out)
        .map_err(|err| Error::InvalidMst(format!("encoding a CID: {err}")))?;
    Ok(())
}

/// The node encoding through the generic DAG-CBOR serializer: what
/// [`encode_parts`] must give, byte for byte (checked by the tests).
#[cfg(test)]
fn encode_parts_serde<'a>(
    left: Option<&'a Cid>,
    entries: impl Iterator<Item = (&'a [u8], &'a Cid, Option<&'a Cid>)>,
) -> Result<Vec<u8>, Error> {
    let mut previous: &[u8] = b"";
    let mut wire = Vec::new();
    for (key, value, right) in entries {
        let p = common_prefix_len(previous, key);
        wire.push(WireEntry {
            k: &key[p..],
            p,
            t: right,
            v: value,
        });
        previous = key;
    }
    Ok(dagcbor::to_vec(&WireNode { e: wire, l: left })?)
}

/// Wire form of a node as read: every field required (nulls are written
/// explicitly), nothing else allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireNodeIn {
    e: Vec<WireEntryIn>,
    #[serde(deserialize_with = "present")]
    l: Option<Cid>,
}

/// Wire form of an entry as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntryIn {
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    p: u64,
    #[serde(deserialize_with = "present")]
    t: Option<Cid>,
    v: Cid,
}

/// Reads a link-or-null field that must be present: with
/// `deserialize_with`, serde reports a missing field instead of reading it
/// as `None`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cid>, D::Error> {
    Option::<Cid>::deserialize(deserializer)
}

fn invalid(bytes: &[u8], reason: impl Into<String>) -> Error {
    Error::InvalidMstNode {
        cid: cid_for_dag_cbor(bytes),
        reason: reason.into(),
    }
}

/// Decodes and checks a node block: strict canonical DAG-CBOR, exactly the
/// fields `l` and `e` (entries exactly `p`, `k`, `v`, `t`, with `l` and `t`
/// present even when `null`), valid MST keys in strictly ascending order,
/// and canonical prefix compression (`p` equal to the prefix actually
/// shared with the previous key, so 0 for the first entry). Such a node
/// re-encodes with [`encode_node`] to the same bytes. Layers are not
/// checked here (see [`key_height`]). Every failure is
/// [`Error::InvalidMstNode`].
pub fn decode_node(bytes: &[u8]) -> Result<DecodedNode, Error> {
    let wire: WireNodeIn =
        dagcbor::from_slice(bytes).map_err(|e| invalid(bytes, format!("not an MST node: {e}")))?;
    let mut entries: Vec<NodeEntry> = Vec::with_capacity(wire.e.len());
    for entry in wire.e {
        let previous = entries.last().map_or("", |e| e.key.as_str()).as_bytes();
        let prefix = match usize::try_from(entry.p) {
            Ok(p) if p <= previous.len() => p,
            _ => return Err(invalid(bytes, "prefix longer than the previous key")),
        };
        let mut full = Vec::with_capacity(prefix + entry.k.len());
        full.extend_from_slice(&previous[..prefix]);
        full.extend_from_slice(&entry.k);
        if common_prefix_len(previous, &full) != prefix {
            return Err(invalid(bytes, "prefix compression is not canonical"));
        }
        if !entries.is_empty() && full.as_slice() <= previous {
            return Err(invalid(bytes, "keys are not strictly ascending"));
        }
        let key = String::from_utf8(full).map_err(|_| invalid(bytes, "key is not ASCII"))?;
        if !is_valid_key(&key) {
            return Err(invalid(bytes, format!("invalid MST key {key:?}")));
        }
        entries.push(NodeEntry {
            key,
            value: entry.v,
            right: entry.t,
        });
    }
    Ok(DecodedNode {
        left: wire.l,
        entries,
    })
}

// ---------------------------------------------------------------------------
// In-memory nodes

/// A subtree pointer: either only its CID (not loaded yet, block in the
/// store) or the loaded node.
#[derive(Debug, Clone)]
pub(crate) enum Child {
    Stored(Cid),
    Loaded(Box<Node>),
}

/// Keys up to this length are stored inside the entry: binary searches
/// then compare bytes next to each other instead of chasing a pointer per
/// key (typical keys, `app.bsky.feed.post/<TID>`, have 32 bytes).
const INLINE_KEY: usize = 46;

/// A key of an in-memory entry (ASCII, validated before it gets here).
#[derive(Debug, Clone)]
pub(crate) enum KeyBuf {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl KeyBuf {
    pub(crate) fn new(key: &str) -> Self {
        let src = key.as_bytes();
        if src.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..src.len()].copy_from_slice(src);
            KeyBuf::Inline {
                len: src.len() as u8,
                bytes,
            }
        } else {
            KeyBuf::Heap(src.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, bytes } => &bytes[..usize::from(*len)],
            KeyBuf::Heap(bytes) => bytes,
        }
    }

    /// The key as a string (keys are ASCII, so this never replaces bytes).
    pub(crate) fn to_text(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// An entry of an in-memory node.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: KeyBuf,
    pub(crate) value: Cid,
    pub(crate) right: Option<Child>,
}

/// An in-memory node. Its layer is implied by its position in the tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) left: Option<Child>,
    pub(crate) entries: Vec<Entry>,
    /// The node's CID; `None` when the node changed since it was hashed.
    pub(crate) cid: Option<Cid>,
    /// The encoded block while it is not known to be in the store.
    pub(crate) block: Option<Vec<u8>>,
    /// Whether the node's block (and so its whole subtree) is in the store.
    pub(crate) stored: bool,
}

impl Node {
    /// A new, dirty node.
    pub(crate) fn new(left: Option<Child>, entries: Vec<Entry>) -> Self {
        Node {
            left,
            entries,
            cid: None,
            block: None,
            stored: false,
        }
    }

    /// Marks the node as changed.
    pub(crate) fn touch(&mut self) {
        self.cid = None;
        self.block = None;
        self.stored = false;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.left.is_none() && self.entries.is_empty()
    }

    /// The child slot `i`: 0 is `left`, `i > 0` is the right subtree of
    /// entry `i - 1`.
    pub(crate) fn slot(&self, i: usize) -> &Option<Child> {
        if i == 0 {
            &self.left
        } else {
            &self.entries[i - 1].right
        }
    }

    /// Mutable access to child slot `i` (see [`Node::slot`]).
    pub(crate) fn slot_mut(&mut self, i: usize) -> &mut Option<Child> {
        if i == 0 {
            &mut self.left
        } else {
            &mut self.entries[i - 1].right
        }
    }

    /// Index of the first entry whose key is `>= key`, and whether it is
    /// equal.
    pub(crate) fn search(&self, key: &str) -> Result<usize, usize> {
        let key = key.as_bytes();
        self.entries.binary_search_by(|e| e.key.as_bytes().cmp(key))
    }

    /// Loads the node stored under `cid`, checking its layer: every key
    /// must be on `layer` if given (else on the layer of the first key),
    /// and a layer-0 node has no subtrees. Returns the node and its layer
    /// if known (`None` for a node without keys and unknown layer).
    pub(crate) fn load<S: BlockStore + ?Sized>(
        store: &S,
        cid: &Cid,
        layer: Option<u32>,
    ) -> Result<(Node, Option<u32>), Error> {
        let bytes = store.get_required(cid)?;
        let decoded = decode_node(&bytes)?;
        let bad = |reason: String| Error::InvalidMstNode { cid: *cid, reason };
        let layer = match layer {
            Some(l) => Some(l),
            None => decoded.key_layer(),
        };
        if let Some(layer) = layer {
            if layer > MAX_LAYER {
                return Err(bad(format!("layer {layer} is impossible")));
            }
            for entry in &decoded.entries {
                let height = key_height(entry.key.as_bytes());
                if height != layer {
                    return Err(bad(format!(
                        "key {:?} of height {height} on layer {layer}",
                        entry.key
                    )));
                }
            }
            if layer == 0 && decoded.children().next().is_some() {
                return Err(bad("subtree below layer 0".to_owned()));
            }
        }
        let node = Node {
            left: decoded.left.map(Child::Stored),
            entries: decoded
                .entries
                .into_iter()
                .map(|e| Entry {
                    key: KeyBuf::new(&e.key),
                    value: e.value,
                    right: e.right.map(Child::Stored),
                })
                .collect(),
            cid: Some(*cid),
            block: None,
            stored: true,
        };
        Ok((node, layer))
    }

    /// Computes (and caches) the CID of this node and of every changed
    /// node below it. Encoded blocks of nodes not yet stored are kept until
    /// they are flushed.
    pub(crate) fn compute_cid(&mut self) -> Result<Cid, Error> {
        if let Some(cid) = self.cid {
            return Ok(cid);
        }
        let left = match &mut self.left {
            Some(child) => Some(child.cid()?),
            None => None,
        };
        let mut rights = Vec::with_capacity(self.entries.len());
        for entry in &mut self.entries {
            rights.push(match &mut entry.right {
                Some(child) => Some(child.cid()?),
                None => None,
            });
        }
        let bytes = encode_parts(
            left.as_ref(),
            self.entries
                .iter()
                .zip(&rights)
                .map(|(e, right)| (e.key.as_bytes(), &e.value, right.as_ref())),
        )?;
        let cid = cid_for_dag_cbor(&bytes);
        self.cid = Some(cid);
        self.block = Some(bytes);
        Ok(cid)
    }
}

impl Child {
    /// The child's CID, computing it if needed.
    pub(crate) fn cid(&mut self) -> Result<Cid, Error> {
        match self {
            Child::Stored(cid) => Ok(*cid),
            Child::Loaded(node) => node.compute_cid(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use atp_crypto::Ipld;

    use super::*;

    fn node(with_l: bool, with_t: bool) -> Vec<u8> {
        let value = cid_for_dag_cbor(b"\xa0");
        let mut entry = BTreeMap::from([
            (
                "k".to_owned(),
                Ipld::Bytes(b"app.bsky.feed.post/a".to_vec()),
            ),
            ("p".to_owned(), Ipld::Integer(0)),
            ("v".to_owned(), Ipld::Link(value)),
        ]);
        if with_t {
            entry.insert("t".to_owned(), Ipld::Null);
        }
        let mut map = BTreeMap::from([("e".to_owned(), Ipld::List(vec![Ipld::Map(entry)]))]);
        if with_l {
            map.insert("l".to_owned(), Ipld::Null);
        }
        dagcbor::encode_ipld(&Ipld::Map(map)).unwrap()
    }

    #[test]
    fn direct_encoding_equals_the_serializer_s() {
        // Entries of varied key lengths (prefixes past 23 and 255 bytes),
        // with and without subtrees.
        let cids: Vec<Cid> = (0u32..8)
            .map(|n| cid_for_dag_cbor(&n.to_be_bytes()))
            .collect();
        let mut keys: Vec<String> = Vec::new();
        for n in 0..40usize {
            let long = "x".repeat(n * 9);
            keys.push(format!("com.example.c{}/{long}{n:03}", n % 3));
        }
        keys.sort();
        for count in [0usize, 1, 2, 23, 24, 40] {
            for with_left in [false, true] {
                let entries: Vec<(&[u8], &Cid, Option<&Cid>)> = keys[..count]
                    .iter()
                    .enumerate()
                    .map(|(i, key)| {
                        let right = (i % 3 == 0).then(|| &cids[i % 8]);
                        (key.as_bytes(), &cids[(i + 1) % 8], right)
                    })
                    .collect();
                let left = with_left.then(|| &cids[7]);
                let direct = encode_parts(left, entries.clone().into_iter()).unwrap();
                let serde = encode_parts_serde(left, entries.into_iter()).unwrap();
                assert_eq!(direct, serde, "{count} entries, left {with_left}");
                let decoded = decode_node(&direct).unwrap();
                assert_eq!(encode_node(&decoded).unwrap(), direct);
            }
        }
    }

    #[test]
    fn nulls_must_be_written() {
        let good = node(true, true);
        let decoded = decode_node(&good).unwrap();
        assert_eq!(encode_node(&decoded).unwrap(), good);
        for bytes in [node(false, true), node(true, false)] {
            assert!(matches!(
                decode_node(&bytes),
                Err(Error::InvalidMstNode { .. })
            ));
        }
    }
}
