//! The Merkle Search Tree (MST) that maps repository paths
//! (`<collection>/<rkey>`) to record CIDs.
//!
//! [`Mst`] is a mutable tree over a [`BlockStore`]: nodes are loaded from
//! the store when an operation reaches them, changed nodes are marked dirty
//! and re-hashed only when the root CID is asked for, and [`Mst::flush`]
//! writes exactly the node blocks the store does not have yet. The root CID
//! depends only on the set of `(key, value)` pairs, never on the order of
//! the operations that built it.
//!
//! ```
//! use atp_crypto::cid_for_dag_cbor;
//! use atp_repo_mst::blockstore::MemoryBlockStore;
//! use atp_repo_mst::mst::Mst;
//!
//! let value = cid_for_dag_cbor(&[0xa0]); // CID of the record `{}`
//! let mut a = Mst::new(MemoryBlockStore::new());
//! a.insert("app.bsky.feed.post/3jzfcijpj2z2a", value)?;
//! a.insert("app.bsky.feed.like/3jzfcijpj2z2b", value)?;
//! let mut b = Mst::new(MemoryBlockStore::new());
//! b.insert("app.bsky.feed.like/3jzfcijpj2z2b", value)?;
//! b.insert("app.bsky.feed.post/3jzfcijpj2z2a", value)?;
//! assert_eq!(a.root()?, b.root()?);
//!
//! // Write the new nodes, then reopen the tree lazily from its root.
//! let (root, blocks) = a.flush()?;
//! assert_eq!(blocks.len(), 1);
//! let c = Mst::load(a.store(), root);
//! assert_eq!(c.get("app.bsky.feed.post/3jzfcijpj2z2a")?, Some(value));
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

mod covering;
mod key;
mod links;
mod node;
mod tree;
mod walk;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Mutex;

use atp_crypto::Cid;

use crate::blockstore::BlockStore;
use crate::car::BlockMap;
use crate::Error;

pub use key::{
    common_prefix_len, ensure_valid_key, is_valid_key, key_height, record_key, MAX_KEY_LEN,
    MAX_LAYER,
};
pub use links::NodeLinks;
pub use node::{decode_node, encode_node, DecodedNode, NodeEntry};
pub use walk::Leaves;

use node::{Child, Entry, KeyBuf, Node};

/// CID of the empty tree: the node `{e: [], l: null}`.
pub const EMPTY_TREE_CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

/// A Merkle Search Tree over the block store `S`.
///
/// Reads (`get`, `leaves`, `range`) take `&self` and read unloaded nodes
/// from the store without keeping them; writes take `&mut self` and keep
/// the nodes they touch in memory until [`Mst::unload`].
#[derive(Debug)]
pub struct Mst<S> {
    store: S,
    root: Child,
    /// Layer of the root; `None` until a stored root is loaded.
    layer: Option<u32>,
    /// CIDs of the stored nodes held in memory: those in the tree at the
    /// last flush and those loaded since. Those no longer in the tree at
    /// the next flush were replaced.
    held: Mutex<BTreeSet<Cid>>,
    /// Stored nodes replaced by the writes flushed so far (see
    /// [`Mst::take_replaced`]).
    replaced: BTreeSet<Cid>,
}

impl<S: BlockStore> Mst<S> {
    /// An empty tree whose nodes will be written to `store`.
    pub fn new(store: S) -> Self {
        Mst {
            store,
            root: Child::Loaded(Box::default()),
            layer: Some(0),
            held: Mutex::default(),
            replaced: BTreeSet::new(),
        }
    }

    /// The tree with root node `root` in `store`. Nothing is read until an
    /// operation needs it.
    pub fn load(store: S, root: Cid) -> Self {
        Mst {
            store,
            root: Child::Stored(root),
            layer: None,
            held: Mutex::default(),
            replaced: BTreeSet::new(),
        }
    }

    /// The block store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the block store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Loads the root node if needed.
    fn load_root(&mut self) -> Result<(), Error> {
        if let Child::Stored(cid) = &self.root {
            let cid = *cid;
            let (node, layer) = Node::load(&self.store, &cid, None)?;
            let layer = match layer {
                Some(layer) => layer,
                None => infer_layer(&self.store, &node, &cid, 0)?,
            };
            self.root = Child::Loaded(Box::new(node));
            self.layer = Some(layer);
            lock_held(&self.held).insert(cid);
        }
        Ok(())
    }

    /// The loaded root node, its layer and the store, borrowed separately.
    fn parts(&mut self) -> Result<Parts<'_, S>, Error> {
        self.load_root()?;
        match &mut self.root {
            Child::Loaded(root) => Ok(Parts {
                layer: self.layer.unwrap_or(0),
                root,
                store: Loading {
                    store: &self.store,
                    held: &self.held,
                },
                layer_slot: &mut self.layer,
            }),
            Child::Stored(cid) => Err(Error::MissingBlock(*cid)),
        }
    }

    /// The value stored at `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Cid>, Error> {
        ensure_valid_key(key)?;
        match &self.root {
            Child::Loaded(node) => tree::get(node, self.layer, key, &self.store),
            Child::Stored(cid) => {
                let (node, layer) = Node::load(&self.store, cid, None)?;
                tree::get(&node, layer, key, &self.store)
            }
        }
    }

    /// The value stored at `key`, if any, like [`Mst::get`], but the nodes
    /// on the way are loaded and kept, so that a write to the same key (or
    /// a neighbour) that follows does not read them again.
    pub fn get_loading(&mut self, key: &str) -> Result<Option<Cid>, Error> {
        ensure_valid_key(key)?;
        let Parts {
            root, layer, store, ..
        } = self.parts()?;
        let store = &store;
        let mut node = root;
        let mut layer = layer;
        for _ in 0..=MAX_LAYER + 1 {
            let i = match node.search(key) {
                Ok(i) => return Ok(Some(node.entries[i].value)),
                Err(i) => i,
            };
            if layer == 0 {
                return Ok(None);
            }
            match node.slot_mut(i) {
                None => return Ok(None),
                Some(child) => {
                    layer -= 1;
                    node = tree::loaded(child, store, layer)?;
                }
            }
        }
        Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()))
    }

    /// The CIDs of the nodes of the covering proof of every key in `keys`
    /// (see [`crate::proof::covering_proof`]): for each key, the nodes on
    /// the path to it and on the paths to its left and right neighbours,
    /// in the tree as it is now. Read from the nodes held in memory
    /// (after a write, the changed paths), loading and keeping the others;
    /// the CIDs of changed nodes are computed as for [`Mst::root`].
    ///
    /// Right after a commit this is the set of existing nodes its
    /// `#commit` event carries besides its new blocks
    /// ([`crate::proof::event_proof_nodes`] gives the same set, decoding
    /// the nodes from blocks).
    pub fn covering_proof_nodes<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<BTreeSet<Cid>, Error> {
        let mut out = BTreeSet::new();
        let Parts {
            root, layer, store, ..
        } = self.parts()?;
        let store = &store;
        for key in keys {
            covering::covering_nodes(root, layer, key, store, &mut out)?;
        }
        Ok(out)
    }

    /// Sets `key` to `value`, returning the previous value (`None` if the
    /// key was new).
    pub fn insert(&mut self, key: &str, value: Cid) -> Result<Option<Cid>, Error> {
        ensure_valid_key(key)?;
        let height = key_height(key.as_bytes());
        let Parts {
            root,
            layer,
            store,
            layer_slot,
        } = self.parts()?;
        let store = &store;
        if root.is_empty() {
            *root = tree::chain(key, value, height, height);
            *layer_slot = Some(height);
            return Ok(None);
        }
        if height <= layer {
            return tree::insert(root, layer, key, height, value, store);
        }
        // The key goes above the current root: split the tree around it and
        // lift both halves to the layer under the new root.
        let old = Child::Loaded(Box::new(std::mem::take(root)));
        let (left, right) = tree::split(old, key, layer, store)?;
        let entry = Entry {
            key: KeyBuf::new(key),
            value,
            right: tree::lift(right, layer, height - 1),
        };
        *root = Node::new(tree::lift(left, layer, height - 1), vec![entry]);
        *layer_slot = Some(height);
        Ok(None)
    }

    /// Removes `key`, returning its value (`None` if it was absent). Empty
    /// subtrees are dropped, neighbours re-merged and entry-less top layers
    /// trimmed, so the tree is exactly the one built without the key.
    pub fn remove(&mut self, key: &str) -> Result<Option<Cid>, Error> {
        ensure_valid_key(key)?;
        let Parts {
            root,
            mut layer,
            store,
            layer_slot,
        } = self.parts()?;
        let store = &store;
        let removed = tree::remove(root, layer, key, store)?;
        if removed.is_some() {
            while root.entries.is_empty() {
                match root.left.take() {
                    Some(child) => {
                        layer = layer.saturating_sub(1);
                        *root = *tree::into_node(child, store, layer)?;
                    }
                    None => {
                        layer = 0;
                        break;
                    }
                }
            }
            *layer_slot = Some(layer);
        }
        Ok(removed)
    }

    /// The root CID, hashing the nodes changed since the last call.
    pub fn root(&mut self) -> Result<Cid, Error> {
        self.root.cid()
    }

    /// The layer of the root node (0 for the empty tree).
    pub fn layer(&mut self) -> Result<u32, Error> {
        Ok(self.parts()?.layer)
    }

    /// Whether the tree holds no key.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.leaves().next().transpose()?.is_none())
    }

    /// Number of keys (walks the whole tree).
    pub fn len(&self) -> Result<usize, Error> {
        self.leaves().try_fold(0, |n, leaf| leaf.map(|_| n + 1))
    }

    /// All `(key, value)` pairs in key order.
    pub fn leaves(&self) -> Leaves<'_, S> {
        self.range(Bound::Unbounded, Bound::Unbounded, false)
    }

    /// The `(key, value)` pairs with keys within `lower..upper`, in key
    /// order or, with `reverse`, in reverse key order.
    pub fn range(&self, lower: Bound<&str>, upper: Bound<&str>, reverse: bool) -> Leaves<'_, S> {
        let layer = match self.root {
            Child::Loaded(_) => self.layer,
            Child::Stored(_) => None,
        };
        Leaves::new(&self.store, &self.root, layer, lower, upper, reverse)
    }

    /// One page of the records of `collection`: `(rkey, value)` pairs after
    /// the record key `cursor` (exclusive; before it when `reverse`), at
    /// most `limit` of them, in record-key order or reverse order.
    pub fn list_collection(
        &self,
        collection: &str,
        cursor: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(String, Cid)>, Error> {
        // Every key of the collection lies in [collection + "/", collection + "0"):
        // '0' is the byte after '/'.
        let first = format!("{collection}/");
        let end = format!("{collection}0");
        let after = cursor.map(|c| format!("{collection}/{c}"));
        let (lower, upper) = match (&after, reverse) {
            (Some(c), false) => (Bound::Excluded(c.as_str()), Bound::Excluded(end.as_str())),
            (Some(c), true) => (Bound::Included(first.as_str()), Bound::Excluded(c.as_str())),
            (None, _) => (
                Bound::Included(first.as_str()),
                Bound::Excluded(end.as_str()),
            ),
        };
        let mut out = Vec::new();
        for leaf in self.range(lower, upper, reverse).take(limit) {
            let (key, value) = leaf?;
            let rkey = key[first.len()..].to_owned();
            out.push((rkey, value));
        }
        Ok(out)
    }

    /// The blocks of every node not yet in the store (changed or new since
    /// the last [`flush`](Mst::flush)), with the root CID. Nothing is
    /// written. These are the MST blocks a commit must carry.
    pub fn unstored_blocks(&mut self) -> Result<(Cid, BlockMap), Error> {
        let root = self.root()?;
        let mut blocks = BlockMap::new();
        if let Child::Loaded(node) = &mut self.root {
            collect_unstored(node, &self.store, &mut blocks)?;
        }
        Ok((root, blocks))
    }

    /// Writes the unstored node blocks to the store and returns the root
    /// CID with the blocks written.
    pub fn flush(&mut self) -> Result<(Cid, BlockMap), Error> {
        let (root, blocks) = self.unstored_blocks()?;
        self.store.put_many(&blocks)?;
        let mut in_tree = BTreeSet::new();
        let mut loaded = BTreeSet::new();
        match &mut self.root {
            Child::Loaded(node) => {
                mark_stored(node);
                tree_cids(node, &mut in_tree, &mut loaded)?;
            }
            Child::Stored(cid) => {
                in_tree.insert(*cid);
            }
        }
        let held = std::mem::replace(&mut *lock_held(&self.held), loaded);
        self.replaced
            .extend(held.into_iter().filter(|cid| !in_tree.contains(cid)));
        Ok((root, blocks))
    }

    /// The stored nodes that the writes flushed since the last call
    /// replaced or removed: nodes of the tree at an earlier flush (or as
    /// loaded) that the tree at the last [`flush`](Mst::flush) no longer
    /// holds. Once a commit of the new tree is stored, they are reachable
    /// only from earlier commits. Only nodes the tree loaded are
    /// considered, which includes every node a write changes.
    pub fn take_replaced(&mut self) -> BTreeSet<Cid> {
        std::mem::take(&mut self.replaced)
    }

    /// Flushes, then drops every loaded node: the tree is again only its
    /// root CID, and later operations reload what they need.
    pub fn unload(&mut self) -> Result<Cid, Error> {
        let (root, _) = self.flush()?;
        self.root = Child::Stored(root);
        self.layer = None;
        lock_held(&self.held).clear();
        Ok(root)
    }
}

/// Disjoint borrows of a tree's parts.
struct Parts<'a, S> {
    root: &'a mut Node,
    layer: u32,
    store: Loading<'a, S>,
    layer_slot: &'a mut Option<u32>,
}

/// The tree's store as its write operations see it: every node they
/// load is kept in memory, so its CID joins the tree's held nodes.
struct Loading<'a, S> {
    store: &'a S,
    held: &'a Mutex<BTreeSet<Cid>>,
}

impl<S: BlockStore> BlockStore for Loading<'_, S> {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        let found = self.store.get(cid)?;
        if found.is_some() {
            lock_held(self.held).insert(*cid);
        }
        Ok(found)
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        self.store.has(cid)
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
        self.store.put(cid, bytes)
    }

    fn put_many(&self, blocks: &BlockMap) -> Result<(), Error> {
        self.store.put_many(blocks)
    }
}

/// The held set (a poisoned lock still holds a usable set).
fn lock_held(held: &Mutex<BTreeSet<Cid>>) -> std::sync::MutexGuard<'_, BTreeSet<Cid>> {
    held.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds to `in_tree` the CID of `node` and of every node below it that is
/// loaded, and the CIDs of the stored subtrees they point to; to `loaded`
/// the CIDs of the loaded nodes.
fn tree_cids(
    node: &mut Node,
    in_tree: &mut BTreeSet<Cid>,
    loaded: &mut BTreeSet<Cid>,
) -> Result<(), Error> {
    let cid = node.compute_cid()?;
    in_tree.insert(cid);
    loaded.insert(cid);
    let children = node
        .left
        .iter_mut()
        .chain(node.entries.iter_mut().filter_map(|e| e.right.as_mut()));
    for child in children {
        match child {
            Child::Stored(cid) => {
                in_tree.insert(*cid);
            }
            Child::Loaded(child) => tree_cids(child, in_tree, loaded)?,
        }
    }
    Ok(())
}

/// Layer of a root node without entries: one above its left child's.
fn infer_layer<S: BlockStore + ?Sized>(
    store: &S,
    node: &Node,
    cid: &Cid,
    depth: u32,
) -> Result<u32, Error> {
    if depth > MAX_LAYER {
        return Err(Error::InvalidMstNode {
            cid: *cid,
            reason: "chain of nodes without entries deeper than any layer".to_owned(),
        });
    }
    let Some(Child::Stored(child_cid)) = &node.left else {
        return Ok(0);
    };
    let (child, layer) = Node::load(store, child_cid, None)?;
    let child_layer = match layer {
        Some(layer) => layer,
        None => infer_layer(store, &child, child_cid, depth + 1)?,
    };
    Ok(child_layer + 1)
}

fn collect_unstored<S: BlockStore + ?Sized>(
    node: &mut Node,
    store: &S,
    blocks: &mut BlockMap,
) -> Result<(), Error> {
    if node.stored {
        return Ok(());
    }
    let cid = node.compute_cid()?;
    if store.has(&cid)? {
        node.stored = true;
        node.block = None;
        return Ok(());
    }
    let bytes = match node.block.take() {
        Some(bytes) => bytes,
        None => {
            node.cid = None;
            node.compute_cid()?;
            node.block.take().unwrap_or_default()
        }
    };
    blocks.insert(cid, bytes.clone());
    node.block = Some(bytes);
    if let Some(Child::Loaded(child)) = &mut node.left {
        collect_unstored(child, store, blocks)?;
    }
    for entry in &mut node.entries {
        if let Some(Child::Loaded(child)) = &mut entry.right {
            collect_unstored(child, store, blocks)?;
        }
    }
    Ok(())
}

fn mark_stored(node: &mut Node) {
    if node.stored {
        return;
    }
    node.stored = true;
    node.block = None;
    if let Some(Child::Loaded(child)) = &mut node.left {
        mark_stored(child);
    }
    for entry in &mut node.entries {
        if let Some(Child::Loaded(child)) = &mut entry.right {
            mark_stored(child);
        }
    }
}
