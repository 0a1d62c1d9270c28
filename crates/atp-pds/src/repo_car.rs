//! The CAR of `com.atproto.sync.getRepo`, written from an account's
//! SQLite blocks.
//!
//! # Order
//!
//! Without `since`, the CAR holds the head commit, then the current tree
//! depth-first: each MST node, then the records of its entries, then its
//! subtrees left to right. With `since`, it holds every stored block
//! tagged with a rev after it, newest rev first and by the CID's text
//! form descending within a rev, as the reference orders them.
//!
//! # Lookups
//!
//! Looking blocks up by CID is most of the work. `repo_block` is keyed by
//! the CID's binary form (36 bytes for a dag-cbor sha-256 CIDv1) in its
//! unique index, and the rows stay in the table in the order they were
//! written. A lookup is two B-tree searches (the index, then the row), but
//! the records of an MST node were mostly written by the same commits, so
//! consecutive lookups land on the same table pages. A `WITHOUT ROWID`
//! table keyed by the CID (one search per lookup) was measured too and
//! took about 60% more CPU per download: its rows are ordered by CID,
//! which scatters one node's records over the whole file, and most
//! lookups then missed the page cache. Each walk holds one prepared
//! statement for the lookups and writes each block straight from
//! SQLite's row. The CIDs stay in their binary form throughout (the key
//! of `repo_block` and the form the CAR holds), and each MST node's links
//! are read from its bytes without building the node, so the walk
//! allocates nothing per block once its buffers have grown.
//!
//! # Memory
//!
//! Memory does not grow with the repository: the walk's stack holds the
//! pending siblings along one path from the top, so it grows with the
//! tree's depth only. The connection's page cache is raised to
//! [`WALK_CACHE_KIB`] for the walk and put back after, which frees the
//! extra pages: each connection has a cache of its own (see the "Memory"
//! section of [`crate::db`]), so raising it is what lets the walk keep the
//! pages it reads.
//!
//! # Failures
//!
//! A missing block, a commit or MST node that does not decode, a failed
//! read or a failed write ends the export with an error.

use std::io::Write;

use atp_crypto::Cid;
use atp_repo_mst::car::CarWriter;
use atp_repo_mst::mst::NodeLinks;
use rusqlite::{OptionalExtension, Transaction};

use crate::block_store::{blob_column, cid_from_key, CidKey};
use crate::db::Database;
use crate::error::Error;

/// Page cache, in KiB, of a connection while it walks a tree (SQLite's
/// default is 2 MiB; an account store's connections keep 256 KiB). The
/// walk looks blocks up by CID in random order; with a small cache nearly
/// every lookup reads its B-tree pages again from the file. 16 MiB holds
/// the interior pages of the block table of a repository of a few hundred
/// thousand blocks; larger ones still work, with more reads.
pub const WALK_CACHE_KIB: i64 = 16 * 1024;

/// Writes the repository in `db` to `out` as a CAR with the head commit as
/// root: the blocks tagged with a rev after `since`, or the current tree.
/// `None` (and nothing written) if the store has no head.
pub(crate) fn write_repo_car<W: Write>(
    db: &Database,
    since: Option<&str>,
    out: W,
) -> Result<Option<W>, Error> {
    db.read(|tx| {
        let Some(head) = read_head(tx)? else {
            return Ok(None);
        };
        let root = atp_crypto::parse_cid(&head)?;
        let mut writer = CarWriter::new(out, &[root])?;
        if let Some(since) = since {
            write_blocks_since(tx, since, &mut writer)?;
            return Ok(Some(writer.finish()?));
        }
        let mut reader = BlockReader::new(tx)?;
        let data = reader.with_block(CidKey::new(&root).as_bytes(), |bytes| {
            let commit = atp_repo_mst::commit::Commit::from_legacy_block(bytes)?;
            writer.write_block(&root, bytes)?;
            Ok(commit.data)
        })?;
        // The header and the commit went through the CAR writer; the tree's
        // sections are written by the walk, from the CIDs' bytes as stored.
        let mut out = writer.finish()?;
        with_walk_cache(tx, || {
            write_subtree(&mut reader, CidKey::new(&data).as_bytes(), &mut out)
        })?;
        out.flush()?;
        Ok(Some(out))
    })
}

/// The head commit's CID as stored, in `tx`'s snapshot.
fn read_head(tx: &Transaction<'_>) -> Result<Option<String>, Error> {
    Ok(tx
        .query_row("SELECT cid FROM repo_root LIMIT 1", [], |row| row.get(0))
        .optional()?)
}

/// The error for a block the walk needs and the store lacks, naming its
/// CID (`key` is the CID's binary form).
fn missing(key: &[u8]) -> Error {
    match cid_from_key(key) {
        Ok(cid) => Error::Corrupt(format!("repository block {cid} is missing")),
        Err(_) => Error::Corrupt(format!(
            "repository block with CID bytes {key:02x?} is missing"
        )),
    }
}

/// Looks blocks up by CID with one prepared statement for a whole walk,
/// without allocating per block.
struct BlockReader<'conn> {
    stmt: rusqlite::CachedStatement<'conn>,
}

impl<'conn> BlockReader<'conn> {
    fn new(tx: &'conn Transaction<'_>) -> Result<Self, Error> {
        Ok(BlockReader {
            stmt: tx.prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?,
        })
    }

    /// Runs `use_block` on the stored bytes of the block whose CID's
    /// binary form is `key` (a missing block is an error).
    fn with_block<T>(
        &mut self,
        key: &[u8],
        use_block: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut rows = self.stmt.query([key])?;
        let row = rows.next()?.ok_or_else(|| missing(key))?;
        use_block(blob_column(row, 0)?)
    }
}

/// Runs `walk` with the connection's page cache at [`WALK_CACHE_KIB`],
/// then puts the previous size back (which frees the extra pages).
fn with_walk_cache<T>(
    tx: &Transaction<'_>,
    walk: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let previous: i64 = tx.query_row("PRAGMA cache_size", [], |row| row.get(0))?;
    tx.execute_batch(&format!("PRAGMA cache_size = -{WALK_CACHE_KIB}"))?;
    let outcome = walk();
    let restored = tx.execute_batch(&format!("PRAGMA cache_size = {previous}"));
    let value = outcome?;
    restored?;
    Ok(value)
}

/// Writes the subtree under the node whose CID's binary form is `top`,
/// depth-first, each node followed by the records of its entries, as CAR
/// sections.
///
/// The stack holds the CIDs of the subtrees still to write: at most the
/// pending siblings along one path from `top`, so memory grows with the
/// tree's depth, not its size. The CIDs stay in their binary form, the
/// form `repo_block` is keyed by and the CAR holds, and each node's links
/// are read from its bytes without decoding the node
/// ([`NodeLinks`]).
fn write_subtree<W: Write>(
    reader: &mut BlockReader<'_>,
    top: &[u8],
    out: &mut W,
) -> Result<(), Error> {
    let mut section = Vec::with_capacity(16 + top.len());
    let mut links = NodeLinks::default();
    let mut current = Vec::with_capacity(top.len());
    // The pending CIDs' bytes, one after the other, and where each starts:
    // the last one pushed is the next one walked.
    let mut stacked: Vec<u8> = top.to_vec();
    let mut starts: Vec<usize> = vec![0];
    while let Some(start) = starts.pop() {
        current.clear();
        current.extend_from_slice(&stacked[start..]);
        stacked.truncate(start);
        reader.with_block(&current, |bytes| {
            links
                .read(bytes)
                .map_err(|e| Error::Corrupt(format!("stored MST node is malformed: {e}")))?;
            write_section(out, &mut section, &current, bytes)
        })?;
        for record in links.records() {
            reader.with_block(record, |bytes| {
                write_section(out, &mut section, record, bytes)
            })?;
        }
        for subtree in links.subtrees().rev() {
            starts.push(stacked.len());
            stacked.extend_from_slice(subtree);
        }
    }
    Ok(())
}

/// Writes one CAR section (length, CID, block) to `out`; `section` is a
/// reused buffer.
fn write_section<W: Write>(
    out: &mut W,
    section: &mut Vec<u8>,
    cid: &[u8],
    block: &[u8],
) -> Result<(), Error> {
    section.clear();
    atp_repo_mst::car::write_varint(section, (cid.len() + block.len()) as u64);
    section.extend_from_slice(cid);
    out.write_all(section)?;
    out.write_all(block)?;
    Ok(())
}

/// Writes every block tagged with a rev after `since`, newest rev first
/// and, within a rev, by the CID's text form descending, as the
/// reference orders them. SQLite streams the rows in the order of the
/// `repo_rev` index (binary CIDs within a rev); the few rows of one rev
/// are gathered and sorted by text before they are written.
fn write_blocks_since<W: Write>(
    tx: &Transaction<'_>,
    since: &str,
    writer: &mut CarWriter<W>,
) -> Result<(), Error> {
    let mut stmt = tx.prepare(
        "SELECT repo_rev, cid, content FROM repo_block
         WHERE repo_rev IS NOT NULL AND repo_rev > ?1 ORDER BY repo_rev DESC, cid DESC",
    )?;
    let mut rows = stmt.query([since])?;
    let mut rev = String::new();
    let mut same_rev: Vec<(String, Cid, Vec<u8>)> = Vec::new();
    while let Some(row) = rows.next()? {
        let row_rev: String = row.get(0)?;
        if row_rev != rev {
            write_rev_blocks(&mut same_rev, writer)?;
            rev = row_rev;
        }
        let cid = cid_from_key(blob_column(row, 1)?)?;
        same_rev.push((cid.to_string(), cid, blob_column(row, 2)?.to_vec()));
    }
    write_rev_blocks(&mut same_rev, writer)
}

/// Writes the blocks of one rev by their CID's text form descending and
/// empties `blocks` (text form, CID, bytes).
fn write_rev_blocks<W: Write>(
    blocks: &mut Vec<(String, Cid, Vec<u8>)>,
    writer: &mut CarWriter<W>,
) -> Result<(), Error> {
    blocks.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    for (_, cid, bytes) in blocks.drain(..) {
        writer.write_block(&cid, &bytes)?;
    }
    Ok(())
}
