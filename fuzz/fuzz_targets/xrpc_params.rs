#![no_main]
//! XRPC request parsing: arbitrary query strings through the query
//! parameter parser, then decoded and validated against the parameters of
//! a bundled lexicon method (the first byte picks it), as the router does
//! before a handler runs. Nothing may panic; parsed pairs must be what a
//! second parse of their re-encoding gives.

use std::sync::OnceLock;

use atp_xrpc::lexicon::Lexicons;
use atp_xrpc::server::QueryParams;

fn catalog() -> &'static (Lexicons, Vec<String>) {
    static CATALOG: OnceLock<(Lexicons, Vec<String>)> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let lexicons = Lexicons::bundled();
        let mut ids: Vec<String> = lexicons.iter().map(|doc| doc.id.as_str().to_owned()).collect();
        ids.sort();
        (lexicons, ids)
    })
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, query)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(params) = QueryParams::parse(query) else {
        return;
    };
    let reencoded: Vec<String> = params
        .pairs()
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let again = QueryParams::parse(&reencoded.join("&")).expect("re-encoded parameters parse");
    assert_eq!(again.pairs(), params.pairs());
    let (lexicons, ids) = catalog();
    if ids.is_empty() {
        return;
    }
    let nsid = &ids[usize::from(pick) % ids.len()];
    if let Ok(decoded) = lexicons.decode_params(nsid, params.pairs()) {
        let _ = lexicons.validate_params(nsid, &decoded);
    }
    let _ = params.decode::<std::collections::BTreeMap<String, String>>();
});
