//! CAR v1 reader and writer: round trips, the reference byte layout, and the
//! CAR files of the MST test suite (written by an independent implementation).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Cursor;

use atp_crypto::{cid_for_dag_cbor, cid_for_raw, dagcbor, Cid, Ipld};
use atp_repo_mst::car::{
    decode_header, read_car, read_car_with_limits, read_car_with_root, write_car,
    write_car_from_map, CarLimits, CarReader, CarWriter,
};
use atp_repo_mst::Error;

fn record(i: u64) -> (Cid, Vec<u8>) {
    let value = Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("n".to_owned(), Ipld::Integer(i as i128)),
    ]));
    let bytes = dagcbor::encode_ipld(&value).unwrap();
    (cid_for_dag_cbor(&bytes), bytes)
}

#[test]
fn layout_matches_the_car_v1_format() {
    // Empty MST node as the only block; compare every byte with the layout
    // written out by hand from the CAR v1 specification.
    let block = vec![0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
    let cid = cid_for_dag_cbor(&block);
    assert_eq!(
        cid.to_string(),
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    );
    let bytes = write_car(&[cid], [(&cid, block.as_slice())]).unwrap();

    let mut expected = Vec::new();
    // Header: {"roots": [tag 42 bytes(0x00 ++ cid)], "version": 1}.
    let mut header = vec![0xa2, 0x65];
    header.extend_from_slice(b"roots");
    header.extend_from_slice(&[0x81, 0xd8, 0x2a, 0x58, 0x25, 0x00]);
    header.extend_from_slice(&cid.to_bytes());
    header.push(0x67);
    header.extend_from_slice(b"version");
    header.push(0x01);
    expected.push(header.len() as u8);
    expected.extend_from_slice(&header);
    expected.push((36 + block.len()) as u8);
    expected.extend_from_slice(&cid.to_bytes());
    expected.extend_from_slice(&block);
    assert_eq!(bytes, expected);
}

#[test]
fn round_trip_many_blocks_in_order() {
    let blocks: Vec<(Cid, Vec<u8>)> = (0..500).map(record).collect();
    let raw = b"some blob bytes".to_vec();
    let raw_cid = cid_for_raw(&raw);
    let roots = [blocks[0].0, blocks[1].0];

    let mut writer = CarWriter::new(Vec::new(), &roots).unwrap();
    for (cid, bytes) in &blocks {
        writer.write_block(cid, bytes).unwrap();
    }
    writer.write_block(&raw_cid, &raw).unwrap();
    let written = writer.bytes_written();
    let car = writer.finish().unwrap();
    assert_eq!(written, car.len() as u64);

    let mut reader = CarReader::new(Cursor::new(&car)).unwrap();
    assert_eq!(reader.roots(), &roots);
    let mut seen = Vec::new();
    for block in reader.by_ref() {
        let block = block.unwrap();
        seen.push((block.cid, block.bytes));
    }
    assert_eq!(reader.bytes_read(), car.len() as u64);
    assert_eq!(reader.blocks_read(), 501);
    assert_eq!(&seen[..500], &blocks[..]);
    assert_eq!(seen[500], (raw_cid, raw));
}

#[test]
fn empty_roots_and_no_blocks() {
    let car = write_car(&[], std::iter::empty()).unwrap();
    let (roots, blocks) = read_car(&car).unwrap();
    assert!(roots.is_empty());
    assert!(blocks.is_empty());
    assert!(matches!(
        read_car_with_root(&car, CarLimits::default()),
        Err(Error::InvalidCar(_))
    ));
}

#[test]
fn duplicate_blocks_are_kept_once() {
    let (cid, bytes) = record(7);
    let car = write_car(&[cid], [(&cid, bytes.as_slice()), (&cid, bytes.as_slice())]).unwrap();
    let (root, blocks) = read_car_with_root(&car, CarLimits::default()).unwrap();
    assert_eq!(root, cid);
    assert_eq!(blocks.len(), 1);
}

#[test]
fn map_writer_round_trips() {
    let map: BTreeMap<Cid, Vec<u8>> = (0..50).map(record).collect();
    let root = *map.keys().next().unwrap();
    let car = write_car_from_map(&[root], &map).unwrap();
    let (roots, read) = read_car(&car).unwrap();
    assert_eq!(roots, vec![root]);
    assert_eq!(read, map);
}

#[test]
fn limits_are_applied() {
    let blocks: Vec<(Cid, Vec<u8>)> = (0..20).map(record).collect();
    let car = write_car(
        &[blocks[0].0],
        blocks.iter().map(|(c, b)| (c, b.as_slice())),
    )
    .unwrap();
    let base = CarLimits::default();
    let few_blocks = CarLimits {
        max_blocks: 19,
        ..base
    };
    assert!(matches!(
        read_car_with_limits(&car, few_blocks),
        Err(Error::CarLimitExceeded(_))
    ));
    let exact = CarLimits {
        max_blocks: 20,
        max_total_bytes: car.len() as u64,
        ..base
    };
    assert_eq!(read_car_with_limits(&car, exact).unwrap().1.len(), 20);
    let small_total = CarLimits {
        max_total_bytes: car.len() as u64 - 1,
        ..base
    };
    assert!(matches!(
        read_car_with_limits(&car, small_total),
        Err(Error::CarLimitExceeded(_))
    ));
    let small_block = CarLimits {
        max_block_bytes: 4,
        ..base
    };
    assert!(matches!(
        read_car_with_limits(&car, small_block),
        Err(Error::CarLimitExceeded(_))
    ));
    let small_header = CarLimits {
        max_header_bytes: 10,
        ..base
    };
    assert!(matches!(
        read_car_with_limits(&car, small_header),
        Err(Error::CarLimitExceeded(_))
    ));
}

#[test]
fn header_shape_is_checked() {
    let (cid, _) = record(1);
    let header = |version: Ipld, roots: Ipld| {
        dagcbor::encode_ipld(&Ipld::Map(BTreeMap::from([
            ("roots".to_owned(), roots),
            ("version".to_owned(), version),
        ])))
        .unwrap()
    };
    let ok = header(Ipld::Integer(1), Ipld::List(vec![Ipld::Link(cid)]));
    assert_eq!(decode_header(&ok).unwrap(), vec![cid]);
    for bad in [
        header(Ipld::Integer(2), Ipld::List(vec![Ipld::Link(cid)])),
        header(Ipld::String("1".into()), Ipld::List(vec![])),
        header(Ipld::Integer(1), Ipld::Link(cid)),
        header(Ipld::Integer(1), Ipld::List(vec![Ipld::Integer(3)])),
        dagcbor::encode_ipld(&Ipld::List(vec![])).unwrap(),
    ] {
        assert!(matches!(decode_header(&bad), Err(Error::InvalidCar(_))));
    }
}

/// Every CAR of the MST test suite reads, verifies, and writes back to the
/// same bytes (the suite writes canonical headers, blocks in CID order).
#[test]
fn mst_test_suite_cars_read_and_rewrite_identically() {
    let dir = atp_test_vectors::mst_suite_dir()
        .join("cars")
        .join("exhaustive");
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "car"))
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = CarReader::new(bytes.as_slice()).unwrap();
        let roots = reader.roots().to_vec();
        assert_eq!(roots.len(), 1, "{}", path.display());
        let blocks: Vec<_> = reader.by_ref().map(|b| b.unwrap()).collect();
        let again = write_car(&roots, blocks.iter().map(|b| (&b.cid, b.bytes.as_slice()))).unwrap();
        assert_eq!(again, bytes, "{}", path.display());
        count += 1;
    }
    atp_test_vectors::report("mst-test-suite/cars/exhaustive/*.car", count);
}
