//! One blob store suite, run on the disk store and on the S3 store against
//! a real S3-compatible server (moto) on loopback.
#![allow(clippy::unwrap_used)]

use std::io;
use std::time::{Duration, SystemTime};

mod moto;

use atp_pds::blob_store::{BlobStore, ByteStream, DiskBlobStore, S3BlobStore};
use bytes::Bytes;
use futures_util::StreamExt;
use moto::Moto;

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:bv6ggog3tya2z3vxsub7hnal";

fn chunks(parts: &[&[u8]]) -> ByteStream {
    let parts: Vec<io::Result<Bytes>> = parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    Box::pin(futures_util::stream::iter(parts))
}

async fn read_all(store: &dyn BlobStore, did: &str, cid: &atp_crypto::Cid) -> Option<Vec<u8>> {
    let mut stream = store.get_stream(did, cid).await.unwrap()?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    Some(out)
}

/// The behaviour every store must have.
async fn blob_store_suite(store: &dyn BlobStore) {
    // A temporary upload in several chunks, then made permanent.
    let bytes = b"hello, blob store".to_vec();
    let cid = atp_crypto::cid_for_raw(&bytes);
    let key = store
        .put_temp(ALICE, chunks(&[b"hello, ", b"blob ", b"store"]))
        .await
        .unwrap();
    assert!(store.has_temp(ALICE, &key).await.unwrap());
    assert!(!store.has_temp(BOB, &key).await.unwrap());
    assert!(!store.has_stored(ALICE, &cid).await.unwrap());
    assert!(store.get_bytes(ALICE, &cid).await.unwrap().is_none());

    store.make_permanent(ALICE, &key, &cid).await.unwrap();
    assert!(!store.has_temp(ALICE, &key).await.unwrap());
    assert!(store.has_stored(ALICE, &cid).await.unwrap());
    assert_eq!(store.get_bytes(ALICE, &cid).await.unwrap().unwrap(), bytes);
    assert_eq!(read_all(store, ALICE, &cid).await.unwrap(), bytes);
    // Blobs are per account.
    assert!(store.get_bytes(BOB, &cid).await.unwrap().is_none());
    assert!(!store.has_stored(BOB, &cid).await.unwrap());

    // The same bytes uploaded again: the second temporary copy is dropped.
    let again = store
        .put_temp_bytes(ALICE, bytes.clone().into())
        .await
        .unwrap();
    assert_ne!(again, key);
    store.make_permanent(ALICE, &again, &cid).await.unwrap();
    assert!(!store.has_temp(ALICE, &again).await.unwrap());
    assert_eq!(store.get_bytes(ALICE, &cid).await.unwrap().unwrap(), bytes);

    // A temporary key that does not exist cannot be made permanent.
    let other_cid = atp_crypto::cid_for_raw(b"never uploaded");
    assert!(store
        .make_permanent(ALICE, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &other_cid)
        .await
        .is_err());
    assert!(!store.has_stored(ALICE, &other_cid).await.unwrap());

    // A stream that fails aborts the upload and leaves nothing behind.
    let failing: ByteStream = Box::pin(futures_util::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(io::Error::other("client went away")),
    ]));
    assert!(store.put_temp(ALICE, failing).await.is_err());

    // A larger blob (over S3's 8 MiB part size: a multipart upload there),
    // streamed in many chunks, comes back intact.
    let large: Vec<u8> = (0..(17 * 1024 * 1024 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    let large_cid = atp_crypto::cid_for_raw(&large);
    let pieces: Vec<io::Result<Bytes>> = large
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let large_key = store
        .put_temp(BOB, Box::pin(futures_util::stream::iter(pieces)))
        .await
        .unwrap();
    store
        .make_permanent(BOB, &large_key, &large_cid)
        .await
        .unwrap();
    let back = read_all(store, BOB, &large_cid).await.unwrap();
    assert_eq!(back.len(), large.len());
    assert_eq!(atp_crypto::cid_for_raw(&back), large_cid);

    // A large upload failing midway leaves nothing behind either.
    let mut pieces: Vec<io::Result<Bytes>> = large
        .chunks(1_000_000)
        .take(10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    pieces.push(Err(io::Error::other("client went away")));
    assert!(store
        .put_temp(BOB, Box::pin(futures_util::stream::iter(pieces)))
        .await
        .is_err());

    // Quarantine: not served, kept, and put back.
    let taken = Bytes::from_static(b"taken down");
    let taken_cid = atp_crypto::cid_for_raw(&taken);
    store
        .put_permanent(BOB, &taken_cid, taken.clone())
        .await
        .unwrap();
    assert!(store.quarantine(BOB, &taken_cid).await.unwrap());
    assert!(store.get_bytes(BOB, &taken_cid).await.unwrap().is_none());
    assert!(!store.has_stored(BOB, &taken_cid).await.unwrap());
    assert!(!store.quarantine(BOB, &taken_cid).await.unwrap());
    assert!(store.unquarantine(BOB, &taken_cid).await.unwrap());
    assert_eq!(
        store.get_bytes(BOB, &taken_cid).await.unwrap().unwrap(),
        taken
    );
    assert!(!store.unquarantine(BOB, &taken_cid).await.unwrap());
    assert!(!store
        .unquarantine(ALICE, &atp_crypto::cid_for_raw(b"none"))
        .await
        .unwrap());
    store.delete(BOB, &taken_cid).await.unwrap();

    // Permanent blobs written directly (imports).
    let imported = Bytes::from_static(b"imported blob");
    let imported_cid = atp_crypto::cid_for_raw(&imported);
    store
        .put_permanent(ALICE, &imported_cid, imported.clone())
        .await
        .unwrap();
    assert_eq!(
        store
            .get_bytes(ALICE, &imported_cid)
            .await
            .unwrap()
            .unwrap(),
        imported
    );

    // Deletion, idempotent; delete_many.
    store.delete(ALICE, &cid).await.unwrap();
    store.delete(ALICE, &cid).await.unwrap();
    assert!(store.get_bytes(ALICE, &cid).await.unwrap().is_none());
    store
        .delete_many(ALICE, &[imported_cid, cid])
        .await
        .unwrap();
    assert!(!store.has_stored(ALICE, &imported_cid).await.unwrap());

    // Temporary uploads are swept once older than the cutoff, and only
    // then; what was swept is reported.
    let stale = store
        .put_temp_bytes(ALICE, Bytes::from_static(b"stale"))
        .await
        .unwrap();
    let past = SystemTime::now() - Duration::from_secs(3600);
    assert!(store.sweep_temp(past).await.unwrap().is_empty());
    assert!(store.has_temp(ALICE, &stale).await.unwrap());
    let future = SystemTime::now() + Duration::from_secs(60);
    let listed = store.stale_temp(future).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(store.has_temp(ALICE, &stale).await.unwrap());
    let swept = store.sweep_temp(future).await.unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(
        (swept[0].did.as_str(), swept[0].key.as_str()),
        (ALICE, stale.as_str())
    );
    assert!(!store.has_temp(ALICE, &stale).await.unwrap());
    store.delete_temp(ALICE, &stale).await.unwrap();

    // Deleting an account's blobs leaves the others'.
    let temp = store
        .put_temp_bytes(ALICE, Bytes::from_static(b"t"))
        .await
        .unwrap();
    let kept = Bytes::from_static(b"kept");
    let kept_cid = atp_crypto::cid_for_raw(&kept);
    store
        .put_permanent(ALICE, &kept_cid, kept.clone())
        .await
        .unwrap();
    store.delete_all(ALICE).await.unwrap();
    assert!(!store.has_temp(ALICE, &temp).await.unwrap());
    assert!(!store.has_stored(ALICE, &kept_cid).await.unwrap());
    assert!(store.has_stored(BOB, &large_cid).await.unwrap());

    // Names that could escape the store are refused.
    assert!(store.has_temp(ALICE, "../../etc").await.is_err());
    assert!(store
        .put_temp_bytes("did:web:a/../b", Bytes::new())
        .await
        .is_err());
    assert!(store.get_bytes("not-a-did", &large_cid).await.is_err());
}

#[tokio::test]
async fn disk_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::new(dir.path().join("blobs"));
    blob_store_suite(&store).await;
    // The layout: `<root>/<did>/<cid>` and `<root>/tmp/<did>/<key>`, no
    // side files left.
    let bytes = b"layout".to_vec();
    let cid = atp_crypto::cid_for_raw(&bytes);
    let key = store.put_temp_bytes(BOB, bytes.into()).await.unwrap();
    let temp_dir = store.root().join("tmp").join(BOB);
    assert!(temp_dir.join(&key).is_file());
    store.make_permanent(BOB, &key, &cid).await.unwrap();
    assert!(store.root().join(BOB).join(cid.to_string()).is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&temp_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn disk_blob_store_with_temporary_uploads_on_another_file_system() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // /dev/shm (tmpfs) when present: a different device than the data
    // directory, so that blobs are copied rather than renamed.
    let temp = match std::path::Path::new("/dev/shm") {
        shm if shm.is_dir() => tempfile::tempdir_in(shm).unwrap(),
        _ => tempfile::tempdir().unwrap(),
    };
    let crosses = std::fs::metadata(dir.path()).unwrap().dev()
        != std::fs::metadata(temp.path()).unwrap().dev();
    println!("temporary uploads on another file system: {crosses}");
    let store = DiskBlobStore::new(dir.path().join("blobs")).with_temp_location(temp.path());
    blob_store_suite(&store).await;

    let bytes = b"across".to_vec();
    let cid = atp_crypto::cid_for_raw(&bytes);
    let key = store
        .put_temp_bytes(BOB, bytes.clone().into())
        .await
        .unwrap();
    assert!(temp.path().join(BOB).join(&key).is_file());
    store.make_permanent(BOB, &key, &cid).await.unwrap();
    assert!(!temp.path().join(BOB).join(&key).exists());
    assert_eq!(
        std::fs::read(store.root().join(BOB).join(cid.to_string())).unwrap(),
        bytes
    );
    assert!(!store.root().join("tmp").exists());
}

/// The body of object `key` read straight from moto with a request signed
/// here (not through the store), `None` on 404.
async fn raw_get(url: &str, key: &str) -> Option<Vec<u8>> {
    use rusty_s3::S3Action;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bucket = rusty_s3::Bucket::new(
        url::Url::parse(url).unwrap(),
        rusty_s3::UrlStyle::Path,
        "pds-blobs",
        "us-east-1",
    )
    .unwrap();
    let credentials = rusty_s3::Credentials::new(
        atp_test_vectors::MotoServer::ACCESS_KEY_ID,
        atp_test_vectors::MotoServer::SECRET_ACCESS_KEY,
    );
    let signed = rusty_s3::actions::GetObject::new(&bucket, Some(&credentials), key)
        .sign(Duration::from_secs(60));
    let target = format!("{}?{}", signed.path(), signed.query().unwrap_or(""));
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().to_owned();
    match status.as_str() {
        "200" => Some(answer[split + 4..].to_vec()),
        "404" => None,
        other => panic!("unexpected status {other}: {head}"),
    }
}

#[tokio::test]
async fn s3_blob_store() {
    let moto = Moto::start().await;
    let store = moto.store("pds-blobs").await;
    blob_store_suite(&store).await;

    // The reference's layout: `blocks/<did>/<cid>` and `tmp/<did>/<key>`,
    // checked by reading the objects straight from the server.
    let bytes = b"layout".to_vec();
    let cid = atp_crypto::cid_for_raw(&bytes);
    let key = store
        .put_temp_bytes(BOB, bytes.clone().into())
        .await
        .unwrap();
    let temp_object = format!("tmp/{BOB}/{key}");
    assert_eq!(raw_get(&moto.url, &temp_object).await, Some(bytes.clone()));
    store.make_permanent(BOB, &key, &cid).await.unwrap();
    assert_eq!(raw_get(&moto.url, &temp_object).await, None);
    let stored_object = format!("blocks/{BOB}/{cid}");
    assert_eq!(raw_get(&moto.url, &stored_object).await, Some(bytes));

    // A missing bucket is an error, not "not found".
    let missing = S3BlobStore::new(&moto.config("no-such-bucket")).unwrap();
    assert!(missing
        .put_temp_bytes(BOB, Bytes::from_static(b"x"))
        .await
        .is_err());
}

/// A loopback TCP proxy in front of moto that drops its first connection
/// without answering, answers the second with a 503, and pipes the others
/// through (or, with `always_fail`, drops every connection).
struct FlakyProxy {
    url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyProxy {
    async fn start(upstream: &str, always_fail: bool) -> FlakyProxy {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if always_fail || n == 1 {
                        drop(conn);
                    } else if n == 2 {
                        // Read the request (head and body), then refuse it.
                        let mut seen = Vec::new();
                        let mut buf = [0u8; 4096];
                        loop {
                            let Ok(read) = conn.read(&mut buf).await else {
                                return;
                            };
                            if read == 0 {
                                return;
                            }
                            seen.extend_from_slice(&buf[..read]);
                            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head =
                                    String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                                let length: usize = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .map(|v| v.trim().parse().unwrap())
                                    .unwrap_or(0);
                                if seen.len() >= end + 4 + length {
                                    break;
                                }
                            }
                        }
                        let _ = conn
                            .write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            )
                            .await;
                        let _ = conn.shutdown().await;
                    } else if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                    }
                });
            }
        });
        FlakyProxy { url, connections }
    }
}

#[tokio::test]
async fn s3_requests_are_tried_again_after_transient_failures() {
    let moto = Moto::start().await;
    moto.store("flaky").await;
    let proxy = FlakyProxy::start(&moto.url, false).await;
    let mut config = moto.config("flaky");
    config.endpoint = Some(proxy.url.clone());
    let store = S3BlobStore::new(&config).unwrap();

    // Dropped, then 503, then through.
    let bytes = Bytes::from_static(b"eventually stored");
    let cid = atp_crypto::cid_for_raw(&bytes);
    let key = store.put_temp_bytes(ALICE, bytes.clone()).await.unwrap();
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    store.make_permanent(ALICE, &key, &cid).await.unwrap();
    assert_eq!(store.get_bytes(ALICE, &cid).await.unwrap().unwrap(), bytes);

    // A server that never answers: the error comes back after the tries.
    let dead = FlakyProxy::start(&moto.url, true).await;
    let mut config = moto.config("flaky");
    config.endpoint = Some(dead.url.clone());
    let store = S3BlobStore::new(&config).unwrap();
    assert!(store.put_temp_bytes(ALICE, bytes).await.is_err());
    assert_eq!(
        dead.connections.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}
