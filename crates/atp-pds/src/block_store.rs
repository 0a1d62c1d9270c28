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

/// Longest binary CID kept on the stack as a key; longer ones (none that
/// the protocol uses: a dag-cbor sha-256 CIDv1 is 36 bytes) are
/// allocated.
const INLINE_CID_BYTES: usize = 96;

fn store_error(err: Error) -> atp_repo_mst::Error {
    atp_repo_mst::Error::BlockStore(err.to_string())
}

/// The binary form of a CID, as `repo_block.cid` stores it, built without
/// allocating for the CIDs the protocol uses.
pub(crate) enum CidKey {
    /// Short enough for the stack.
    Inline([u8; INLINE_CID_BYTES], usize),
    /// Longer.
    Heap(Vec<u8>),
}

impl CidKey {
    /// The key of `cid`.
    pub(crate) fn new(cid: &Cid) -> CidKey {
        let len = cid.encoded_len();
        if len <= INLINE_CID_BYTES {
            let mut bytes = [0u8; INLINE_CID_BYTES];
            if cid.write_bytes(&mut bytes[..]).is_ok() {
                return CidKey::Inline(bytes, len);
            }
        }
        CidKey::Heap(cid.to_bytes())
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            CidKey::Inline(bytes, len) => &bytes[..*len],
            CidKey::Heap(bytes) => bytes,
        }
    }
}

/// Reads a CID as `repo_block.cid` stores it.
pub(crate) fn cid_from_key(key: &[u8]) -> Result<Cid, Error> {
    atp_crypto::cids::cid_from_bytes(key)
        .map_err(|err| Error::Corrupt(format!("stored block CID {key:02x?}: {err}")))
}

/// Column `index` of `row` as bytes, without copying.
pub(crate) fn blob_column<'row>(
    row: &'row rusqlite::Row<'_>,
    index: usize,
) -> Result<&'row [u8], Error> {
    row.get_ref(index)?
        .as_blob()
        .map_err(|err| Error::Corrupt(format!("repo_block column {index}: {err}")))
}

/// Inserts `blocks` (tagged with `rev`) inside `tx`, many rows per
/// statement but never more than [`MAX_SQL_PARAMS`] parameters. Existing
/// blocks are kept.
pub(crate) fn insert_blocks(
    tx: &Transaction<'_>,
    blocks: &BlockMap,
    rev: Option<&str>,
) -> Result<(), Error> {
    let entries: Vec<(CidKey, &Vec<u8>, i64)> = blocks
        .iter()
        .map(|(cid, bytes)| (CidKey::new(cid), bytes, bytes.len() as i64))
        .collect();
    let rows_per_statement = MAX_SQL_PARAMS / BLOCK_COLUMNS;
    for chunk in entries.chunks(rows_per_statement) {
        let placeholders = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT OR IGNORE INTO repo_block (cid, repo_rev, size, content) VALUES {placeholders}"
        );
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * BLOCK_COLUMNS);
        let keys: Vec<&[u8]> = chunk.iter().map(|(key, _, _)| key.as_bytes()).collect();
        for (key, (_, bytes, size)) in keys.iter().zip(chunk) {
            params.push(key);
            params.push(&rev);
            params.push(size);
            params.push(*bytes);
        }
        tx.prepare_cached(&sql)?.execute(params.as_slice())?;
    }
    Ok(())
}

/// The stored bytes of `cid`, if any.
pub(crate) fn get_block(tx: &Transaction<'_>, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
    Ok(tx
        .prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?
        .query_row([CidKey::new(cid).as_bytes()], |row| row.get(0))
        .optional()?)
}

/// Whether `cid` is stored.
pub(crate) fn has_block(tx: &Transaction<'_>, cid: &Cid) -> Result<bool, Error> {
    Ok(tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM repo_block WHERE cid = ?1)")?
        .query_row([CidKey::new(cid).as_bytes()], |row| row.get(0))?)
}

/// Deletes the blocks `cids` inside `tx` (those not stored are skipped)
/// and returns how many were deleted.
pub(crate) fn delete_blocks(tx: &Transaction<'_>, cids: &[Cid]) -> Result<usize, Error> {
    let mut stmt = tx.prepare_cached("DELETE FROM repo_block WHERE cid = ?1")?;
    let mut deleted = 0;
    for cid in cids {
        deleted += stmt.execute([CidKey::new(cid).as_bytes()])?;
    }
    Ok(deleted)
}

/// Number of blocks stored, in `tx`'s snapshot.
pub(crate) fn count_blocks(tx: &Transaction<'_>) -> Result<u64, Error> {
    Ok(tx.query_row("SELECT COUNT(*) FROM repo_block", [], |row| row.get(0))?)
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
        self.db.read(count_blocks)
    }

    /// Every stored block, by CID.
    pub fn all_blocks(&self) -> Result<BlockMap, Error> {
        self.db.read(|tx| {
            let mut stmt = tx.prepare("SELECT cid, content FROM repo_block")?;
            let mut rows = stmt.query([])?;
            let mut blocks = BlockMap::new();
            while let Some(row) = rows.next()? {
                let cid = cid_from_key(blob_column(row, 0)?)?;
                blocks.insert(cid, row.get(1)?);
            }
            Ok(blocks)
        })
    }
}

impl SqliteBlockStore {
    /// Writes the repository to `out` as a CAR, with the head commit as
    /// root. Without `since`: the commit, then the current tree
    /// depth-first with each node's records after it (blocks of earlier
    /// commits are left out). With `since`: every stored block tagged with
    /// a rev after it (the reference's `getRepo` diff). Memory does not
    /// grow with the repository (see [`crate::repo_car`]). `None` (and
    /// nothing written) if the store has no head.
    pub fn write_repo_car<W: std::io::Write>(
        &self,
        since: Option<&str>,
        out: W,
    ) -> Result<Option<W>, Error> {
        crate::repo_car::write_repo_car(&self.db, since, out)
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
        self.db.read(|tx| has_block(tx, cid)).map_err(store_error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cid_key_is_the_cids_binary_form_and_reads_back() {
        for i in 0..300u32 {
            let bytes = i.to_be_bytes().repeat(i as usize % 7);
            for cid in [
                atp_crypto::cid_for_dag_cbor(&bytes),
                atp_crypto::cid_for_raw(&bytes),
            ] {
                let key = CidKey::new(&cid);
                assert_eq!(key.as_bytes(), cid.to_bytes().as_slice());
                assert_eq!(key.as_bytes().len(), 36);
                assert_eq!(cid_from_key(key.as_bytes()).unwrap(), cid);
            }
        }
        assert!(cid_from_key(b"not a cid").is_err());
    }
}
