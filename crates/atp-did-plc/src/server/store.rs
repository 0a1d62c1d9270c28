//! SQLite storage of the directory's operation logs.
//!
//! One table holds every operation ever accepted: the DID it belongs to, its
//! CID, the signed operation as JSON, whether a later recovery nullified it,
//! and the time the directory accepted it. File databases run in WAL mode
//! with `synchronous = FULL`, so an operation acknowledged with 200 survives
//! a crash.
//!
//! Acceptance times are strictly increasing across the whole directory (a
//! clock that stands still or steps back is nudged forward by a millisecond),
//! so `createdAt` identifies an operation's position in the export stream and
//! paging by `after` never skips or repeats an operation.

use std::path::Path;

use atp_crypto::Cid;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::operation::Operation;
use crate::validate::IndexedOperation;
use crate::Error;

/// Formats a time as the reference does (`Date.toISOString()`).
pub fn format_timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp (any offset, any sub-second precision).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The operation logs of a directory, in SQLite.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// Acceptance time of the most recent operation, for monotonic times.
    last_created_at: Option<DateTime<Utc>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    did TEXT NOT NULL,
    cid TEXT NOT NULL,
    operation TEXT NOT NULL,
    nullified INTEGER NOT NULL DEFAULT 0,
    createdAt TEXT NOT NULL,
    UNIQUE (did, cid)
);
CREATE INDEX IF NOT EXISTS operations_did ON operations (did, seq);
CREATE INDEX IF NOT EXISTS operations_created_at ON operations (createdAt, cid);
";

fn storage_error(err: rusqlite::Error) -> Error {
    Error::Storage(err.to_string())
}

impl Store {
    /// Opens (creating if needed) a database file, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(storage_error)?;
        // journal_mode answers with a row, so it is read rather than executed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(storage_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Storage(format!(
                "cannot switch {} to WAL mode (got {mode})",
                path.display()
            )));
        }
        Self::init(conn)
    }

    /// Opens a private in-memory database, gone when the store is dropped.
    pub fn open_in_memory() -> Result<Self, Error> {
        let conn = Connection::open_in_memory().map_err(storage_error)?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, Error> {
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(storage_error)?;
        conn.execute_batch(SCHEMA).map_err(storage_error)?;
        let last: Option<String> = conn
            .query_row("SELECT MAX(createdAt) FROM operations", [], |row| {
                row.get(0)
            })
            .map_err(storage_error)?;
        let last_created_at = match last {
            Some(text) => Some(parse_timestamp(&text).ok_or_else(|| {
                Error::Storage(format!("stored timestamp is not RFC 3339: {text}"))
            })?),
            None => None,
        };
        Ok(Store {
            conn,
            last_created_at,
        })
    }

    /// Checks that the database answers.
    pub fn health_check(&self) -> Result<(), Error> {
        self.conn
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(storage_error)
    }

    /// Operations of a DID in the order they were accepted; nullified ones
    /// only when `include_nullified`.
    pub fn ops_for_did(
        &self,
        did: &str,
        include_nullified: bool,
    ) -> Result<Vec<IndexedOperation>, Error> {
        let sql = if include_nullified {
            "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
             WHERE did = ?1 ORDER BY seq ASC"
        } else {
            "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
             WHERE did = ?1 AND nullified = 0 ORDER BY seq ASC"
        };
        self.query(sql, params![did])
    }

    /// The most recent operation of a DID that is not nullified.
    pub fn last_op_for_did(&self, did: &str) -> Result<Option<IndexedOperation>, Error> {
        let mut ops = self.query(
            "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
             WHERE did = ?1 AND nullified = 0 ORDER BY seq DESC LIMIT 1",
            params![did],
        )?;
        Ok(ops.pop())
    }

    /// Up to `count` operations of all DIDs accepted strictly after `after`,
    /// oldest first.
    pub fn export(
        &self,
        after: Option<&DateTime<Utc>>,
        count: usize,
    ) -> Result<Vec<IndexedOperation>, Error> {
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        match after {
            Some(after) => self.query(
                "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
                 WHERE createdAt > ?1 ORDER BY createdAt ASC, cid ASC LIMIT ?2",
                params![format_timestamp(after), limit],
            ),
            None => self.query(
                "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
                 ORDER BY createdAt ASC, cid ASC LIMIT ?1",
                params![limit],
            ),
        }
    }

    /// Up to `count` operations of all DIDs with a sequence number above
    /// `after`, in sequence order, each with its sequence number (the
    /// position in which the directory accepted it, from 1).
    pub fn export_sequenced(
        &self,
        after: i64,
        count: usize,
    ) -> Result<Vec<(i64, IndexedOperation)>, Error> {
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        self.query_with_seq(
            "SELECT did, cid, operation, nullified, createdAt, seq FROM operations \
             WHERE seq > ?1 ORDER BY seq ASC LIMIT ?2",
            params![after, limit],
        )
    }

    /// Appends an operation to a DID's log and marks `nullify` (CIDs of the
    /// same DID) as nullified, in one transaction. Returns the stored row.
    ///
    /// The caller has validated the operation against the current log while
    /// holding exclusive access to the store, so no other write can slip in
    /// between validation and this append.
    pub fn append(
        &mut self,
        did: &str,
        cid: &Cid,
        operation: &Operation,
        nullify: &[Cid],
        now: DateTime<Utc>,
    ) -> Result<IndexedOperation, Error> {
        let created_at = self.next_timestamp(now);
        let json = operation.to_json();
        let cid_text = cid.to_string();
        let tx = self.conn.transaction().map_err(storage_error)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM operations WHERE did = ?1 AND cid = ?2",
                params![did, cid_text],
                |row| row.get(0),
            )
            .optional()
            .map_err(storage_error)?;
        if exists.is_some() {
            return Err(Error::DuplicateOperation {
                did: did.to_owned(),
                cid: cid_text,
            });
        }
        tx.execute(
            "INSERT INTO operations (did, cid, operation, nullified, createdAt) \
             VALUES (?1, ?2, ?3, 0, ?4)",
            params![did, cid_text, json, format_timestamp(&created_at)],
        )
        .map_err(storage_error)?;
        for nullified in nullify {
            tx.execute(
                "UPDATE operations SET nullified = 1 WHERE did = ?1 AND cid = ?2",
                params![did, nullified.to_string()],
            )
            .map_err(storage_error)?;
        }
        tx.commit().map_err(storage_error)?;
        self.last_created_at = Some(created_at);
        Ok(IndexedOperation {
            did: did.to_owned(),
            cid: *cid,
            operation: operation.clone(),
            nullified: false,
            created_at,
        })
    }

    /// `now` truncated to milliseconds, moved past the last acceptance time
    /// if the clock has not advanced.
    fn next_timestamp(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let millis = now.timestamp_millis();
        let now = DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or(now);
        match self.last_created_at {
            Some(last) if now <= last => last + Duration::milliseconds(1),
            _ => now,
        }
    }

    fn query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<IndexedOperation>, Error> {
        Ok(self
            .query_with_seq(sql, params)?
            .into_iter()
            .map(|(_, op)| op)
            .collect())
    }

    /// Runs a query selecting `did, cid, operation, nullified, createdAt,
    /// seq`.
    fn query_with_seq(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(i64, IndexedOperation)>, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(storage_error)?;
        let rows = stmt
            .query_map(params, |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .map_err(storage_error)?;
        let mut ops = Vec::new();
        for row in rows {
            let (did, cid, operation, nullified, created_at, seq) = row.map_err(storage_error)?;
            let operation = Operation::from_json(&operation).map_err(|e| {
                Error::Storage(format!("stored operation {cid} does not parse: {e}"))
            })?;
            let cid = atp_crypto::parse_cid(&cid)
                .map_err(|e| Error::Storage(format!("stored CID {cid} does not parse: {e}")))?;
            let created_at = parse_timestamp(&created_at).ok_or_else(|| {
                Error::Storage(format!("stored timestamp is not RFC 3339: {created_at}"))
            })?;
            ops.push((
                seq,
                IndexedOperation {
                    did,
                    cid,
                    operation,
                    nullified,
                    created_at,
                },
            ));
        }
        Ok(ops)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    /// A distinct (unsigned-looking) operation; the store does not validate.
    fn op(n: u32) -> (Operation, Cid) {
        let op = Operation::from_json_value(&serde_json::json!({
            "type": "plc_tombstone",
            "prev": format!("prev{n}"),
            "sig": "c2ln",
        }))
        .unwrap();
        let cid = op.cid().unwrap();
        (op, cid)
    }

    #[test]
    fn append_read_nullify_and_export() {
        let mut store = Store::open_in_memory().unwrap();
        let t = at("2024-01-01T00:00:00.000Z");
        let (op1, cid1) = op(1);
        let (op2, cid2) = op(2);
        let (op3, cid3) = op(3);
        store.append("did:plc:a", &cid1, &op1, &[], t).unwrap();
        store.append("did:plc:b", &cid2, &op2, &[], t).unwrap();
        store.append("did:plc:a", &cid3, &op3, &[cid1], t).unwrap();

        let all = store.ops_for_did("did:plc:a", true).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].nullified);
        assert_eq!(all[0].operation, op1);
        let live = store.ops_for_did("did:plc:a", false).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].cid, cid3);
        let last = store.last_op_for_did("did:plc:a").unwrap().unwrap();
        assert_eq!(last.cid, cid3);
        assert!(store.last_op_for_did("did:plc:zzz").unwrap().is_none());

        // The clock stood still: times are still strictly increasing.
        let export = store.export(None, 10).unwrap();
        let times: Vec<String> = export
            .iter()
            .map(|op| format_timestamp(&op.created_at))
            .collect();
        assert_eq!(
            times,
            [
                "2024-01-01T00:00:00.000Z",
                "2024-01-01T00:00:00.001Z",
                "2024-01-01T00:00:00.002Z"
            ]
        );
        let page = store.export(Some(&export[0].created_at), 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].cid, cid2);

        let sequenced = store.export_sequenced(0, 10).unwrap();
        let seqs: Vec<i64> = sequenced.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        let page = store.export_sequenced(1, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].1.cid, cid2);
    }

    #[test]
    fn duplicate_operation_is_refused() {
        let mut store = Store::open_in_memory().unwrap();
        let (op1, cid1) = op(1);
        let now = Utc::now();
        store.append("did:plc:a", &cid1, &op1, &[], now).unwrap();
        let err = store
            .append("did:plc:a", &cid1, &op1, &[], now)
            .unwrap_err();
        assert!(matches!(err, Error::DuplicateOperation { .. }));
    }

    #[test]
    fn file_database_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("plc-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plc.sqlite");
        let _ = std::fs::remove_file(&path);
        let later = at("2030-01-01T00:00:00.000Z");
        let (op1, cid1) = op(1);
        let (op2, cid2) = op(2);
        {
            let mut store = Store::open(&path).unwrap();
            store.append("did:plc:a", &cid1, &op1, &[], later).unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let ops = store.ops_for_did("did:plc:a", false).unwrap();
        assert_eq!(ops[0].operation, op1);
        // Monotonic across restarts: an earlier clock does not go back.
        let next = store
            .append("did:plc:a", &cid2, &op2, &[], Utc::now())
            .unwrap();
        assert_eq!(
            format_timestamp(&next.created_at),
            "2030-01-01T00:00:00.001Z"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
