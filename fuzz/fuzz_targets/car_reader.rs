#![no_main]
//! Feeds arbitrary bytes to the CAR reader and to repository import. Neither
//! may panic; whatever the reader accepts must have blocks that hash to
//! their CIDs and must write back and read again to the same roots and
//! blocks. Import runs with partial input allowed, so the MST checks are
//! reached even when records are missing.

use atp_repo_mst::car::{cid_matches, read_car_with_limits, write_car_from_map, CarLimits};
use atp_repo_mst::import::{import_car, ImportOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = CarLimits {
        max_total_bytes: 1 << 20,
        ..CarLimits::default()
    };
    if let Ok((roots, blocks)) = read_car_with_limits(data, limits) {
        for (cid, bytes) in &blocks {
            assert!(cid_matches(cid, bytes));
        }
        let again = write_car_from_map(&roots, &blocks).expect("accepted CAR re-encodes");
        let (roots2, blocks2) =
            read_car_with_limits(&again, CarLimits::default()).expect("re-encoded CAR reads");
        assert_eq!(roots, roots2);
        assert_eq!(blocks, blocks2);
    }
    let options = ImportOptions {
        allow_partial: true,
        accept_v2: true,
        limits,
        ..ImportOptions::default()
    };
    let _ = import_car(data, &options);
});
