//! A lazily loaded, mutable view of an MST over a possibly partial set of
//! blocks.
//!
//! Nodes are read only when an operation needs them, and every node read
//! is recorded. This is what operation inversion needs: the `blocks` of a
//! `#commit` hold only part of the tree, and the nodes an inversion reads
//! are exactly the nodes a commit must carry.

use std::collections::BTreeSet;

use atp_crypto::Cid;

use crate::blockstore::BlockStore;
use crate::car::BlockMap;
use crate::mst::MAX_LAYER;
use crate::mst::{decode_node, encode_node, ensure_valid_key, key_height, DecodedNode, NodeEntry};
use crate::Error;

/// A source of blocks by CID.
pub trait BlockSource {
    /// The bytes of `cid`, or `None` if this source does not hold it.
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error>;
}

impl BlockSource for BlockMap {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get(cid).cloned())
    }
}

impl BlockSource for &BlockMap {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get(cid).cloned())
    }
}

/// A borrowed source, for handing `&S` to APIs that take a source by value.
#[derive(Debug)]
pub struct SourceRef<'a, S: ?Sized>(pub &'a S);

impl<S: BlockSource + ?Sized> BlockSource for SourceRef<'_, S> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        self.0.get_block(cid)
    }
}

/// Every [`BlockStore`] (including `&store`, `Arc<store>`) is a source.
impl<T: BlockStore + ?Sized> BlockSource for T {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        self.get(cid)
    }
}

/// Reads and decodes node `cid` from `src`.
/// (see [`decode_node`]).
pub fn read_node<S: BlockSource + ?Sized>(src: &S, cid: &Cid) -> Result<DecodedNode, Error> {
    let bytes = src.get_block(cid)?.ok_or(Error::MissingBlock(*cid))?;
    decode_node(&bytes)
}

/// Layer of the node `cid`: the height of its keys, or for a node with no
/// entries, one more than the layer of its left subtree (0 if empty).
pub fn node_layer<S: BlockSource + ?Sized>(src: &S, cid: &Cid) -> Result<u32, Error> {
    let mut current = *cid;
    let mut extra = 0u32;
    loop {
        let node = read_node(src, &current)?;
        if let Some(first) = node.entries.first() {
            return Ok(key_height(first.key.as_bytes()) + extra);
        }
        match node.left {
            None => return Ok(extra),
            Some(left) => {
                extra += 1;
                if extra > MAX_LAYER {
                    return Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()));
                }
                current = left;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Mutable partial tree

#[derive(Debug)]
enum Child {
    Stub(Cid),
    Loaded(Box<Node>),
}

#[derive(Debug)]
struct Node {
    layer: u32,
    /// CID of the unmodified node as loaded; `None` once changed.
    cid: Option<Cid>,
    left: Option<Child>,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// A valid MST key.
    key: String,
    value: Cid,
    right: Option<Child>,
}

impl Node {
    fn empty(layer: u32) -> Node {
        Node {
            layer,
            cid: None,
            left: None,
            entries: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// Number of entries with a key below `key`.
    fn position(&self, key: &[u8]) -> usize {
        self.entries.partition_point(|e| e.key.as_bytes() < key)
    }

    fn slot_mut(&mut self, i: usize) -> &mut Option<Child> {
        if i == 0 {
            &mut self.left
        } else {
            &mut self.entries[i - 1].right
        }
    }
}

/// Wraps a node as a child, or `None` if it is empty.
fn non_empty(node: Node) -> Option<Child> {
    if node.is_empty() {
        None
    } else {
        Some(Child::Loaded(Box::new(node)))
    }
}

/// A lazily loaded MST that can be read and changed using only the blocks
/// its source holds; reading a missing node is [`Error::MissingBlock`].
#[derive(Debug)]
pub struct PartialTree<S: BlockSource> {
    src: S,
    root: Node,
    reads: BTreeSet<Cid>,
}

impl<S: BlockSource> PartialTree<S> {
    /// Opens the tree whose root node is `root` (read immediately).
    pub fn open(src: S, root: Cid) -> Result<Self, Error> {
        let layer = node_layer(&src, &root)?;
        let mut reads = BTreeSet::new();
        let node = load_node(&src, &root, layer, &mut reads)?;
        Ok(PartialTree {
            src,
            root: node,
            reads,
        })
    }

    /// An empty tree over `src` (nothing is read).
    pub fn empty(src: S) -> Self {
        PartialTree {
            src,
            root: Node::empty(0),
            reads: BTreeSet::new(),
        }
    }

    /// CIDs of every node read from the source so far.
    pub fn reads(&self) -> &BTreeSet<Cid> {
        &self.reads
    }

    /// Value stored under `key`, if any.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Cid>, Error> {
        let mut node = &mut self.root;
        loop {
            let i = node.position(key);
            if let Some(e) = node.entries.get(i) {
                if e.key.as_bytes() == key {
                    return Ok(Some(e.value));
                }
            }
            let layer = node.layer;
            let slot = node.slot_mut(i);
            match ensure_loaded(&self.src, slot, layer, &mut self.reads)? {
                None => return Ok(None),
                Some(child) => node = child,
            }
        }
    }

    /// Inserts a new `key`; an existing key is an error.
    pub fn insert(&mut self, key: &[u8], value: Cid) -> Result<(), Error> {
        let key = std::str::from_utf8(key)
            .map_err(|_| Error::InvalidMstKey(String::from_utf8_lossy(key).into_owned()))?;
        ensure_valid_key(key)?;
        let height = key_height(key.as_bytes());
        if self.root.is_empty() {
            self.root = Node::empty(height);
        }
        while self.root.layer < height {
            let old = std::mem::replace(&mut self.root, Node::empty(0));
            let layer = old.layer + 1;
            self.root = Node {
                layer,
                cid: None,
                left: Some(Child::Loaded(Box::new(old))),
                entries: Vec::new(),
            };
        }
        insert_into(
            &self.src,
            &mut self.reads,
            &mut self.root,
            key,
            value,
            height,
        )
    }

    /// Replaces the value of an existing `key`; returns the old value.
    pub fn update(&mut self, key: &[u8], value: Cid) -> Result<Cid, Error> {
        let mut node = &mut self.root;
        loop {
            node.cid = None;
            let i = node.position(key);
            if let Some(e) = node.entries.get_mut(i) {
                if e.key.as_bytes() == key {
                    return Ok(std::mem::replace(&mut e.value, value));
                }
            }
            let layer = node.layer;
            let slot = node.slot_mut(i);
            match ensure_loaded(&self.src, slot, layer, &mut self.reads)? {
                None => return Err(key_not_found(key)),
                Some(child) => node = child,
            }
        }
    }

    /// Removes an existing `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Result<Cid, Error> {
        let height = key_height(key);
        if height > self.root.layer {
            return Err(key_not_found(key));
        }
        let value = remove_from(&self.src, &mut self.reads, &mut self.root, key, height)?;
        // Trim the top: a root without entries hands over to its subtree.
        while self.root.entries.is_empty() {
            match self.root.left.take() {
                None => {
                    self.root = Node::empty(0);
                    break;
                }
                Some(child) => {
                    let layer = self.root.layer.saturating_sub(1);
                    self.root = take_loaded(&self.src, child, layer, &mut self.reads)?;
                }
            }
        }
        Ok(value)
    }

    /// CID of the current root, and the blocks of every node created or
    /// changed since the tree was opened.
    pub fn commit(&self) -> Result<(Cid, BlockMap), Error> {
        let mut blocks = BlockMap::new();
        let cid = encode_tree(&self.root, &mut blocks)?;
        Ok((cid, blocks))
    }

    /// CID of the current root.
    pub fn root_cid(&self) -> Result<Cid, Error> {
        Ok(self.commit()?.0)
    }
}

fn key_not_found(key: &[u8]) -> Error {
    Error::RecordNotFound(String::from_utf8_lossy(key).into_owned())
}

/// Loads node `cid`, expected at `layer`, checking its keys sit at that layer.
fn load_node<S: BlockSource + ?Sized>(
    src: &S,
    cid: &Cid,
    layer: u32,
    reads: &mut BTreeSet<Cid>,
) -> Result<Node, Error> {
    let view = read_node(src, cid)?;
    reads.insert(*cid);
    for entry in &view.entries {
        let height = key_height(entry.key.as_bytes());
        if height != layer {
            return Err(Error::InvalidMst(format!(
                "key {:?} of height {height} in a node at layer {layer}",
                entry.key
            )));
        }
    }
    if layer == 0 && view.children().next().is_some() {
        return Err(Error::InvalidMst(
            "a node at layer 0 has subtrees".to_owned(),
        ));
    }
    Ok(Node {
        layer,
        cid: Some(*cid),
        left: view.left.map(Child::Stub),
        entries: view
            .entries
            .into_iter()
            .map(|e| Entry {
                key: e.key,
                value: e.value,
                right: e.right.map(Child::Stub),
            })
            .collect(),
    })
}

/// Loads the child in `slot` (a child of a node at `parent_layer`) in place.
fn ensure_loaded<'a, S: BlockSource + ?Sized>(
    src: &S,
    slot: &'a mut Option<Child>,
    parent_layer: u32,
    reads: &mut BTreeSet<Cid>,
) -> Result<Option<&'a mut Node>, Error> {
    if let Some(Child::Stub(cid)) = slot {
        if parent_layer == 0 {
            return Err(Error::InvalidMst(
                "a node at layer 0 has subtrees".to_owned(),
            ));
        }
        let node = load_node(src, cid, parent_layer - 1, reads)?;
        *slot = Some(Child::Loaded(Box::new(node)));
    }
    match slot {
        Some(Child::Loaded(node)) => Ok(Some(node)),
        _ => Ok(None),
    }
}

/// Takes ownership of a child at `layer`, loading it if needed.
fn take_loaded<S: BlockSource + ?Sized>(
    src: &S,
    child: Child,
    layer: u32,
    reads: &mut BTreeSet<Cid>,
) -> Result<Node, Error> {
    match child {
        Child::Loaded(node) => Ok(*node),
        Child::Stub(cid) => load_node(src, &cid, layer, reads),
    }
}

fn insert_into<S: BlockSource + ?Sized>(
    src: &S,
    reads: &mut BTreeSet<Cid>,
    node: &mut Node,
    key: &str,
    value: Cid,
    height: u32,
) -> Result<(), Error> {
    node.cid = None;
    let i = node.position(key.as_bytes());
    if node.entries.get(i).is_some_and(|e| e.key == key) {
        return Err(Error::RecordExists(key.to_owned()));
    }
    let layer = node.layer;
    if height == layer {
        let slot = node.slot_mut(i).take();
        let (lo, hi) = split(src, reads, slot, key.as_bytes(), layer)?;
        *node.slot_mut(i) = lo;
        node.entries.insert(
            i,
            Entry {
                key: key.to_owned(),
                value,
                right: hi,
            },
        );
        return Ok(());
    }
    // height < layer: descend, creating an empty child if there is none.
    let slot = node.slot_mut(i);
    if slot.is_none() {
        *slot = Some(Child::Loaded(Box::new(Node::empty(layer - 1))));
    }
    match ensure_loaded(src, slot, layer, reads)? {
        Some(child) => insert_into(src, reads, child, key, value, height),
        None => Err(Error::InvalidMst("subtree vanished".to_owned())),
    }
}

/// Splits the subtree in a slot of a node at `parent_layer` around `key`.
fn split<S: BlockSource + ?Sized>(
    src: &S,
    reads: &mut BTreeSet<Cid>,
    slot: Option<Child>,
    key: &[u8],
    parent_layer: u32,
) -> Result<(Option<Child>, Option<Child>), Error> {
    let Some(child) = slot else {
        return Ok((None, None));
    };
    if parent_layer == 0 {
        return Err(Error::InvalidMst(
            "a node at layer 0 has subtrees".to_owned(),
        ));
    }
    let layer = parent_layer - 1;
    let mut node = take_loaded(src, child, layer, reads)?;
    let i = node.position(key);
    let sub = node.slot_mut(i).take();
    let (lo, hi) = split(src, reads, sub, key, layer)?;
    let right_entries = node.entries.split_off(i);
    let mut left_node = Node {
        layer,
        cid: None,
        left: node.left.take(),
        entries: node.entries,
    };
    *left_node.slot_mut(i) = lo;
    let right_node = Node {
        layer,
        cid: None,
        left: hi,
        entries: right_entries,
    };
    Ok((non_empty(left_node), non_empty(right_node)))
}

fn remove_from<S: BlockSource + ?Sized>(
    src: &S,
    reads: &mut BTreeSet<Cid>,
    node: &mut Node,
    key: &[u8],
    height: u32,
) -> Result<Cid, Error> {
    node.cid = None;
    let i = node.position(key);
    let layer = node.layer;
    if height == layer {
        if !node.entries.get(i).is_some_and(|e| e.key.as_bytes() == key) {
            return Err(key_not_found(key));
        }
        let entry = node.entries.remove(i);
        let lo = node.slot_mut(i).take();
        let merged = merge(src, reads, lo, entry.right, layer)?;
        *node.slot_mut(i) = merged;
        return Ok(entry.value);
    }
    let slot = node.slot_mut(i);
    let value = match ensure_loaded(src, slot, layer, reads)? {
        None => return Err(key_not_found(key)),
        Some(child) => remove_from(src, reads, child, key, height)?,
    };
    if matches!(slot, Some(Child::Loaded(child)) if child.is_empty()) {
        *slot = None;
    }
    Ok(value)
}

/// Joins two adjacent subtrees of a node at `parent_layer`.
fn merge<S: BlockSource + ?Sized>(
    src: &S,
    reads: &mut BTreeSet<Cid>,
    a: Option<Child>,
    b: Option<Child>,
    parent_layer: u32,
) -> Result<Option<Child>, Error> {
    let (a, b) = match (a, b) {
        (None, x) | (x, None) => return Ok(x),
        (Some(a), Some(b)) => (a, b),
    };
    if parent_layer == 0 {
        return Err(Error::InvalidMst(
            "a node at layer 0 has subtrees".to_owned(),
        ));
    }
    let layer = parent_layer - 1;
    let mut a = take_loaded(src, a, layer, reads)?;
    let mut b = take_loaded(src, b, layer, reads)?;
    let n = a.entries.len();
    let a_last = a.slot_mut(n).take();
    let b_first = b.left.take();
    let mid = merge(src, reads, a_last, b_first, layer)?;
    *a.slot_mut(n) = mid;
    a.entries.append(&mut b.entries);
    a.cid = None;
    Ok(non_empty(a))
}

fn encode_tree(node: &Node, out: &mut BlockMap) -> Result<Cid, Error> {
    if let Some(cid) = node.cid {
        return Ok(cid);
    }
    let child_cid = |child: &Option<Child>, out: &mut BlockMap| -> Result<Option<Cid>, Error> {
        match child {
            None => Ok(None),
            Some(Child::Stub(cid)) => Ok(Some(*cid)),
            Some(Child::Loaded(n)) => encode_tree(n, out).map(Some),
        }
    };
    let left = child_cid(&node.left, out)?;
    let mut entries = Vec::with_capacity(node.entries.len());
    for e in &node.entries {
        entries.push(NodeEntry {
            key: e.key.clone(),
            value: e.value,
            right: child_cid(&e.right, out)?,
        });
    }
    let bytes = encode_node(&DecodedNode { left, entries })?;
    let cid = atp_crypto::cid_for_dag_cbor(&bytes);
    out.insert(cid, bytes);
    Ok(cid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EMPTY_NODE: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

    fn value(i: u32) -> Cid {
        atp_crypto::cid_for_dag_cbor(&i.to_be_bytes())
    }

    fn empty_tree() -> PartialTree<BlockMap> {
        let bytes = encode_node(&DecodedNode::default()).unwrap();
        let cid = atp_crypto::cid_for_dag_cbor(&bytes);
        assert_eq!(cid.to_string(), EMPTY_NODE);
        PartialTree::open(BlockMap::from([(cid, bytes)]), cid).unwrap()
    }

    #[test]
    fn insert_then_remove_in_any_order_returns_to_empty() {
        let keys: Vec<String> = (0..300).map(|i| format!("com.example.t/{i:04}")).collect();
        let mut tree = empty_tree();
        for (i, k) in keys.iter().enumerate() {
            tree.insert(k.as_bytes(), value(i as u32)).unwrap();
        }
        let (full, blocks) = tree.commit().unwrap();

        // Same keys inserted in reverse order give the same root.
        let mut other = empty_tree();
        for (i, k) in keys.iter().enumerate().rev() {
            other.insert(k.as_bytes(), value(i as u32)).unwrap();
        }
        assert_eq!(other.root_cid().unwrap(), full);

        // Reopen from blocks, remove everything in a scrambled order.
        let mut src = blocks;
        let (empty_bytes, empty_cid) = {
            let b = encode_node(&DecodedNode::default()).unwrap();
            (b.clone(), atp_crypto::cid_for_dag_cbor(&b))
        };
        src.insert(empty_cid, empty_bytes);
        let mut reopened = PartialTree::open(src, full).unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(reopened.get(k.as_bytes()).unwrap(), Some(value(i as u32)));
        }
        for j in 0..keys.len() {
            let i = (j * 7) % keys.len();
            assert_eq!(
                reopened.remove(keys[i].as_bytes()).unwrap(),
                value(i as u32)
            );
        }
        assert_eq!(reopened.root_cid().unwrap().to_string(), EMPTY_NODE);
    }
}
