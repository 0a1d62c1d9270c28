//! Property tests: generated valid identifiers parse and print back to
//! themselves, serde round-trips, and no input makes a parser panic.

#![allow(clippy::unwrap_used)]

use atp_syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid,
    TidClock, Uri,
};
use proptest::prelude::*;

fn did() -> impl Strategy<Value = String> {
    ("[a-z]{1,10}", "[a-zA-Z0-9._:%-]{0,40}[a-zA-Z0-9._-]")
        .prop_map(|(method, id)| format!("did:{method}:{id}"))
}

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
}

fn handle() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 1..4),
        "[a-zA-Z]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
    )
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

fn nsid() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
        prop::collection::vec(label(), 1..3),
        "[a-zA-Z][a-zA-Z0-9]{0,20}",
    )
        .prop_map(|(first, middle, name)| format!("{first}.{}.{name}", middle.join(".")))
}

fn record_key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:~-]{1,40}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn did_round_trips(text in did()) {
        let parsed = Did::new(&text).unwrap();
        prop_assert_eq!(parsed.as_str(), text.as_str());
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Did>(&json).unwrap(), parsed);
    }

    #[test]
    fn handle_round_trips_lower_case(text in handle()) {
        let parsed = Handle::new(&text).unwrap();
        prop_assert_eq!(parsed.as_str(), text.to_ascii_lowercase());
        prop_assert_eq!(Handle::new(parsed.as_str()).unwrap(), parsed.clone());
        let id = AtIdentifier::new(&text).unwrap();
        prop_assert_eq!(id, AtIdentifier::Handle(parsed));
    }

    #[test]
    fn nsid_round_trips(text in nsid()) {
        let parsed = Nsid::new(&text).unwrap();
        prop_assert_eq!(parsed.as_str(), text.as_str());
        let rebuilt = Nsid::from_authority_and_name(&parsed.authority(), parsed.name()).unwrap();
        prop_assert_eq!(rebuilt, parsed);
    }

    #[test]
    fn at_uri_round_trips(authority in did(), collection in nsid(), rkey in record_key()) {
        let uri = AtUri::for_record(
            Did::new(&authority).unwrap(),
            Nsid::new(&collection).unwrap(),
            RecordKey::new(&rkey).unwrap(),
        );
        let parsed = AtUri::new(uri.as_str()).unwrap();
        prop_assert_eq!(parsed.collection().unwrap().as_str(), collection.as_str());
        prop_assert_eq!(parsed.record_key().unwrap().as_str(), rkey.as_str());
        prop_assert_eq!(parsed, uri);
    }

    #[test]
    fn tid_round_trips_and_orders(
        a in (0u64..(1 << 53), 0u16..1024),
        b in (0u64..(1 << 53), 0u16..1024),
    ) {
        let ta = Tid::from_parts(a.0, a.1).unwrap();
        let tb = Tid::from_parts(b.0, b.1).unwrap();
        prop_assert_eq!(ta.timestamp_micros(), a.0);
        prop_assert_eq!(ta.clock_id(), a.1);
        prop_assert_eq!(Tid::new(ta.as_str()).unwrap(), ta);
        // Numeric order, string order and (timestamp, clock) order agree.
        prop_assert_eq!(ta.cmp(&tb), ta.as_str().cmp(tb.as_str()));
        prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
    }

    #[test]
    fn tid_clock_is_monotonic_for_any_readings(readings in prop::collection::vec(any::<u64>(), 1..200)) {
        let clock = TidClock::new(12).unwrap();
        let mut last: Option<Tid> = None;
        for reading in readings {
            let tid = clock.next_at(reading % (1 << 53));
            if let Some(last) = last {
                prop_assert!(tid > last);
            }
            last = Some(tid);
        }
    }

    #[test]
    fn datetime_from_instant_round_trips(seconds in 0i64..253_402_300_799, millis in 0u32..1000) {
        let instant = chrono::DateTime::from_timestamp(seconds, millis * 1_000_000).unwrap();
        let dt = Datetime::from_utc(instant).unwrap();
        prop_assert_eq!(dt.to_utc(), instant);
        prop_assert_eq!(Datetime::new(dt.as_str()).unwrap(), dt.clone());
        prop_assert_eq!(Datetime::parse_lenient(dt.as_str()).unwrap(), dt);
    }

    #[test]
    fn parsers_never_panic(input in "\\PC{0,80}") {
        let _ = Did::new(&input);
        let _ = Handle::new(&input);
        let _ = AtIdentifier::new(&input);
        let _ = Nsid::new(&input);
        let _ = AtUri::new(&input);
        let _ = Tid::new(&input);
        let _ = RecordKey::new(&input);
        let _ = Datetime::new(&input);
        let _ = Datetime::parse_lenient(&input);
        let _ = Language::new(&input);
        let _ = Language::is_well_formed(&input);
        let _ = CidString::new(&input);
        let _ = Uri::new(&input);
    }

    #[test]
    fn structured_near_misses_never_panic(
        input in "(at://)?[a-zA-Z0-9:./#?%@_~-]{0,60}",
        dt in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(\\.[0-9]{0,12})?(Z|z|[+-][0-9]{2}:?[0-9]{0,2})?",
    ) {
        let _ = AtUri::new(&input);
        let _ = Tid::new(&input);
        if let Ok(parsed) = Datetime::new(&dt) {
            // Whatever parses strictly also parses leniently.
            prop_assert!(Datetime::parse_lenient(&dt).unwrap().to_utc() <= parsed.to_utc());
        }
        let _ = Datetime::parse_lenient(&dt);
    }
}
