#![no_main]
//! Validates arbitrary JSON against the bundled lexicons of `atp-xrpc`:
//! the first byte picks a lexicon document, the rest is parsed as JSON and
//! checked as that document's record, procedure input and output,
//! subscription message and main definition. Validation may refuse
//! anything but must never panic, whatever the nesting or the types.

use std::sync::OnceLock;

use atp_xrpc::lexicon::Lexicons;

fn catalog() -> &'static (Lexicons, Vec<String>) {
    static CATALOG: OnceLock<(Lexicons, Vec<String>)> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let lexicons = Lexicons::bundled();
        let mut ids: Vec<String> = lexicons.iter().map(|doc| doc.id.as_str().to_owned()).collect();
        ids.sort();
        (lexicons, ids)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let (lexicons, ids) = catalog();
    if ids.is_empty() {
        return;
    }
    let nsid = &ids[usize::from(pick) % ids.len()];
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let _ = lexicons.validate_record(nsid, &value);
    let _ = lexicons.validate_input(nsid, &value);
    let _ = lexicons.validate_output(nsid, &value);
    let _ = lexicons.validate_message(nsid, &value);
    let _ = lexicons.validate(nsid, &value);
    if let Some(params) = value.as_object() {
        let _ = lexicons.validate_params(nsid, params);
    }
});
