//! Repository blocks in an account's SQLite file: [`SqliteBlockStore`],
//! and [`StagedBlockStore`], which buffers a commit's new blocks in memory
//! until they are written together with the new root.

use std::sync::Arc;

use atp_crypto::Cid;
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::car::BlockMap;
use rusqlite::{OptionalExtension, Transaction};

use crate::db::Database;
use crate::error::Error;

/// Most bound parameters in one statement: SQLite builds before 3.32 cap
/// them at 999.
pub const MAX_SQL_PARAMS: usize = 999;

/// Parameters per row of `repo_block`.
const BLOCK_COLUMNS: usize = 4;

fn store_error(err: Error) -> atp_repo_mst::Error {
    atp_repo_mst::Error::BlockStore(err.to_string())
}

/// Inserts `blocks` (tagged with `rev`) inside `tx`, many rows per
/// statement but never more than [`MAX_SQL_PARAMS`] parameters. Existing
/// blocks are kept.
pub(crate) fn insert_blocks(
    tx: &Transaction<'_>,
    blocks: &BlockMap,
    rev: Option<&str>,
) -> Result<(), Error> {
    let entries: Vec<(String, &Vec<u8>)> = blocks
        .iter()
        .map(|(cid, bytes)| (cid.to_string(), bytes))
        .collect();
    let rows_per_statement = MAX_SQL_PARAMS / BLOCK_COLUMNS;
    for chunk in entries.chunks(rows_per_statement) {
        let placeholders = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT OR IGNORE INTO repo_block (cid, repo_rev, size, content) VALUES {placeholders}"
        );
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * BLOCK_COLUMNS);
        let sizes: Vec<i64> = chunk.iter().map(|(_, bytes)| bytes.len() as i64).collect();
        for ((cid, bytes), size) in chunk.iter().zip(&sizes) {
            params.push(cid);
            params.push(&rev);
            params.push(size);
            params.push(*bytes);
        }
        tx.prepare_cached(&sql)?.execute(params.as_slice())?;
    }
    Ok(())
}

pub(crate) fn get_block(tx: &Transaction<'_>, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
    Ok(tx
        .prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?
        .query_row([cid.to_string()], |row| row.get(0))
        .optional()?)
}

fn required_block(tx: &Transaction<'_>, cid: &Cid) -> Result<Vec<u8>, Error> {
    get_block(tx, cid)?.ok_or_else(|| Error::Corrupt(format!("repository block {cid} is missing")))
}

/// Most CIDs looked up by one `WHERE cid IN (...)` statement.
const MAX_CIDS_PER_LOOKUP: usize = 64;

/// The blocks of `cids`, in the same order, read with a few `IN (...)`
/// statements rather than one statement per block. The number of
/// placeholders is rounded up to a power of two (the list padded with its
/// first CID) so that a handful of cached statements serve every size.
fn required_blocks(tx: &Transaction<'_>, cids: &[Cid]) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::with_capacity(cids.len());
    for chunk in cids.chunks(MAX_CIDS_PER_LOOKUP) {
        let keys: Vec<String> = chunk.iter().map(Cid::to_string).collect();
        let slots = keys.len().next_power_of_two();
        let placeholders = vec!["?"; slots].join(", ");
        let sql = format!("SELECT cid, content FROM repo_block WHERE cid IN ({placeholders})");
        let mut stmt = tx.prepare_cached(&sql)?;
        let params = (0..slots).map(|slot| &keys[if slot < keys.len() { slot } else { 0 }]);
        let mut found: Vec<(String, Vec<u8>)> = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (index, (cid, key)) in chunk.iter().zip(&keys).enumerate() {
            let position = found
                .iter()
                .position(|(stored, _)| stored == key)
                .ok_or_else(|| Error::Corrupt(format!("repository block {cid} is missing")))?;
            // A CID asked for again later in the chunk keeps its row.
            if keys[index + 1..].contains(key) {
                out.push(found[position].1.clone());
            } else {
                out.push(found.swap_remove(position).1);
            }
        }
    }
    Ok(out)
}

/// Page cache, in KiB, of the connection while it walks a repository for
/// `getRepo` (SQLite's default is 2 MiB). The walk looks blocks up by CID
/// in random order; with the default cache nearly every lookup reads its
/// index page again from the file. 16 MiB holds the CID index of a
/// repository of about 150,000 blocks; larger ones still work, with more
/// reads. The cache goes back to its previous size after the walk, so
/// memory stays bounded whatever the repository's size.
const WALK_CACHE_KIB: i64 = 16 * 1024;

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

/// Writes the commit `root`, then its tree depth-first, each node followed
/// by the records of its entries.
///
/// Each node's records and child nodes are read together (one or a few
/// statements per node); the children wait on the walk's stack with their
/// bytes. The stack holds at most the pending siblings along one path from
/// the root, so memory grows with the tree's depth, not its size.
fn write_current_tree<W: std::io::Write>(
    tx: &Transaction<'_>,
    root: &Cid,
    writer: &mut atp_repo_mst::car::CarWriter<W>,
) -> Result<(), Error> {
    let commit_bytes = required_block(tx, root)?;
    let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit_bytes)?;
    writer.write_block(root, &commit_bytes)?;
    let data_bytes = required_block(tx, &commit.data)?;
    let mut pending = vec![(commit.data, data_bytes)];
    while let Some((cid, bytes)) = pending.pop() {
        let node = atp_repo_mst::mst::decode_node(&bytes)?;
        writer.write_block(&cid, &bytes)?;
        let mut wanted: Vec<Cid> = node.entries.iter().map(|entry| entry.value).collect();
        let records = wanted.len();
        wanted.extend(node.children());
        let mut blocks = required_blocks(tx, &wanted)?;
        let child_blocks = blocks.split_off(records);
        for (entry, record) in node.entries.iter().zip(&blocks) {
            writer.write_block(&entry.value, record)?;
        }
        let children = wanted[records..].iter().copied().zip(child_blocks);
        pending.extend(children.rev());
    }
    Ok(())
}

/// Writes every block tagged with a rev after `since`, streamed from
/// SQLite.
fn write_blocks_since<W: std::io::Write>(
    tx: &Transaction<'_>,
    since: &str,
    writer: &mut atp_repo_mst::car::CarWriter<W>,
) -> Result<(), Error> {
    let mut stmt = tx.prepare(
        "SELECT cid, content FROM repo_block
         WHERE repo_rev IS NOT NULL AND repo_rev > ?1 ORDER BY cid",
    )?;
    let mut rows = stmt.query([since])?;
    while let Some(row) = rows.next()? {
        let cid: String = row.get(0)?;
        let cid = atp_crypto::parse_cid(&cid)?;
        let bytes = row
            .get_ref(1)?
            .as_blob()
            .map_err(|err| Error::Corrupt(format!("block {cid}: {err}")))?;
        writer.write_block(&cid, bytes)?;
    }
    Ok(())
}

/// A [`BlockStore`] on an account's SQLite file. Each call is its own
/// transaction; [`BlockStore::put_many`] writes all blocks in one.
#[derive(Clone, Debug)]
pub struct SqliteBlockStore {
    db: Arc<Database>,
}

impl SqliteBlockStore {
    /// A block store on `db` (an account store's database).
    pub fn new(db: Arc<Database>) -> Self {
        SqliteBlockStore { db }
    }

    /// Number of blocks stored.
    pub fn count(&self) -> Result<u64, Error> {
        self.db
            .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM repo_block", [], |row| row.get(0))?))
    }

    /// Every stored block, by CID.
    pub fn all_blocks(&self) -> Result<BlockMap, Error> {
        self.db.read(|tx| {
            let mut stmt = tx.prepare("SELECT cid, content FROM repo_block")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(cid, bytes)| Ok((atp_crypto::parse_cid(&cid)?, bytes)))
                .collect()
        })
    }
}

impl SqliteBlockStore {
    /// Writes the repository to `out` as a CAR, in one read snapshot, with
    /// the head commit as root. Without `since`: the commit, then the
    /// current tree depth-first with each node's records after it (blocks
    /// of earlier commits are left out). With `since`: every stored block
    /// tagged with a rev after it (the reference's `getRepo` diff). Blocks
    /// are read one at a time and the walk keeps only the pending subtree
    /// CIDs, so memory does not grow with the repository. `None` (and
    /// nothing written) if the store has no head.
    pub fn write_repo_car<W: std::io::Write>(
        &self,
        since: Option<&str>,
        out: W,
    ) -> Result<Option<W>, Error> {
        self.db.read(|tx| {
            let root: Option<String> = tx
                .query_row("SELECT cid FROM repo_root LIMIT 1", [], |row| row.get(0))
                .optional()?;
            let Some(root) = root else { return Ok(None) };
            let root = atp_crypto::parse_cid(&root)?;
            let mut writer = atp_repo_mst::car::CarWriter::new(out, &[root])?;
            match since {
                Some(since) => write_blocks_since(tx, since, &mut writer)?,
                None => with_walk_cache(tx, || write_current_tree(tx, &root, &mut writer))?,
            }
            Ok(Some(writer.finish()?))
        })
    }

    /// The stored blocks among `cids` and the CIDs not stored, in one read
    /// snapshot.
    pub fn get_many(&self, cids: &[Cid]) -> Result<(BlockMap, Vec<Cid>), Error> {
        self.db.read(|tx| {
            let mut found = BlockMap::new();
            let mut missing = Vec::new();
            for cid in cids {
                match get_block(tx, cid)? {
                    Some(bytes) => {
                        found.insert(*cid, bytes);
                    }
                    None => missing.push(*cid),
                }
            }
            Ok((found, missing))
        })
    }
}

impl BlockStore for SqliteBlockStore {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        self.db.read(|tx| get_block(tx, cid)).map_err(store_error)
    }

    fn has(&self, cid: &Cid) -> Result<bool, atp_repo_mst::Error> {
        self.db
            .read(|tx| {
                Ok(tx
                    .prepare_cached("SELECT EXISTS(SELECT 1 FROM repo_block WHERE cid = ?1)")?
                    .query_row([cid.to_string()], |row| row.get(0))?)
            })
            .map_err(store_error)
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), atp_repo_mst::Error> {
        let blocks = BlockMap::from([(*cid, bytes.to_vec())]);
        self.put_many(&blocks)
    }

    fn put_many(&self, blocks: &BlockMap) -> Result<(), atp_repo_mst::Error> {
        self.db
            .write(|tx| insert_blocks(tx, blocks, None))
            .map_err(store_error)
    }
}

/// Reads from an account's SQLite blocks, writes to memory: a
/// [`Repo`](atp_repo_mst::repo::Repo) on this store prepares a commit
/// without touching the file; the commit's blocks then go to disk with the
/// new root in one transaction
/// ([`ActorTransaction::apply_commit`](crate::actor_store::ActorTransaction::apply_commit)).
#[derive(Debug)]
pub struct StagedBlockStore {
    base: SqliteBlockStore,
    staged: MemoryBlockStore,
}

impl StagedBlockStore {
    /// A staging layer over `base`.
    pub fn new(base: SqliteBlockStore) -> Self {
        StagedBlockStore {
            base,
            staged: MemoryBlockStore::new(),
        }
    }

    /// The blocks written so far (not yet on disk).
    pub fn staged(&self) -> &MemoryBlockStore {
        &self.staged
    }
}

impl BlockStore for StagedBlockStore {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        match self.staged.get(cid)? {
            Some(bytes) => Ok(Some(bytes)),
            None => self.base.get(cid),
        }
    }

    fn has(&self, cid: &Cid) -> Result<bool, atp_repo_mst::Error> {
        Ok(self.staged.has(cid)? || self.base.has(cid)?)
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), atp_repo_mst::Error> {
        self.staged.put(cid, bytes)
    }

    fn put_many(&self, blocks: &BlockMap) -> Result<(), atp_repo_mst::Error> {
        self.staged.put_many(blocks)
    }
}
