//! Blobs over XRPC: uploadBlob (type sniffing, size limit), the write
//! hooks (unknown blobs refused, referenced blobs made permanent,
//! dereferenced blobs collected), getBlob, listBlobs, listMissingBlobs and
//! the sweep of unreferenced uploads.
#![allow(clippy::unwrap_used)]

mod common;
mod moto;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use atp_crypto::{Cid, Ipld};
use atp_pds::actor_store::ActorStore;
use atp_pds::blob_index;
use atp_pds::blob_refs::BlobRef;
use atp_pds::blob_store::BlobStore;
use atp_pds::http::blob::{
    after_commit, check_write_blobs, collect_dereferenced_blobs, sweep_temp_blobs_before,
    update_blob_takedown,
};
use atp_pds::http::PdsState;
use atp_repo_mst::repo::CommitData;
use atp_xrpc::client::{XrpcBody, XrpcClient};
use bytes::Bytes;
use common::{account_key, refusal, Pds, TestAccount};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The first bytes of a PNG file (signature and IHDR chunk).
fn png_bytes(extra: usize) -> Vec<u8> {
    let mut bytes = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0,
    ];
    bytes.extend((0..extra).map(|i| (i % 256) as u8));
    bytes
}

/// A PDS whose state is also returned, to call the hooks directly.
async fn start(limit: Option<u64>) -> (Pds, PdsState) {
    Pds::start_with_state(|state| {
        if let Some(limit) = limit {
            state.blob_upload_limit = limit;
        }
    })
    .await
}

/// A PDS with the default limit, its state, and the account `alice`.
async fn start_with_alice() -> (Pds, PdsState, TestAccount) {
    let (pds, state) = start(None).await;
    let alice = pds.create("alice").await;
    (pds, state, alice)
}

async fn upload(pds: &Pds, account: &TestAccount, content_type: &str, bytes: &[u8]) -> Value {
    let body = pds
        .bearer(&account.access_jwt)
        .procedure_bytes(
            "com.atproto.repo.uploadBlob",
            &(),
            content_type,
            Bytes::copy_from_slice(bytes),
        )
        .await
        .unwrap();
    serde_json::from_slice(&body.bytes).unwrap()
}

/// One raw HTTP/1.1 exchange (`Connection: close`): status, headers (names
/// lower case) and body.
async fn raw_http(pds: &Pds, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let addr = pds.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (
        status.parse().unwrap(),
        headers,
        answer[split + 4..].to_vec(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn error_of(body: &[u8]) -> (String, String) {
    let value: Value = serde_json::from_slice(body).unwrap();
    (
        value["error"].as_str().unwrap().to_owned(),
        value["message"].as_str().unwrap_or("").to_owned(),
    )
}

fn blob_ipld(cid: Cid, mime_type: &str, size: i128) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String("blob".to_owned())),
        ("ref".to_owned(), Ipld::Link(cid)),
        ("mimeType".to_owned(), Ipld::String(mime_type.to_owned())),
        ("size".to_owned(), Ipld::Integer(size)),
    ]))
}

/// Writes (or with `None`, deletes) `app.bsky.actor.profile/self` with the
/// store's low-level API, runs the blob hooks around the commit as the
/// record writes do, and returns the hooks' verdict.
async fn write_profile(
    state: &PdsState,
    did: &str,
    avatar: Option<(Cid, &str, u64)>,
    delete: bool,
) -> Result<(), atp_xrpc::server::XrpcError> {
    let store = state.storage.actors().open(did).unwrap();
    let refs: Vec<BlobRef> = avatar
        .iter()
        .map(|(cid, mime, size)| BlobRef {
            cid: *cid,
            mime_type: (*mime).to_owned(),
            size: Some(*size),
        })
        .collect();
    check_write_blobs(state, did, &refs).await?;
    let key = store.signing_key().unwrap();
    let mut repo = store.open_repo().unwrap();
    let path = "app.bsky.actor.profile/self".to_owned();
    let exists = store
        .get_record("app.bsky.actor.profile", "self")
        .unwrap()
        .is_some();
    if delete {
        repo.delete_record("app.bsky.actor.profile", "self")
            .unwrap();
    } else {
        let mut record = BTreeMap::from([(
            "$type".to_owned(),
            Ipld::String("app.bsky.actor.profile".to_owned()),
        )]);
        if let Some((cid, mime, size)) = avatar {
            record.insert("avatar".to_owned(), blob_ipld(cid, mime, i128::from(size)));
        }
        let record = Ipld::Map(record);
        if exists {
            repo.update_record("app.bsky.actor.profile", "self", &record)
                .unwrap();
        } else {
            repo.create_record("app.bsky.actor.profile", "self", &record)
                .unwrap();
        }
    }
    let rev = atp_syntax::TidClock::global().next().to_string();
    let blobs = BTreeMap::from([(path, refs.iter().map(|r| r.cid).collect::<Vec<_>>())]);
    let commit = store.commit(&mut repo, &key, &rev, &blobs).unwrap();
    after_commit(state, did, &commit).await
}

/// getBlob of `cid` from `did`'s repository, without credentials.
async fn get_blob(pds: &Pds, did: &str, cid: &Cid) -> Result<XrpcBody, atp_xrpc::Error> {
    pds.client()
        .query_bytes(
            "com.atproto.sync.getBlob",
            &json!({"did": did, "cid": cid.to_string()}),
        )
        .await
}

/// listBlobs of `did`'s repository through `client`.
async fn list_blobs(client: &XrpcClient, did: &str) -> Value {
    client
        .query("com.atproto.sync.listBlobs", &json!({"did": did}))
        .await
        .unwrap()
}

/// uploadBlob of `bytes` as `content_type` through `client`, refused or not.
async fn try_upload(
    client: &XrpcClient,
    content_type: &str,
    bytes: &[u8],
) -> Result<XrpcBody, atp_xrpc::Error> {
    client
        .procedure_bytes(
            "com.atproto.repo.uploadBlob",
            &(),
            content_type,
            Bytes::copy_from_slice(bytes),
        )
        .await
}

/// A PNG of `extra` bytes past its header, uploaded by `account`: the
/// bytes and their CID.
async fn upload_png(pds: &Pds, account: &TestAccount, extra: usize) -> (Vec<u8>, Cid) {
    let png = png_bytes(extra);
    let cid = atp_crypto::cid_for_raw(&png);
    upload(pds, account, "image/png", &png).await;
    (png, cid)
}

/// A PNG of `extra` bytes past its header, uploaded by `account` and made
/// the avatar of its profile: the bytes and their CID.
async fn upload_avatar(
    pds: &Pds,
    state: &PdsState,
    account: &TestAccount,
    extra: usize,
) -> (Vec<u8>, Cid) {
    let (png, cid) = upload_png(pds, account, extra).await;
    write_profile(
        state,
        &account.did,
        Some((cid, "image/png", png.len() as u64)),
        false,
    )
    .await
    .unwrap();
    (png, cid)
}

/// A reference to the PNG blob `cid` of `size` bytes.
fn png_ref(cid: Cid, size: u64) -> BlobRef {
    BlobRef {
        cid,
        mime_type: "image/png".to_owned(),
        size: Some(size),
    }
}

/// The temporary key of the uploaded blob `cid`.
fn temp_key_of(store: &ActorStore, cid: &Cid) -> String {
    blob_index::get_blob(store, cid)
        .unwrap()
        .unwrap()
        .temp_key
        .unwrap()
}

/// Commits a record `collection/rkey` whose `field` references the PNG
/// blob `cid` of `size` bytes, straight into the store: the blob hooks do
/// not run (as after an import, or a crash before the hook).
fn commit_blob_record(
    store: &ActorStore,
    collection: &str,
    rkey: &str,
    field: &str,
    cid: Cid,
    size: u64,
) -> CommitData {
    let key = store.signing_key().unwrap();
    let mut repo = store.open_repo().unwrap();
    let record = Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(collection.to_owned())),
        (
            field.to_owned(),
            blob_ipld(cid, "image/png", i128::from(size)),
        ),
    ]));
    repo.create_record(collection, rkey, &record).unwrap();
    let rev = atp_syntax::TidClock::global().next().to_string();
    let blobs = BTreeMap::from([(format!("{collection}/{rkey}"), vec![cid])]);
    store.commit(&mut repo, &key, &rev, &blobs).unwrap()
}

/// The refusal of a profile write whose avatar is `cid` as `mime_type`
/// of `size` bytes.
async fn refused_avatar(
    state: &PdsState,
    did: &str,
    cid: Cid,
    mime_type: &str,
    size: u64,
) -> atp_xrpc::server::XrpcError {
    write_profile(state, did, Some((cid, mime_type, size)), false)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn upload_sniffs_the_type_and_answers_a_blob_ref() {
    let (pds, state, alice) = start_with_alice().await;

    let png = png_bytes(100);
    let answer = upload(&pds, &alice, "application/octet-stream", &png).await;
    let cid = atp_crypto::cid_for_raw(&png);
    assert_eq!(
        answer,
        json!({"blob": {
            "$type": "blob",
            "ref": {"$link": cid.to_string()},
            "mimeType": "image/png",
            "size": png.len(),
        }})
    );

    // Unknown bytes keep the declared type.
    let text = b"just some text".to_vec();
    let answer = upload(&pds, &alice, "text/plain", &text).await;
    assert_eq!(answer["blob"]["mimeType"], "text/plain");
    assert_eq!(answer["blob"]["size"], text.len());

    // Tracked as temporary uploads, not served, not listed.
    let store = state.storage.actors().open(&alice.did).unwrap();
    let row = blob_index::get_blob(&store, &cid).unwrap().unwrap();
    assert!(row.temp_key.is_some());
    assert_eq!(row.mime_type, "image/png");
    assert!(state
        .blobs
        .has_temp(&alice.did, row.temp_key.as_deref().unwrap())
        .await
        .unwrap());
    let refused = get_blob(&pds, &alice.did, &cid).await;
    assert_eq!(
        refusal(refused),
        (
            400,
            "InvalidRequest".to_owned(),
            "Blob not found".to_owned()
        )
    );

    // Without a session, the upload is refused.
    let anonymous = try_upload(&pds.client(), "image/png", &png).await;
    assert_eq!(refusal(anonymous).0, 401);
    pds.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_whatever_the_length_says() {
    let (pds, _state) = start(Some(1000)).await;
    let alice = pds.create("alice").await;

    // Exactly the limit is fine.
    let answer = upload(&pds, &alice, "application/octet-stream", &[7u8; 1000]).await;
    assert_eq!(answer["blob"]["size"], 1000);

    // One byte over, with an honest Content-Length.
    let over = try_upload(
        &pds.bearer(&alice.access_jwt),
        "application/octet-stream",
        &[7u8; 1001],
    )
    .await;
    assert_eq!(
        refusal(over),
        (
            413,
            "PayloadTooLarge".to_owned(),
            "request entity too large".to_owned()
        )
    );

    // A chunked body with no length, larger than the limit.
    let mut request = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\nContent-Type: image/png\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        alice.access_jwt
    )
    .into_bytes();
    for _ in 0..3 {
        request.extend_from_slice(b"190\r\n");
        request.extend_from_slice(&[1u8; 400]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = raw_http(&pds, &request).await;
    assert_eq!(status, 413);
    assert_eq!(
        error_of(&body),
        (
            "PayloadTooLarge".to_owned(),
            "request entity too large".to_owned()
        )
    );

    // A Content-Length over the limit is refused before the body is read.
    let request = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\nContent-Type: image/png\r\n\
         Content-Length: 5000000\r\nConnection: close\r\n\r\nshort",
        alice.access_jwt
    );
    let (status, _, body) = raw_http(&pds, request.as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(error_of(&body).0, "PayloadTooLarge");

    // No Content-Type: refused as the reference refuses it.
    let request = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        alice.access_jwt
    );
    let (status, _, body) = raw_http(&pds, request.as_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body),
        (
            "InvalidRequest".to_owned(),
            "Request encoding (Content-Type) required but not provided".to_owned()
        )
    );
    pds.stop().await;
}

#[tokio::test]
async fn writes_referencing_unknown_or_mismatched_blobs_are_refused() {
    let (pds, state, alice) = start_with_alice().await;
    let bob = pds.create("bob").await;

    let unknown = atp_crypto::cid_for_raw(b"never uploaded");
    let err = refused_avatar(&state, &alice.did, unknown, "image/png", 14).await;
    assert_eq!(
        (err.status().as_u16(), err.name(), err.message()),
        (
            400,
            "BlobNotFound",
            format!("Could not find blob: {unknown}").as_str()
        )
    );

    // Bob's upload is not Alice's.
    let (png, cid) = upload_png(&pds, &bob, 10).await;
    let err = refused_avatar(&state, &alice.did, cid, "image/png", png.len() as u64).await;
    assert_eq!(err.name(), "BlobNotFound");

    // The declared type and size must match the upload.
    let err = refused_avatar(&state, &bob.did, cid, "image/jpeg", png.len() as u64).await;
    assert_eq!(err.name(), "InvalidMimeType");
    assert_eq!(
        err.message(),
        "Referenced Mimetype does not match stored blob. Expected: image/png, Got: image/jpeg"
    );
    let err = refused_avatar(&state, &bob.did, cid, "image/png", 3).await;
    assert_eq!(err.name(), "InvalidSize");

    // Through createRecord, the same refusal.
    let refused = pds
        .bearer(&alice.access_jwt)
        .procedure::<_, _, Value>(
            "com.atproto.repo.createRecord",
            &(),
            &json!({
                "repo": alice.did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": "with an image",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                    "embed": {
                        "$type": "app.bsky.embed.images",
                        "images": [{
                            "alt": "",
                            "image": {
                                "$type": "blob",
                                "ref": {"$link": unknown.to_string()},
                                "mimeType": "image/png",
                                "size": 14,
                            },
                        }],
                    },
                },
            }),
        )
        .await;
    assert_eq!(
        refusal(refused),
        (
            400,
            "BlobNotFound".to_owned(),
            format!("Could not find blob: {unknown}")
        )
    );
    pds.stop().await;
}

#[tokio::test]
async fn referenced_blobs_become_permanent_are_served_and_collected() {
    let (pds, state, alice) = start_with_alice().await;
    let (png, cid) = upload_png(&pds, &alice, 2000).await;
    let size = png.len() as u64;
    let store = state.storage.actors().open(&alice.did).unwrap();
    let temp_key = temp_key_of(&store, &cid);

    // A record referencing it makes it permanent.
    write_profile(&state, &alice.did, Some((cid, "image/png", size)), false)
        .await
        .unwrap();
    let row = blob_index::get_blob(&store, &cid).unwrap().unwrap();
    assert_eq!(row.temp_key, None);
    assert!(!state.blobs.has_temp(&alice.did, &temp_key).await.unwrap());
    assert!(state.blobs.has_stored(&alice.did, &cid).await.unwrap());

    // getBlob serves it, publicly, with the reference's headers.
    let request = format!(
        "GET /xrpc/com.atproto.sync.getBlob?did={}&cid={cid} HTTP/1.1\r\nHost: localhost\r\n\
         Connection: close\r\n\r\n",
        alice.did
    );
    let (status, headers, body) = raw_http(&pds, request.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(body, png);
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert_eq!(
        header(&headers, "content-length"),
        Some(png.len().to_string().as_str())
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        header(&headers, "content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    assert_eq!(
        header(&headers, "content-disposition"),
        Some(format!("attachment; filename=\"{cid}\"").as_str())
    );

    // listBlobs lists it (since: only blobs of newer records).
    let listed = list_blobs(&pds.client(), &alice.did).await;
    assert_eq!(
        listed,
        json!({"cids": [cid.to_string()], "cursor": cid.to_string()})
    );
    let rev = store.root().unwrap().unwrap().rev;
    let newer: Value = pds
        .client()
        .query(
            "com.atproto.sync.listBlobs",
            &json!({"did": alice.did, "since": rev}),
        )
        .await
        .unwrap();
    assert_eq!(newer, json!({"cids": []}));

    // Replacing the avatar: the new blob becomes permanent, the old one is
    // collected.
    let jpeg = [
        0xffu8, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0, 1,
    ];
    let jpeg_cid = atp_crypto::cid_for_raw(&jpeg);
    let answer = upload(&pds, &alice, "application/octet-stream", &jpeg).await;
    assert_eq!(answer["blob"]["mimeType"], "image/jpeg");
    write_profile(
        &state,
        &alice.did,
        Some((jpeg_cid, "image/jpeg", jpeg.len() as u64)),
        false,
    )
    .await
    .unwrap();
    assert!(blob_index::get_blob(&store, &cid).unwrap().is_none());
    assert!(!state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    assert!(state.blobs.has_stored(&alice.did, &jpeg_cid).await.unwrap());
    let listed = list_blobs(&pds.client(), &alice.did).await;
    assert_eq!(listed["cids"], json!([jpeg_cid.to_string()]));
    let gone = get_blob(&pds, &alice.did, &cid).await;
    assert_eq!(refusal(gone).2, "Blob not found");

    // Deleting the last referencing record removes the blob from listBlobs
    // and from storage.
    write_profile(&state, &alice.did, None, true).await.unwrap();
    let listed = list_blobs(&pds.client(), &alice.did).await;
    assert_eq!(listed, json!({"cids": []}));
    assert!(blob_index::get_blob(&store, &jpeg_cid).unwrap().is_none());
    assert!(!state.blobs.has_stored(&alice.did, &jpeg_cid).await.unwrap());
    pds.stop().await;
}

#[tokio::test]
async fn blobs_shared_by_two_records_stay_until_both_are_gone() {
    let (pds, state, alice) = start_with_alice().await;
    let (png, cid) = upload_avatar(&pds, &state, &alice, 50).await;
    let size = png.len() as u64;

    // A second record referencing the same (now permanent) blob.
    let store = state.storage.actors().open(&alice.did).unwrap();
    check_write_blobs(&state, &alice.did, &[png_ref(cid, size)])
        .await
        .unwrap();
    let commit = commit_blob_record(
        &store,
        "app.bsky.feed.post",
        "3kabcdefgh222",
        "image",
        cid,
        size,
    );
    after_commit(&state, &alice.did, &commit).await.unwrap();

    // Deleting the profile keeps the blob: the post still references it.
    write_profile(&state, &alice.did, None, true).await.unwrap();
    assert!(state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    assert_eq!(
        store.records_for_blob(&cid).unwrap(),
        vec![format!(
            "at://{}/app.bsky.feed.post/3kabcdefgh222",
            alice.did
        )]
    );
    pds.stop().await;
}

#[tokio::test]
async fn missing_blobs_are_listed_until_uploaded() {
    let (pds, state, alice) = start_with_alice().await;
    let store = state.storage.actors().open(&alice.did).unwrap();
    let png = png_bytes(30);
    let cid = atp_crypto::cid_for_raw(&png);

    // A record imported with a blob reference, the blob not uploaded (the
    // state after importRepo).
    commit_blob_record(
        &store,
        "app.bsky.actor.profile",
        "self",
        "avatar",
        cid,
        png.len() as u64,
    );

    let client = pds.bearer(&alice.access_jwt);
    let missing: Value = client
        .query("com.atproto.repo.listMissingBlobs", &json!({}))
        .await
        .unwrap();
    let uri = format!("at://{}/app.bsky.actor.profile/self", alice.did);
    assert_eq!(
        missing,
        json!({"blobs": [{"cid": cid.to_string(), "recordUri": uri}], "cursor": cid.to_string()})
    );
    let after_cursor: Value = client
        .query(
            "com.atproto.repo.listMissingBlobs",
            &json!({"cursor": cid.to_string()}),
        )
        .await
        .unwrap();
    assert_eq!(after_cursor, json!({"blobs": []}));
    let anonymous = pds
        .client()
        .query::<_, Value>("com.atproto.repo.listMissingBlobs", &json!({}))
        .await;
    assert_eq!(refusal(anonymous).0, 401);

    // Uploading it makes it permanent at once (a record references it).
    upload(&pds, &alice, "image/png", &png).await;
    let row = blob_index::get_blob(&store, &cid).unwrap().unwrap();
    assert_eq!(row.temp_key, None);
    assert!(state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    let missing: Value = client
        .query("com.atproto.repo.listMissingBlobs", &json!({}))
        .await
        .unwrap();
    assert_eq!(missing, json!({"blobs": []}));
    let served = get_blob(&pds, &alice.did, &cid).await.unwrap();
    assert_eq!(served.bytes, png);
    pds.stop().await;
}

#[tokio::test]
async fn unreferenced_uploads_are_swept() {
    let (pds, state, alice) = start_with_alice().await;
    let bytes = b"forgotten upload".to_vec();
    let cid = atp_crypto::cid_for_raw(&bytes);
    upload(&pds, &alice, "text/plain", &bytes).await;
    let store = state.storage.actors().open(&alice.did).unwrap();
    let temp_key = temp_key_of(&store, &cid);

    // Not old enough: kept.
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        sweep_temp_blobs_before(&state, an_hour_ago).await.unwrap(),
        0
    );
    assert!(state.blobs.has_temp(&alice.did, &temp_key).await.unwrap());

    // Older than the cutoff: the bytes and the index row go.
    let later = SystemTime::now() + Duration::from_secs(60);
    assert_eq!(sweep_temp_blobs_before(&state, later).await.unwrap(), 1);
    assert!(!state.blobs.has_temp(&alice.did, &temp_key).await.unwrap());
    assert!(blob_index::get_blob(&store, &cid).unwrap().is_none());
    // So a record can no longer reference it.
    let err = refused_avatar(&state, &alice.did, cid, "text/plain", bytes.len() as u64).await;
    assert_eq!(err.name(), "BlobNotFound");
    pds.stop().await;
}

#[tokio::test]
async fn sync_methods_respect_repo_availability() {
    let (pds, state, alice) = start_with_alice().await;
    let (png, cid) = upload_avatar(&pds, &state, &alice, 5).await;

    let unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let refused = pds
        .client()
        .query::<_, Value>("com.atproto.sync.listBlobs", &json!({"did": unknown}))
        .await;
    assert_eq!(
        refusal(refused),
        (
            400,
            "RepoNotFound".to_owned(),
            format!("Could not find repo for DID: {unknown}")
        )
    );

    // Taken down: refused to others, served to the admin and the owner.
    let accounts = std::sync::Arc::clone(state.storage.accounts());
    let did = alice.did.clone();
    tokio::task::spawn_blocking(move || accounts.set_takedown(&did, Some("mod-1")).unwrap())
        .await
        .unwrap();
    let params = json!({"did": alice.did, "cid": cid.to_string()});
    let refused = get_blob(&pds, &alice.did, &cid).await;
    assert_eq!(
        refusal(refused),
        (
            400,
            "RepoTakendown".to_owned(),
            format!("Repo has been takendown: {}", alice.did)
        )
    );
    // The owner's session may not upload any more.
    let refused = try_upload(&pds.bearer(&alice.access_jwt), "image/png", &png).await;
    assert_eq!(
        refusal(refused),
        (
            401,
            "AccountTakedown".to_owned(),
            "Account has been taken down".to_owned()
        )
    );
    let admin = pds.admin();
    let served = admin
        .query_bytes("com.atproto.sync.getBlob", &params)
        .await
        .unwrap();
    assert_eq!(served.bytes, png);
    let listed = list_blobs(&admin, &alice.did).await;
    assert_eq!(listed["cids"], json!([cid.to_string()]));
    pds.stop().await;
}

#[tokio::test]
async fn taken_down_blobs_are_not_served_used_or_uploaded_again() {
    let (pds, state, alice) = start_with_alice().await;
    let (png, cid) = upload_avatar(&pds, &state, &alice, 40).await;
    let size = png.len() as u64;

    assert!(
        update_blob_takedown(&state, &alice.did, &cid, Some("mod-7".to_owned()))
            .await
            .unwrap()
    );
    let refused = get_blob(&pds, &alice.did, &cid).await;
    assert_eq!(refusal(refused).2, "Blob not found");
    assert!(!state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    let err = check_write_blobs(&state, &alice.did, &[png_ref(cid, size)])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "BlobNotFound");
    let again = try_upload(&pds.bearer(&alice.access_jwt), "image/png", &png).await;
    assert_eq!(
        refusal(again),
        (
            400,
            "InvalidRequest".to_owned(),
            "Blob has been takendown, cannot re-upload".to_owned()
        )
    );

    // Lifted: served again.
    assert!(update_blob_takedown(&state, &alice.did, &cid, None)
        .await
        .unwrap());
    let served = get_blob(&pds, &alice.did, &cid).await.unwrap();
    assert_eq!(served.bytes, png);
    let unknown = atp_crypto::cid_for_raw(b"unknown");
    assert!(
        !update_blob_takedown(&state, &alice.did, &unknown, Some("x".to_owned()))
            .await
            .unwrap()
    );
    pds.stop().await;
}

#[tokio::test]
async fn blobs_on_s3_go_through_the_whole_cycle() {
    let moto = moto::Moto::start().await;
    let s3 = std::sync::Arc::new(moto.store("pds-http-blobs").await);
    let (pds, state) = Pds::start_with_state(|state| state.blobs = s3.clone()).await;
    let alice = pds.create("alice").await;

    let png = png_bytes(3000);
    let cid = atp_crypto::cid_for_raw(&png);
    let size = png.len() as u64;
    let answer = upload(&pds, &alice, "application/octet-stream", &png).await;
    assert_eq!(answer["blob"]["mimeType"], "image/png");
    assert!(!s3.has_stored(&alice.did, &cid).await.unwrap());

    write_profile(&state, &alice.did, Some((cid, "image/png", size)), false)
        .await
        .unwrap();
    assert!(s3.has_stored(&alice.did, &cid).await.unwrap());
    let served = get_blob(&pds, &alice.did, &cid).await.unwrap();
    assert_eq!(served.bytes, png);
    assert_eq!(served.content_type.as_deref(), Some("image/png"));

    write_profile(&state, &alice.did, None, true).await.unwrap();
    assert!(!s3.has_stored(&alice.did, &cid).await.unwrap());
    pds.stop().await;
}

#[tokio::test]
async fn a_service_token_of_the_account_may_upload_for_it() {
    use atp_xrpc::auth::{create_service_jwt, ServiceJwtParams};
    let (pds, state, alice) = start_with_alice().await;
    let bob = pds.create("bob").await;
    let key = account_key(&state.storage, &alice.did);
    let token = |aud: &str, lxm: &str| {
        create_service_jwt(&key, &ServiceJwtParams::new(&alice.did, aud, Some(lxm))).unwrap()
    };
    let png = png_bytes(64);
    let cid = atp_crypto::cid_for_raw(&png);
    let send = |token: String| {
        let client = pds.bearer(&token);
        let png = png.clone();
        async move {
            client
                .procedure_bytes(
                    "com.atproto.repo.uploadBlob",
                    &(),
                    "application/octet-stream",
                    Bytes::from(png),
                )
                .await
        }
    };

    // Signed by Alice for uploadBlob at this PDS: the blob is Alice's.
    let body = send(token("did:web:localhost", "com.atproto.repo.uploadBlob"))
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(answer["blob"]["ref"]["$link"], cid.to_string());
    assert_eq!(answer["blob"]["mimeType"], "image/png");
    let store = state.storage.actors().open(&alice.did).unwrap();
    assert!(blob_index::get_blob(&store, &cid).unwrap().is_some());

    // Another method, another audience, or claiming to be Bob: refused.
    let (status, name, _) =
        refusal(send(token("did:web:localhost", "com.atproto.repo.createRecord")).await);
    assert_eq!((status, name.as_str()), (401, "BadJwtLexiconMethod"));
    let (status, name, message) =
        refusal(send(token("did:web:elsewhere", "com.atproto.repo.uploadBlob")).await);
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (
            401,
            "BadJwtAudience",
            "jwt audience does not match service did"
        )
    );
    let forged = create_service_jwt(
        &key,
        &ServiceJwtParams::new(
            &bob.did,
            "did:web:localhost",
            Some("com.atproto.repo.uploadBlob"),
        ),
    )
    .unwrap();
    let (status, name, _) = refusal(send(forged).await);
    assert_eq!((status, name.as_str()), (401, "BadJwtSignature"));
    pds.stop().await;
}

#[tokio::test]
async fn a_referenced_upload_whose_move_failed_is_made_permanent_by_the_sweep() {
    let (pds, state, alice) = start_with_alice().await;
    let (png, cid) = upload_png(&pds, &alice, 90).await;

    // A commit referencing it whose blob hook never ran.
    let store = state.storage.actors().open(&alice.did).unwrap();
    commit_blob_record(
        &store,
        "app.bsky.actor.profile",
        "self",
        "avatar",
        cid,
        png.len() as u64,
    );
    assert!(!state.blobs.has_stored(&alice.did, &cid).await.unwrap());

    let later = SystemTime::now() + Duration::from_secs(60);
    assert_eq!(sweep_temp_blobs_before(&state, later).await.unwrap(), 0);
    assert!(state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    assert_eq!(
        blob_index::get_blob(&store, &cid)
            .unwrap()
            .unwrap()
            .temp_key,
        None
    );
    let served = get_blob(&pds, &alice.did, &cid).await.unwrap();
    assert_eq!(served.bytes, png);
    pds.stop().await;
}

#[tokio::test]
async fn the_record_methods_drive_the_blob_lifecycle() {
    let (pds, state, alice) = start_with_alice().await;
    let client = pds.bearer(&alice.access_jwt);
    let png = png_bytes(120);
    let cid = atp_crypto::cid_for_raw(&png);
    let blob = upload(&pds, &alice, "image/png", &png).await["blob"].clone();

    let created: Value = client
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({
                "repo": alice.did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": "a picture",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                    "embed": {
                        "$type": "app.bsky.embed.images",
                        "images": [{"alt": "", "image": blob}],
                    },
                },
            }),
        )
        .await
        .unwrap();
    assert!(state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    let served = get_blob(&pds, &alice.did, &cid).await.unwrap();
    assert_eq!(served.bytes, png);
    let listed = list_blobs(&pds.client(), &alice.did).await;
    assert_eq!(listed["cids"], json!([cid.to_string()]));

    let rkey = created["uri"].as_str().unwrap().rsplit('/').next().unwrap();
    let _: Value = client
        .procedure(
            "com.atproto.repo.deleteRecord",
            &(),
            &json!({"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey}),
        )
        .await
        .unwrap();
    let listed = list_blobs(&pds.client(), &alice.did).await;
    assert_eq!(listed, json!({"cids": []}));
    assert!(!state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    let store = state.storage.actors().open(&alice.did).unwrap();
    assert!(blob_index::get_blob(&store, &cid).unwrap().is_none());
    pds.stop().await;
}

#[tokio::test]
async fn blobs_left_unreferenced_by_a_repository_swap_are_collected_on_demand() {
    let (pds, state, alice) = start_with_alice().await;
    let (_, cid) = upload_avatar(&pds, &state, &alice, 70).await;
    assert_eq!(
        collect_dereferenced_blobs(&state, &alice.did)
            .await
            .unwrap(),
        0
    );

    // The references vanish without a commit of deletes (as when an
    // import replaces the repository).
    let store = state.storage.actors().open(&alice.did).unwrap();
    store
        .transact(|tx| {
            tx.sql().execute("DELETE FROM record_blob", [])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        collect_dereferenced_blobs(&state, &alice.did)
            .await
            .unwrap(),
        1
    );
    assert!(!state.blobs.has_stored(&alice.did, &cid).await.unwrap());
    assert!(blob_index::get_blob(&store, &cid).unwrap().is_none());
    pds.stop().await;
}
