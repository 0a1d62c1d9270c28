//! Finding the blobs a record references: every
//! `{"$type": "blob", "ref": <link>, "mimeType", "size"}` object (and the
//! legacy `{"cid", "mimeType"}` form) anywhere in the record.

use atp_crypto::{Cid, Ipld};

/// One blob reference found in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob's CID (raw codec).
    pub cid: Cid,
    /// The declared MIME type.
    pub mime_type: String,
    /// The declared size in bytes (`None` in the legacy form).
    pub size: Option<u64>,
}

/// Every blob referenced in `record`, in document order.
pub fn find_blob_refs(record: &Ipld) -> Vec<BlobRef> {
    let mut found = Vec::new();
    walk(record, &mut found, 0);
    found
}

/// Records nest at most this deep (deeper input was refused on decode).
const MAX_WALK_DEPTH: usize = 128;

fn walk(value: &Ipld, found: &mut Vec<BlobRef>, depth: usize) {
    if depth > MAX_WALK_DEPTH {
        return;
    }
    match value {
        Ipld::Map(map) => {
            if let Some(blob) = as_blob_ref(map) {
                found.push(blob);
                return;
            }
            for child in map.values() {
                walk(child, found, depth + 1);
            }
        }
        Ipld::List(items) => {
            for child in items {
                walk(child, found, depth + 1);
            }
        }
        _ => {}
    }
}

fn as_blob_ref(map: &std::collections::BTreeMap<String, Ipld>) -> Option<BlobRef> {
    let mime_type = match map.get("mimeType") {
        Some(Ipld::String(mime)) => mime.clone(),
        _ => return None,
    };
    match (map.get("$type"), map.get("ref"), map.get("cid")) {
        (Some(Ipld::String(kind)), Some(Ipld::Link(cid)), _) if kind == "blob" => {
            let size = match map.get("size") {
                Some(Ipld::Integer(size)) => u64::try_from(*size).ok(),
                _ => None,
            };
            Some(BlobRef {
                cid: *cid,
                mime_type,
                size,
            })
        }
        (None, None, Some(Ipld::String(cid))) => {
            atp_crypto::parse_cid(cid).ok().map(|cid| BlobRef {
                cid,
                mime_type,
                size: None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn blob(cid: Cid) -> Ipld {
        Ipld::Map(BTreeMap::from([
            ("$type".to_owned(), Ipld::String("blob".to_owned())),
            ("ref".to_owned(), Ipld::Link(cid)),
            ("mimeType".to_owned(), Ipld::String("image/png".to_owned())),
            ("size".to_owned(), Ipld::Integer(1234)),
        ]))
    }

    #[test]
    fn finds_nested_blobs_in_order() {
        let a = atp_crypto::cid_for_raw(b"a");
        let b = atp_crypto::cid_for_raw(b"b");
        let record = Ipld::Map(BTreeMap::from([
            ("avatar".to_owned(), blob(a)),
            (
                "embed".to_owned(),
                Ipld::Map(BTreeMap::from([(
                    "images".to_owned(),
                    Ipld::List(vec![Ipld::Map(BTreeMap::from([(
                        "image".to_owned(),
                        blob(b),
                    )]))]),
                )])),
            ),
            ("text".to_owned(), Ipld::String("hi".to_owned())),
        ]));
        let refs = find_blob_refs(&record);
        assert_eq!(refs.iter().map(|r| r.cid).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(refs[0].size, Some(1234));
        assert_eq!(refs[0].mime_type, "image/png");
    }

    #[test]
    fn a_map_without_blob_type_is_not_a_blob() {
        let cid = atp_crypto::cid_for_raw(b"x");
        let record = Ipld::Map(BTreeMap::from([
            ("ref".to_owned(), Ipld::Link(cid)),
            ("mimeType".to_owned(), Ipld::String("image/png".to_owned())),
        ]));
        assert!(find_blob_refs(&record).is_empty());
    }
}
