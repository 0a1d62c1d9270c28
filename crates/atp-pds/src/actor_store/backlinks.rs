//! Record backlinks: the links from a follow, block, like or repost to its
//! subject, indexed so that a second record about the same subject can be
//! found.

use atp_crypto::Ipld;
use rusqlite::{params, Transaction};

use crate::error::Result;

/// One link from a record to what it is about, indexed so that a second
/// follow, block, like or repost of the same subject can be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlink {
    /// The field holding the link: `subject` or `subject.uri`.
    pub path: String,
    /// The DID or AT-URI linked to.
    pub link_to: String,
}

/// The backlinks the reference PDS tracks in `record`: the `subject` DID
/// of a follow or block, the `subject.uri` of a like or repost.
pub fn record_backlinks(record: &Ipld) -> Vec<Backlink> {
    let Ipld::Map(map) = record else {
        return Vec::new();
    };
    let Some(Ipld::String(kind)) = map.get("$type") else {
        return Vec::new();
    };
    match kind.as_str() {
        "app.bsky.graph.follow" | "app.bsky.graph.block" => match map.get("subject") {
            Some(Ipld::String(subject)) if atp_syntax::Did::is_valid(subject) => vec![Backlink {
                path: "subject".to_owned(),
                link_to: subject.clone(),
            }],
            _ => Vec::new(),
        },
        "app.bsky.feed.like" | "app.bsky.feed.repost" => match map.get("subject") {
            Some(Ipld::Map(subject)) => match subject.get("uri") {
                Some(Ipld::String(uri)) if atp_syntax::AtUri::is_valid(uri) => vec![Backlink {
                    path: "subject.uri".to_owned(),
                    link_to: uri.clone(),
                }],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The record keys in `collection` whose record links to `link_to` at
/// `path`, sorted: the backlink conflicts a new record would have.
pub(super) fn backlinked_rkeys(
    tx: &Transaction<'_>,
    collection: &str,
    path: &str,
    link_to: &str,
) -> Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT record.rkey FROM record
         JOIN backlink ON backlink.uri = record.uri
         WHERE backlink.path = ?1 AND backlink.link_to = ?2
           AND record.collection = ?3
         ORDER BY record.rkey",
    )?;
    let rows = stmt
        .query_map(params![path, link_to, collection], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}
