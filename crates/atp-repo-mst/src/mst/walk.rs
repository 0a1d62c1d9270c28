//! Ordered iteration over the leaves of a tree, forwards or backwards,
//! from any position, loading unloaded subtrees from the store on the way
//! (without keeping them).

use std::ops::Bound;

use atp_crypto::Cid;

use super::node::{Child, Node};
use crate::blockstore::BlockStore;
use crate::Error;

/// A node being walked: part of the tree, or read from the store.
enum NodeRef<'a> {
    Borrowed(&'a Node),
    Owned(Box<Node>),
}

impl NodeRef<'_> {
    fn node(&self) -> &Node {
        match self {
            NodeRef::Borrowed(node) => node,
            NodeRef::Owned(node) => node,
        }
    }
}

/// One level of the walk. Positions of a node with `n` entries are
/// `0..=2n`: even `2i` is child slot `i`, odd `2i + 1` is entry `i`.
/// Forwards, `pos` is the next position; backwards, the number of
/// positions still to visit (the next is `pos - 1`).
struct Frame<'a> {
    node: NodeRef<'a>,
    layer: Option<u32>,
    pos: usize,
}

/// Iterator over `(key, value)` pairs of an [`Mst`](super::Mst) in key
/// order (or reverse key order), yielding `Err` once and stopping if a
/// block is missing or malformed.
pub struct Leaves<'a, S: ?Sized> {
    store: &'a S,
    stack: Vec<Frame<'a>>,
    reverse: bool,
    /// The bound where iteration stops: the upper bound forwards, the
    /// lower bound backwards.
    stop: Bound<String>,
    pending_error: Option<Error>,
}

impl<'a, S: BlockStore + ?Sized> Leaves<'a, S> {
    /// Starts a walk of the tree rooted at `root` (on `layer`, if known)
    /// over the keys within `lower..upper`.
    pub(crate) fn new(
        store: &'a S,
        root: &'a Child,
        layer: Option<u32>,
        lower: Bound<&str>,
        upper: Bound<&str>,
        reverse: bool,
    ) -> Self {
        let stop = if reverse { lower } else { upper };
        let mut leaves = Leaves {
            store,
            stack: Vec::new(),
            reverse,
            stop: match stop {
                Bound::Included(k) => Bound::Included(k.to_owned()),
                Bound::Excluded(k) => Bound::Excluded(k.to_owned()),
                Bound::Unbounded => Bound::Unbounded,
            },
            pending_error: None,
        };
        let start = if reverse { upper } else { lower };
        if let Err(e) = leaves.seek(root, layer, start) {
            leaves.stack.clear();
            leaves.pending_error = Some(e);
        }
        leaves
    }

    fn open(
        &self,
        child: &'a Child,
        layer: Option<u32>,
    ) -> Result<(NodeRef<'a>, Option<u32>), Error> {
        match child {
            Child::Loaded(node) => Ok((NodeRef::Borrowed(node), layer)),
            Child::Stored(cid) => {
                let (node, layer) = Node::load(self.store, cid, layer)?;
                Ok((NodeRef::Owned(Box::new(node)), layer))
            }
        }
    }

    /// The child in slot `slot` of the top frame, opened.
    fn open_slot(&self, slot: usize) -> Result<Option<(NodeRef<'a>, Option<u32>)>, Error> {
        let Some(frame) = self.stack.last() else {
            return Ok(None);
        };
        let layer = frame.layer.map(|l| l.saturating_sub(1));
        match &frame.node {
            NodeRef::Borrowed(node) => {
                let node: &'a Node = node;
                match node.slot(slot) {
                    Some(child) => self.open(child, layer).map(Some),
                    None => Ok(None),
                }
            }
            NodeRef::Owned(node) => match node.slot(slot) {
                None => Ok(None),
                Some(Child::Stored(cid)) => {
                    let (node, layer) = Node::load(self.store, cid, layer)?;
                    Ok(Some((NodeRef::Owned(Box::new(node)), layer)))
                }
                Some(Child::Loaded(node)) => Ok(Some((NodeRef::Owned(node.clone()), layer))),
            },
        }
    }

    /// Pushes the path to the first key at or after `start` (forwards) or
    /// the last key at or before it (backwards).
    fn seek(
        &mut self,
        root: &'a Child,
        layer: Option<u32>,
        start: Bound<&str>,
    ) -> Result<(), Error> {
        let (mut node, mut layer) = self.open(root, layer)?;
        loop {
            let current = node.node();
            let slot = match (start, self.reverse) {
                (Bound::Unbounded, false) => 0,
                (Bound::Unbounded, true) => current.entries.len(),
                (Bound::Included(k), false) | (Bound::Excluded(k), true) => current
                    .entries
                    .partition_point(|e| e.key.as_bytes() < k.as_bytes()),
                (Bound::Excluded(k), false) | (Bound::Included(k), true) => current
                    .entries
                    .partition_point(|e| e.key.as_bytes() <= k.as_bytes()),
            };
            // Forwards the next position after the slot is entry `slot`;
            // backwards the positions left are those before the slot.
            let pos = if self.reverse { 2 * slot } else { 2 * slot + 1 };
            self.stack.push(Frame { node, layer, pos });
            match self.open_slot(slot)? {
                Some((child, child_layer)) => {
                    node = child;
                    layer = child_layer;
                }
                None => return Ok(()),
            }
        }
    }

    fn past_stop(&self, key: &[u8]) -> bool {
        match (&self.stop, self.reverse) {
            (Bound::Unbounded, _) => false,
            (Bound::Included(k), false) => key > k.as_bytes(),
            (Bound::Excluded(k), false) => key >= k.as_bytes(),
            (Bound::Included(k), true) => key < k.as_bytes(),
            (Bound::Excluded(k), true) => key <= k.as_bytes(),
        }
    }

    fn step(&mut self) -> Result<Option<(String, Cid)>, Error> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            let positions = 2 * frame.node.node().entries.len() + 1;
            let pos = if self.reverse {
                if frame.pos == 0 {
                    self.stack.pop();
                    continue;
                }
                frame.pos -= 1;
                frame.pos
            } else {
                if frame.pos >= positions {
                    self.stack.pop();
                    continue;
                }
                frame.pos += 1;
                frame.pos - 1
            };
            if pos % 2 == 1 {
                let Some(frame) = self.stack.last() else {
                    return Ok(None);
                };
                let entry = &frame.node.node().entries[pos / 2];
                if self.past_stop(entry.key.as_bytes()) {
                    self.stack.clear();
                    return Ok(None);
                }
                return Ok(Some((entry.key.to_text(), entry.value)));
            }
            if let Some((node, layer)) = self.open_slot(pos / 2)? {
                let pos = if self.reverse {
                    2 * node.node().entries.len() + 1
                } else {
                    0
                };
                self.stack.push(Frame { node, layer, pos });
            }
        }
    }
}

impl<S: BlockStore + ?Sized> Iterator for Leaves<'_, S> {
    type Item = Result<(String, Cid), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_error.take() {
            return Some(Err(e));
        }
        match self.step() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.stack.clear();
                Some(Err(e))
            }
        }
    }
}
