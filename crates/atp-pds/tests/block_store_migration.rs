//! Migration 4 of an account store: blocks keyed by their CID's text move
//! to a table keyed by the CID's bytes. A store written with the version-3
//! schema (blocks inserted as the earlier code did) opens, keeps every
//! block with the same bytes, and exports the same CARs.

#![allow(clippy::unwrap_used)]

mod store_walk;

use std::collections::BTreeMap;
use std::path::Path;

use atp_crypto::Cid;
use atp_pds::actor_store::{ActorStore, ActorStores, MIGRATIONS};
use atp_pds::db::{migrate, open_connection, schema_version};
use atp_repo_mst::blockstore::BlockStore;
use store_walk::{expected_car, filled_store, post, DID, POSTS};

/// Every row of `repo_block` in `store`: (CID, rev, size, content).
type BlockRow = (Cid, Option<String>, i64, Vec<u8>);

fn block_rows(store: &ActorStore) -> Vec<BlockRow> {
    let mut rows: Vec<BlockRow> = store
        .database()
        .read(|tx| {
            let mut stmt = tx.prepare("SELECT cid, repo_rev, size, content FROM repo_block")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap()
        .into_iter()
        .map(|(cid, rev, size, content)| {
            (
                atp_crypto::cids::cid_from_bytes(&cid).unwrap(),
                rev,
                size,
                content,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Writes, in `dir`, a version-3 store holding the same repository as
/// `source` (its blocks as `repo_block` rows keyed by CID text, as the
/// code before migration 4 wrote them), with `source`'s signing key.
fn write_version_3_store(source: &ActorStore, blocks: &[BlockRow], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(source.dir().join("key"), dir.join("key")).unwrap();
    let mut conn = open_connection(&dir.join("store.sqlite")).unwrap();
    assert_eq!(migrate(&mut conn, &MIGRATIONS[..3]).unwrap(), 3);
    let columns: String = conn
        .query_row(
            "SELECT group_concat(name || ':' || type || ':' || pk) FROM pragma_table_info('repo_block')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        columns,
        "cid:TEXT:1,repo_rev:TEXT:0,size:INTEGER:0,content:BLOB:0"
    );
    let tx = conn.transaction().unwrap();
    for (cid, rev, size, content) in blocks {
        tx.execute(
            "INSERT INTO repo_block (cid, repo_rev, size, content) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![cid.to_string(), rev, size, content],
        )
        .unwrap();
    }
    let source_path = source.database().path().to_str().unwrap().to_owned();
    tx.execute("ATTACH DATABASE ?1 AS source", [&source_path])
        .unwrap();
    for table in ["repo_root", "record", "backlink", "record_blob", "blob"] {
        tx.execute(
            &format!("INSERT INTO {table} SELECT * FROM source.{table}"),
            [],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.execute("DETACH DATABASE source", []).unwrap();
}

#[test]
fn a_version_3_store_keeps_every_block_and_exports_the_same_cars() {
    let source_dir = tempfile::tempdir().unwrap();
    let source_stores = ActorStores::new(source_dir.path()).unwrap();
    let (source, revs) = filled_store(&source_stores, 3, 700, |round, i| {
        format!("post {round} {i}")
    });
    let blocks = block_rows(&source);
    assert!(blocks.len() > 2100 + 700, "{} blocks", blocks.len());
    let whole = source
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(whole, expected_car(&source).0);
    let since = source
        .block_store()
        .write_repo_car(Some(&revs[0]), Vec::new())
        .unwrap()
        .unwrap();

    let old_dir = tempfile::tempdir().unwrap();
    let old_stores = ActorStores::new(old_dir.path()).unwrap();
    write_version_3_store(&source, &blocks, &old_stores.dir_for(DID));

    let migrated = old_stores.open(DID).unwrap();
    // Checkpointed after the migration: readers find nothing in the WAL.
    let wal = migrated.dir().join("store.sqlite-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    {
        let conn = migrated.database().lock_writer().unwrap();
        assert_eq!(schema_version(&conn).unwrap() as usize, MIGRATIONS.len());
        let tables: Vec<String> = conn
            .prepare(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'repo_block%'",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables.len(), 1, "{tables:?}");
        assert!(tables[0].contains("cid BLOB PRIMARY KEY"), "{}", tables[0]);
    }
    // Every block, with its rev, size and bytes.
    assert_eq!(block_rows(&migrated), blocks);
    assert_eq!(migrated.block_store().count().unwrap(), blocks.len() as u64);
    let all = migrated.block_store().all_blocks().unwrap();
    assert_eq!(all.len(), blocks.len());
    for (cid, _, _, content) in &blocks {
        assert_eq!(&migrated.block_store().get_required(cid).unwrap(), content);
        assert_eq!(all.get(cid), Some(content));
    }
    // The same CARs as the store written with the new schema.
    let migrated_whole = migrated
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(migrated_whole, whole);
    assert_eq!(migrated_whole, expected_car(&migrated).0);
    let migrated_since = migrated
        .block_store()
        .write_repo_car(Some(&revs[0]), Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(migrated_since, since);
    // Records read through the record index and the new table.
    let (entry, bytes) = migrated
        .get_record(POSTS, &format!("3k{:011}", 4))
        .unwrap()
        .unwrap();
    assert_eq!(atp_crypto::cid_for_dag_cbor(&bytes), entry.cid);
    let page = migrated.list_record_values(POSTS, 50, None, false).unwrap();
    assert_eq!(page.len(), 50);

    // The migrated store takes new commits, and reopening migrates nothing.
    let key = migrated.signing_key().unwrap();
    let mut repo = migrated.open_repo().unwrap();
    repo.create_record(POSTS, "3kzzzzzzzzzzz", &post("after"))
        .unwrap();
    migrated
        .commit(&mut repo, &key, "3jzfcijpj2z3z", &BTreeMap::new())
        .unwrap();
    assert_eq!(
        migrated
            .block_store()
            .write_repo_car(None, Vec::new())
            .unwrap()
            .unwrap(),
        expected_car(&migrated).0
    );
    drop(migrated);
    drop(old_stores);
    let reopened = ActorStore::open(&actor_dir(old_dir.path()), DID).unwrap();
    let applied: i64 = reopened
        .database()
        .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM schema_version", [], |row| row.get(0))?))
        .unwrap();
    assert_eq!(applied as usize, MIGRATIONS.len());
}

fn actor_dir(root: &Path) -> std::path::PathBuf {
    atp_pds::actor_store::actor_dir(root, DID)
}

#[test]
fn a_version_3_store_with_no_blocks_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut conn = open_connection(&path).unwrap();
    assert_eq!(migrate(&mut conn, &MIGRATIONS[..3]).unwrap(), 3);
    assert_eq!(
        migrate(&mut conn, MIGRATIONS).unwrap() as usize,
        MIGRATIONS.len()
    );
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM repo_block", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 0);
}

#[test]
fn a_version_3_store_with_an_unreadable_cid_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut conn = open_connection(&path).unwrap();
    assert_eq!(migrate(&mut conn, &MIGRATIONS[..3]).unwrap(), 3);
    conn.execute(
        "INSERT INTO repo_block (cid, repo_rev, size, content) VALUES ('not a cid', NULL, 1, x'00')",
        [],
    )
    .unwrap();
    let err = migrate(&mut conn, MIGRATIONS).unwrap_err();
    assert!(matches!(err, atp_pds::Error::Migration(_)), "{err}");
    assert!(err.to_string().contains("not a cid"), "{err}");
    assert_eq!(schema_version(&conn).unwrap(), 3);
    let kept: String = conn
        .query_row("SELECT cid FROM repo_block", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "not a cid");
}
