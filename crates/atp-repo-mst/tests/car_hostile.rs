//! Hostile CAR files: every malformed input is an error, never a panic, and
//! the reader never reads or allocates beyond its limits.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{self, Read};

use atp_crypto::{cid_for_dag_cbor, dagcbor, Cid, Ipld};
use atp_repo_mst::car::{
    encode_header, read_car, read_car_with_limits, write_car, write_varint, CarLimits, CarReader,
};
use atp_repo_mst::Error;

fn sample_blocks(n: u64) -> Vec<(Cid, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let bytes = dagcbor::encode_ipld(&Ipld::Map(BTreeMap::from([(
                "n".to_owned(),
                Ipld::Integer(i128::from(i)),
            )])))
            .unwrap();
            (cid_for_dag_cbor(&bytes), bytes)
        })
        .collect()
}

fn sample_car() -> (Vec<u8>, Vec<(Cid, Vec<u8>)>) {
    let blocks = sample_blocks(5);
    let car = write_car(
        &[blocks[0].0],
        blocks.iter().map(|(c, b)| (c, b.as_slice())),
    )
    .unwrap();
    (car, blocks)
}

/// A header followed by `rest`.
fn with_header(rest: &[u8]) -> Vec<u8> {
    let (cid, _) = &sample_blocks(1)[0];
    let header = encode_header(&[*cid]).unwrap();
    let mut out = Vec::new();
    write_varint(&mut out, header.len() as u64);
    out.extend_from_slice(&header);
    out.extend_from_slice(rest);
    out
}

/// A reader that counts the bytes handed out.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[test]
fn every_truncation_is_an_error_or_a_clean_prefix() {
    let (car, blocks) = sample_car();
    // Offsets where a section ends: truncation there is a shorter, valid CAR.
    let mut boundaries = Vec::new();
    let mut reader = CarReader::new(car.as_slice()).unwrap();
    boundaries.push(reader.bytes_read());
    while reader.next_block().unwrap().is_some() {
        boundaries.push(reader.bytes_read());
    }
    for cut in 0..car.len() {
        let result = read_car(&car[..cut]);
        if boundaries.contains(&(cut as u64)) {
            let (_, read) = result.unwrap();
            let expected = boundaries.iter().position(|b| *b == cut as u64).unwrap();
            assert_eq!(read.len(), expected, "cut at {cut}");
            for (cid, _) in &blocks[..expected] {
                assert!(read.contains_key(cid));
            }
        } else {
            assert!(
                matches!(result, Err(Error::InvalidCar(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }
}

#[test]
fn flipped_block_byte_is_a_hash_mismatch() {
    let (car, _) = sample_car();
    let last = car.len() - 1;
    let mut bad = car.clone();
    bad[last] ^= 0x01;
    assert!(matches!(read_car(&bad), Err(Error::BlockHashMismatch(_))));
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let (car, _) = sample_car();
    for i in 0..car.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = car.clone();
            bad[i] ^= flip;
            // Must not panic; most corruptions are errors, a few (e.g. in
            // the root CID digest) still read as a valid CAR.
            let _ = read_car(&bad);
        }
    }
}

#[test]
fn huge_and_overlong_varints() {
    // Header length of 2^62: a limit error, nothing allocated.
    let mut huge = Vec::new();
    write_varint(&mut huge, 1 << 62);
    assert!(matches!(read_car(&huge), Err(Error::CarLimitExceeded(_))));
    // Ten-byte varint.
    assert!(matches!(read_car(&[0xff; 12]), Err(Error::InvalidCar(_))));
    // Non-minimal varint for the header length.
    let (car, _) = sample_car();
    let mut overlong = vec![car[0] | 0x80, 0x00];
    overlong.extend_from_slice(&car[1..]);
    assert!(matches!(read_car(&overlong), Err(Error::InvalidCar(_))));
    // Zero-length header.
    assert!(matches!(read_car(&[0x00]), Err(Error::InvalidCar(_))));
    // Empty input.
    assert!(matches!(read_car(&[]), Err(Error::InvalidCar(_))));
}

#[test]
fn enormous_declared_block_length() {
    for len in [u64::from(u32::MAX), 1 << 40, (1 << 63) - 1] {
        let mut rest = Vec::new();
        write_varint(&mut rest, len);
        rest.extend_from_slice(&[0x01, 0x71, 0x12, 0x20]);
        let car = with_header(&rest);
        assert!(matches!(read_car(&car), Err(Error::CarLimitExceeded(_))));
    }
    // Declared length within the limits but far past the end of input.
    let mut rest = Vec::new();
    write_varint(&mut rest, 1_000_000);
    rest.extend_from_slice(&sample_blocks(1)[0].0.to_bytes());
    rest.extend_from_slice(&[0xa0; 10]);
    assert!(matches!(
        read_car(&with_header(&rest)),
        Err(Error::InvalidCar(_))
    ));
}

#[test]
fn section_shorter_than_a_cid() {
    let car = with_header(&[0x05, 0x01, 0x71, 0x12, 0x20, 0x00]);
    assert!(matches!(read_car(&car), Err(Error::InvalidCar(_))));
}

#[test]
fn unsupported_cids_are_rejected() {
    let block = b"\xa0".to_vec();
    let digest = atp_crypto::sha256(&block);
    let cases: Vec<Vec<u8>> = vec![
        // CIDv0: a bare sha2-256 multihash.
        [&[0x12, 0x20][..], &digest[..], &[0, 0][..]].concat(),
        // dag-pb codec.
        [&[0x01, 0x70, 0x12, 0x20][..], &digest[..]].concat(),
        // sha2-512 code with a 32-byte digest.
        [&[0x01, 0x71, 0x13, 0x20][..], &digest[..]].concat(),
        // Identity hash.
        [&[0x01, 0x71, 0x00, 0x20][..], &digest[..]].concat(),
        // Version 2.
        [&[0x02, 0x71, 0x12, 0x20][..], &digest[..]].concat(),
    ];
    for cid in cases {
        let mut rest = Vec::new();
        write_varint(&mut rest, (cid.len() + block.len()) as u64);
        rest.extend_from_slice(&cid);
        rest.extend_from_slice(&block);
        let car = with_header(&rest);
        assert!(
            matches!(read_car(&car), Err(Error::InvalidCar(_))),
            "{cid:02x?}"
        );
    }
}

#[test]
fn header_with_cidv0_root_or_wrong_version() {
    let mut header = Vec::new();
    // {"roots": [], "version": 2}
    header.extend_from_slice(b"\xa2\x65roots\x80\x67version\x02");
    let mut car = Vec::new();
    write_varint(&mut car, header.len() as u64);
    car.extend_from_slice(&header);
    assert!(matches!(read_car(&car), Err(Error::InvalidCar(_))));
    // Non-canonical header (keys in the wrong order).
    let header = b"\xa2\x67version\x01\x65roots\x80";
    let mut car = Vec::new();
    write_varint(&mut car, header.len() as u64);
    car.extend_from_slice(header);
    assert!(matches!(read_car(&car), Err(Error::InvalidCar(_))));
    // Header is not CBOR at all.
    assert!(matches!(
        read_car(&[0x02, 0xff, 0xff]),
        Err(Error::InvalidCar(_))
    ));
}

#[test]
fn endless_input_stops_at_the_total_limit() {
    // A valid header followed by an endless run of the same valid block:
    // reading stops at the limit, having read no more than the limit.
    let (cid, bytes) = sample_blocks(1).remove(0);
    let mut section = Vec::new();
    write_varint(&mut section, (36 + bytes.len()) as u64);
    section.extend_from_slice(&cid.to_bytes());
    section.extend_from_slice(&bytes);
    let head = with_header(&[]);
    let endless = head.as_slice().chain(Cycle::new(section));
    let limits = CarLimits {
        max_total_bytes: 100_000,
        ..CarLimits::default()
    };
    let mut counting = Counting {
        inner: endless,
        count: 0,
    };
    let mut reader = CarReader::with_limits(&mut counting, limits).unwrap();
    let mut n = 0u64;
    let err = loop {
        match reader.next_block() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("endless input ended"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::CarLimitExceeded(_)), "{err}");
    assert!(n > 100);
    drop(reader);
    assert!(counting.count <= 100_000 + 16, "read {}", counting.count);

    // Same with a block-count limit.
    let limits = CarLimits {
        max_blocks: 10,
        ..CarLimits::default()
    };
    let source = head.as_slice().chain(Cycle::new(sample_section()));
    let err = CarReader::with_limits(source, limits)
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert!(matches!(err, Error::CarLimitExceeded(_)));
}

#[test]
fn endless_continuation_bytes_are_an_error() {
    let source = with_header(&[]);
    let endless = source.as_slice().chain(io::repeat(0x80));
    let mut reader = CarReader::new(endless).unwrap();
    assert!(matches!(reader.next_block(), Err(Error::InvalidCar(_))));
    // The iterator is fused after an error.
    assert!(reader.next().is_none());
}

#[test]
fn commit_event_limits() {
    // A block over 1,000,000 bytes is refused under the firehose limits.
    let big = vec![0x41; 1_000_001];
    let cid = atp_crypto::cid_for_raw(&big);
    let car = write_car(&[cid], [(&cid, big.as_slice())]).unwrap();
    assert!(matches!(
        read_car_with_limits(&car, CarLimits::COMMIT_EVENT),
        Err(Error::CarLimitExceeded(_))
    ));
    assert!(read_car(&car).is_ok());
}

fn sample_section() -> Vec<u8> {
    let (cid, bytes) = sample_blocks(1).remove(0);
    let mut section = Vec::new();
    write_varint(&mut section, (36 + bytes.len()) as u64);
    section.extend_from_slice(&cid.to_bytes());
    section.extend_from_slice(&bytes);
    section
}

/// Repeats `bytes` forever.
struct Cycle {
    bytes: Vec<u8>,
    pos: usize,
}

impl Cycle {
    fn new(bytes: Vec<u8>) -> Self {
        Cycle { bytes, pos: 0 }
    }
}

impl Read for Cycle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            buf[n] = self.bytes[self.pos];
            self.pos = (self.pos + 1) % self.bytes.len();
            n += 1;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Hostile repositories: the CAR is well-formed, the repository is not.

mod repositories {
    use super::*;
    use atp_crypto::{Algorithm, SigningKey};
    use atp_repo_mst::car::{write_car_from_map, BlockMap};
    use atp_repo_mst::commit::UnsignedCommit;
    use atp_repo_mst::import::{import_car, ImportOptions};
    use atp_repo_mst::mst::{encode_node, key_height, DecodedNode, NodeEntry};

    const DID: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";

    fn node(left: Option<Cid>, entries: Vec<(String, Cid, Option<Cid>)>) -> (Cid, Vec<u8>) {
        let node = DecodedNode {
            left,
            entries: entries
                .into_iter()
                .map(|(key, value, right)| NodeEntry { key, value, right })
                .collect(),
        };
        let bytes = encode_node(&node).unwrap();
        (cid_for_dag_cbor(&bytes), bytes)
    }

    fn key_at_height(h: u32, skip: usize) -> String {
        (0..)
            .map(|i| format!("app.bsky.feed.post/k{i}"))
            .filter(|k| key_height(k.as_bytes()) == h)
            .nth(skip)
            .unwrap()
    }

    fn record() -> (Cid, Vec<u8>) {
        let bytes = dagcbor::encode_ipld(&Ipld::Map(BTreeMap::new())).unwrap();
        (cid_for_dag_cbor(&bytes), bytes)
    }

    /// A CAR whose commit points at `data`, with `blocks` and the record.
    fn repo_car(data: Cid, mut blocks: BlockMap, key: &SigningKey) -> Vec<u8> {
        let (rc, rb) = record();
        blocks.insert(rc, rb);
        let (commit, bytes) = UnsignedCommit::new(DID, data, "3kaaaaaaaaaa2")
            .unwrap()
            .sign(key)
            .unwrap()
            .to_block()
            .unwrap();
        blocks.insert(commit, bytes);
        write_car_from_map(&[commit], &blocks).unwrap()
    }

    fn options(key: &SigningKey) -> ImportOptions {
        ImportOptions {
            did: Some(DID.to_owned()),
            signing_key: Some(key.public_key()),
            ..ImportOptions::default()
        }
    }

    #[test]
    fn a_valid_small_repository_imports() {
        let key = SigningKey::generate(Algorithm::P256);
        let (rc, _) = record();
        let (root, bytes) = node(None, vec![(key_at_height(0, 0), rc, None)]);
        let car = repo_car(root, BlockMap::from([(root, bytes)]), &key);
        let repo = import_car(car.as_slice(), &options(&key)).unwrap();
        assert_eq!(repo.records.len(), 1);
        // Wrong DID.
        let mut other = options(&key);
        other.did = Some("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned());
        assert!(matches!(
            import_car(car.as_slice(), &other),
            Err(Error::InvalidCommit(_))
        ));
    }

    #[test]
    fn wrong_or_missing_root() {
        let key = SigningKey::generate(Algorithm::K256);
        let (rc, rb) = record();
        // The root is a record, not a commit.
        let car = write_car_from_map(&[rc], &BlockMap::from([(rc, rb.clone())])).unwrap();
        assert!(import_car(car.as_slice(), &options(&key)).is_err());
        // The root is not in the file.
        let (missing, _) = node(None, vec![]);
        let car = write_car_from_map(&[missing], &BlockMap::from([(rc, rb.clone())])).unwrap();
        assert!(matches!(
            import_car(car.as_slice(), &options(&key)),
            Err(Error::MissingBlock(_))
        ));
        // Two roots.
        let car = write_car_from_map(&[rc, rc], &BlockMap::from([(rc, rb)])).unwrap();
        assert!(matches!(
            import_car(car.as_slice(), &options(&key)),
            Err(Error::InvalidCar(_))
        ));
    }

    #[test]
    fn missing_nodes_and_records() {
        let key = SigningKey::generate(Algorithm::K256);
        let (rc, _) = record();
        let (child, _child_bytes) = node(None, vec![(key_at_height(0, 0), rc, None)]);
        let (root, root_bytes) = node(Some(child), vec![(key_at_height(1, 0), rc, None)]);
        // The child node is left out.
        let car = repo_car(root, BlockMap::from([(root, root_bytes.clone())]), &key);
        let result = import_car(car.as_slice(), &options(&key));
        assert!(
            matches!(result, Err(Error::MissingBlock(c)) if c == child),
            "{result:?}"
        );
        let partial = ImportOptions {
            allow_partial: true,
            ..options(&key)
        };
        assert!(import_car(car.as_slice(), &partial).is_ok());
        // A record is left out.
        let (lonely, lonely_bytes) = node(
            None,
            vec![(key_at_height(0, 0), cid_for_dag_cbor(b"\x01"), None)],
        );
        let car = repo_car(lonely, BlockMap::from([(lonely, lonely_bytes)]), &key);
        assert!(matches!(
            import_car(car.as_slice(), &options(&key)),
            Err(Error::MissingBlock(_))
        ));
    }

    #[test]
    fn non_canonical_trees_are_refused() {
        let key = SigningKey::generate(Algorithm::K256);
        let (rc, _) = record();
        let k0a = key_at_height(0, 0);
        let k0b = key_at_height(0, 1);
        let k1 = key_at_height(1, 0);
        let bad_trees: Vec<(&str, Cid, BlockMap)> = {
            let mut cases = Vec::new();
            // Keys of two heights in one node.
            let (n, b) = node(
                None,
                vec![(k0a.clone(), rc, None), (k1.clone(), rc, None)]
                    .into_iter()
                    .fold(Vec::new(), |mut v, e| {
                        v.push(e);
                        v.sort();
                        v
                    }),
            );
            cases.push(("mixed layers", n, BlockMap::from([(n, b)])));
            // A height-1 key in a child of a layer-1 root (layer 0).
            let mut pair = [k1.clone(), key_at_height(1, 1)];
            pair.sort();
            let (leaf, lb) = node(None, vec![(pair[0].clone(), rc, None)]);
            let (n, b) = node(Some(leaf), vec![(pair[1].clone(), rc, None)]);
            cases.push((
                "child on the wrong layer",
                n,
                BlockMap::from([(n, b), (leaf, lb)]),
            ));
            // Untrimmed root: no entries, one subtree.
            let (leaf, lb) = node(None, vec![(k0a.clone(), rc, None)]);
            let (n, b) = node(Some(leaf), vec![]);
            cases.push(("untrimmed root", n, BlockMap::from([(n, b), (leaf, lb)])));
            // Empty node below the root.
            let (empty, eb) = node(None, vec![]);
            let (n, b) = node(Some(empty), vec![(k1.clone(), rc, None)]);
            cases.push(("empty child", n, BlockMap::from([(n, b), (empty, eb)])));
            // The same subtree reached twice (keys out of order across nodes).
            let (leaf, lb) = node(
                None,
                vec![(k0a.clone(), rc, None), (k0b.clone(), rc, None)]
                    .into_iter()
                    .fold(Vec::new(), |mut v, e| {
                        v.push(e);
                        v.sort();
                        v
                    }),
            );
            let (n, b) = node(Some(leaf), vec![(k1.clone(), rc, Some(leaf))]);
            cases.push(("subtree twice", n, BlockMap::from([(n, b), (leaf, lb)])));
            cases
        };
        for (name, root, blocks) in bad_trees {
            let car = repo_car(root, blocks, &key);
            let result = import_car(car.as_slice(), &options(&key));
            assert!(result.is_err(), "{name}: accepted");
        }
    }

    #[test]
    fn deep_chain_of_empty_nodes_is_refused_without_recursion() {
        let key = SigningKey::generate(Algorithm::K256);
        let (rc, _) = record();
        let mut blocks = BlockMap::new();
        let (mut below, b) = node(None, vec![(key_at_height(0, 0), rc, None)]);
        blocks.insert(below, b);
        for _ in 0..10_000 {
            let (n, b) = node(Some(below), vec![]);
            blocks.insert(n, b);
            below = n;
        }
        let (root, b) = node(Some(below), vec![(key_at_height(1, 0), rc, None)]);
        blocks.insert(root, b);
        let car = repo_car(root, blocks, &key);
        assert!(import_car(car.as_slice(), &options(&key)).is_err());
    }

    #[test]
    fn truncated_repository_cars_never_panic() {
        let key = SigningKey::generate(Algorithm::K256);
        let (rc, _) = record();
        let (root, bytes) = node(None, vec![(key_at_height(0, 0), rc, None)]);
        let car = repo_car(root, BlockMap::from([(root, bytes)]), &key);
        for cut in 0..car.len() {
            assert!(
                import_car(&car[..cut], &options(&key)).is_err(),
                "cut {cut}"
            );
        }
        for i in 0..car.len() {
            let mut bad = car.clone();
            bad[i] ^= 0x20;
            let _ = import_car(bad.as_slice(), &options(&key));
        }
    }
}
