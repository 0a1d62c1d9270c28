#![no_main]
//! Feeds arbitrary text to every identifier parser of `atp-syntax` (DID,
//! handle, NSID, AT-URI, TID, record key, datetime, AT identifier,
//! language, URI, CID string). None may panic; `new` and `is_valid` must
//! agree; whatever is accepted must come back unchanged from `as_str` and
//! parse again to an equal value.

use atp_syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};

/// Checks one parser on `input`: agreement with `is_valid`, and the
/// round trip of an accepted value.
macro_rules! check {
    ($ty:ty, $input:expr) => {{
        let input: &str = $input;
        match <$ty>::new(input) {
            Ok(parsed) => {
                assert!(<$ty>::is_valid(input), "{}: new accepts, is_valid refuses {input:?}", stringify!($ty));
                let text = parsed.as_str().to_owned();
                let again = <$ty>::new(&text).expect("an accepted value parses again");
                assert_eq!(again.as_str(), text, "{} round trip", stringify!($ty));
            }
            Err(_) => {
                assert!(!<$ty>::is_valid(input), "{}: is_valid accepts, new refuses {input:?}", stringify!($ty));
            }
        }
    }};
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check!(Did, input);
    check!(Handle, input);
    check!(Nsid, input);
    check!(AtUri, input);
    check!(Tid, input);
    check!(RecordKey, input);
    check!(Datetime, input);
    check!(AtIdentifier, input);
    check!(Language, input);
    check!(Uri, input);
    check!(CidString, input);
    // The lenient datetime reader never panics either.
    let _ = Datetime::parse_lenient(input);
});
