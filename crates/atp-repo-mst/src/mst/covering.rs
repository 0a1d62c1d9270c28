//! Covering proofs read from the nodes a tree holds in memory.
//!
//! A `#commit` event carries, for every key it wrote, the nodes on the
//! path to the key and on the paths to its two neighbours in the new tree
//! (see [`crate::proof::covering_proof`]). Right after a commit, the tree
//! that was just changed holds most of those nodes loaded, with their CIDs
//! computed; walking them here avoids decoding the blocks again. Children
//! not loaded yet are loaded from the store (and kept).

use std::collections::BTreeSet;

use atp_crypto::Cid;

use super::node::{Child, Node};
use super::tree::loaded;
use super::MAX_LAYER;
use crate::blockstore::BlockStore;
use crate::Error;

/// Which of the three walks of a covering proof.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Down to the key, stopping where it is found.
    Key,
    /// Down the subtree left of the key (to its left neighbour).
    Left,
    /// Down the subtree right of the key (to its right neighbour).
    Right,
}

/// Adds to `out` the CIDs of the nodes of the covering proof of `key` in
/// the tree whose loaded root is `root`, on `layer`.
pub(crate) fn covering_nodes<S: BlockStore + ?Sized>(
    root: &mut Node,
    layer: u32,
    key: &str,
    store: &S,
    out: &mut BTreeSet<Cid>,
) -> Result<(), Error> {
    for walk in [Walk::Key, Walk::Left, Walk::Right] {
        walk_down(root, layer, key.as_bytes(), walk, store, out)?;
    }
    Ok(())
}

fn walk_down<S: BlockStore + ?Sized>(
    root: &mut Node,
    layer: u32,
    key: &[u8],
    walk: Walk,
    store: &S,
    out: &mut BTreeSet<Cid>,
) -> Result<(), Error> {
    let mut node = root;
    let mut layer = layer;
    for _ in 0..=MAX_LAYER + 1 {
        out.insert(node.compute_cid()?);
        let i = node.entries.partition_point(|e| e.key.as_bytes() < key);
        let found = node.entries.get(i).is_some_and(|e| e.key.as_bytes() == key);
        let slot = match (walk, found) {
            (Walk::Key, true) => return Ok(()),
            (Walk::Right, true) => i + 1,
            _ => i,
        };
        let child_layer = layer.saturating_sub(1);
        match node.slot_mut(slot) {
            None => return Ok(()),
            Some(child) => {
                if layer == 0 {
                    if let Child::Stored(cid) = child {
                        return Err(Error::InvalidMstNode {
                            cid: *cid,
                            reason: "subtree below layer 0".to_owned(),
                        });
                    }
                }
                node = loaded(child, store, child_layer)?;
                layer = child_layer;
            }
        }
    }
    Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()))
}
