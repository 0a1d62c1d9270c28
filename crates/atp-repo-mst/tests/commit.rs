//! Signed commits: round trips on both curves, rejection of tampered
//! commits, rev ordering, and the repository write/commit cycle.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use atp_crypto::{cid_for_dag_cbor, dagcbor, Algorithm, Ipld, SigningKey};
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::commit::{Commit, UnsignedCommit};
use atp_repo_mst::mst::Mst;
use atp_repo_mst::repo::{Repo, WriteAction};
use atp_repo_mst::Error;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

fn data() -> atp_crypto::Cid {
    cid_for_dag_cbor(&[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6])
}

fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("text".to_owned(), Ipld::String(text.to_owned())),
    ]))
}

#[test]
fn sign_and_verify_on_both_curves() {
    for alg in [Algorithm::K256, Algorithm::P256] {
        let key = SigningKey::generate(alg);
        let commit = UnsignedCommit::new(DID, data(), "3jzfcijpj2z2a")
            .unwrap()
            .sign(&key)
            .unwrap();
        assert_eq!(commit.sig.len(), 64);
        commit.verify(&key.public_key()).unwrap();
        commit.verify_did_key(&key.did_key()).unwrap();
        let (cid, bytes) = commit.to_block().unwrap();
        assert_eq!(cid, cid_for_dag_cbor(&bytes));
        assert_eq!(Commit::from_block(&bytes).unwrap(), commit);
        // `prev` is written, as null.
        let Ipld::Map(map) = dagcbor::decode_ipld(&bytes).unwrap() else {
            panic!("commit is not a map")
        };
        assert_eq!(map.get("prev"), Some(&Ipld::Null));
        assert_eq!(map.get("version"), Some(&Ipld::Integer(3)));
        assert_eq!(map.len(), 6);
    }
}

#[test]
fn tampered_commits_are_rejected() {
    let key = SigningKey::generate(Algorithm::K256);
    let other = SigningKey::generate(Algorithm::K256);
    let commit = UnsignedCommit::new(DID, data(), "3jzfcijpj2z2a")
        .unwrap()
        .sign(&key)
        .unwrap();
    let bad = |c: &Commit| {
        matches!(
            c.verify(&key.public_key()),
            Err(Error::BadCommitSignature(_))
        )
    };

    let mut c = commit.clone();
    c.data = cid_for_dag_cbor(&[0xa0]);
    assert!(bad(&c));
    let mut c = commit.clone();
    c.rev = "3jzfcijpj2z2b".to_owned();
    assert!(bad(&c));
    let mut c = commit.clone();
    c.did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned();
    assert!(bad(&c));
    let mut c = commit.clone();
    c.prev = Some(data());
    assert!(bad(&c));
    let mut c = commit.clone();
    c.sig[10] ^= 1;
    assert!(bad(&c));
    let mut c = commit.clone();
    c.sig.truncate(63);
    assert!(bad(&c));
    assert!(commit.verify(&other.public_key()).is_err());
    assert!(commit.verify_did_key(&other.did_key()).is_err());
}

#[test]
fn malformed_commit_blocks_are_rejected() {
    let key = SigningKey::generate(Algorithm::K256);
    let mut commit = UnsignedCommit::new(DID, data(), "3jzfcijpj2z2a")
        .unwrap()
        .sign(&key)
        .unwrap();
    commit.version = 2;
    let (_, bytes) = commit.to_block().unwrap();
    assert!(matches!(
        Commit::from_block(&bytes),
        Err(Error::InvalidCommit(_))
    ));

    // An extra field.
    let mut map = BTreeMap::new();
    map.insert("did".to_owned(), Ipld::String(DID.to_owned()));
    map.insert("rev".to_owned(), Ipld::String("3jzfcijpj2z2a".to_owned()));
    map.insert("sig".to_owned(), Ipld::Bytes(vec![0; 64]));
    map.insert("data".to_owned(), Ipld::Link(data()));
    map.insert("prev".to_owned(), Ipld::Null);
    map.insert("version".to_owned(), Ipld::Integer(3));
    let good = dagcbor::encode_ipld(&Ipld::Map(map.clone())).unwrap();
    Commit::from_block(&good).unwrap();
    map.insert("extra".to_owned(), Ipld::Integer(1));
    let extra = dagcbor::encode_ipld(&Ipld::Map(map)).unwrap();
    assert!(Commit::from_block(&extra).is_err());

    // Bad DID or rev syntax when creating.
    assert!(UnsignedCommit::new("not-a-did", data(), "3jzfcijpj2z2a").is_err());
    assert!(UnsignedCommit::new(DID, data(), "not-a-tid").is_err());
}

#[test]
fn repository_write_and_commit_cycle() {
    let key = SigningKey::generate(Algorithm::P256);
    let store = MemoryBlockStore::new();
    let mut repo = Repo::create(&store, DID).unwrap();

    let a = repo
        .create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post("a"))
        .unwrap();
    let b = repo
        .create_record("app.bsky.feed.post", "3jzfcijpj2z2b", &post("b"))
        .unwrap();
    assert!(matches!(
        repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post("again")),
        Err(Error::RecordExists(_))
    ));
    // Written then deleted before the commit: no op, no block.
    let gone = repo
        .create_record("app.bsky.feed.like", "3jzfcijpj2z2c", &post("x"))
        .unwrap();
    repo.delete_record("app.bsky.feed.like", "3jzfcijpj2z2c")
        .unwrap();

    let first = repo.commit(&key, "3jzfcijpj2z2d").unwrap();
    assert_eq!(first.since, None);
    assert_eq!(first.prev, None);
    assert_eq!(first.ops.len(), 2);
    assert!(first.ops.iter().all(|op| op.action == WriteAction::Create));
    assert!(first.blocks.contains_key(&a));
    assert!(first.blocks.contains_key(&b));
    assert!(!first.blocks.contains_key(&gone));
    assert!(first.blocks.contains_key(&first.cid));
    for (cid, bytes) in &first.blocks {
        assert_eq!(store.get(cid).unwrap().as_ref(), Some(bytes));
    }
    repo.verify_head(&key.public_key()).unwrap();

    // The MST root in the commit is the root of the records alone.
    let mut expected = Mst::new(MemoryBlockStore::new());
    expected
        .insert("app.bsky.feed.post/3jzfcijpj2z2a", a)
        .unwrap();
    expected
        .insert("app.bsky.feed.post/3jzfcijpj2z2b", b)
        .unwrap();
    assert_eq!(first.commit.data, expected.root().unwrap());

    // Revs only go forward.
    assert!(matches!(
        repo.commit(&key, "3jzfcijpj2z2d"),
        Err(Error::RevNotIncreasing { .. })
    ));
    assert!(matches!(
        repo.commit(&key, "3jzfcijpj2z2a"),
        Err(Error::RevNotIncreasing { .. })
    ));

    // Reopen from the head, update one record and delete the other.
    let mut repo = Repo::load(&store, first.cid).unwrap();
    repo.verify_head(&key.public_key()).unwrap();
    assert_eq!(
        repo.get_record("app.bsky.feed.post", "3jzfcijpj2z2a")
            .unwrap(),
        Some((a, post("a")))
    );
    let (a2, prev) = repo
        .update_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post("a2"))
        .unwrap();
    assert_eq!(prev, a);
    assert_eq!(
        repo.delete_record("app.bsky.feed.post", "3jzfcijpj2z2b")
            .unwrap(),
        b
    );
    assert!(matches!(
        repo.delete_record("app.bsky.feed.post", "3jzfcijpj2z2b"),
        Err(Error::RecordNotFound(_))
    ));
    let second = repo.commit(&key, "3jzfcijpj2z2e").unwrap();
    assert_eq!(second.since.as_deref(), Some("3jzfcijpj2z2d"));
    assert_eq!(second.prev, Some(first.cid));
    assert_eq!(second.prev_data, Some(first.commit.data));
    let actions: Vec<_> = second
        .ops
        .iter()
        .map(|op| (op.action, op.cid, op.prev))
        .collect();
    assert_eq!(
        actions,
        [
            (WriteAction::Update, Some(a2), Some(a)),
            (WriteAction::Delete, None, Some(b))
        ]
    );
    let listed = repo
        .list_records("app.bsky.feed.post", None, 10, false)
        .unwrap();
    assert_eq!(listed, [("3jzfcijpj2z2a".to_owned(), a2)]);
    // Old blocks are not written again.
    assert!(!second.blocks.contains_key(&a));

    // Bad collection / record key syntax.
    assert!(repo.create_record("not an nsid", "x", &post("x")).is_err());
    assert!(repo
        .create_record("app.bsky.feed.post", "..", &post("x"))
        .is_err());
}

/// A version-2 commit (old repositories) without `rev`, signed over its
/// own fields: only the legacy reader accepts it, and its signature
/// verifies over exactly the fields it has.
#[test]
fn version_2_commits_are_read_only_when_asked_for() {
    let key = SigningKey::generate(Algorithm::P256);
    let mut map = BTreeMap::from([
        ("did".to_owned(), Ipld::String(DID.to_owned())),
        ("data".to_owned(), Ipld::Link(data())),
        ("prev".to_owned(), Ipld::Null),
        ("version".to_owned(), Ipld::Integer(2)),
    ]);
    let unsigned = dagcbor::encode_ipld(&Ipld::Map(map.clone())).unwrap();
    map.insert("sig".to_owned(), Ipld::Bytes(key.sign(&unsigned).to_vec()));
    let bytes = dagcbor::encode_ipld(&Ipld::Map(map.clone())).unwrap();

    assert!(matches!(
        Commit::from_block(&bytes),
        Err(Error::InvalidCommit(_))
    ));
    let commit = Commit::from_legacy_block(&bytes).unwrap();
    assert_eq!(commit.version, 2);
    assert_eq!(commit.rev, "");
    commit.verify(&key.public_key()).unwrap();
    assert_eq!(commit.to_block().unwrap().1, bytes);

    // `prev` must be present (null) in version 2 too.
    map.remove("prev");
    let no_prev = dagcbor::encode_ipld(&Ipld::Map(map)).unwrap();
    assert!(Commit::from_legacy_block(&no_prev).is_err());
}

#[test]
fn pending_record_bytes_count_the_records_until_the_commit() {
    let key = SigningKey::generate(Algorithm::K256);
    let mut repo = Repo::create(MemoryBlockStore::new(), DID).unwrap();
    assert_eq!(repo.pending_record_bytes(), 0);
    let first = post("first");
    let second = post("a second, longer post");
    repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &first)
        .unwrap();
    let one = dagcbor::encode_ipld(&first).unwrap().len();
    assert_eq!(repo.pending_record_bytes(), one);
    repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2b", &second)
        .unwrap();
    let two = dagcbor::encode_ipld(&second).unwrap().len();
    assert_eq!(repo.pending_record_bytes(), one + two);
    // A refused write adds nothing.
    assert!(repo
        .create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &second)
        .is_err());
    assert_eq!(repo.pending_record_bytes(), one + two);
    let commit = repo.commit(&key, "3jzfcijpj2z2c").unwrap();
    assert_eq!(commit.ops.len(), 2);
    assert_eq!(repo.pending_record_bytes(), 0);
}
