//! SQLite files: connection settings, versioned migrations and a small
//! connection pool usable from async code.
//!
//! # Settings
//!
//! Every connection runs in WAL mode with `synchronous=FULL`, a busy
//! timeout and foreign keys on. WAL lets readers work on the last committed
//! snapshot while one writer appends. `FULL` (rather than `NORMAL`) makes
//! SQLite fsync the WAL at every commit, so a write that was acknowledged
//! to a client survives a power loss; with `NORMAL` the database would stay
//! consistent but could lose its last transactions. A PDS acknowledges
//! record writes that are already announced on the firehose, so losing them
//! would fork the repository as other services see it.
//!
//! # Concurrency model
//!
//! A [`Database`] owns one writer connection behind a mutex and a few idle
//! reader connections. [`Database::write`] runs a closure in an `IMMEDIATE`
//! transaction on the writer: writes to one file are serialized, and since
//! each account has its own file, writes to different repositories run in
//! parallel. [`Database::read`] runs a closure in a read transaction on a
//! pooled reader, so several statements see one consistent snapshot and
//! never a half-applied write. All calls block: async code uses
//! [`Database::read_async`] / [`Database::write_async`], which run them on
//! tokio's blocking pool (`spawn_blocking`).
//!
//! # Memory
//!
//! Each connection caches pages of its file, and SQLite's default cache is
//! 2 MiB per connection. The service-wide files (accounts, event log, PLC
//! operations) are few and keep that default ([`MemoryBudget::SHARED`]).
//! A PDS has one file per account, and several of them are open at once:
//! their connections get a small cache and fewer idle readers
//! ([`MemoryBudget::PER_ACCOUNT`]), so the server's memory does not grow
//! with the number of accounts it serves. A page not in the cache is read
//! from the operating system's file cache, which all connections share.
//! An account's writer gets a larger cache than its readers
//! ([`MemoryBudget::writer_page_cache_kib`]): each commit touches the same
//! few B-tree paths again.
//!
//! These limits hold per connection only if SQLite gives each connection
//! its own cache. The bundled SQLite of `libsqlite3-sys` is built with
//! `SQLITE_ENABLE_MEMORY_MANAGEMENT` unless told otherwise, which pools
//! every connection's pages under one limit, the sum of theirs; a
//! connection can then hold pages beyond its own limit while another
//! cannot use its own. This workspace builds SQLite without it
//! (`.cargo/config.toml`); [`pooled_page_caches`] tells which build is
//! linked, and [`crate::Storage::open`] warns about the pooled one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// How long a connection waits for a lock held by another process or
/// connection before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A file is handed to the background checkpointer after this many
/// commits. A checkpoint copies the WAL's pages into the file and fsyncs
/// it; run by a commit (SQLite's automatic checkpoint), it made that
/// commit, and every write waiting behind it, several milliseconds
/// slower.
pub const CHECKPOINT_EVERY_COMMITS: u32 = 32;

/// WAL pages past which a writer checkpoints at the end of its own commit
/// (SQLite's `wal_autocheckpoint`), in case the checkpointer falls behind.
pub const WRITER_CHECKPOINT_PAGES: u32 = 8_000;

/// SQLite's own `wal_autocheckpoint`, kept when no checkpoint thread could
/// be started.
const DEFAULT_CHECKPOINT_PAGES: u32 = 1_000;

/// How much memory one database's connections may keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Most KiB of pages each reader connection caches (`PRAGMA
    /// cache_size`).
    pub page_cache_kib: u32,
    /// Most KiB of pages the writer connection caches.
    pub writer_page_cache_kib: u32,
    /// Most idle reader connections kept open; more are opened when
    /// needed and closed when returned.
    pub idle_readers: usize,
}

impl MemoryBudget {
    /// For the few service-wide files: SQLite's default 2 MiB cache and
    /// up to 4 idle readers.
    pub const SHARED: MemoryBudget = MemoryBudget {
        page_cache_kib: 2048,
        writer_page_cache_kib: 2048,
        idle_readers: 4,
    };

    /// For per-account files, many of which are open at once: 256 KiB of
    /// cache per connection and up to 2 idle readers.
    pub const PER_ACCOUNT: MemoryBudget = MemoryBudget {
        page_cache_kib: 256,
        writer_page_cache_kib: 1024,
        idle_readers: 2,
    };
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::SHARED
    }
}

/// One step of a schema: applied once, in order, inside a transaction.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Schema version after this step (1, 2, ...: consecutive).
    pub version: u32,
    /// What the step does, for logs.
    pub description: &'static str,
    /// The SQL statements of the step.
    pub sql: &'static str,
    /// Work SQL alone cannot do (converting values with Rust code), run
    /// after `sql` in the same transaction: an error rolls the whole step
    /// back.
    pub run: Option<MigrationCode>,
}

/// The Rust part of a [`Migration`], given the step's transaction.
pub type MigrationCode = fn(&Transaction<'_>) -> Result<()>;

/// Opens (creating if needed) the SQLite file at `path` with the crate's
/// settings: WAL, `synchronous=FULL`, busy timeout, foreign keys, and the
/// page cache of [`MemoryBudget::SHARED`].
pub fn open_connection(path: &Path) -> Result<Connection> {
    open_connection_with(path, MemoryBudget::SHARED)
}

/// [`open_connection`] with the page cache size of `budget`.
pub fn open_connection_with(path: &Path, budget: MemoryBudget) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "{} refused WAL mode (journal_mode={mode})",
            path.display()
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};",
        budget.page_cache_kib
    ))?;
    Ok(conn)
}

/// Whether the linked SQLite pools the page caches of all connections in
/// one (it was built with `SQLITE_ENABLE_MEMORY_MANAGEMENT`). With pooled
/// caches a connection's `cache_size` is not a limit of its own: the
/// getRepo walk, which raises its connection's cache, can find it unusable
/// after a large write on another connection.
pub fn pooled_page_caches(conn: &Connection) -> Result<bool> {
    let mut stmt = conn.prepare("PRAGMA compile_options")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let option: String = row.get(0)?;
        if option == "ENABLE_MEMORY_MANAGEMENT" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The schema version recorded in `conn` (0 for a new file).
pub fn schema_version(conn: &Connection) -> Result<u32> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let version: Option<u32> =
        conn.query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })?;
    Ok(version.unwrap_or(0))
}

/// Applies the steps of `migrations` newer than the file's version, each
/// in its own transaction, and returns the resulting version. Reopening a
/// migrated file applies nothing. A file newer than `migrations` is
/// refused.
///
/// The steps commit with `synchronous=NORMAL` (no fsync each), and the
/// connection is back to `FULL` afterwards. In WAL mode that keeps the file
/// consistent whatever happens; a crash can only undo the last steps,
/// which then apply again at the next open. Their WAL frames become
/// durable with the next `FULL` commit's fsync, which covers the whole
/// WAL. A new account's store thus saves four fsyncs, and the account only
/// exists once its first commit (durable, with the schema) is stored.
///
/// A file that already had a schema and went through a step with Rust
/// code (which rewrites data, possibly a lot of it) is checkpointed
/// afterwards, with the WAL truncated: otherwise its readers would look
/// every page up in a large WAL until the next commits let the
/// checkpointer run.
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<u32> {
    let before = schema_version(conn)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    let outcome = migrate_steps(conn, migrations);
    let restored = conn.execute_batch("PRAGMA synchronous = FULL");
    let version = outcome?;
    restored?;
    let rewrote_data = migrations
        .iter()
        .any(|step| step.run.is_some() && step.version > before && step.version <= version);
    if before > 0 && rewrote_data {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(version)
}

fn migrate_steps(conn: &mut Connection, migrations: &[Migration]) -> Result<u32> {
    for (index, step) in migrations.iter().enumerate() {
        if step.version as usize != index + 1 {
            return Err(Error::Migration(format!(
                "migration versions must be consecutive from 1, found {} at position {}",
                step.version,
                index + 1
            )));
        }
    }
    let latest = migrations.len() as u32;
    let mut current = schema_version(conn)?;
    if current > latest {
        return Err(Error::Migration(format!(
            "database schema version {current} is newer than this program's {latest}"
        )));
    }
    for step in &migrations[current as usize..] {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our check and the lock.
        let now_version = schema_version(&tx)?;
        if now_version >= step.version {
            current = now_version;
            continue;
        }
        let failed = |err: &dyn std::fmt::Display| {
            Error::Migration(format!(
                "step {} ({}) failed: {err}",
                step.version, step.description
            ))
        };
        tx.execute_batch(step.sql).map_err(|err| failed(&err))?;
        if let Some(run) = step.run {
            run(&tx).map_err(|err| failed(&err))?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![step.version, step.description, crate::time::now_string()],
        )?;
        tx.commit()?;
        tracing::debug!(
            version = step.version,
            step = step.description,
            "applied migration"
        );
        current = step.version;
    }
    Ok(current)
}

/// One SQLite file: a writer connection and a pool of readers.
#[derive(Debug)]
pub struct Database {
    writer: Mutex<Connection>,
    readers: Arc<ReaderPool>,
    /// Commits since the last checkpoint was handed to the checkpointer.
    commits_unchecked: AtomicU32,
}

/// The reader connections of a [`Database`], shared with the background
/// checkpointer (which checkpoints on one of them).
#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    budget: MemoryBudget,
    idle: Mutex<Vec<Connection>>,
    /// Whether a checkpoint of this file waits for the checkpointer.
    checkpoint_queued: AtomicBool,
}

fn poisoned() -> Error {
    Error::Internal("database lock poisoned".to_owned())
}

impl ReaderPool {
    fn take(&self) -> Result<Connection> {
        let pooled = self.idle.lock().map_err(|_| poisoned())?.pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection_with(&self.path, self.budget),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut pool) = self.idle.lock() {
            if pool.len() < self.budget.idle_readers && conn.is_autocommit() {
                pool.push(conn);
            }
        }
    }

    /// Copies the WAL's committed frames into the file (a `PASSIVE`
    /// checkpoint: it waits for no one, and frames still needed by a
    /// reader are left for the next one).
    fn checkpoint(&self) -> Result<()> {
        self.checkpoint_queued.store(false, Ordering::Release);
        if !self.path.exists() {
            // The file was removed (a deleted account): nothing to do, and
            // opening a connection would create it again.
            return Ok(());
        }
        let conn = self.take()?;
        let outcome = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(Error::from);
        self.give_back(conn);
        outcome
    }
}

/// The thread that runs the checkpoints of every [`Database`], so that no
/// commit waits for one (see [`CHECKPOINT_EVERY_COMMITS`]).
fn checkpointer() -> Option<&'static Mutex<mpsc::Sender<Weak<ReaderPool>>>> {
    static CHECKPOINTER: OnceLock<Option<Mutex<mpsc::Sender<Weak<ReaderPool>>>>> = OnceLock::new();
    CHECKPOINTER
        .get_or_init(|| {
            let (send, receive) = mpsc::channel::<Weak<ReaderPool>>();
            let started = std::thread::Builder::new()
                .name("sqlite-checkpoint".to_owned())
                .spawn(move || {
                    for pool in receive {
                        let Some(pool) = pool.upgrade() else {
                            continue;
                        };
                        if let Err(err) = pool.checkpoint() {
                            tracing::warn!(path = %pool.path.display(), error = %err, "checkpoint failed");
                        }
                    }
                });
            match started {
                Ok(_) => Some(Mutex::new(send)),
                Err(err) => {
                    tracing::warn!(error = %err, "no checkpoint thread: commits checkpoint themselves");
                    None
                }
            }
        })
        .as_ref()
}

impl Database {
    /// Opens (creating if needed) the file at `path` and applies
    /// `migrations`, with the memory budget of a service-wide file
    /// ([`MemoryBudget::SHARED`]).
    pub fn open(path: &Path, migrations: &[Migration]) -> Result<Self> {
        Self::open_with(path, migrations, MemoryBudget::SHARED)
    }

    /// [`Database::open`] with the given memory budget.
    ///
    /// The writer leaves checkpoints to a background thread (every
    /// [`CHECKPOINT_EVERY_COMMITS`] commits) and checkpoints itself only
    /// past [`WRITER_CHECKPOINT_PAGES`] pages of WAL, should that thread
    /// fall behind.
    pub fn open_with(path: &Path, migrations: &[Migration], budget: MemoryBudget) -> Result<Self> {
        let mut writer = open_connection_with(path, budget)?;
        writer.pragma_update(None, "cache_size", -i64::from(budget.writer_page_cache_kib))?;
        migrate(&mut writer, migrations)?;
        let backstop = if checkpointer().is_some() {
            WRITER_CHECKPOINT_PAGES
        } else {
            DEFAULT_CHECKPOINT_PAGES
        };
        writer.pragma_update(None, "wal_autocheckpoint", backstop)?;
        Ok(Database {
            writer: Mutex::new(writer),
            readers: Arc::new(ReaderPool {
                path: path.to_owned(),
                budget,
                idle: Mutex::new(Vec::new()),
                checkpoint_queued: AtomicBool::new(false),
            }),
            commits_unchecked: AtomicU32::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.readers.path
    }

    /// The memory budget of the file's connections.
    pub fn memory_budget(&self) -> MemoryBudget {
        self.readers.budget
    }

    /// Runs `f` in an `IMMEDIATE` transaction on the writer connection and
    /// commits if it returns `Ok`; an `Err` (or a panic) rolls everything
    /// back. Writers to one database run one at a time.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().map_err(|_| poisoned())?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        drop(conn);
        self.count_commit();
        Ok(value)
    }

    /// Hands the file to the checkpointer every
    /// [`CHECKPOINT_EVERY_COMMITS`] commits (once at a time).
    fn count_commit(&self) {
        let commits = self.commits_unchecked.fetch_add(1, Ordering::Relaxed) + 1;
        if commits < CHECKPOINT_EVERY_COMMITS {
            return;
        }
        let Some(checkpointer) = checkpointer() else {
            return;
        };
        if self.readers.checkpoint_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        self.commits_unchecked.store(0, Ordering::Relaxed);
        let sent = checkpointer
            .lock()
            .map_err(|_| ())
            .and_then(|send| send.send(Arc::downgrade(&self.readers)).map_err(|_| ()));
        if sent.is_err() {
            self.readers
                .checkpoint_queued
                .store(false, Ordering::Release);
        }
    }

    /// Runs `f` in a read transaction on a pooled connection: every
    /// statement in `f` sees the same committed snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.readers.take()?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.finish()?;
            Ok(value)
        })();
        self.readers.give_back(conn);
        result
    }

    /// [`Database::write`] on tokio's blocking pool.
    pub async fn write_async<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        run_blocking(move || db.write(f)).await
    }

    /// [`Database::read`] on tokio's blocking pool.
    pub async fn read_async<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        run_blocking(move || db.read(f)).await
    }

    /// Locks the writer connection for direct use (maintenance, tests).
    pub fn lock_writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer.lock().map_err(|_| poisoned())
    }
}

/// Runs blocking storage work (SQLite, scrypt, file writes) on tokio's
/// blocking pool and returns its result.
pub async fn run_blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| Error::Internal(format!("blocking task failed: {err}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace's `.cargo/config.toml` builds SQLite without pooled
    /// page caches; this fails if that setting is lost.
    #[test]
    fn each_connection_has_its_own_page_cache() {
        let conn = Connection::open_in_memory().expect("in-memory database");
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("compile options");
        // the query answers: the bundled build always records these
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(options.iter().any(|o| o == "ENABLE_FTS5"), "{options:?}");
        assert!(!pooled_page_caches(&conn).expect("compile options"));
    }

    /// The writer of a per-account file gets its larger cache; readers
    /// keep the small one.
    #[test]
    fn writer_and_readers_get_their_budgets() {
        let dir = std::env::temp_dir().join(format!("atp-pds-db-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Database::open_with(&dir.join("store.sqlite"), &[], MemoryBudget::PER_ACCOUNT)
            .expect("open");
        let cache = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA cache_size", [], |row| row.get(0))
                .expect("cache_size")
        };
        let writer = cache(&db.lock_writer().expect("writer"));
        let reader = db.read(|tx| Ok(cache(tx))).expect("read");
        assert_eq!(
            writer,
            -i64::from(MemoryBudget::PER_ACCOUNT.writer_page_cache_kib)
        );
        assert_eq!(reader, -i64::from(MemoryBudget::PER_ACCOUNT.page_cache_kib));
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
