//! The links of a stored MST node, read straight from its DAG-CBOR
//! without building the node ([`NodeLinks`]): what a walk over stored
//! blocks (a repository export) needs to find the next blocks.

use std::ops::Range;

use atp_crypto::dagcbor::Reader;

use crate::Error;

/// The links of one MST node `{e: [{k, p, t, v}, ...], l}`, as CID bytes
/// (the binary form, without the `0x00` prefix a DAG-CBOR link carries),
/// in the order a pre-order walk uses them: `v` of each entry is a record,
/// `l` and each entry's `t` are the subtrees.
///
/// Reused from node to node, so reading a node allocates nothing once its
/// buffers have grown. The CBOR is checked as strictly as by
/// [`decode_node`](crate::mst::decode_node), but the node's rules (key
/// order, layers) are not: the walk reads nodes the repository already
/// verified.
///
/// ```
/// use atp_crypto::cid_for_dag_cbor;
/// use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
/// use atp_repo_mst::mst::{Mst, NodeLinks};
///
/// let record = cid_for_dag_cbor(&[0xa0]);
/// let mut mst = Mst::new(MemoryBlockStore::new());
/// mst.insert("app.bsky.feed.post/3jzfcijpj2z2a", record)?;
/// let (root, _) = mst.flush()?;
/// let node = mst.store().get_required(&root)?;
///
/// let mut links = NodeLinks::default();
/// links.read(&node)?;
/// assert_eq!(links.records().collect::<Vec<_>>(), [record.to_bytes().as_slice()]);
/// assert_eq!(links.subtrees().count(), 0);
/// # Ok::<(), atp_repo_mst::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct NodeLinks {
    /// The CID bytes of every link, one after the other.
    bytes: Vec<u8>,
    /// The records of the entries, in entry order.
    records: Vec<Range<usize>>,
    /// The subtrees: `l` first, then each entry's `t`, in entry order.
    subtrees: Vec<Range<usize>>,
}

impl NodeLinks {
    /// Reads the links of the node encoded in `node`, replacing the
    /// previous node's. Fields other than `e`, `l`, `t` and `v` are
    /// skipped; bytes that are not one DAG-CBOR value of that shape are an
    /// error.
    pub fn read(&mut self, node: &[u8]) -> Result<(), Error> {
        self.bytes.clear();
        self.records.clear();
        self.subtrees.clear();
        let mut cbor = Reader::new(node);
        let mut left = None;
        for _ in 0..cbor.map_len()? {
            match cbor.text()? {
                "e" => {
                    for _ in 0..cbor.array_len()? {
                        self.read_entry(&mut cbor)?;
                    }
                }
                "l" => left = cbor.link_or_null()?,
                _ => cbor.skip()?,
            }
        }
        cbor.finish()?;
        if let Some(left) = left {
            let range = self.keep(left);
            self.subtrees.insert(0, range);
        }
        Ok(())
    }

    fn read_entry(&mut self, cbor: &mut Reader<'_>) -> Result<(), Error> {
        let mut record = None;
        let mut subtree = None;
        for _ in 0..cbor.map_len()? {
            match cbor.text()? {
                "v" => record = Some(cbor.link()?),
                "t" => subtree = cbor.link_or_null()?,
                _ => cbor.skip()?,
            }
        }
        let record =
            record.ok_or_else(|| Error::InvalidMst("a node entry without `v`".to_owned()))?;
        let range = self.keep(record);
        self.records.push(range);
        if let Some(subtree) = subtree {
            let range = self.keep(subtree);
            self.subtrees.push(range);
        }
        Ok(())
    }

    fn keep(&mut self, cid: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(cid);
        start..self.bytes.len()
    }

    /// The CID bytes of the entries' records, in entry order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.records.iter().map(|range| &self.bytes[range.clone()])
    }

    /// The CID bytes of the subtrees, left to right.
    pub fn subtrees(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.subtrees.iter().map(|range| &self.bytes[range.clone()])
    }
}
