//! Blobs as objects in an S3-compatible bucket.
//!
//! Requests are signed (AWS Signature V4, query-string form) by the
//! sans-IO `rusty-s3` crate and sent with hyper.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use atp_crypto::Cid;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateBucket, CreateMultipartUpload,
    DeleteObject, GetObject, HeadObject, ListObjectsV2, PutObject, S3Action, UploadPart,
};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::{
    check_did, check_temp_key, new_temp_key, remote_error, BlobStore, BoxFuture, ByteStream,
    TempUpload,
};
use crate::error::{Error, Result};

/// How long a signed request URL stays valid.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Size of the parts of a multipart upload (S3 wants at least 5 MiB for
/// every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Tries of a request that fails in a way worth trying again.
const ATTEMPTS: u32 = 3;

/// Whether an answer's status says "try again" (server-side trouble).
fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// The pause before try number `attempt + 1`: 100 ms, then 400 ms.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(100 * 4u64.pow(attempt.saturating_sub(1)))
}

/// Key prefix of permanent blobs (the reference PDS's layout).
const STORED_PREFIX: &str = "blocks";
/// Key prefix of temporary uploads.
const TEMP_PREFIX: &str = "tmp";
/// Key prefix of quarantined (taken-down) blobs.
const QUARANTINE_PREFIX: &str = "quarantine";

/// Settings of an [`S3BlobStore`], as the reference PDS's
/// `PDS_BLOBSTORE_S3_*` environment variables.
#[derive(Clone)]
pub struct S3Config {
    /// `PDS_BLOBSTORE_S3_BUCKET`.
    pub bucket: String,
    /// `PDS_BLOBSTORE_S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `PDS_BLOBSTORE_S3_ENDPOINT`: base URL of an S3-compatible service;
    /// `None` for AWS (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    /// `PDS_BLOBSTORE_S3_FORCE_PATH_STYLE`: `<endpoint>/<bucket>/<key>`
    /// rather than `<bucket>.<endpoint host>/<key>`.
    pub force_path_style: bool,
    /// `PDS_BLOBSTORE_S3_ACCESS_KEY_ID`. Without it, the store signs with
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
    /// if set, else sends unsigned requests.
    pub access_key_id: Option<String>,
    /// `PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS` (default 20 s): longest upload
    /// of one blob.
    pub upload_timeout: Duration,
    /// `PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS`: longest wait for the answer
    /// to any other request (default 15 s).
    pub request_timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("upload_timeout", &self.upload_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl S3Config {
    /// Settings for `bucket` with the defaults: AWS endpoint of
    /// `us-east-1`, virtual-host style, no credentials, 20 s uploads, 15 s
    /// requests.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            upload_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(15),
        }
    }

    /// Settings from `PDS_BLOBSTORE_S3_*` variables looked up with `var`;
    /// `None` when `PDS_BLOBSTORE_S3_BUCKET` is unset. An access key
    /// without its secret (or the reverse) is refused, as the reference
    /// refuses it.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(bucket) = var("PDS_BLOBSTORE_S3_BUCKET").filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let mut config = S3Config::new(bucket);
        if let Some(region) = var("PDS_BLOBSTORE_S3_REGION").filter(|r| !r.is_empty()) {
            config.region = region;
        }
        config.endpoint = var("PDS_BLOBSTORE_S3_ENDPOINT").filter(|e| !e.is_empty());
        config.force_path_style = matches!(
            var("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE").as_deref(),
            Some("true" | "1")
        );
        config.access_key_id = var("PDS_BLOBSTORE_S3_ACCESS_KEY_ID").filter(|k| !k.is_empty());
        config.secret_access_key =
            var("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY").filter(|k| !k.is_empty());
        if config.access_key_id.is_some() != config.secret_access_key.is_some() {
            return Err(Error::InvalidInput(
                "PDS_BLOBSTORE_S3_ACCESS_KEY_ID and PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY must be set together"
                    .to_owned(),
            ));
        }
        let millis = |name: &str| -> Result<Option<Duration>> {
            var(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                        Error::InvalidInput(format!("{name} must be a number of milliseconds"))
                    })
                })
                .transpose()
        };
        if let Some(timeout) = millis("PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS")? {
            config.upload_timeout = timeout;
        }
        config.request_timeout = match millis("PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS")? {
            Some(timeout) => timeout,
            None => config.upload_timeout.min(Duration::from_secs(15)),
        };
        Ok(Some(config))
    }
}

/// Blobs in an S3-compatible bucket: `blocks/<did>/<cid>` (permanent) and
/// `tmp/<did>/<key>` (temporary), as the reference PDS lays them out.
///
/// Uploads are streamed: a blob of at most 8 MiB is sent in one
/// `PutObject` request, a larger one as a multipart upload of 8 MiB parts,
/// so at most one part is held in memory. Making a blob permanent (or
/// quarantining it) is a server-side copy followed by a delete.
#[derive(Clone)]
pub struct S3BlobStore {
    bucket: Bucket,
    credentials: Option<Credentials>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    upload_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket.name())
            .field("base_url", &self.bucket.base_url().as_str())
            .finish_non_exhaustive()
    }
}

/// The answer to one request, body read.
struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

fn stored_key(did: &str, cid: &Cid) -> Result<String> {
    check_did(did)?;
    Ok(format!("{STORED_PREFIX}/{did}/{cid}"))
}

fn temp_key(did: &str, key: &str) -> Result<String> {
    check_did(did)?;
    check_temp_key(key)?;
    Ok(format!("{TEMP_PREFIX}/{did}/{key}"))
}

fn describe_failure(action: &str, key: &str, answer: &Answer) -> Error {
    let body = String::from_utf8_lossy(&answer.body);
    let body: String = body.chars().take(300).collect();
    remote_error(format!(
        "S3 {action} of {key} failed with {}: {body}",
        answer.status
    ))
}

/// `Ok` when `answer` is a success, else the failure of `action` on `key`.
fn ensure_success(action: &str, key: &str, answer: &Answer) -> Result<()> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(describe_failure(action, key, answer))
    }
}

/// `Ok` when `answer` is a success or says the object is absent (deleting
/// what is gone is done), else the failure of `action` on `key`.
fn done_or_absent(action: &str, key: &str, answer: &Answer) -> Result<()> {
    if answer.status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        ensure_success(action, key, answer)
    }
}

/// Whether a copy or a multipart completion failed after its 200 status
/// was sent: the error is then in the body.
fn failed_late(answer: &Answer) -> bool {
    String::from_utf8_lossy(&answer.body).contains("<Error>")
}

impl S3BlobStore {
    /// A store on the bucket `config` describes.
    pub fn new(config: &S3Config) -> Result<Self> {
        let endpoint = match &config.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://s3.{}.amazonaws.com", config.region),
        };
        let endpoint = url::Url::parse(&endpoint).map_err(|err| {
            Error::InvalidInput(format!("invalid S3 endpoint {endpoint:?}: {err}"))
        })?;
        let style = if config.force_path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|err| Error::InvalidInput(format!("invalid S3 bucket settings: {err}")))?;
        let credentials = match (&config.access_key_id, &config.secret_access_key) {
            (Some(key), Some(secret)) => Some(Credentials::new(key.clone(), secret.clone())),
            // Ambient credentials: the AWS_* environment variables.
            _ => Credentials::from_env(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|err| remote_error(format!("cannot set up TLS for S3: {err}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(S3BlobStore {
            bucket,
            credentials,
            http,
            upload_timeout: config.upload_timeout,
            request_timeout: config.request_timeout,
        })
    }

    /// Creates the bucket (for development servers and tests); an existing
    /// bucket owned by the caller is fine.
    pub async fn create_bucket(&self) -> Result<()> {
        let url = CreateBucket::new(&self.bucket, self.credentials()?).sign(SIGNATURE_LIFETIME);
        let answer = self.send_bodyless(Method::PUT, url).await?;
        match answer.status {
            status if status.is_success() => Ok(()),
            StatusCode::CONFLICT
                if String::from_utf8_lossy(&answer.body).contains("BucketAlreadyOwnedByYou") =>
            {
                Ok(())
            }
            _ => Err(describe_failure(
                "CreateBucket",
                self.bucket.name(),
                &answer,
            )),
        }
    }

    fn credentials(&self) -> Result<&Credentials> {
        // CreateBucket insists on credentials; the other actions accept none.
        self.credentials.as_ref().ok_or_else(|| {
            Error::InvalidInput("creating an S3 bucket needs credentials".to_owned())
        })
    }

    fn request(
        method: Method,
        url: &url::Url,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder().method(method.clone()).uri(url.as_str());
        if method == Method::PUT || method == Method::POST {
            // S3 wants a length even for an empty body.
            builder = builder.header(hyper::header::CONTENT_LENGTH, body.len());
        }
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(body))
            .map_err(|err| remote_error(format!("cannot build S3 request: {err}")))
    }

    /// Sends a request and reads the whole answer within `timeout`,
    /// trying again (up to [`ATTEMPTS`] times in all) after a failed
    /// connection, a timeout or a 500/502/503/504 answer, except for `POST`
    /// (starting or completing a multipart upload is not repeatable).
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        headers: Vec<(String, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer> {
        let attempts = if method == Method::POST { 1 } else { ATTEMPTS };
        let mut attempt = 1;
        loop {
            let outcome = self
                .send_once(method.clone(), &url, &headers, body.clone(), timeout)
                .await;
            let transient = match &outcome {
                Ok(answer) => is_transient(answer.status),
                Err(_) => true,
            };
            if !transient || attempt >= attempts {
                return outcome;
            }
            tokio::time::sleep(retry_delay(attempt)).await;
            attempt += 1;
        }
    }

    /// [`S3BlobStore::send`] of a request without headers or body, within
    /// the request timeout.
    async fn send_bodyless(&self, method: Method, url: url::Url) -> Result<Answer> {
        self.send(method, url, Vec::new(), Bytes::new(), self.request_timeout)
            .await
    }

    /// One exchange of [`S3BlobStore::send`].
    async fn send_once(
        &self,
        method: Method,
        url: &url::Url,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer> {
        let request = Self::request(method, url, headers, body)?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|err| remote_error(format!("S3 request failed: {err}")))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| remote_error(format!("S3 answer not read: {err}")))?
                .to_bytes();
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| remote_error("S3 request timed out"))?
    }

    async fn put_object(&self, key: &str, body: Bytes) -> Result<()> {
        let url =
            PutObject::new(&self.bucket, self.credentials.as_ref(), key).sign(SIGNATURE_LIFETIME);
        let answer = self
            .send(Method::PUT, url, Vec::new(), body, self.upload_timeout)
            .await?;
        ensure_success("PutObject", key, &answer)
    }

    /// Streams `bytes` into the object `key`: one `PutObject` when the
    /// stream ends within the first part, a multipart upload otherwise
    /// (aborted on any error).
    async fn upload_stream(&self, key: &str, mut bytes: ByteStream) -> Result<()> {
        let mut part = Vec::new();
        let mut ended = fill_part(&mut bytes, &mut part).await?;
        if ended {
            return self.put_object(key, Bytes::from(part)).await;
        }
        let upload_id = self.create_multipart(key).await?;
        let uploaded = async {
            let mut etags = Vec::new();
            loop {
                if !part.is_empty() {
                    let number = u16::try_from(etags.len() + 1)
                        .map_err(|_| remote_error("blob too large for a multipart upload"))?;
                    let body = Bytes::from(std::mem::take(&mut part));
                    etags.push(self.upload_part(key, &upload_id, number, body).await?);
                }
                if ended {
                    break;
                }
                ended = fill_part(&mut bytes, &mut part).await?;
            }
            self.complete_multipart(key, &upload_id, &etags).await
        }
        .await;
        if uploaded.is_err() {
            if let Err(err) = self.abort_multipart(key, &upload_id).await {
                tracing::warn!(key, error = %err, "could not abort a multipart upload");
            }
        }
        uploaded
    }

    async fn create_multipart(&self, key: &str) -> Result<String> {
        let url = CreateMultipartUpload::new(&self.bucket, self.credentials.as_ref(), key)
            .sign(SIGNATURE_LIFETIME);
        let answer = self.send_bodyless(Method::POST, url).await?;
        ensure_success("CreateMultipartUpload", key, &answer)?;
        let parsed = CreateMultipartUpload::parse_response(&answer.body)
            .map_err(|err| remote_error(format!("unreadable multipart upload answer: {err}")))?;
        Ok(parsed.upload_id().to_owned())
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: Bytes,
    ) -> Result<String> {
        let url = UploadPart::new(
            &self.bucket,
            self.credentials.as_ref(),
            key,
            number,
            upload_id,
        )
        .sign(SIGNATURE_LIFETIME);
        let answer = self
            .send(Method::PUT, url, Vec::new(), body, self.upload_timeout)
            .await?;
        ensure_success("UploadPart", key, &answer)?;
        answer
            .headers
            .get(hyper::header::ETAG)
            .and_then(|etag| etag.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| remote_error(format!("S3 UploadPart of {key} answered no ETag")))
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            self.credentials.as_ref(),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNATURE_LIFETIME);
        let body = Bytes::from(action.body());
        let answer = self
            .send(Method::POST, url, Vec::new(), body, self.request_timeout)
            .await?;
        // Like a copy, a completion can fail after the 200 status.
        if !answer.status.is_success() || failed_late(&answer) {
            return Err(describe_failure("CompleteMultipartUpload", key, &answer));
        }
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        let url =
            AbortMultipartUpload::new(&self.bucket, self.credentials.as_ref(), key, upload_id)
                .sign(SIGNATURE_LIFETIME);
        let answer = self.send_bodyless(Method::DELETE, url).await?;
        done_or_absent("AbortMultipartUpload", key, &answer)
    }

    /// Moves an object (copy, then delete); `false` if `from` is absent.
    async fn move_object(&self, from: &str, to: &str) -> Result<bool> {
        if !self.copy_object(from, to).await? {
            return Ok(false);
        }
        self.delete_object(from).await?;
        Ok(true)
    }

    /// Server-side copy; `Ok(false)` when the source does not exist.
    async fn copy_object(&self, from: &str, to: &str) -> Result<bool> {
        let source = format!("/{}/{from}", self.bucket.name());
        let mut action = PutObject::new(&self.bucket, self.credentials.as_ref(), to);
        action
            .headers_mut()
            .insert("x-amz-copy-source", Cow::Owned(source.clone()));
        let url = action.sign(SIGNATURE_LIFETIME);
        let headers = vec![("x-amz-copy-source".to_owned(), source)];
        let answer = self
            .send(
                Method::PUT,
                url,
                headers,
                Bytes::new(),
                self.request_timeout,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        // A copy can fail after the 200 status was sent: the error is then
        // in the body.
        if !answer.status.is_success() || failed_late(&answer) {
            return Err(describe_failure("CopyObject", from, &answer));
        }
        Ok(true)
    }

    async fn head_object(&self, key: &str) -> Result<bool> {
        let url =
            HeadObject::new(&self.bucket, self.credentials.as_ref(), key).sign(SIGNATURE_LIFETIME);
        let answer = self.send_bodyless(Method::HEAD, url).await?;
        match answer.status {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(describe_failure("HeadObject", key, &answer)),
        }
    }

    async fn delete_object(&self, key: &str) -> Result<()> {
        let url = DeleteObject::new(&self.bucket, self.credentials.as_ref(), key)
            .sign(SIGNATURE_LIFETIME);
        let answer = self.send_bodyless(Method::DELETE, url).await?;
        done_or_absent("DeleteObject", key, &answer)
    }

    async fn get_object(&self, key: &str) -> Result<Option<ByteStream>> {
        let url =
            GetObject::new(&self.bucket, self.credentials.as_ref(), key).sign(SIGNATURE_LIFETIME);
        let mut attempt = 1;
        let response = loop {
            let request = Self::request(Method::GET, &url, &[], Bytes::new())?;
            let outcome = tokio::time::timeout(self.request_timeout, self.http.request(request))
                .await
                .map_err(|_| remote_error("S3 request timed out"))
                .and_then(|sent| {
                    sent.map_err(|err| remote_error(format!("S3 request failed: {err}")))
                });
            let transient = match &outcome {
                Ok(response) => is_transient(response.status()),
                Err(_) => true,
            };
            if !transient || attempt >= ATTEMPTS {
                break outcome?;
            }
            tokio::time::sleep(retry_delay(attempt)).await;
            attempt += 1;
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            let answer = Answer {
                status,
                headers: hyper::HeaderMap::new(),
                body,
            };
            return Err(describe_failure("GetObject", key, &answer));
        }
        let stream = response
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other);
        Ok(Some(Box::pin(stream)))
    }

    /// Every object under `prefix` with its last-modified time.
    async fn list_objects(&self, prefix: &str) -> Result<Vec<(String, Option<SystemTime>)>> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.credentials.as_ref());
            action.with_prefix(prefix);
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let url = action.sign(SIGNATURE_LIFETIME);
            let answer = self.send_bodyless(Method::GET, url).await?;
            ensure_success("ListObjectsV2", prefix, &answer)?;
            let page = ListObjectsV2::parse_response(&answer.body)
                .map_err(|err| remote_error(format!("unreadable S3 object list: {err}")))?;
            for object in page.contents {
                let modified = chrono::DateTime::parse_from_rfc3339(&object.last_modified)
                    .ok()
                    .map(SystemTime::from);
                // Keys are listed URL-encoded (`encoding-type=url`).
                objects.push((percent_decode(&object.key)?, modified));
            }
            match page.next_continuation_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(objects),
            }
        }
    }
}

/// Reads chunks of `bytes` into `part` until it holds at least
/// [`PART_SIZE`] bytes; `true` when the stream ended.
async fn fill_part(bytes: &mut ByteStream, part: &mut Vec<u8>) -> Result<bool> {
    while part.len() < PART_SIZE {
        match bytes.next().await {
            Some(chunk) => part.extend_from_slice(&chunk?),
            None => return Ok(true),
        }
    }
    Ok(false)
}

/// Decodes the `%XX` escapes of a URL-encoded object key.
fn percent_decode(encoded: &str) -> Result<String> {
    let bytes = atp_syntax::percent_decode(encoded)
        .ok_or_else(|| remote_error(format!("badly encoded S3 key: {encoded}")))?;
    String::from_utf8(bytes).map_err(|_| remote_error(format!("S3 key not UTF-8: {encoded}")))
}

impl BlobStore for S3BlobStore {
    fn put_temp<'a>(&'a self, did: &'a str, bytes: ByteStream) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let key = new_temp_key();
            self.upload_stream(&temp_key(did, &key)?, bytes).await?;
            Ok(key)
        })
    }

    fn make_permanent<'a>(
        &'a self,
        did: &'a str,
        key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let from = temp_key(did, key)?;
            let to = stored_key(did, cid)?;
            if self.move_object(&from, &to).await? {
                return Ok(());
            }
            // The temporary upload is gone: fine if another writer already
            // made the blob permanent.
            if self.head_object(&to).await? {
                return Ok(());
            }
            Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("temporary blob {key} of {did} not found"),
            )))
        })
    }

    fn put_permanent<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.put_object(&stored_key(did, cid)?, bytes).await })
    }

    fn get_stream<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>> {
        Box::pin(async move { self.get_object(&stored_key(did, cid)?).await })
    }

    fn has_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.head_object(&temp_key(did, key)?).await })
    }

    fn has_stored<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.head_object(&stored_key(did, cid)?).await })
    }

    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.delete_object(&stored_key(did, cid)?).await })
    }

    fn delete_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.delete_object(&temp_key(did, key)?).await })
    }

    fn quarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let quarantined = format!("{QUARANTINE_PREFIX}/{did}/{cid}");
            self.move_object(&stored_key(did, cid)?, &quarantined).await
        })
    }

    fn unquarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let stored = stored_key(did, cid)?;
            let quarantined = format!("{QUARANTINE_PREFIX}/{did}/{cid}");
            self.move_object(&quarantined, &stored).await
        })
    }

    fn delete_all<'a>(&'a self, did: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_did(did)?;
            for prefix in [STORED_PREFIX, TEMP_PREFIX, QUARANTINE_PREFIX] {
                for (key, _) in self.list_objects(&format!("{prefix}/{did}/")).await? {
                    self.delete_object(&key).await?;
                }
            }
            Ok(())
        })
    }

    fn stale_temp(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<Vec<TempUpload>>> {
        Box::pin(async move {
            let mut stale = Vec::new();
            for (object, modified) in self.list_objects(&format!("{TEMP_PREFIX}/")).await? {
                if modified.is_some_and(|modified| modified >= cutoff) {
                    continue;
                }
                let mut parts = object.splitn(3, '/').skip(1);
                if let (Some(did), Some(key)) = (parts.next(), parts.next()) {
                    if check_did(did).is_ok() && check_temp_key(key).is_ok() {
                        stale.push(TempUpload {
                            did: did.to_owned(),
                            key: key.to_owned(),
                        });
                    }
                }
            }
            Ok(stale)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_from_variables() {
        let vars = |name: &str| -> Option<String> {
            match name {
                "PDS_BLOBSTORE_S3_BUCKET" => Some("blobs".to_owned()),
                "PDS_BLOBSTORE_S3_REGION" => Some("eu-west-3".to_owned()),
                "PDS_BLOBSTORE_S3_ENDPOINT" => Some("http://127.0.0.1:9000".to_owned()),
                "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE" => Some("true".to_owned()),
                "PDS_BLOBSTORE_S3_ACCESS_KEY_ID" => Some("key".to_owned()),
                "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
                "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS" => Some("5000".to_owned()),
                _ => None,
            }
        };
        let config = S3Config::from_vars(vars).unwrap().unwrap();
        assert_eq!(config.bucket, "blobs");
        assert_eq!(config.region, "eu-west-3");
        assert!(config.force_path_style);
        assert_eq!(config.upload_timeout, Duration::from_millis(5000));
        assert_eq!(config.request_timeout, Duration::from_millis(5000));
        assert!(!format!("{config:?}").contains("secret\""));
        let store = S3BlobStore::new(&config).unwrap();
        assert_eq!(
            store.bucket.base_url().as_str(),
            "http://127.0.0.1:9000/blobs/"
        );

        assert!(S3Config::from_vars(|_| None).unwrap().is_none());
        let half = |name: &str| match name {
            "PDS_BLOBSTORE_S3_BUCKET" => Some("b".to_owned()),
            "PDS_BLOBSTORE_S3_ACCESS_KEY_ID" => Some("key".to_owned()),
            _ => None,
        };
        assert!(S3Config::from_vars(half).is_err());
    }

    #[test]
    fn listed_keys_are_decoded() {
        assert_eq!(
            percent_decode("tmp/did%3Aplc%3Aabc/key").unwrap(),
            "tmp/did:plc:abc/key"
        );
        assert!(percent_decode("bad%zz").is_err());
        assert!(percent_decode("cut%4").is_err());
    }
}
