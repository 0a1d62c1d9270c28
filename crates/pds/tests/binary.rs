//! The `pds` binary end to end: `pds serve` configured with the reference
//! PDS's variables (environment and env file), refused configurations, the
//! development defaults, mail over SMTP, and the operator commands against
//! the running server.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_xrpc::client::XrpcClient;
use common::{
    account_create_args, field, free_port, pds_command, posts_of, run_pds, spawn_logged, succeeded,
    wait_ready, Running,
};
use serde_json::{json, Value};

/// A `pds serve` child process, killed on drop.
struct Server {
    _running: Running,
    url: String,
    log: PathBuf,
}

impl Server {
    /// Starts `pds serve` in `cwd` with exactly `vars` (plus PATH and
    /// `RUST_LOG=info`) and the given extra arguments, then waits until
    /// `describeServer` answers.
    async fn start(cwd: &Path, port: u16, vars: &[(&str, String)], args: &[&str]) -> Server {
        let log = cwd.join(format!("pds-{port}.log"));
        let mut command = pds_command(cwd, &[("RUST_LOG", "info".to_owned())]);
        command.envs(vars.iter().map(|(k, v)| (k, v)));
        let mut running = spawn_logged(command.args(args).arg("serve"), &log);
        let url = format!("http://localhost:{port}");
        wait_ready(&mut running, &url, &log).await;
        Server {
            _running: running,
            url,
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self) -> XrpcClient {
        XrpcClient::new(&self.url).unwrap()
    }

    /// The server's `describeServer` answer.
    async fn describe(&self) -> Value {
        self.client()
            .query("com.atproto.server.describeServer", &())
            .await
            .unwrap()
    }

    /// Runs `pds --pds-url <this server> <args>` in `cwd` with no
    /// variables.
    async fn command(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--pds-url", self.url.as_str()];
        all.extend_from_slice(args);
        run_pds(cwd, &[], &all).await
    }

    /// `pds post` of `text` to this server as `handle` with `password`.
    async fn post(&self, cwd: &Path, handle: &str, password: &str, text: &str) -> Output {
        let args = [
            "post",
            "--handle",
            handle,
            "--password",
            password,
            "--text",
            text,
        ];
        self.command(cwd, &args).await
    }
}

/// Runs an operator command (blocking) with exactly `vars` (plus PATH).
fn pds(cwd: &Path, vars: &[(&str, String)], args: &[&str]) -> Output {
    pds_command(cwd, vars)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn reference_style_variables_configure_the_server_and_the_commands_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let plc = PlcServer::start(PlcConfig::in_memory()).await.unwrap();
    let port = free_port();
    let rotation_key = SigningKey::generate(Algorithm::K256);
    let recovery_key = SigningKey::generate(Algorithm::P256);
    let data = dir.path().join("data");

    // Half of the settings in an env file (the reference's pds.env
    // format), half in the environment, one in both (the environment wins).
    let env_file = dir.path().join("pds.env");
    std::fs::write(
        &env_file,
        format!(
            "# reference-style settings\n\
             PDS_HOSTNAME=localhost\n\
             PDS_PORT=1\n\
             PDS_DATA_DIRECTORY={data}\n\
             PDS_BLOBSTORE_DISK_LOCATION={data}/blocks\n\
             PDS_JWT_SECRET=0123456789abcdef0123456789abcdef\n\
             PDS_ADMIN_PASSWORD=admin-pass\n\
             PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX={key}\n",
            data = data.display(),
            key = rotation_key.to_hex()
        ),
    )
    .unwrap();
    let vars = vec![
        ("PDS_PORT", port.to_string()),
        ("PDS_DID_PLC_URL", plc.url()),
        ("PDS_SERVICE_DID", "did:web:localhost".to_owned()),
        ("PDS_SERVICE_HANDLE_DOMAINS", ".test".to_owned()),
        ("PDS_INVITE_REQUIRED", "false".to_owned()),
        ("PDS_DEV_MODE", "true".to_owned()),
        ("PDS_RECOVERY_DID_KEY", recovery_key.did_key()),
        ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app".to_owned()),
        ("PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app".to_owned()),
        ("PDS_BLOB_UPLOAD_LIMIT", "1000000".to_owned()),
        (
            "PDS_CONTACT_EMAIL_ADDRESS",
            "contact@example.com".to_owned(),
        ),
        (
            "PDS_PRIVACY_POLICY_URL",
            "https://example.com/privacy".to_owned(),
        ),
        (
            "PDS_TERMS_OF_SERVICE_URL",
            "https://example.com/tos".to_owned(),
        ),
        ("PDS_SERVICE_NAME", "ignored by this server".to_owned()),
    ];
    let env_file_arg = env_file.to_str().unwrap();
    let server = Server::start(dir.path(), port, &vars, &["--env-file", env_file_arg]).await;

    let log = server.log_text();
    assert!(log.contains("DEVELOPMENT MODE"), "{log}");
    assert!(
        log.contains("PDS_SERVICE_NAME is a setting of the reference PDS"),
        "{log}"
    );
    assert!(!log.contains("admin-pass") && !log.contains(&rotation_key.to_hex()));

    let described = server.describe().await;
    assert_eq!(described["did"], "did:web:localhost");
    assert_eq!(described["availableUserDomains"], json!([".test"]));
    assert_eq!(described["inviteCodeRequired"], false);
    assert_eq!(
        described["links"]["privacyPolicy"],
        "https://example.com/privacy"
    );
    assert_eq!(
        described["links"]["termsOfService"],
        "https://example.com/tos"
    );
    assert_eq!(described["contact"]["email"], "contact@example.com");

    // The operator commands find the server and the admin password through
    // the same env file (PDS_PORT from the environment wins over the file's).
    let cli_vars = vec![("PDS_PORT", port.to_string())];
    let created = succeeded(
        &run_pds(
            dir.path(),
            &cli_vars,
            &[
                &["--env-file", env_file_arg][..],
                &account_create_args("alice.test", "alice@example.com", None),
            ]
            .concat(),
        )
        .await,
    );
    let did = field(&created, "DID:");
    let password = field(&created, "password:");
    assert!(did.starts_with("did:plc:"), "{created}");
    assert_eq!(password.len(), 24);

    // The DID was registered with the configured directory, with the
    // recovery key first, the rotation key from hex, and the public URL.
    let document = PlcClient::new(&plc.url())
        .unwrap()
        .data(&did)
        .await
        .unwrap();
    assert_eq!(
        document["rotationKeys"],
        json!([recovery_key.did_key(), rotation_key.did_key()])
    );
    assert_eq!(
        document["services"]["atproto_pds"]["endpoint"],
        server.url.as_str()
    );
    assert_eq!(document["alsoKnownAs"], json!(["at://alice.test"]));

    // The generated password signs in.
    let session: Value = server
        .client()
        .procedure(
            "com.atproto.server.createSession",
            &(),
            &json!({ "identifier": "alice.test", "password": password }),
        )
        .await
        .unwrap();
    assert_eq!(session["did"], did.as_str());

    // A post, read back.
    let posted = succeeded(
        &server
            .post(
                dir.path(),
                "alice.test",
                &password,
                "hello from the command line",
            )
            .await,
    );
    let uri = posted.lines().next().unwrap().to_owned();
    let prefix = format!("at://{did}/app.bsky.feed.post/");
    assert!(uri.starts_with(&prefix), "{posted}");
    let record: Value = server
        .client()
        .query(
            "com.atproto.repo.getRecord",
            &json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": &uri[prefix.len()..] }),
        )
        .await
        .unwrap();
    assert_eq!(record["value"]["text"], "hello from the command line");

    // The repository as a CAR file, the same bytes getRepo serves.
    let car = dir.path().join("alice.car");
    let exported = succeeded(
        &server
            .command(
                dir.path(),
                &["repo", "export", "alice.test", "-o", car.to_str().unwrap()],
            )
            .await,
    );
    assert!(exported.contains(&did), "{exported}");
    let written = std::fs::read(&car).unwrap();
    let served = server
        .client()
        .query_bytes("com.atproto.sync.getRepo", &json!({ "did": did }))
        .await
        .unwrap();
    assert!(!written.is_empty());
    assert_eq!(written, served.bytes.to_vec());

    // A later post, then the exported CAR imported back: the repository
    // is the exported one again (importRepo applies the difference).
    succeeded(
        &server
            .post(dir.path(), "alice.test", &password, "a later post")
            .await,
    );
    let list_posts = || async {
        posts_of(&server.url, &did)
            .await
            .iter()
            .map(|r| r["value"]["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list_posts().await.len(), 2);
    let imported = succeeded(
        &server
            .command(
                dir.path(),
                &[
                    "repo",
                    "import",
                    car.to_str().unwrap(),
                    "--handle",
                    "alice.test",
                    "--password",
                    &password,
                ],
            )
            .await,
    );
    assert!(imported.contains(&did), "{imported}");
    assert_eq!(list_posts().await, vec!["hello from the command line"]);

    // A wrong password is refused with the server's message and a failure
    // status.
    let refused = server.post(dir.path(), "alice.test", "wrong", "x").await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Invalid identifier or password"),
        "{stderr}"
    );

    drop(server);
    plc.shutdown().await.unwrap();
}

#[test]
fn a_bad_configuration_names_every_variable_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let vars = vec![
        ("PDS_HOSTNAME", "pds.example.com".to_owned()),
        ("PDS_PORT", "eighty".to_owned()),
        ("PDS_INVITE_REQUIRED", "maybe".to_owned()),
        ("PDS_EMAIL_SMTP_URL", "smtp://mail.example.com".to_owned()),
        ("PDS_BLOBSTORE_S3_BUCKET", "blobs".to_owned()),
        ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKIA".to_owned()),
    ];
    let output = pds(dir.path(), &vars, &["serve"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "PDS_PORT",
        "PDS_INVITE_REQUIRED",
        "PDS_EMAIL_FROM_ADDRESS",
        "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
        "PDS_JWT_SECRET",
        "PDS_ADMIN_PASSWORD",
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    ] {
        assert!(stderr.contains(&format!("  - {name}")), "{name}: {stderr}");
    }
    // Nothing was created.
    assert!(!dir.path().join("pds-data").exists());

    let output = pds(dir.path(), &[], &["serve", "--env-file", "absent.env"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("absent.env"));
}

#[tokio::test]
async fn without_configuration_a_development_server_keeps_its_secrets_in_pds_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let vars = vec![("PDS_PORT", port.to_string())];
    let server = Server::start(dir.path(), port, &vars, &[]).await;
    let log = server.log_text();
    assert!(log.contains("DEVELOPMENT MODE"), "{log}");
    assert!(log.contains("embedded PLC directory"), "{log}");
    let data = dir.path().join("pds-data");
    for file in ["jwt-secret", "admin-password", "plc-rotation-key"] {
        let meta = std::fs::metadata(data.join(file)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
        assert!(meta.len() > 0);
    }
    let described = server.describe().await;
    assert_eq!(described["did"], "did:web:localhost");
    assert_eq!(described["availableUserDomains"], json!([".test"]));
    assert_eq!(described["inviteCodeRequired"], false);

    // The commands find the development server from PDS_PORT alone.
    let created = succeeded(
        &run_pds(
            dir.path(),
            &vars,
            &account_create_args("bob.test", "bob@example.com", Some("bob-password")),
        )
        .await,
    );
    assert!(field(&created, "DID:").starts_with("did:plc:"), "{created}");
    assert!(!created.contains("bob-password"));
}

#[tokio::test]
async fn mail_goes_to_the_configured_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    std::fs::create_dir(&mail_dir).unwrap();
    let smtp_port = free_port();
    let script = atp_test_vectors::workspace_root()
        .join("tests")
        .join("python")
        .join("smtp_sink.py");
    // The sink serves until its standard input closes: keep it open.
    let mut sink = Command::new(atp_test_vectors::python())
        .arg(&script)
        .arg(&mail_dir)
        .arg(smtp_port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", smtp_port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the SMTP sink did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let port = free_port();
    let vars = vec![
        ("PDS_PORT", port.to_string()),
        (
            "PDS_EMAIL_SMTP_URL",
            format!("smtp://127.0.0.1:{smtp_port}"),
        ),
        ("PDS_EMAIL_FROM_ADDRESS", "noreply@pds.test".to_owned()),
    ];
    let server = Server::start(dir.path(), port, &vars, &[]).await;
    succeeded(
        &run_pds(
            dir.path(),
            &vars,
            &account_create_args("carol.test", "carol@example.com", None),
        )
        .await,
    );
    let _: Value = server
        .client()
        .procedure(
            "com.atproto.server.requestPasswordReset",
            &(),
            &json!({ "email": "carol@example.com" }),
        )
        .await
        .unwrap();
    let mail = mail_dir.join("1.eml");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mail.exists() {
        assert!(
            Instant::now() < deadline,
            "no mail delivered:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&mail).unwrap();
    assert!(text.contains("X-Envelope-To: carol@example.com"), "{text}");
    assert!(text.contains("noreply@pds.test"), "{text}");
    drop(server);
    drop(sink.stdin.take());
    let _ = sink.kill();
    let _ = sink.wait();
}

#[tokio::test]
async fn request_crawl_tells_each_relay_the_host_name() {
    use atp_xrpc::server::{Router, ServerConfig, XrpcResponse, XrpcServer};
    use std::sync::{Arc, Mutex};

    // A relay that records the host names it is asked to crawl.
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut router = Router::new();
    let seen = Arc::clone(&asked);
    router
        .procedure("com.atproto.sync.requestCrawl", move |mut req| {
            let seen = Arc::clone(&seen);
            async move {
                let body: Value = req.json().await?;
                seen.lock()
                    .unwrap()
                    .push(body["hostname"].as_str().unwrap_or_default().to_owned());
                Ok(XrpcResponse::empty())
            }
        })
        .unwrap();
    let relay = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap();
    let relay_url = format!("http://{}", relay.local_addr());
    let dir = tempfile::tempdir().unwrap();

    let told = succeeded(
        &run_pds(
            dir.path(),
            &[],
            &["request-crawl", &relay_url, "--hostname", "pds.example.com"],
        )
        .await,
    );
    assert!(told.contains("asked to crawl pds.example.com"), "{told}");
    // From the settings: PDS_HOSTNAME and PDS_CRAWLERS.
    succeeded(
        &run_pds(
            dir.path(),
            &[
                ("PDS_HOSTNAME", "other.example.com".to_owned()),
                ("PDS_CRAWLERS", format!("{relay_url}, {relay_url}")),
            ],
            &["request-crawl"],
        )
        .await,
    );
    assert_eq!(
        *asked.lock().unwrap(),
        vec!["pds.example.com", "other.example.com", "other.example.com"]
    );

    // No host name, or a relay that is not there: a failure.
    let no_host = run_pds(dir.path(), &[], &["request-crawl", &relay_url]).await;
    assert!(!no_host.status.success());
    assert!(String::from_utf8_lossy(&no_host.stderr).contains("PDS_HOSTNAME"));
    relay.shutdown().await;
    let gone = run_pds(
        dir.path(),
        &[],
        &["request-crawl", &relay_url, "--hostname", "pds.example.com"],
    )
    .await;
    assert!(!gone.status.success());
}
