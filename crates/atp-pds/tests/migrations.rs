//! Versioned migrations: from an empty file, idempotent on reopen, one
//! transaction per step.

#![allow(clippy::unwrap_used)]

use atp_pds::db::{migrate, open_connection, schema_version, Database, Migration};
use atp_pds::Error;

const STEPS: &[Migration] = &[
    Migration {
        version: 1,
        description: "first table",
        run: None,
        sql: "CREATE TABLE a (x INTEGER);",
    },
    Migration {
        version: 2,
        description: "second table",
        run: None,
        sql: "CREATE TABLE b (y TEXT);",
    },
];

fn tables(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn from_empty_then_reopen_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    let mut conn = open_connection(&path).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 0);
    assert_eq!(migrate(&mut conn, &STEPS[..1]).unwrap(), 1);
    assert_eq!(migrate(&mut conn, STEPS).unwrap(), 2);
    drop(conn);

    let mut conn = open_connection(&path).unwrap();
    assert_eq!(migrate(&mut conn, STEPS).unwrap(), 2);
    let applied: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(applied, 2);
    assert_eq!(tables(&conn), ["a", "b", "schema_version"]);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn failing_step_rolls_back_and_keeps_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    let broken = [
        STEPS[0],
        Migration {
            version: 2,
            description: "half broken",
            run: None,
            sql: "CREATE TABLE c (z INTEGER); CREATE TABLE oops (;",
        },
    ];
    let mut conn = open_connection(&path).unwrap();
    assert!(matches!(
        migrate(&mut conn, &broken),
        Err(Error::Migration(_))
    ));
    assert_eq!(schema_version(&conn).unwrap(), 1);
    assert_eq!(
        tables(&conn),
        ["a", "schema_version"],
        "table c rolled back"
    );
    // The fixed step applies afterwards.
    assert_eq!(migrate(&mut conn, STEPS).unwrap(), 2);
}

#[test]
fn newer_file_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    Database::open(&path, STEPS).unwrap();
    assert!(matches!(
        Database::open(&path, &STEPS[..1]),
        Err(Error::Migration(_))
    ));
    let gap = [STEPS[1]];
    let other = dir.path().join("y.sqlite");
    assert!(matches!(
        Database::open(&other, &gap),
        Err(Error::Migration(_))
    ));
}

#[test]
fn real_schemas_migrate_from_empty_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    for (name, steps) in [
        ("account.sqlite", atp_pds::account::MIGRATIONS),
        ("store.sqlite", atp_pds::actor_store::MIGRATIONS),
    ] {
        let path = dir.path().join(name);
        Database::open(&path, steps).unwrap();
        let db = Database::open(&path, steps).unwrap();
        let version = db.read(|tx| Ok(schema_version(tx).unwrap())).unwrap();
        assert_eq!(version as usize, steps.len());
    }
}

#[tokio::test]
async fn async_reads_and_writes_run_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Database::open(&dir.path().join("x.sqlite"), STEPS).unwrap());
    let mut tasks = Vec::new();
    for i in 0..20i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write_async(move |tx| {
                tx.execute("INSERT INTO a (x) VALUES (?1)", [i])?;
                Ok(())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let sum: i64 = db
        .read_async(|tx| Ok(tx.query_row("SELECT SUM(x) FROM a", [], |row| row.get(0))?))
        .await
        .unwrap();
    assert_eq!(sum, (0..20).sum::<i64>());
}

fn fill_b(tx: &rusqlite::Transaction<'_>) -> atp_pds::Result<()> {
    let mut insert = tx.prepare("INSERT INTO b (y) VALUES (?1)")?;
    for x in tx
        .prepare("SELECT x FROM a ORDER BY x")?
        .query_map([], |row| row.get::<_, i64>(0))?
    {
        insert.execute([format!("converted {}", x?)])?;
    }
    Ok(())
}

fn refuse(_: &rusqlite::Transaction<'_>) -> atp_pds::Result<()> {
    Err(Error::Corrupt("cannot convert".to_owned()))
}

#[test]
fn a_step_with_rust_code_runs_after_its_sql_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    let mut conn = open_connection(&path).unwrap();
    assert_eq!(migrate(&mut conn, &STEPS[..1]).unwrap(), 1);
    conn.execute_batch("INSERT INTO a (x) VALUES (2), (1)")
        .unwrap();

    // A failing Rust part undoes the step's SQL too.
    let failing = [
        STEPS[0],
        Migration {
            version: 2,
            description: "convert, refused",
            run: Some(refuse),
            sql: "CREATE TABLE b (y TEXT);",
        },
    ];
    let err = migrate(&mut conn, &failing).unwrap_err();
    assert!(err.to_string().contains("cannot convert"), "{err}");
    assert_eq!(schema_version(&conn).unwrap(), 1);
    assert_eq!(tables(&conn), ["a", "schema_version"]);

    let converting = [
        STEPS[0],
        Migration {
            version: 2,
            description: "convert",
            run: Some(fill_b),
            sql: "CREATE TABLE b (y TEXT);",
        },
    ];
    assert_eq!(migrate(&mut conn, &converting).unwrap(), 2);
    let rows: Vec<String> = conn
        .prepare("SELECT y FROM b ORDER BY rowid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, ["converted 1", "converted 2"]);
    // An existing file that went through such a step is checkpointed.
    let wal = std::fs::metadata(dir.path().join("x.sqlite-wal")).unwrap();
    assert_eq!(wal.len(), 0);
}
