//! The CAR of `com.atproto.sync.getRepo`, written from an account's
//! SQLite blocks.
//!
//! # Order
//!
//! Without `since`, the CAR holds the head commit, then the current tree
//! depth-first: each MST node, then the records of its entries, then its
//! subtrees left to right. With `since`, it holds every stored block
//! tagged with a rev after it, ordered by CID (the reference's diff).
//!
//! # Lookups
//!
//! Looking blocks up by CID is most of the work (SQLite's search of the
//! text CID index). Each walk holds one prepared statement for it, builds
//! the CID's text in a reused buffer and writes the block straight from
//! SQLite's row, so a lookup allocates nothing but the MST nodes it
//! decodes.
//!
//! # Two CPUs for one download
//!
//! One thread does one lookup at a time, so the walk of a large tree is
//! split: the calling thread reads the top levels of the tree and turns
//! them into an ordered list of work items (a top node with its records,
//! or a whole subtree below them), at least [`CarExport::min_subtrees`]
//! subtrees. Worker threads, each with its own read connection, take the
//! items in order and write each one's CAR sections into a small bounded
//! channel of its own; the calling thread copies the items' bytes to the
//! output in the list's order. The bytes are the same as those of the
//! one-thread walk.
//!
//! The split is not the default ([`CarExport::DEFAULT`] is one thread):
//! measured on 2 CPUs, a 100,000-record repository took 0.5 to 0.8 s of
//! CPU with two workers against 0.35 to 0.45 s on one thread, and the
//! download was slower, not faster. The workers wait on each other inside
//! SQLite: the bundled SQLite is built with
//! `SQLITE_ENABLE_MEMORY_MANAGEMENT`, which puts the page caches of all
//! connections in one group behind one mutex, and every page a lookup
//! visits goes through it (futex waits and wake-ups were about 15% of the
//! samples). Each connection also fills its own page cache with the same
//! CID index.
//!
//! Blocks are content-addressed and never deleted while the account
//! exists, so every snapshot holds every block of a given tree. Still,
//! every worker reads the head in its own snapshot first, and if one sees
//! another head than the calling thread, the workers stop before anything
//! is written and the calling thread walks the tree alone.
//!
//! # Memory
//!
//! Memory does not grow with the repository: the plan holds at most
//! [`MAX_PLANNED_BLOCKS`] CIDs (a larger plan means a tree of odd shape,
//! walked on one thread), at most [`ITEMS_IN_FLIGHT_PER_WORKER`] items per
//! worker are under way, each buffering at most [`CHUNKS_PER_ITEM`] chunks
//! of [`CHUNK_BYTES`], and a walk's stack holds the pending siblings along
//! one path from its top, so it grows with the tree's depth only. Each
//! connection that walks raises its page cache to [`WALK_CACHE_KIB`] for
//! the walk and puts it back after.
//!
//! # Failures
//!
//! A missing or undecodable block, a failed read or a failed write ends
//! the export with an error; a worker that fails ends its item with that
//! error, and a consumer that goes away (the output fails, or the calling
//! thread returns) stops the workers at their next chunk. The calling
//! thread joins every worker before it returns.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use atp_crypto::Cid;
use atp_repo_mst::car::CarWriter;
use rusqlite::{OptionalExtension, Transaction};

use crate::db::Database;
use crate::error::Error;

/// Page cache, in KiB, of a connection while it walks a tree (SQLite's
/// default is 2 MiB; an account store's connections keep 256 KiB). The
/// walk looks blocks up by CID in random order; with a small cache nearly
/// every lookup reads its index page again from the file. 16 MiB holds the
/// CID index of a repository of about 150,000 blocks; larger ones still
/// work, with more reads.
pub const WALK_CACHE_KIB: i64 = 16 * 1024;

/// Most CIDs the plan of the top levels holds; a tree that needs more to
/// reach [`CarExport::min_subtrees`] subtrees is walked on one thread.
pub const MAX_PLANNED_BLOCKS: usize = 16 * 1024;

/// Size of the chunks a worker sends (the last one of an item is smaller).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks an item buffers before its worker waits for the calling thread.
pub const CHUNKS_PER_ITEM: usize = 4;

/// Items handed out ahead of the one being copied, per worker.
pub const ITEMS_IN_FLIGHT_PER_WORKER: usize = 2;

/// How the walk of the current tree is split between threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarExport {
    /// Worker threads (each with its own read connection) that walk the
    /// subtrees; 0 walks the whole tree on the calling thread.
    pub workers: usize,
    /// Subtrees the top levels are cut into before the workers start; a
    /// tree too small to give that many is walked on the calling thread.
    pub min_subtrees: usize,
}

impl CarExport {
    /// The whole walk on the calling thread.
    pub const ONE_THREAD: CarExport = CarExport {
        workers: 0,
        min_subtrees: usize::MAX,
    };

    /// 2 workers, at least 32 subtrees (so that each is small against the
    /// whole and the workers stay busy).
    pub const TWO_WORKERS: CarExport = CarExport {
        workers: 2,
        min_subtrees: 32,
    };

    /// What `getRepo` uses: [`CarExport::ONE_THREAD`]. With the bundled
    /// SQLite as this crate builds it, two workers took more time than one
    /// thread, not less (see the module's documentation).
    pub const DEFAULT: CarExport = CarExport::ONE_THREAD;
}

impl Default for CarExport {
    fn default() -> Self {
        CarExport::DEFAULT
    }
}

/// A written CAR: the output and how the tree was walked.
#[derive(Debug)]
pub struct ExportedCar<W> {
    /// The output, flushed.
    pub out: W,
    /// Work items the workers wrote (the top levels' nodes with their
    /// records, and the subtrees below them); 0 if the calling thread
    /// wrote everything (a `since` diff, a small tree, or a head that
    /// moved between the snapshots).
    pub work_items: usize,
}

/// Writes the repository in `db` to `out` as a CAR with the head commit as
/// root: the blocks tagged with a rev after `since`, or the current tree
/// (split as `export` says). `None` (and nothing written) if the store has
/// no head.
pub(crate) fn write_repo_car<W: Write>(
    db: &Database,
    since: Option<&str>,
    export: CarExport,
    mut out: W,
) -> Result<Option<ExportedCar<W>>, Error> {
    db.read(|tx| {
        let Some(head) = read_head(tx)? else {
            return Ok(None);
        };
        let root = atp_crypto::parse_cid(&head)?;
        if let Some(since) = since {
            let mut writer = CarWriter::new(out, &[root])?;
            write_blocks_since(tx, since, &mut writer)?;
            let out = writer.finish()?;
            return Ok(Some(ExportedCar { out, work_items: 0 }));
        }
        let commit_bytes = BlockReader::new(tx)?.block(&root)?;
        let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit_bytes)?;
        if export.workers > 0 {
            if let Some(plan) = plan_top_levels(tx, commit.data, export.min_subtrees)? {
                let items = plan.len();
                let split = SplitWalk {
                    db,
                    head: &head,
                    workers: export.workers,
                };
                let written = split.write(
                    plan,
                    |out_ref: &mut W| {
                        let mut writer = CarWriter::new(out_ref, &[root])?;
                        writer.write_block(&root, &commit_bytes)?;
                        Ok(())
                    },
                    &mut out,
                )?;
                if written {
                    out.flush()?;
                    return Ok(Some(ExportedCar {
                        out,
                        work_items: items,
                    }));
                }
                tracing::debug!(head, "head moved between snapshots; walking on one thread");
            }
        }
        let mut writer = CarWriter::new(out, &[root])?;
        writer.write_block(&root, &commit_bytes)?;
        with_walk_cache(tx, || {
            write_subtree(&mut BlockReader::new(tx)?, commit.data, &mut writer)
        })?;
        let out = writer.finish()?;
        Ok(Some(ExportedCar { out, work_items: 0 }))
    })
}

/// The head commit's CID as stored, in `tx`'s snapshot.
fn read_head(tx: &Transaction<'_>) -> Result<Option<String>, Error> {
    Ok(tx
        .query_row("SELECT cid FROM repo_root LIMIT 1", [], |row| row.get(0))
        .optional()?)
}

fn missing(cid: &Cid) -> Error {
    Error::Corrupt(format!("repository block {cid} is missing"))
}

/// Alphabet of RFC 4648 base32, lower case (multibase `b`).
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Puts the text form of `cid` (as `repo_block.cid` stores it: multibase
/// base32 for a CIDv1) in `text`, reusing its allocation.
fn cid_text(cid: &Cid, text: &mut String) {
    text.clear();
    if u64::from(cid.version()) != 1 {
        text.push_str(&cid.to_string());
        return;
    }
    let mut bytes = [0u8; 64];
    let len = cid.encoded_len();
    if len > bytes.len() || cid.write_bytes(&mut bytes[..]).is_err() {
        text.push_str(&cid.to_string());
        return;
    }
    text.push('b');
    let mut bits: u32 = 0;
    let mut pending: u32 = 0;
    for &byte in &bytes[..len] {
        bits = (bits << 8) | u32::from(byte);
        pending += 8;
        while pending >= 5 {
            pending -= 5;
            text.push(char::from(BASE32_LOWER[((bits >> pending) & 31) as usize]));
        }
    }
    if pending > 0 {
        text.push(char::from(
            BASE32_LOWER[((bits << (5 - pending)) & 31) as usize],
        ));
    }
}

/// Looks blocks up by CID with one prepared statement for a whole walk,
/// without allocating per block.
struct BlockReader<'conn> {
    stmt: rusqlite::CachedStatement<'conn>,
    key: String,
}

impl<'conn> BlockReader<'conn> {
    fn new(tx: &'conn Transaction<'_>) -> Result<Self, Error> {
        Ok(BlockReader {
            stmt: tx.prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?,
            key: String::with_capacity(64),
        })
    }

    /// Runs `use_block` on the stored bytes of `cid` (a missing block is an
    /// error).
    fn with_block<T>(
        &mut self,
        cid: &Cid,
        use_block: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        cid_text(cid, &mut self.key);
        let mut rows = self.stmt.query([self.key.as_str()])?;
        let row = rows.next()?.ok_or_else(|| missing(cid))?;
        let bytes = row
            .get_ref(0)?
            .as_blob()
            .map_err(|err| Error::Corrupt(format!("block {cid}: {err}")))?;
        use_block(bytes)
    }

    /// The stored bytes of `cid`.
    fn block(&mut self, cid: &Cid) -> Result<Vec<u8>, Error> {
        self.with_block(cid, |bytes| Ok(bytes.to_vec()))
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

/// Where the walk puts the blocks it reads, in CAR order.
trait BlockSink {
    fn put(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), Error>;
}

impl<W: Write> BlockSink for CarWriter<W> {
    fn put(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.write_block(cid, bytes)?)
    }
}

/// Writes the subtree under the node `top` depth-first, each node
/// followed by the records of its entries.
///
/// The stack holds the CIDs of the subtrees still to write: at most the
/// pending siblings along one path from `top`, so memory grows with the
/// tree's depth, not its size.
fn write_subtree(
    reader: &mut BlockReader<'_>,
    top: Cid,
    sink: &mut impl BlockSink,
) -> Result<(), Error> {
    let mut pending = vec![top];
    while let Some(cid) = pending.pop() {
        let node = reader.with_block(&cid, |bytes| {
            let node = atp_repo_mst::mst::decode_node(bytes)?;
            sink.put(&cid, bytes)?;
            Ok(node)
        })?;
        for entry in &node.entries {
            reader.with_block(&entry.value, |bytes| sink.put(&entry.value, bytes))?;
        }
        let first_child = pending.len();
        pending.extend(node.children());
        pending[first_child..].reverse();
    }
    Ok(())
}

/// Writes every block tagged with a rev after `since`, streamed from
/// SQLite in CID order.
fn write_blocks_since<W: Write>(
    tx: &Transaction<'_>,
    since: &str,
    writer: &mut CarWriter<W>,
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

/// One piece of the CAR after the commit, in CAR order.
#[derive(Debug, PartialEq, Eq)]
enum WorkItem {
    /// These blocks, in this order: a node of the top levels and its
    /// entries' records.
    Blocks(Vec<Cid>),
    /// The subtree under this node, depth-first.
    Subtree(Cid),
}

/// The tree under `data` as an ordered list of work items with at least
/// `min_subtrees` subtrees: the top levels are expanded one level at a
/// time (each subtree item becomes its node's blocks followed by its
/// children), which keeps the CAR order. `None` if the tree is too small
/// (or too oddly shaped) to give that many within [`MAX_PLANNED_BLOCKS`].
fn plan_top_levels(
    tx: &Transaction<'_>,
    data: Cid,
    min_subtrees: usize,
) -> Result<Option<Vec<WorkItem>>, Error> {
    let mut reader = BlockReader::new(tx)?;
    let mut plan = vec![WorkItem::Subtree(data)];
    let mut planned = 1;
    loop {
        let subtrees = plan
            .iter()
            .filter(|item| matches!(item, WorkItem::Subtree(_)))
            .count();
        if subtrees >= min_subtrees {
            return Ok(Some(plan));
        }
        if subtrees == 0 || planned > MAX_PLANNED_BLOCKS {
            return Ok(None);
        }
        let mut next = Vec::with_capacity(plan.len() * 4);
        for item in plan {
            let WorkItem::Subtree(cid) = item else {
                next.push(item);
                continue;
            };
            let node =
                reader.with_block(&cid, |bytes| Ok(atp_repo_mst::mst::decode_node(bytes)?))?;
            let mut blocks = Vec::with_capacity(1 + node.entries.len());
            blocks.push(cid);
            blocks.extend(node.entries.iter().map(|entry| entry.value));
            planned += blocks.len();
            next.push(WorkItem::Blocks(blocks));
            for child in node.children() {
                planned += 1;
                next.push(WorkItem::Subtree(child));
            }
        }
        plan = next;
    }
}

/// What a worker sends for its item.
enum Piece {
    /// The next bytes of the item's CAR sections.
    Bytes(Vec<u8>),
    /// The item is complete.
    Done,
    /// The item failed; the export ends with this error.
    Failed(Error),
}

/// An item handed to a worker, with the channel its bytes go to.
struct Job {
    item: WorkItem,
    out: SyncSender<Piece>,
}

/// The CAR sections of one work item, framed as in the CAR and sent in
/// chunks of about [`CHUNK_BYTES`].
struct ItemWriter {
    out: SyncSender<Piece>,
    buf: Vec<u8>,
}

/// The calling thread stopped reading (it failed or its output did).
fn consumer_gone() -> Error {
    Error::Internal("the CAR's consumer went away".to_owned())
}

impl ItemWriter {
    fn send_buffered(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.out
            .send(Piece::Bytes(chunk))
            .map_err(|_| consumer_gone())
    }

    /// Sends what is buffered and marks the item complete.
    fn finish(mut self) -> Result<(), Error> {
        self.send_buffered()?;
        self.out.send(Piece::Done).map_err(|_| consumer_gone())
    }
}

impl BlockSink for ItemWriter {
    fn put(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
        let cid_len = cid.encoded_len();
        atp_repo_mst::car::write_varint(&mut self.buf, (cid_len + bytes.len()) as u64);
        cid.write_bytes(&mut self.buf)
            .map_err(|err| Error::Internal(format!("CID {cid}: {err}")))?;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(())
    }
}

/// Writes one item into `out`'s channel. `false` once the worker should
/// stop (the item failed, or nobody reads any more).
fn run_job(reader: &mut BlockReader<'_>, job: Job) -> bool {
    let mut writer = ItemWriter {
        out: job.out,
        buf: Vec::with_capacity(CHUNK_BYTES),
    };
    let written = match job.item {
        WorkItem::Blocks(cids) => cids
            .iter()
            .try_for_each(|cid| reader.with_block(cid, |bytes| writer.put(cid, bytes))),
        WorkItem::Subtree(cid) => write_subtree(reader, cid, &mut writer),
    };
    match written {
        Ok(()) => writer.finish().is_ok(),
        Err(err) => {
            let _ = writer.out.send(Piece::Failed(err));
            false
        }
    }
}

/// A worker: reads the head in its snapshot and reports it, then takes
/// jobs until there are none or it must stop.
fn run_worker(db: &Database, jobs: &Mutex<Receiver<Job>>, ready: Sender<Result<String, Error>>) {
    let outcome = db.read(|tx| {
        let head = read_head(tx)?.unwrap_or_default();
        if ready.send(Ok(head)).is_err() {
            return Ok(());
        }
        with_walk_cache(tx, || {
            let mut reader = BlockReader::new(tx)?;
            loop {
                let job = match jobs.lock() {
                    Ok(jobs) => jobs.recv(),
                    Err(_) => return Ok(()),
                };
                let Ok(job) = job else { return Ok(()) };
                if !run_job(&mut reader, job) {
                    return Ok(());
                }
            }
        })
    });
    if let Err(err) = outcome {
        // Fails only if the head was already reported; an error after that
        // is reported through the item it broke.
        let _ = ready.send(Err(err));
    }
}

/// The walk of a planned tree split between worker threads.
struct SplitWalk<'a> {
    db: &'a Database,
    /// The head commit's CID as the calling thread's snapshot stores it.
    head: &'a str,
    workers: usize,
}

impl SplitWalk<'_> {
    /// Starts the workers, checks that each sees `head`, then writes the
    /// CAR's start with `write_start` and the items of `plan` after it.
    /// `false` (and nothing written) if a worker saw another head.
    fn write<W: Write>(
        &self,
        plan: Vec<WorkItem>,
        write_start: impl FnOnce(&mut W) -> Result<(), Error>,
        out: &mut W,
    ) -> Result<bool, Error> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|scope| {
            let (ready_tx, ready_rx) = mpsc::channel();
            let mut handles = Vec::with_capacity(self.workers);
            for _ in 0..self.workers {
                let ready = ready_tx.clone();
                let jobs = &job_rx;
                let db = self.db;
                handles.push(scope.spawn(move || run_worker(db, jobs, ready)));
            }
            drop(ready_tx);
            // Every channel the workers wait on is dropped when this
            // returns, so they all end and the joins below cannot hang.
            let outcome = self.drive(plan, job_tx, &ready_rx, write_start, out);
            drop(ready_rx);
            let mut panicked = false;
            for handle in handles {
                panicked |= handle.join().is_err();
            }
            if panicked && outcome.is_ok() {
                return Err(Error::Internal("a CAR worker panicked".to_owned()));
            }
            outcome
        })
    }

    fn drive<W: Write>(
        &self,
        plan: Vec<WorkItem>,
        jobs: Sender<Job>,
        ready: &Receiver<Result<String, Error>>,
        write_start: impl FnOnce(&mut W) -> Result<(), Error>,
        out: &mut W,
    ) -> Result<bool, Error> {
        for _ in 0..self.workers {
            let head = ready
                .recv()
                .map_err(|_| Error::Internal("a CAR worker ended before starting".to_owned()))??;
            if head != self.head {
                return Ok(false);
            }
        }
        write_start(out)?;
        let in_flight = self.workers * ITEMS_IN_FLIGHT_PER_WORKER;
        let mut items = plan.into_iter();
        let mut pending: VecDeque<Receiver<Piece>> = VecDeque::with_capacity(in_flight);
        loop {
            while pending.len() < in_flight {
                let Some(item) = items.next() else { break };
                let (piece_tx, piece_rx) = mpsc::sync_channel(CHUNKS_PER_ITEM);
                jobs.send(Job {
                    item,
                    out: piece_tx,
                })
                .map_err(|_| Error::Internal("every CAR worker ended".to_owned()))?;
                pending.push_back(piece_rx);
            }
            let Some(current) = pending.pop_front() else {
                return Ok(true);
            };
            loop {
                match current.recv() {
                    Ok(Piece::Bytes(bytes)) => out.write_all(&bytes)?,
                    Ok(Piece::Done) => break,
                    Ok(Piece::Failed(err)) => return Err(err),
                    Err(_) => {
                        return Err(Error::Internal(
                            "a CAR worker stopped in the middle of an item".to_owned(),
                        ))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_writer_frames_blocks_as_the_car_writer_does() {
        let blocks: Vec<(Cid, Vec<u8>)> = (0..3000u32)
            .map(|i| {
                let bytes = vec![(i % 251) as u8; (i as usize * 37) % 700];
                (atp_crypto::cid_for_raw(&bytes), bytes)
            })
            .collect();
        let mut expected = Vec::new();
        {
            let mut writer = CarWriter::new(&mut expected, &[]).unwrap();
            let start = writer.bytes_written() as usize;
            for (cid, bytes) in &blocks {
                writer.write_block(cid, bytes).unwrap();
            }
            writer.finish().unwrap();
            expected.drain(..start);
        }
        let (tx, rx) = mpsc::sync_channel(1024);
        let mut writer = ItemWriter {
            out: tx,
            buf: Vec::new(),
        };
        for (cid, bytes) in &blocks {
            writer.put(cid, bytes).unwrap();
        }
        writer.finish().unwrap();
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Ok(piece) = rx.recv() {
            match piece {
                Piece::Bytes(bytes) => {
                    chunks += 1;
                    got.extend_from_slice(&bytes);
                }
                Piece::Done => break,
                Piece::Failed(err) => panic!("{err}"),
            }
        }
        assert!(chunks > 1, "{chunks} chunks");
        assert_eq!(got, expected);
    }

    #[test]
    fn cid_text_is_the_cids_string_form() {
        let mut text = String::new();
        for i in 0..500u32 {
            let bytes = i.to_be_bytes().repeat(i as usize % 9);
            let raw = atp_crypto::cid_for_raw(&bytes);
            let cbor = atp_crypto::cid_for_dag_cbor(&bytes);
            for cid in [raw, cbor] {
                cid_text(&cid, &mut text);
                assert_eq!(text, cid.to_string());
            }
        }
        let v0 = Cid::try_from("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").unwrap();
        cid_text(&v0, &mut text);
        assert_eq!(text, v0.to_string());
    }

    #[test]
    fn an_item_writer_stops_when_nobody_reads() {
        let (tx, rx) = mpsc::sync_channel(1);
        drop(rx);
        let mut writer = ItemWriter {
            out: tx,
            buf: Vec::new(),
        };
        let bytes = vec![7u8; CHUNK_BYTES];
        let cid = atp_crypto::cid_for_raw(&bytes);
        assert!(writer.put(&cid, &bytes).is_err());
    }
}
