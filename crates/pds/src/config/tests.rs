//! The settings read from example environments.

use std::path::PathBuf;

use atp_crypto::{Algorithm, SigningKey};
use atp_pds::http::ServiceEndpoint;

use super::*;
use crate::error::Error;

const KEY_HEX: &str = "9d2a3f1c7e5b4a6d8c0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3";

fn settings(vars: &[(&str, &str)]) -> Result<(Settings, Vec<String>), Error> {
    Settings::from_env(&Environment::from_pairs(vars.iter().copied()))
}

fn errors(vars: &[(&str, &str)]) -> Vec<String> {
    match settings(vars) {
        Err(Error::Settings(errors)) => errors,
        other => panic!("expected settings errors, got {other:?}"),
    }
}

fn production() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PDS_HOSTNAME", "pds.example.com"),
        ("PDS_DATA_DIRECTORY", "/pds"),
        ("PDS_BLOBSTORE_DISK_LOCATION", "/pds/blocks"),
        ("PDS_JWT_SECRET", "s3cret"),
        ("PDS_ADMIN_PASSWORD", "admin-pw"),
        ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", KEY_HEX),
    ]
}

#[test]
fn no_configuration_is_a_local_development_server() {
    let (s, warnings) = settings(&[]).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(s.listen, "127.0.0.1:2583".parse().unwrap());
    assert_eq!(s.hostname, "localhost");
    assert!(s.dev_mode);
    assert_eq!(s.data_dir, PathBuf::from("pds-data"));
    assert_eq!(
        s.blobstore,
        BlobstoreSettings::Disk {
            location: PathBuf::from("pds-data/blocks"),
            tmp_location: None
        }
    );
    assert_eq!(s.plc, PlcSettings::Embedded);
    assert_eq!(s.handle_domains, vec![".test".to_owned()]);
    assert_eq!(s.service_did, "did:web:localhost");
    assert_eq!(s.public_url(), "http://localhost:2583");
    assert!(!s.invite_required);
    assert!(s.jwt_secret.is_none() && s.admin_password.is_none());
    assert!(s.plc_rotation_key_hex.is_none());
    assert_eq!(s.blob_upload_limit, 5 * 1024 * 1024);
    assert_eq!(s.max_subscription_buffer, 500);
    assert_eq!(s.repo_backfill_limit_ms, 86_400_000);
    assert!(s.email.is_none() && s.appview.is_none() && s.crawlers.is_empty());
}

#[test]
fn a_reference_production_configuration_is_honoured() {
    let recovery: &'static str = Box::leak(
        SigningKey::generate(Algorithm::P256)
            .did_key()
            .into_boxed_str(),
    );
    let recovery_key = recovery;
    let mut vars = production();
    vars.extend([
        ("PDS_PORT", "3000"),
        ("PDS_DID_PLC_URL", "https://plc.example.org/"),
        (
            "PDS_SERVICE_HANDLE_DOMAINS",
            "example.com, .pds.example.com",
        ),
        ("PDS_INVITE_REQUIRED", "false"),
        (
            "PDS_CRAWLERS",
            "https://bsky.network,https://relay.example.net",
        ),
        ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
        ("PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app"),
        ("PDS_BLOB_UPLOAD_LIMIT", "52428800"),
        ("PDS_RECOVERY_DID_KEY", recovery_key),
        ("PDS_EMAIL_SMTP_URL", "smtps://user:pw@mail.example.com"),
        ("PDS_EMAIL_FROM_ADDRESS", "admin@example.com"),
        ("PDS_CONTACT_EMAIL_ADDRESS", "contact@example.com"),
        ("PDS_PRIVACY_POLICY_URL", "https://example.com/privacy"),
        ("PDS_TERMS_OF_SERVICE_URL", "https://example.com/tos"),
        ("PDS_MAX_SUBSCRIPTION_BUFFER", "200"),
        ("PDS_REPO_BACKFILL_LIMIT_MS", "60000"),
    ]);
    let (s, warnings) = settings(&vars).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!s.dev_mode);
    assert_eq!(s.listen, "[::]:3000".parse().unwrap());
    assert_eq!(s.data_dir, PathBuf::from("/pds"));
    assert_eq!(
        s.blobstore,
        BlobstoreSettings::Disk {
            location: PathBuf::from("/pds/blocks"),
            tmp_location: None
        }
    );
    assert_eq!(s.plc, PlcSettings::Url("https://plc.example.org".into()));
    assert_eq!(s.jwt_secret.as_deref(), Some("s3cret"));
    assert_eq!(s.admin_password.as_deref(), Some("admin-pw"));
    assert_eq!(s.plc_rotation_key_hex.as_deref(), Some(KEY_HEX));
    assert_eq!(s.handle_domains, vec![".example.com", ".pds.example.com"]);
    assert_eq!(s.service_did, "did:web:pds.example.com");
    assert_eq!(s.public_url(), "https://pds.example.com");
    assert!(!s.invite_required);
    assert_eq!(
        s.crawlers,
        vec!["https://bsky.network", "https://relay.example.net"]
    );
    assert_eq!(
        s.appview,
        Some(ServiceEndpoint {
            url: "https://api.bsky.app".into(),
            did: "did:web:api.bsky.app".into()
        })
    );
    assert_eq!(s.blob_upload_limit, 52_428_800);
    assert_eq!(s.recovery_did_key.as_deref(), Some(recovery));
    let email = s.email.as_ref().unwrap();
    assert_eq!(email.from_address, "admin@example.com");
    assert_eq!(s.contact_email.as_deref(), Some("contact@example.com"));
    assert_eq!(s.max_subscription_buffer, 200);
    assert_eq!(s.repo_backfill_limit_ms, 60_000);
    // Secrets stay out of debug output.
    let debug = format!("{s:?}");
    assert!(!debug.contains("s3cret") && !debug.contains("admin-pw") && !debug.contains(KEY_HEX));
    assert!(!debug.contains("user:pw"));
}

#[test]
fn production_defaults_follow_the_reference() {
    let (s, _) = settings(&production()).unwrap();
    assert_eq!(s.plc, PlcSettings::Url(DEFAULT_PLC_URL.into()));
    assert!(s.invite_required);
    assert_eq!(s.handle_domains, vec![".pds.example.com"]);
    assert_eq!(s.listen.port(), 2583);
}

#[test]
fn production_names_every_missing_secret() {
    let errors = errors(&[("PDS_HOSTNAME", "pds.example.com")]);
    for name in [
        "PDS_JWT_SECRET",
        "PDS_ADMIN_PASSWORD",
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
        "PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(name)),
            "{name} missing from {errors:?}"
        );
    }
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn every_malformed_value_is_reported_at_once() {
    let errors = errors(&[
        ("PDS_PORT", "http"),
        ("PDS_HOSTNAME", "https://pds.example.com"),
        ("PDS_INVITE_REQUIRED", "maybe"),
        ("PDS_DEV_MODE", "yes"),
        ("PDS_BLOB_UPLOAD_LIMIT", "5MB"),
        ("PDS_DID_PLC_URL", "plc.directory"),
        ("PDS_SERVICE_DID", "web:example.com"),
        ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "xyz"),
        ("PDS_RECOVERY_DID_KEY", "zQ3sh"),
        ("PDS_CRAWLERS", "bsky.network"),
        ("PDS_BIND_ADDRESS", "everywhere"),
        ("PDS_SERVICE_HANDLE_DOMAINS", ".exa mple.com"),
    ]);
    for name in [
        "PDS_PORT must be a port number",
        "PDS_HOSTNAME must be a host name",
        "PDS_INVITE_REQUIRED must be true, false",
        "PDS_DEV_MODE must be true, false",
        "PDS_BLOB_UPLOAD_LIMIT must be a number of bytes",
        "PDS_DID_PLC_URL must be an http:// or https:// URL",
        "PDS_SERVICE_DID must be a DID",
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX must be",
        "PDS_RECOVERY_DID_KEY must be a did:key",
        "PDS_CRAWLERS must be",
        "PDS_BIND_ADDRESS must be an IP address",
        "PDS_SERVICE_HANDLE_DOMAINS has an invalid domain",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(name)),
            "{name:?} missing from {errors:?}"
        );
    }
    assert_eq!(errors.len(), 12, "{errors:?}");
    let shown = Error::Settings(errors).to_string();
    assert!(shown.contains("\n  - PDS_PORT"), "{shown}");
}

#[test]
fn paired_settings_name_the_missing_half() {
    let errors = errors(&[
        ("PDS_EMAIL_SMTP_URL", "smtp://localhost:25"),
        ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
        ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
        ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKIA"),
    ]);
    assert!(errors
        .iter()
        .any(|e| e.starts_with("PDS_EMAIL_FROM_ADDRESS is required")));
    assert!(errors
        .iter()
        .any(|e| e.starts_with("PDS_BSKY_APP_VIEW_DID is required")));
    assert!(errors
        .iter()
        .any(|e| e.starts_with("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is required")));
    assert_eq!(errors.len(), 3, "{errors:?}");

    let errors = errors_of_both_blobstores();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

fn errors_of_both_blobstores() -> Vec<String> {
    errors(&[
        ("PDS_BLOBSTORE_DISK_LOCATION", "/blobs"),
        ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
    ])
}

#[test]
fn s3_settings_are_read() {
    let (s, _) = settings(&[
        ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
        ("PDS_BLOBSTORE_S3_REGION", "eu-west-1"),
        ("PDS_BLOBSTORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
        ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKIA"),
        ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "secret-key"),
        ("PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS", "5000"),
    ])
    .unwrap();
    let BlobstoreSettings::S3(s3) = &s.blobstore else {
        panic!("expected S3: {:?}", s.blobstore)
    };
    assert_eq!(s3.bucket, "blobs");
    assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.force_path_style);
    assert_eq!(s3.credentials, Some(("AKIA".into(), "secret-key".into())));
    assert_eq!(s3.upload_timeout_ms, 5000);
    assert_eq!(s3.request_timeout_ms, None);
    assert!(!format!("{s3:?}").contains("secret-key"));
}

#[test]
fn unknown_and_ignored_variables_are_warned_about() {
    let (_, warnings) = settings(&[
        ("PDS_HOSTNAM", "typo.example.com"),
        ("PDS_SERVICE_NAME", "My PDS"),
        ("PDS_RATE_LIMITS_ENABLED", "true"),
        ("PDS_EMPTY_IS_UNSET", ""),
        ("HOME", "/root"),
    ])
    .unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings
        .iter()
        .any(|w| w.starts_with("PDS_HOSTNAM is not a known PDS setting")));
    assert!(warnings
        .iter()
        .any(|w| w.starts_with("PDS_SERVICE_NAME is a setting of the reference PDS")));
}

#[test]
fn process_environment_wins_over_the_env_file() {
    let env = Environment::layered(
        [
            ("PDS_PORT".to_owned(), "3000".to_owned()),
            ("PDS_HOSTNAME".to_owned(), "localhost".to_owned()),
        ],
        [
            ("PDS_PORT".to_owned(), "4000".to_owned()),
            ("PDS_HOSTNAME".to_owned(), String::new()),
        ],
    );
    let (s, _) = Settings::from_env(&env).unwrap();
    assert_eq!(s.listen.port(), 4000);
    assert_eq!(env.get("PDS_HOSTNAME"), Some("localhost"));
}

#[test]
fn public_url_of_loopback_names_in_development_mode() {
    let (s, _) = settings(&[("PDS_HOSTNAME", "127.0.0.1"), ("PDS_DEV_MODE", "true")]).unwrap();
    assert_eq!(s.public_url(), "http://127.0.0.1:2583");
    let (s, _) = settings(&[("PDS_HOSTNAME", "localhost"), ("PDS_PORT", "8080")]).unwrap();
    assert_eq!(s.public_url(), "http://localhost:8080");
    let mut vars = production();
    vars.push(("PDS_HOSTNAME", "127.0.0.1"));
    let (s, _) = settings(&vars).unwrap();
    assert_eq!(s.public_url(), "https://127.0.0.1");
}

#[test]
fn invite_schedule_and_banned_words_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("banned.txt");
    std::fs::write(&words, "# words refused in handles\nbadword\n\n  other \n").unwrap();
    let words_path = words.to_str().unwrap();
    let mut vars = production();
    vars.extend([
        ("PDS_INVITE_INTERVAL", "604800000"),
        ("PDS_INVITE_EPOCH", "1700000000000"),
        ("PDS_HANDLE_BANNED_WORDS_FILE", words_path),
    ]);
    let (s, warnings) = settings(&vars).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.invite_interval_ms, Some(604_800_000));
    assert_eq!(s.invite_epoch_ms, 1_700_000_000_000);
    assert_eq!(s.handle_banned_words, vec!["badword", "other"]);

    let (defaults, _) = settings(&production()).unwrap();
    assert_eq!(defaults.invite_interval_ms, None);
    assert_eq!(defaults.invite_epoch_ms, 0);
    assert!(defaults.handle_banned_words.is_empty());

    let missing = dir.path().join("absent.txt");
    let mut bad = production();
    bad.extend([
        ("PDS_INVITE_INTERVAL", "0"),
        ("PDS_HANDLE_BANNED_WORDS_FILE", missing.to_str().unwrap()),
    ]);
    let found = errors(&bad);
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("PDS_INVITE_INTERVAL must be")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("PDS_HANDLE_BANNED_WORDS_FILE: cannot read")),
        "{found:?}"
    );
}
