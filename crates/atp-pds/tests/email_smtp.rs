//! The email methods against a real SMTP server on loopback (aiosmtpd, from
//! tests/python/smtp_sink.py): each flow's token is read out of the
//! delivered message and used to complete it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atp_pds::account::AccountStore;
use atp_pds::mailer::SmtpMailer;
use common::{refusal, Pds, TestAccount, PASSWORD};
use serde_json::{json, Value};

// The methods of the email flows.
const REQUEST_CONFIRMATION: &str = "com.atproto.server.requestEmailConfirmation";
const CONFIRM_EMAIL: &str = "com.atproto.server.confirmEmail";
const REQUEST_UPDATE: &str = "com.atproto.server.requestEmailUpdate";
const UPDATE_EMAIL: &str = "com.atproto.server.updateEmail";

/// The SMTP sink, stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = atp_test_vectors::workspace_root()
            .join("tests")
            .join("python")
            .join("smtp_sink.py");
        let mut child = Command::new(atp_test_vectors::python())
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap();
        SmtpSink { child, port, dir }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many messages were delivered so far.
    fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".eml")
            })
            .count()
    }

    /// Message number `n` (from 1). Delivery is finished when the SMTP
    /// exchange is, so the file is there when the method has answered;
    /// the wait only covers the sink's file write.
    fn message(&self, n: usize) -> String {
        let path: PathBuf = self.dir.path().join(format!("{n}.eml"));
        for _ in 0..200 {
            if path.is_file() {
                return std::fs::read_to_string(&path).unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("message {n} was not delivered");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of header `name` in a raw message.
fn header(message: &str, name: &str) -> String {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    message
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} header in {message}"))
}

/// The token (`XXXXX-XXXXX`) in a raw message's body.
fn token_in(message: &str) -> String {
    let (_, body) = message.split_once("\r\n\r\n").unwrap();
    body.split_whitespace()
        .find(|word| {
            word.len() == 11
                && word.as_bytes()[5] == b'-'
                && word
                    .chars()
                    .enumerate()
                    .all(|(i, c)| i == 5 || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_owned()
}

/// A PDS mailing through `sink`, and a handle on its account database.
async fn start(sink: &SmtpSink) -> (Pds, Arc<AccountStore>) {
    let mut accounts = None;
    let url = sink.url();
    let pds = Pds::start_with(|state| {
        state.mailer = Arc::new(SmtpMailer::new(&url, "Test PDS <pds@example.com>").unwrap());
        accounts = Some(Arc::clone(state.storage.accounts()));
    })
    .await;
    (pds, accounts.unwrap())
}

async fn session(pds: &Pds, account: &TestAccount) -> Value {
    pds.bearer(&account.access_jwt)
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap()
}

/// Makes every stored token of `did` look requested an hour ago.
fn age_tokens(accounts: &AccountStore, did: &str) {
    let conn = accounts.database().lock_writer().unwrap();
    let changed = conn
        .execute(
            "UPDATE email_token SET requested_at = '2000-01-01T00:00:00.000Z' WHERE did = ?1",
            [did],
        )
        .unwrap();
    assert!(changed > 0);
}

#[tokio::test]
async fn confirm_email_with_the_mailed_token() {
    let sink = SmtpSink::start();
    let (pds, accounts) = start(&sink).await;
    let alice = pds.create("alice").await;
    assert_eq!(session(&pds, &alice).await["emailConfirmed"], false);

    let jwt = Some(alice.access_jwt.as_str());
    pds.call(jwt, REQUEST_CONFIRMATION, Value::Null)
        .await
        .unwrap();
    let mail = sink.message(1);
    assert_eq!(header(&mail, "X-Envelope-To"), "alice@example.com");
    assert_eq!(header(&mail, "Subject"), "Email Confirmation");
    assert!(header(&mail, "From").contains("pds@example.com"));
    let token = token_in(&mail);

    let confirm = |email: &str, token: &str| {
        pds.call(
            jwt,
            CONFIRM_EMAIL,
            json!({ "email": email, "token": token }),
        )
    };
    let (status, error, _) = refusal(confirm("other@example.com", &token).await);
    assert_eq!((status, error.as_str()), (400, "InvalidEmail"));
    let (status, error, message) = refusal(confirm("alice@example.com", "AAAAA-BBBBB").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidToken", "Token is invalid")
    );

    // Case does not matter, in the address or the token.
    confirm("Alice@Example.com", &token.to_lowercase())
        .await
        .unwrap();
    assert_eq!(session(&pds, &alice).await["emailConfirmed"], true);
    // Used once only.
    let (_, error, _) = refusal(confirm("alice@example.com", &token).await);
    assert_eq!(error, "InvalidToken");

    // An expired token is refused.
    pds.call(jwt, REQUEST_CONFIRMATION, Value::Null)
        .await
        .unwrap();
    let token = token_in(&sink.message(2));
    age_tokens(&accounts, &alice.did);
    let (status, error, message) = refusal(confirm("alice@example.com", &token).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "ExpiredToken", "Token is expired")
    );

    // Without a session: refused.
    let (status, _, _) = refusal(pds.call(None, REQUEST_CONFIRMATION, Value::Null).await);
    assert_eq!(status, 401);
    pds.stop().await;
}

#[tokio::test]
async fn update_email_needs_the_mailed_token_once_confirmed() {
    let sink = SmtpSink::start();
    let (pds, _accounts) = start(&sink).await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let jwt = Some(alice.access_jwt.as_str());

    // Unconfirmed address: no token needed, and none is mailed.
    let answer = pds.call(jwt, REQUEST_UPDATE, Value::Null).await.unwrap();
    assert_eq!(answer, json!({ "tokenRequired": false }));
    assert_eq!(sink.count(), 0);
    pds.call(jwt, UPDATE_EMAIL, json!({ "email": "alice2@example.com" }))
        .await
        .unwrap();
    assert_eq!(session(&pds, &alice).await["email"], "alice2@example.com");

    // Confirm the new address (the mail goes there).
    pds.call(jwt, REQUEST_CONFIRMATION, Value::Null)
        .await
        .unwrap();
    let mail = sink.message(1);
    assert_eq!(header(&mail, "X-Envelope-To"), "alice2@example.com");
    pds.call(
        jwt,
        CONFIRM_EMAIL,
        json!({ "email": "alice2@example.com", "token": token_in(&mail) }),
    )
    .await
    .unwrap();

    // Confirmed: a token is required and mailed to the current address.
    let answer = pds.call(jwt, REQUEST_UPDATE, Value::Null).await.unwrap();
    assert_eq!(answer, json!({ "tokenRequired": true }));
    let mail = sink.message(2);
    assert_eq!(header(&mail, "X-Envelope-To"), "alice2@example.com");
    assert_eq!(header(&mail, "Subject"), "Email Update Requested");
    let token = token_in(&mail);

    let update = |input: Value| pds.call(jwt, UPDATE_EMAIL, input);
    let (status, error, message) = refusal(update(json!({ "email": "alice3@example.com" })).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "TokenRequired", "confirmation token required")
    );
    let (_, error, _) =
        refusal(update(json!({ "email": "alice3@example.com", "token": "AAAAA-BBBBB" })).await);
    assert_eq!(error, "InvalidToken");
    let (status, _, message) =
        refusal(update(json!({ "email": "bob@example.com", "token": token })).await);
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "This email address is already in use, please use a different email."
        )
    );
    let (_, _, message) =
        refusal(update(json!({ "email": "not-an-address", "token": token })).await);
    assert_eq!(
        message,
        "This email address is not supported, please use a different email."
    );

    update(json!({ "email": "alice3@example.com", "token": token }))
        .await
        .unwrap();
    let now = session(&pds, &alice).await;
    assert_eq!(now["email"], "alice3@example.com");
    assert_eq!(now["emailConfirmed"], false);
    assert_eq!(session(&pds, &bob).await["email"], "bob@example.com");

    // An app password's session may not change the address.
    let app = pds.create_app_password(&alice, "app").await;
    let app_session = pds
        .login(&alice.handle, app["password"].as_str().unwrap())
        .await
        .unwrap();
    let app_jwt = app_session["accessJwt"].as_str();
    let (status, _, _) = refusal(pds.call(app_jwt, REQUEST_UPDATE, Value::Null).await);
    assert_eq!(status, 400);
    pds.stop().await;
}

#[tokio::test]
async fn reset_password_with_the_mailed_token() {
    let sink = SmtpSink::start();
    let (pds, accounts) = start(&sink).await;
    let alice = pds.create("alice").await;

    let request = |email: &str| {
        pds.call(
            None,
            "com.atproto.server.requestPasswordReset",
            json!({ "email": email }),
        )
    };
    request("ALICE@example.com").await.unwrap();
    let mail = sink.message(1);
    assert_eq!(header(&mail, "X-Envelope-To"), "alice@example.com");
    assert_eq!(header(&mail, "Subject"), "Password Reset Requested");
    let token = token_in(&mail);

    let reset = |token: &str, password: &str| {
        pds.call(
            None,
            "com.atproto.server.resetPassword",
            json!({ "token": token, "password": password }),
        )
    };
    let (_, error, _) = refusal(reset("AAAAA-BBBBB", "new-password").await);
    assert_eq!(error, "InvalidToken");
    let (_, _, message) = refusal(reset(&token, &"x".repeat(257)).await);
    assert_eq!(message, "Invalid password length.");
    reset(&token, "new-password").await.unwrap();
    let (_, error, _) = refusal(reset(&token, "again").await);
    assert_eq!(error, "InvalidToken");

    let (status, _, _) = refusal(pds.login(&alice.handle, PASSWORD).await);
    assert_eq!(status, 401);
    let session = pds.login(&alice.handle, "new-password").await.unwrap();
    assert_eq!(session["did"], alice.did.as_str());

    // The sessions from before the reset are revoked.
    let (status, _, _) = pds.refused_refresh(&alice.refresh_jwt).await;
    assert_eq!(status, 400);

    // An expired token is refused (and used up).
    request("alice@example.com").await.unwrap();
    let token = token_in(&sink.message(2));
    age_tokens(&accounts, &alice.did);
    let (status, error, _) = refusal(reset(&token, "newer-password").await);
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let (_, error, _) = refusal(reset(&token, "newer-password").await);
    assert_eq!(error, "InvalidToken");
    pds.login(&alice.handle, "new-password").await.unwrap();

    // An address no account has (the reference answers so).
    let (status, _, message) = refusal(request("nobody@example.com").await);
    assert_eq!(
        (status, message.as_str()),
        (400, "account does not have an email address")
    );
    assert_eq!(sink.count(), 2);
    pds.stop().await;
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_a_server_error() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
    let pds = Pds::start_with(|state| {
        state.mailer = Arc::new(SmtpMailer::new(&url, "pds@example.com").unwrap());
    })
    .await;
    pds.create("alice").await;
    let (status, _, _) = refusal(
        pds.call(
            None,
            "com.atproto.server.requestPasswordReset",
            json!({ "email": "alice@example.com" }),
        )
        .await,
    );
    assert_eq!(status, 500);
    pds.stop().await;
}
