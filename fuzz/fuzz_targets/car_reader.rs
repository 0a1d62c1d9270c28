#![no_main]
//! Feeds arbitrary bytes to the CAR reader. It must never panic; whatever
//! it accepts must have blocks that hash to their CIDs, and writing the
//! blocks back must read again to the same roots and blocks.

use atp_repo_mst::car::{cid_matches, read_car_with_limits, write_car_from_map, CarLimits};

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
        let (roots2, blocks2) = read_car_with_limits(&again, CarLimits::default())
            .expect("re-encoded CAR reads");
        assert_eq!(roots, roots2);
        assert_eq!(blocks, blocks2);
    }
});
