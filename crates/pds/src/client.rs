//! How the operator commands reach a running server: its URL, the admin
//! password (HTTP basic auth as `admin`) and account sessions.

use std::path::PathBuf;

use atp_xrpc::client::XrpcClient;
use base64::Engine as _;
use hyper::header::{HeaderValue, AUTHORIZATION};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{is_loopback_host, Environment, DEFAULT_PORT};
use crate::error::Error;
use crate::secrets::read_admin_password;

/// A running server as the operator commands see it.
#[derive(Clone, Debug)]
pub struct Connection {
    url: String,
    admin_password: Option<String>,
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct Session {
    /// The account's DID.
    pub did: String,
    /// The account's handle.
    pub handle: String,
    /// A client sending the session's access token.
    pub client: XrpcClient,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionAnswer {
    did: String,
    handle: String,
    access_jwt: String,
}

impl Connection {
    /// The server at `pds_url`, or else the one `env` describes
    /// (`https://<PDS_HOSTNAME>`, or `http://localhost:<PDS_PORT>` for a
    /// local server); the admin password from `PDS_ADMIN_PASSWORD`, or the
    /// one a development server generated in its data directory.
    pub fn new(pds_url: Option<&str>, env: &Environment) -> Connection {
        let url = match pds_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => default_url(env),
        };
        let admin_password = env
            .get("PDS_ADMIN_PASSWORD")
            .map(str::to_owned)
            .or_else(|| {
                let dir = env
                    .get("PDS_DATA_DIRECTORY")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("pds-data"));
                read_admin_password(&dir)
            });
        Connection {
            url,
            admin_password,
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Result<XrpcClient, Error> {
        Ok(XrpcClient::new(&self.url)?)
    }

    /// A client authenticated as the administrator.
    pub fn admin(&self) -> Result<XrpcClient, Error> {
        let password = self.admin_password.as_deref().ok_or_else(|| {
            Error::Usage(
                "no admin password: set PDS_ADMIN_PASSWORD or pass the server's --env-file"
                    .to_owned(),
            )
        })?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"));
        let value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::Usage("the admin password cannot be sent in a header".into()))?;
        Ok(XrpcClient::new(&self.url)?.with_header(AUTHORIZATION, value))
    }

    /// Signs in with a handle (or DID, or email) and a password.
    pub async fn login(&self, identifier: &str, password: &str) -> Result<Session, Error> {
        let answer: SessionAnswer = self
            .anonymous()?
            .procedure(
                "com.atproto.server.createSession",
                &(),
                &json!({ "identifier": identifier, "password": password }),
            )
            .await?;
        Ok(Session {
            client: XrpcClient::new(&self.url)?.with_bearer(&answer.access_jwt)?,
            did: answer.did,
            handle: answer.handle,
        })
    }

    /// The DID of `actor` (a DID is returned as is; a handle is resolved by
    /// the server).
    pub async fn resolve_actor(&self, actor: &str) -> Result<String, Error> {
        if actor.starts_with("did:") {
            return Ok(actor.to_owned());
        }
        self.lookup_handle(actor).await?.ok_or_else(|| {
            Error::Usage(format!(
                "the server cannot resolve the handle {actor:?} (the handle of a taken-down or deactivated account does not resolve: pass its DID)"
            ))
        })
    }

    /// The DID the server resolves `handle` to; `None` when it answers
    /// `HandleNotFound`.
    pub async fn lookup_handle(&self, handle: &str) -> Result<Option<String>, Error> {
        let handle = handle.trim_start_matches('@');
        let answer: Value = match self
            .anonymous()?
            .query(
                "com.atproto.identity.resolveHandle",
                &json!({ "handle": handle }),
            )
            .await
        {
            Ok(answer) => answer,
            Err(atp_xrpc::Error::Xrpc { error, .. }) if error == "HandleNotFound" => {
                return Ok(None)
            }
            Err(err) => return Err(err.into()),
        };
        answer
            .get("did")
            .and_then(Value::as_str)
            .map(|did| Some(did.to_owned()))
            .ok_or_else(|| Error::Answer(format!("resolveHandle gave no DID: {answer}")))
    }

    /// What `describeServer` says.
    pub async fn describe(&self) -> Result<Value, Error> {
        Ok(self
            .anonymous()?
            .query("com.atproto.server.describeServer", &())
            .await?)
    }
}

fn default_url(env: &Environment) -> String {
    let port = env
        .get("PDS_PORT")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(DEFAULT_PORT);
    match env.get("PDS_HOSTNAME") {
        Some(host) if !is_loopback_host(host) => format!("https://{host}"),
        _ => format!("http://localhost:{port}"),
    }
}

/// A random password of `len` letters and digits (like the reference's
/// `pdsadmin`, 24 characters by default).
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // 248 = 4 * 62: rejection sampling keeps the choice uniform.
        if byte[0] < 248 {
            out.push(ALPHABET[(byte[0] % 62) as usize] as char);
        }
    }
    out
}

/// The current time as the reference writes `createdAt` (RFC 3339, UTC,
/// milliseconds).
pub fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The MIME type of an image file, from its extension.
pub fn image_mime_type(path: &std::path::Path) -> Result<&'static str, Error> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok("image/png"),
        Some("jpg") | Some("jpeg") => Ok("image/jpeg"),
        Some("gif") => Ok("image/gif"),
        Some("webp") => Ok("image/webp"),
        _ => Err(Error::Usage(format!(
            "{}: not an image type the AppView takes (png, jpg, gif, webp)",
            path.display()
        ))),
    }
}

/// Uploads the image at `path` as a blob of the signed-in account and
/// returns the blob reference (`{"$type": "blob", ...}`).
pub async fn upload_image(session: &Session, path: &std::path::Path) -> Result<Value, Error> {
    let mime = image_mime_type(path)?;
    let bytes = std::fs::read(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    let body = session
        .client
        .procedure_bytes(
            "com.atproto.repo.uploadBlob",
            &(),
            mime,
            bytes::Bytes::from(bytes),
        )
        .await?;
    let answer: Value = serde_json::from_slice(&body.bytes)
        .map_err(|e| Error::Answer(format!("uploadBlob: {e}")))?;
    answer
        .get("blob")
        .cloned()
        .ok_or_else(|| Error::Answer(format!("uploadBlob gave no blob: {answer}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_follows_the_server_settings() {
        let env = Environment::from_pairs([("PDS_HOSTNAME", "pds.example.com")]);
        assert_eq!(default_url(&env), "https://pds.example.com");
        let env = Environment::from_pairs([("PDS_PORT", "3000")]);
        assert_eq!(default_url(&env), "http://localhost:3000");
        let env = Environment::from_pairs([("PDS_HOSTNAME", "localhost")]);
        assert_eq!(default_url(&env), "http://localhost:2583");
    }

    #[test]
    fn admin_password_from_the_environment_or_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let env = Environment::from_pairs([("PDS_DATA_DIRECTORY", data)]);
        assert!(Connection::new(None, &env).admin().is_err());
        let generated = crate::secrets::load_or_create_admin_password(dir.path()).unwrap();
        let conn = Connection::new(None, &env);
        assert_eq!(conn.admin_password.as_deref(), Some(generated.as_str()));
        let env =
            Environment::from_pairs([("PDS_DATA_DIRECTORY", data), ("PDS_ADMIN_PASSWORD", "pw")]);
        let conn = Connection::new(Some("http://127.0.0.1:1/"), &env);
        assert_eq!(conn.admin_password.as_deref(), Some("pw"));
        assert_eq!(conn.url(), "http://127.0.0.1:1");
    }

    #[test]
    fn random_passwords_are_alphanumeric() {
        let a = random_password(24);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_password(24));
    }

    #[test]
    fn image_types_from_extensions() {
        use std::path::Path;
        assert_eq!(image_mime_type(Path::new("a.PNG")).unwrap(), "image/png");
        assert_eq!(image_mime_type(Path::new("a.jpeg")).unwrap(), "image/jpeg");
        assert!(image_mime_type(Path::new("a.txt")).is_err());
    }
}
