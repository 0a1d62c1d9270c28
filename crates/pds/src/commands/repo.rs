//! `pds repo export|import` and `pds post`: repositories and records over
//! XRPC.

use std::path::Path;

use serde_json::{json, Value};

use crate::client::{now_timestamp, upload_image, Connection, Session};
use crate::commands::account::string_field;
use crate::error::Error;

/// `pds repo export`: the account's repository as a CAR file
/// (`sync.getRepo`); returns the DID and the number of bytes written.
pub async fn export(conn: &Connection, actor: &str, out: &Path) -> Result<(String, usize), Error> {
    let did = conn.resolve_actor(actor).await?;
    let body = conn
        .anonymous()?
        .query_bytes("com.atproto.sync.getRepo", &json!({ "did": did }))
        .await?;
    std::fs::write(out, &body.bytes).map_err(|source| Error::File {
        path: out.display().to_string(),
        source,
    })?;
    Ok((did, body.bytes.len()))
}

/// `pds repo import`: sends a CAR file to `repo.importRepo` as the
/// signed-in account.
pub async fn import(session: &Session, car: &Path) -> Result<usize, Error> {
    let bytes = std::fs::read(car).map_err(|source| Error::File {
        path: car.display().to_string(),
        source,
    })?;
    let len = bytes.len();
    session
        .client
        .procedure_bytes(
            "com.atproto.repo.importRepo",
            &(),
            "application/vnd.ipld.car",
            bytes::Bytes::from(bytes),
        )
        .await?;
    Ok(len)
}

/// The `app.bsky.feed.post` record of `text`, with the uploaded `image`
/// blob (and its `alt` text) as an `app.bsky.embed.images` embed.
pub fn post_record(text: &str, image: Option<(Value, &str)>) -> Value {
    let mut record = json!({
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": now_timestamp(),
    });
    if let Some((blob, alt)) = image {
        record["embed"] = json!({
            "$type": "app.bsky.embed.images",
            "images": [{ "image": blob, "alt": alt }],
        });
    }
    record
}

/// A record written: its `at://` URI and CID.
#[derive(Clone, Debug)]
pub struct WrittenRecord {
    /// `at://did/collection/rkey`.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
}

/// `pds post`: uploads the image (if any) and creates the post.
pub async fn post(
    session: &Session,
    text: &str,
    image: Option<&Path>,
    alt: &str,
) -> Result<WrittenRecord, Error> {
    let blob = match image {
        Some(path) => Some(upload_image(session, path).await?),
        None => None,
    };
    let record = post_record(text, blob.map(|b| (b, alt)));
    create_record(session, "app.bsky.feed.post", &record).await
}

/// `repo.createRecord` in the signed-in account's repository.
pub async fn create_record(
    session: &Session,
    collection: &str,
    record: &Value,
) -> Result<WrittenRecord, Error> {
    let answer: Value = session
        .client
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({ "repo": session.did, "collection": collection, "record": record }),
        )
        .await?;
    Ok(WrittenRecord {
        uri: string_field(&answer, "uri", "createRecord")?,
        cid: string_field(&answer, "cid", "createRecord")?,
    })
}

/// `repo.putRecord` in the signed-in account's repository.
pub async fn put_record(
    session: &Session,
    collection: &str,
    rkey: &str,
    record: &Value,
) -> Result<WrittenRecord, Error> {
    let answer: Value = session
        .client
        .procedure(
            "com.atproto.repo.putRecord",
            &(),
            &json!({ "repo": session.did, "collection": collection, "rkey": rkey, "record": record }),
        )
        .await?;
    Ok(WrittenRecord {
        uri: string_field(&answer, "uri", "putRecord")?,
        cid: string_field(&answer, "cid", "putRecord")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_with_and_without_images() {
        let plain = post_record("hello", None);
        assert_eq!(plain["$type"], "app.bsky.feed.post");
        assert_eq!(plain["text"], "hello");
        assert!(plain["createdAt"].as_str().unwrap().ends_with('Z'));
        assert!(plain.get("embed").is_none());
        let blob = json!({"$type": "blob", "ref": {"$link": "bafkrei"}, "mimeType": "image/png", "size": 3});
        let with_image = post_record("look", Some((blob.clone(), "a cat")));
        assert_eq!(with_image["embed"]["$type"], "app.bsky.embed.images");
        assert_eq!(with_image["embed"]["images"][0]["image"], blob);
        assert_eq!(with_image["embed"]["images"][0]["alt"], "a cat");
    }
}
