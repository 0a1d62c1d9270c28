//! Turning the variables into [`Settings`]: defaults, development mode,
//! paired settings and the blob store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use atp_crypto::{Algorithm, SigningKey};
use atp_pds::handle_policy::HandlePolicy;
use atp_pds::http::ServiceEndpoint;

use super::reader::{is_hostname, is_http_url, Reader};
use super::*;
use crate::error::Error;

impl Settings {
    /// Reads the settings from `env`; also returns warnings (ignored and
    /// unknown variables, settings accepted but without effect). Every
    /// problem is reported at once in [`Error::Settings`].
    pub fn from_env(env: &Environment) -> Result<(Settings, Vec<String>), Error> {
        let mut r = Reader {
            env,
            errors: Vec::new(),
        };
        let mut warnings = Vec::new();

        let port = r
            .number::<u16>("PDS_PORT", "a port number (0 to 65535)")
            .unwrap_or(DEFAULT_PORT);
        let hostname = match r.text("PDS_HOSTNAME") {
            Some(name) if is_hostname(&name) => name.to_ascii_lowercase(),
            Some(name) => {
                r.fail(format!(
                    "PDS_HOSTNAME must be a host name without scheme, port or path (like pds.example.com), not {name:?}"
                ));
                "localhost".to_owned()
            }
            None => "localhost".to_owned(),
        };
        let dev_mode = r.boolean("PDS_DEV_MODE").unwrap_or(hostname == "localhost");
        let bind_ip = match r.text("PDS_BIND_ADDRESS") {
            Some(text) => match text.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    r.fail(format!(
                        "PDS_BIND_ADDRESS must be an IP address (like 127.0.0.1 or ::), not {text:?}"
                    ));
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }
            },
            None if dev_mode => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let service_did = r
            .did("PDS_SERVICE_DID")
            .unwrap_or_else(|| format!("did:web:{hostname}"));
        let data_dir = r
            .text("PDS_DATA_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("pds-data"));

        let blobstore = read_blobstore(&mut r, &data_dir);
        if let BlobstoreSettings::Disk {
            location,
            tmp_location: Some(_),
        } = &blobstore
        {
            warnings.push(format!(
                "PDS_BLOBSTORE_DISK_TMP_LOCATION is ignored: uploads not yet referenced are kept in {}/tmp",
                location.display()
            ));
        }

        let plc = match r.http_url("PDS_DID_PLC_URL") {
            Some(url) => PlcSettings::Url(url),
            None if env.get("PDS_DID_PLC_URL").is_some() => PlcSettings::Embedded,
            None if dev_mode => PlcSettings::Embedded,
            None => PlcSettings::Url(DEFAULT_PLC_URL.to_owned()),
        };

        let jwt_secret = r.text("PDS_JWT_SECRET");
        let admin_password = r.text("PDS_ADMIN_PASSWORD");
        let plc_rotation_key_hex = r
            .text("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
            .and_then(|hex| match SigningKey::from_hex(Algorithm::K256, &hex) {
                Ok(_) => Some(hex),
                Err(e) => {
                    r.fail(format!(
                        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX must be a secp256k1 private key as 64 hex digits ({e})"
                    ));
                    None
                }
            });
        if !dev_mode {
            for (name, value) in [
                ("PDS_JWT_SECRET", &jwt_secret),
                ("PDS_ADMIN_PASSWORD", &admin_password),
            ] {
                if value.is_none() && env.get(name).is_none() {
                    r.fail(format!(
                        "{name} is required outside development mode (set PDS_DEV_MODE=true to generate one)"
                    ));
                }
            }
            if plc_rotation_key_hex.is_none()
                && env
                    .get("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
                    .is_none()
            {
                r.fail("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX is required outside development mode (64 hex digits; `openssl ecparam --name secp256k1 --genkey --noout --outform DER | tail --bytes=+8 | head --bytes=32 | xxd --plain --cols 32` makes one)".to_owned());
            }
            if env.get("PDS_BLOBSTORE_DISK_LOCATION").is_none()
                && env.get("PDS_BLOBSTORE_S3_BUCKET").is_none()
            {
                r.fail("PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET is required outside development mode".to_owned());
            }
        }

        let recovery_did_key =
            r.text("PDS_RECOVERY_DID_KEY")
                .and_then(|key| match atp_crypto::did_key::parse(&key) {
                    Ok(_) => Some(key),
                    Err(e) => {
                        r.fail(format!(
                        "PDS_RECOVERY_DID_KEY must be a did:key (did:key:z...), not {key:?} ({e})"
                    ));
                        None
                    }
                });

        let mut handle_domains = Vec::new();
        for domain in r.list("PDS_SERVICE_HANDLE_DOMAINS") {
            let bare = domain.trim_start_matches('.');
            if is_hostname(bare) && bare.contains(|c: char| c.is_ascii_alphabetic()) {
                handle_domains.push(format!(".{}", bare.to_ascii_lowercase()));
            } else {
                r.fail(format!(
                    "PDS_SERVICE_HANDLE_DOMAINS has an invalid domain {domain:?} (expected like .example.com)"
                ));
            }
        }
        if handle_domains.is_empty() {
            handle_domains.push(if hostname == "localhost" {
                ".test".to_owned()
            } else {
                format!(".{hostname}")
            });
        }

        let invite_required = r.boolean("PDS_INVITE_REQUIRED").unwrap_or(!dev_mode);
        let invite_interval_ms = r.number::<u64>("PDS_INVITE_INTERVAL", "a number of milliseconds");
        if invite_interval_ms == Some(0) {
            r.fail("PDS_INVITE_INTERVAL must be a number of milliseconds above 0".to_owned());
        }
        let invite_epoch_ms = r
            .number::<u64>("PDS_INVITE_EPOCH", "a number of milliseconds")
            .unwrap_or(0);
        let handle_banned_words = match r.text("PDS_HANDLE_BANNED_WORDS_FILE") {
            None => Vec::new(),
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => HandlePolicy::parse_word_list(&text),
                Err(err) => {
                    r.fail(format!(
                        "PDS_HANDLE_BANNED_WORDS_FILE: cannot read {path:?}: {err}"
                    ));
                    Vec::new()
                }
            },
        };

        let smtp_url = r.text("PDS_EMAIL_SMTP_URL");
        let from_address = r.text("PDS_EMAIL_FROM_ADDRESS");
        let email = match (smtp_url, from_address) {
            (None, None) => None,
            (Some(_), None) => {
                r.fail(
                    "PDS_EMAIL_FROM_ADDRESS is required when PDS_EMAIL_SMTP_URL is set".to_owned(),
                );
                None
            }
            (None, Some(_)) => {
                r.fail(
                    "PDS_EMAIL_SMTP_URL is required when PDS_EMAIL_FROM_ADDRESS is set".to_owned(),
                );
                None
            }
            (Some(smtp_url), Some(from_address)) => {
                let mut ok = true;
                if !(smtp_url.starts_with("smtp://") || smtp_url.starts_with("smtps://")) {
                    r.fail("PDS_EMAIL_SMTP_URL must be an smtp:// or smtps:// URL (like smtps://user:pass@mail.example.com)".to_owned());
                    ok = false;
                }
                if !from_address.contains('@') {
                    r.fail(format!(
                        "PDS_EMAIL_FROM_ADDRESS must be an email address, not {from_address:?}"
                    ));
                    ok = false;
                }
                ok.then_some(EmailSettings {
                    smtp_url,
                    from_address,
                })
            }
        };

        let appview_url = r.http_url("PDS_BSKY_APP_VIEW_URL");
        let appview_did = r.did("PDS_BSKY_APP_VIEW_DID");
        let appview = match (appview_url, appview_did) {
            (Some(url), Some(did)) => Some(ServiceEndpoint { url, did }),
            (Some(_), None) if env.get("PDS_BSKY_APP_VIEW_DID").is_none() => {
                r.fail("PDS_BSKY_APP_VIEW_DID is required when PDS_BSKY_APP_VIEW_URL is set (like did:web:api.bsky.app)".to_owned());
                None
            }
            (None, Some(_)) if env.get("PDS_BSKY_APP_VIEW_URL").is_none() => {
                r.fail("PDS_BSKY_APP_VIEW_URL is required when PDS_BSKY_APP_VIEW_DID is set (like https://api.bsky.app)".to_owned());
                None
            }
            _ => None,
        };

        let mut crawlers = Vec::new();
        for url in r.list("PDS_CRAWLERS") {
            if is_http_url(&url) {
                crawlers.push(url.trim_end_matches('/').to_owned());
            } else {
                r.fail(format!(
                    "PDS_CRAWLERS must be comma-separated http(s) URLs; {url:?} is not one"
                ));
            }
        }

        let blob_upload_limit = r
            .number::<u64>("PDS_BLOB_UPLOAD_LIMIT", "a number of bytes")
            .unwrap_or(DEFAULT_BLOB_UPLOAD_LIMIT);
        let max_subscription_buffer = r
            .number::<u64>("PDS_MAX_SUBSCRIPTION_BUFFER", "a number of events")
            .unwrap_or(DEFAULT_MAX_SUBSCRIPTION_BUFFER);
        let repo_backfill_limit_ms = r
            .number::<u64>("PDS_REPO_BACKFILL_LIMIT_MS", "a number of milliseconds")
            .unwrap_or(DEFAULT_REPO_BACKFILL_LIMIT_MS);
        let rate_limits_enabled = r.boolean("PDS_RATE_LIMITS_ENABLED").unwrap_or(!dev_mode);

        let contact_email = r.text("PDS_CONTACT_EMAIL_ADDRESS");
        if let Some(address) = &contact_email {
            if !address.contains('@') {
                r.fail(format!(
                    "PDS_CONTACT_EMAIL_ADDRESS must be an email address, not {address:?}"
                ));
            }
        }
        let privacy_policy = r.http_url("PDS_PRIVACY_POLICY_URL");
        let terms_of_service = r.http_url("PDS_TERMS_OF_SERVICE_URL");

        for name in env.pds_names() {
            if SUPPORTED_VARIABLES.contains(&name) {
                continue;
            }
            if IGNORED_REFERENCE_VARIABLES.contains(&name) {
                warnings.push(format!(
                    "{name} is a setting of the reference PDS that this server does not use; ignored"
                ));
            } else {
                warnings.push(format!(
                    "{name} is not a known PDS setting; ignored (a typo?)"
                ));
            }
        }

        if !r.errors.is_empty() {
            return Err(Error::Settings(r.errors));
        }
        Ok((
            Settings {
                listen: SocketAddr::new(bind_ip, port),
                hostname,
                service_did,
                dev_mode,
                data_dir,
                blobstore,
                plc,
                jwt_secret,
                admin_password,
                plc_rotation_key_hex,
                recovery_did_key,
                handle_domains,
                invite_required,
                invite_interval_ms: invite_interval_ms.filter(|ms| *ms > 0),
                invite_epoch_ms,
                handle_banned_words,
                email,
                appview,
                crawlers,
                blob_upload_limit,
                max_subscription_buffer,
                repo_backfill_limit_ms,
                rate_limits_enabled,
                contact_email,
                privacy_policy,
                terms_of_service,
            },
            warnings,
        ))
    }
}

fn read_blobstore(r: &mut Reader<'_>, data_dir: &Path) -> BlobstoreSettings {
    let disk = r.text("PDS_BLOBSTORE_DISK_LOCATION").map(PathBuf::from);
    let tmp = r.text("PDS_BLOBSTORE_DISK_TMP_LOCATION").map(PathBuf::from);
    let bucket = r.text("PDS_BLOBSTORE_S3_BUCKET");
    let region = r.text("PDS_BLOBSTORE_S3_REGION");
    let endpoint = r.http_url("PDS_BLOBSTORE_S3_ENDPOINT");
    let force_path_style = r.boolean("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE");
    let access_key_id = r.text("PDS_BLOBSTORE_S3_ACCESS_KEY_ID");
    let secret_access_key = r.text("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY");
    let upload_timeout_ms = r.number::<u64>(
        "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS",
        "a number of milliseconds",
    );
    let request_timeout_ms = r.number::<u64>(
        "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS",
        "a number of milliseconds",
    );
    let default_disk = || BlobstoreSettings::Disk {
        location: data_dir.join("blocks"),
        tmp_location: None,
    };
    match (disk, bucket) {
        (Some(_), Some(_)) => {
            r.fail(
                "set PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET, not both".to_owned(),
            );
            default_disk()
        }
        (Some(location), None) => BlobstoreSettings::Disk {
            location,
            tmp_location: tmp,
        },
        (None, Some(bucket)) => {
            let credentials = match (access_key_id, secret_access_key) {
                (Some(id), Some(secret)) => Some((id, secret)),
                (None, None) => None,
                (Some(_), None) => {
                    r.fail("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is required when PDS_BLOBSTORE_S3_ACCESS_KEY_ID is set".to_owned());
                    None
                }
                (None, Some(_)) => {
                    r.fail("PDS_BLOBSTORE_S3_ACCESS_KEY_ID is required when PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is set".to_owned());
                    None
                }
            };
            BlobstoreSettings::S3(S3Settings {
                bucket,
                region,
                endpoint,
                force_path_style: force_path_style.unwrap_or(false),
                credentials,
                upload_timeout_ms: upload_timeout_ms
                    .filter(|ms| *ms > 0)
                    .unwrap_or(DEFAULT_S3_UPLOAD_TIMEOUT_MS),
                request_timeout_ms: request_timeout_ms.filter(|ms| *ms > 0),
            })
        }
        (None, None) => {
            for name in [
                "PDS_BLOBSTORE_S3_REGION",
                "PDS_BLOBSTORE_S3_ENDPOINT",
                "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
                "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
            ] {
                if r.env.get(name).is_some() {
                    r.fail(format!("{name} is set but PDS_BLOBSTORE_S3_BUCKET is not"));
                }
            }
            match tmp {
                Some(tmp) => BlobstoreSettings::Disk {
                    location: data_dir.join("blocks"),
                    tmp_location: Some(tmp),
                },
                None => default_disk(),
            }
        }
    }
}
