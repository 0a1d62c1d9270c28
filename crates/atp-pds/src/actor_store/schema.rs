//! The schema of an account's store: its migrations, one of which converts
//! stored blocks with Rust code.

use atp_crypto::Cid;
use rusqlite::types::ToSqlOutput;
use rusqlite::{params, Transaction};

use crate::db::Migration;
use crate::error::{Error, Result};

/// The schema of an account's store.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "repo root, blocks, record index, blobs, preferences",
        run: None,
        sql: "
        CREATE TABLE repo_root (
            did TEXT PRIMARY KEY,
            cid TEXT NOT NULL,
            rev TEXT NOT NULL,
            indexed_at TEXT NOT NULL
        );
        CREATE TABLE repo_block (
            cid TEXT PRIMARY KEY,
            repo_rev TEXT,
            size INTEGER NOT NULL,
            content BLOB NOT NULL
        );
        CREATE INDEX repo_block_rev ON repo_block(repo_rev, cid);
        CREATE TABLE record (
            uri TEXT PRIMARY KEY,
            cid TEXT NOT NULL,
            collection TEXT NOT NULL,
            rkey TEXT NOT NULL,
            repo_rev TEXT NOT NULL,
            indexed_at TEXT NOT NULL,
            takedown_ref TEXT
        );
        CREATE INDEX record_collection_rkey ON record(collection, rkey);
        CREATE TABLE blob (
            cid TEXT PRIMARY KEY,
            mime_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            takedown_ref TEXT
        );
        CREATE TABLE record_blob (
            blob_cid TEXT NOT NULL,
            record_uri TEXT NOT NULL,
            PRIMARY KEY (blob_cid, record_uri)
        );
        CREATE INDEX record_blob_uri ON record_blob(record_uri);
        CREATE TABLE account_pref (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            value_json TEXT NOT NULL
        );
    ",
    },
    Migration {
        version: 2,
        description: "blob temporary keys (uploads not yet referenced by a record)",
        run: None,
        sql: "
        ALTER TABLE blob ADD COLUMN temp_key TEXT;
        CREATE INDEX blob_temp_key ON blob(temp_key);
    ",
    },
    Migration {
        version: 3,
        description: "record backlinks (follow, block, like and repost subjects)",
        run: None,
        sql: "
        CREATE TABLE backlink (
            uri TEXT NOT NULL,
            path TEXT NOT NULL,
            link_to TEXT NOT NULL,
            PRIMARY KEY (uri, path)
        );
        CREATE INDEX backlink_link_to ON backlink(path, link_to);
    ",
    },
    Migration {
        version: 4,
        description: "blocks keyed by the CID's binary form",
        run: Some(copy_text_keyed_blocks),
        sql: "
        DROP INDEX repo_block_rev;
        ALTER TABLE repo_block RENAME TO repo_block_text_keys;
        CREATE TABLE repo_block (
            cid BLOB PRIMARY KEY,
            repo_rev TEXT,
            size INTEGER NOT NULL,
            content BLOB NOT NULL
        );
        CREATE INDEX repo_block_rev ON repo_block(repo_rev, cid);
    ",
    },
    Migration {
        version: 5,
        description: "record index by CID (whether a record block is still used)",
        run: None,
        sql: "
        CREATE INDEX record_cid ON record(cid);
    ",
    },
];

/// Migration 4's Rust part: copies the blocks of the old table (CIDs as
/// text) into the new one (CIDs as bytes), then drops the old table. The
/// rows are copied in the old table's order (the order they were written
/// in), which keeps the blocks of one commit next to each other in the
/// file: see [`crate::repo_car`] on why that matters.
fn copy_text_keyed_blocks(tx: &Transaction<'_>) -> Result<()> {
    {
        let mut read =
            tx.prepare("SELECT cid, repo_rev, size, content FROM repo_block_text_keys")?;
        let mut write = tx.prepare(
            "INSERT OR IGNORE INTO repo_block (cid, repo_rev, size, content) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let text: &str = row
                .get_ref(0)?
                .as_str()
                .map_err(|err| Error::Corrupt(format!("stored block CID: {err}")))?;
            // Lenient on purpose: whatever CID the old table holds keeps
            // its block.
            let cid = Cid::try_from(text)
                .map_err(|err| Error::Corrupt(format!("stored block CID {text:?}: {err}")))?;
            let column = |index| row.get_ref(index).map(ToSqlOutput::Borrowed);
            write.execute(params![cid.to_bytes(), column(1)?, column(2)?, column(3)?])?;
        }
    }
    tx.execute_batch("DROP TABLE repo_block_text_keys")?;
    Ok(())
}
