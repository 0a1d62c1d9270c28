//! The links of a stored MST node, read straight from its DAG-CBOR
//! without building the node: what the `getRepo` walk needs to find the
//! next blocks ([`NodeLinks`]).
//!
//! The node is `{e: [{k, p, t, v}, ...], l}` where `v` links to a record,
//! `t` to the subtree after the entry (or is null) and `l` to the subtree
//! before the first entry (or is null). Links are CBOR tag 42 around a
//! byte string holding `0x00` then the CID's binary form; they are kept
//! as those CID bytes, which is how `repo_block` keys its rows. Fields
//! other than `e`, `l`, `t` and `v` are skipped; anything that is not
//! well-formed CBOR of that shape is an error, never a panic.

use std::ops::Range;

use crate::error::Error;

/// Nesting deeper than this in a skipped field is refused (a node nests
/// three levels: the node, `e`, an entry).
const MAX_SKIP_DEPTH: usize = 16;

/// The links of one node, in the order the walk uses them. Reused from
/// node to node, so reading a node allocates nothing once the buffers
/// have grown.
#[derive(Debug, Default)]
pub(crate) struct NodeLinks {
    /// The CID bytes of every link, one after the other.
    bytes: Vec<u8>,
    /// The records of the entries, in entry order.
    records: Vec<Range<usize>>,
    /// The subtrees: `l` first, then each entry's `t`, in entry order.
    subtrees: Vec<Range<usize>>,
}

impl NodeLinks {
    /// Reads the links of the node encoded in `node`, replacing the
    /// previous node's.
    pub(crate) fn read(&mut self, node: &[u8]) -> Result<(), Error> {
        self.bytes.clear();
        self.records.clear();
        self.subtrees.clear();
        let mut cbor = Cbor {
            bytes: node,
            pos: 0,
        };
        let fields = cbor.expect(MAP, "a map")?;
        let mut left = None;
        for _ in 0..fields {
            match cbor.text()? {
                b"e" => {
                    let entries = cbor.expect(ARRAY, "an array of entries")?;
                    for _ in 0..entries {
                        self.read_entry(&mut cbor)?;
                    }
                }
                b"l" => left = cbor.link_or_null()?,
                _ => cbor.skip(0)?,
            }
        }
        if cbor.pos != node.len() {
            return Err(malformed("bytes after the node"));
        }
        if let Some(left) = left {
            let range = self.keep(left);
            self.subtrees.insert(0, range);
        }
        Ok(())
    }

    fn read_entry(&mut self, cbor: &mut Cbor<'_>) -> Result<(), Error> {
        let fields = cbor.expect(MAP, "an entry map")?;
        let mut record = None;
        let mut subtree = None;
        for _ in 0..fields {
            match cbor.text()? {
                b"v" => record = Some(cbor.link()?),
                b"t" => subtree = cbor.link_or_null()?,
                _ => cbor.skip(0)?,
            }
        }
        let record = record.ok_or_else(|| malformed("an entry without `v`"))?;
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
    pub(crate) fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.records.iter().map(|range| &self.bytes[range.clone()])
    }

    /// The CID bytes of the subtrees, left to right.
    pub(crate) fn subtrees(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.subtrees.iter().map(|range| &self.bytes[range.clone()])
    }
}

fn malformed(what: &str) -> Error {
    Error::Corrupt(format!("stored MST node is malformed: {what}"))
}

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;

/// CBOR tag of a DAG-CBOR link.
const CID_TAG: u64 = 42;

/// A reader over definite-length CBOR.
struct Cbor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cbor<'a> {
    /// The next item's major type and argument (a length, a value or a
    /// tag number).
    fn head(&mut self) -> Result<(u8, u64), Error> {
        let first = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| malformed("truncated"))?;
        self.pos += 1;
        let major = first >> 5;
        let info = first & 0x1f;
        let argument = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let size = 1usize << (info - 24);
                let raw = self.take(size)?;
                raw.iter()
                    .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
            }
            _ => return Err(malformed("indefinite length or reserved head")),
        };
        Ok((major, argument))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| malformed("truncated"))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn length(argument: u64) -> Result<usize, Error> {
        usize::try_from(argument).map_err(|_| malformed("length out of range"))
    }

    /// The argument of the next item, which must be of type `major`.
    fn expect(&mut self, major: u8, what: &str) -> Result<u64, Error> {
        match self.head()? {
            (found, argument) if found == major => Ok(argument),
            _ => Err(malformed(&format!("expected {what}"))),
        }
    }

    /// A text string (a map key), as bytes.
    fn text(&mut self) -> Result<&'a [u8], Error> {
        let len = Self::length(self.expect(TEXT, "a text key")?)?;
        self.take(len)
    }

    /// A link: the CID bytes after the `0x00` prefix.
    fn link(&mut self) -> Result<&'a [u8], Error> {
        if self.expect(TAG, "a link")? != CID_TAG {
            return Err(malformed("a tag other than 42 where a link belongs"));
        }
        let len = Self::length(self.expect(BYTES, "the bytes of a link")?)?;
        match self.take(len)?.split_first() {
            Some((0, cid)) if !cid.is_empty() => Ok(cid),
            _ => Err(malformed("a link without the 0x00 prefix")),
        }
    }

    /// A link, or `None` for null.
    fn link_or_null(&mut self) -> Result<Option<&'a [u8]>, Error> {
        if self.bytes.get(self.pos) == Some(&0xf6) {
            self.pos += 1;
            return Ok(None);
        }
        self.link().map(Some)
    }

    /// Skips the next item, whatever it is.
    fn skip(&mut self, depth: usize) -> Result<(), Error> {
        if depth > MAX_SKIP_DEPTH {
            return Err(malformed("nested too deeply"));
        }
        let (major, argument) = self.head()?;
        match major {
            UNSIGNED | NEGATIVE | SIMPLE => Ok(()),
            BYTES | TEXT => self.take(Self::length(argument)?).map(|_| ()),
            ARRAY => (0..argument).try_for_each(|_| self.skip(depth + 1)),
            MAP => (0..argument).try_for_each(|_| {
                self.skip(depth + 1)?;
                self.skip(depth + 1)
            }),
            TAG => self.skip(depth + 1),
            _ => Err(malformed("unknown major type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atp_repo_mst::blockstore::MemoryBlockStore;
    use atp_repo_mst::mst::Mst;

    /// Every node of a tree with `count` keys: the links read here are
    /// those `decode_node` gives.
    fn check_tree(count: usize) -> usize {
        let mut mst = Mst::new(MemoryBlockStore::new());
        for i in 0..count {
            let key = format!("app.bsky.feed.post/3k{i:011}");
            let record = atp_crypto::cid_for_dag_cbor(key.as_bytes());
            mst.insert(&key, record).unwrap();
        }
        let (root, _) = mst.flush().unwrap();
        let store = mst.store();
        let mut pending = vec![root];
        let mut links = NodeLinks::default();
        let mut nodes = 0;
        while let Some(cid) = pending.pop() {
            let bytes = atp_repo_mst::blockstore::BlockStore::get_required(store, &cid).unwrap();
            let node = atp_repo_mst::mst::decode_node(&bytes).unwrap();
            links.read(&bytes).unwrap();
            let records: Vec<Vec<u8>> = node.entries.iter().map(|e| e.value.to_bytes()).collect();
            let subtrees: Vec<Vec<u8>> = node.children().map(|c| c.to_bytes()).collect();
            assert_eq!(
                links.records().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                records
            );
            assert_eq!(
                links.subtrees().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                subtrees
            );
            pending.extend(node.children());
            nodes += 1;
        }
        nodes
    }

    #[test]
    fn links_are_those_of_the_decoded_node() {
        assert_eq!(check_tree(0), 1);
        assert!(check_tree(3000) > 20);
    }

    #[test]
    fn malformed_nodes_are_errors() {
        let mut links = NodeLinks::default();
        let empty = [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
        links.read(&empty).unwrap();
        assert_eq!(links.records().count(), 0);
        assert_eq!(links.subtrees().count(), 0);
        for bad in [
            &[][..],
            &[0xa1][..],
            &[0x80][..],
            &[0xa1, 0x61, 0x6c, 0xd8, 0x2b, 0x41, 0x00][..],
            &[0xa1, 0x61, 0x6c, 0xd8, 0x2a, 0x41, 0x00][..],
            &[0xa1, 0x61, 0x65, 0x81, 0xa0][..],
            &[0xbf, 0xff][..],
            &[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6, 0x00][..],
            &[
                0xa1, 0x61, 0x78, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
        ] {
            assert!(links.read(bad).is_err(), "{bad:02x?}");
        }
        let deep: Vec<u8> = [0xa1, 0x61, 0x78]
            .into_iter()
            .chain(std::iter::repeat_n(0x81, 40))
            .chain([0x00])
            .collect();
        assert!(links.read(&deep).is_err());
    }
}
