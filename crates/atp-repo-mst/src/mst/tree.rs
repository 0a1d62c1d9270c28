//! The tree operations: insert, remove, split and merge, on in-memory
//! nodes that load their children from a block store on demand.
//!
//! Every function keeps the tree canonical: a node on layer `L` holds
//! exactly the keys of height `L` in its key range, subtrees hold the keys
//! between two neighbouring entries, empty subtrees are absent, and a
//! subtree whose keys are all at least two layers lower is reached through
//! nodes without entries. So the shape depends only on the set of keys.

use atp_crypto::Cid;

use super::node::{Child, Entry, KeyBuf, Node};
use crate::blockstore::BlockStore;
use crate::Error;

/// Layer of the children of a node on `layer`. A layer-0 node never has
/// children (checked on load), so this is only reached for layers above 0.
fn below(layer: u32) -> u32 {
    layer.saturating_sub(1)
}

/// Makes sure `child` (on `layer`) is loaded and returns it.
pub(crate) fn loaded<'a, S: BlockStore + ?Sized>(
    child: &'a mut Child,
    store: &S,
    layer: u32,
) -> Result<&'a mut Node, Error> {
    if let Child::Stored(cid) = child {
        let (node, _) = Node::load(store, cid, Some(layer))?;
        *child = Child::Loaded(Box::new(node));
    }
    match child {
        Child::Loaded(node) => Ok(node),
        Child::Stored(cid) => Err(Error::MissingBlock(*cid)),
    }
}

/// Takes ownership of `child` (on `layer`) as a loaded node.
pub(crate) fn into_node<S: BlockStore + ?Sized>(
    child: Child,
    store: &S,
    layer: u32,
) -> Result<Box<Node>, Error> {
    match child {
        Child::Loaded(node) => Ok(node),
        Child::Stored(cid) => Ok(Box::new(Node::load(store, &cid, Some(layer))?.0)),
    }
}

/// A chain of nodes from `layer` down to `height` holding one entry.
pub(crate) fn chain(key: &str, value: Cid, height: u32, layer: u32) -> Node {
    let mut node = Node::new(
        None,
        vec![Entry {
            key: KeyBuf::new(key),
            value,
            right: None,
        }],
    );
    for _ in height..layer {
        node = Node::new(Some(Child::Loaded(Box::new(node))), Vec::new());
    }
    node
}

/// Wraps `child` in entry-less parents until it sits on `to` (from `from`).
pub(crate) fn lift(child: Option<Child>, from: u32, to: u32) -> Option<Child> {
    let mut child = child?;
    for _ in from..to {
        child = Child::Loaded(Box::new(Node::new(Some(child), Vec::new())));
    }
    Some(child)
}

/// Inserts or replaces `key` (of `height <= layer`) below `node` (on
/// `layer`). Returns the previous value.
pub(crate) fn insert<S: BlockStore + ?Sized>(
    node: &mut Node,
    layer: u32,
    key: &str,
    height: u32,
    value: Cid,
    store: &S,
) -> Result<Option<Cid>, Error> {
    match node.search(key) {
        Ok(i) => {
            let previous = node.entries[i].value;
            if previous != value {
                node.entries[i].value = value;
                node.touch();
            }
            Ok(Some(previous))
        }
        Err(i) if height == layer => {
            let (left, right) = match node.slot_mut(i).take() {
                Some(child) => split(child, key, below(layer), store)?,
                None => (None, None),
            };
            *node.slot_mut(i) = left;
            node.entries.insert(
                i,
                Entry {
                    key: KeyBuf::new(key),
                    value,
                    right,
                },
            );
            node.touch();
            Ok(None)
        }
        Err(i) => {
            let previous = match node.slot_mut(i) {
                Some(child) => {
                    let child = loaded(child, store, below(layer))?;
                    insert(child, below(layer), key, height, value, store)?
                }
                slot @ None => {
                    *slot = Some(Child::Loaded(Box::new(chain(
                        key,
                        value,
                        height,
                        below(layer),
                    ))));
                    None
                }
            };
            if previous != Some(value) {
                node.touch();
            }
            Ok(previous)
        }
    }
}

/// Splits the subtree `child` (on `layer`) into the keys below `key` and
/// the keys above it. Either side is `None` when empty.
pub(crate) fn split<S: BlockStore + ?Sized>(
    child: Child,
    key: &str,
    layer: u32,
    store: &S,
) -> Result<(Option<Child>, Option<Child>), Error> {
    let mut node = into_node(child, store, layer)?;
    let i = match node.search(key) {
        Ok(i) | Err(i) => i,
    };
    let (inner_left, inner_right) = match node.slot_mut(i).take() {
        Some(inner) => split(inner, key, below(layer), store)?,
        None => (None, None),
    };
    let right_entries = node.entries.split_off(i);
    *node.slot_mut(i) = inner_left;
    node.touch();
    let right = Node::new(inner_right, right_entries);
    let left = if node.is_empty() {
        None
    } else {
        Some(Child::Loaded(node))
    };
    let right = if right.is_empty() {
        None
    } else {
        Some(Child::Loaded(Box::new(right)))
    };
    Ok((left, right))
}

/// Joins two neighbouring subtrees on `layer`, every key of `a` below
/// every key of `b`.
pub(crate) fn merge<S: BlockStore + ?Sized>(
    a: Option<Child>,
    b: Option<Child>,
    layer: u32,
    store: &S,
) -> Result<Option<Child>, Error> {
    let (a, b) = match (a, b) {
        (None, other) | (other, None) => return Ok(other),
        (Some(a), Some(b)) => (a, b),
    };
    let mut a = into_node(a, store, layer)?;
    let mut b = into_node(b, store, layer)?;
    let last = a.entries.len();
    let a_last = a.slot_mut(last).take();
    let b_first = b.left.take();
    let middle = merge(a_last, b_first, below(layer), store)?;
    *a.slot_mut(last) = middle;
    a.entries.append(&mut b.entries);
    a.touch();
    Ok(Some(Child::Loaded(a)))
}

/// Removes `key` below `node` (on `layer`). Returns the removed value.
/// Subtrees left empty are dropped; the caller trims the root.
pub(crate) fn remove<S: BlockStore + ?Sized>(
    node: &mut Node,
    layer: u32,
    key: &str,
    store: &S,
) -> Result<Option<Cid>, Error> {
    match node.search(key) {
        Ok(i) => {
            let entry = node.entries.remove(i);
            let left = node.slot_mut(i).take();
            *node.slot_mut(i) = merge(left, entry.right, below(layer), store)?;
            node.touch();
            Ok(Some(entry.value))
        }
        Err(i) => {
            let Some(child) = node.slot_mut(i) else {
                return Ok(None);
            };
            let child_node = loaded(child, store, below(layer))?;
            let removed = remove(child_node, below(layer), key, store)?;
            if removed.is_some() {
                if child_node.is_empty() {
                    *node.slot_mut(i) = None;
                }
                node.touch();
            }
            Ok(removed)
        }
    }
}

/// Looks `key` up below `node`, reading unloaded subtrees from the store
/// without keeping them. `layer` is the node's layer if known.
pub(crate) fn get<S: BlockStore + ?Sized>(
    node: &Node,
    layer: Option<u32>,
    key: &str,
    store: &S,
) -> Result<Option<Cid>, Error> {
    let i = match node.search(key) {
        Ok(i) => return Ok(Some(node.entries[i].value)),
        Err(i) => i,
    };
    let child_layer = layer.map(below);
    match node.slot(i) {
        None => Ok(None),
        Some(Child::Loaded(child)) => get(child, child_layer, key, store),
        Some(Child::Stored(cid)) => {
            let (child, child_layer) = Node::load(store, cid, child_layer)?;
            get(&child, child_layer, key, store)
        }
    }
}
