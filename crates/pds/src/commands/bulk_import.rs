//! `pds accounts import FILE.csv`: one account per row, with its profile
//! (`app.bsky.actor.profile/self`, avatar blob included), an optional
//! first post and an app password.
//!
//! The input has the columns `handle, display name, description, avatar
//! path, first post` (the last four may be empty; a first row whose first
//! field is `handle` is a header). Relative avatar paths are relative to
//! the CSV file.
//!
//! The output CSV (`handle,did,app_password,status`) is appended to and
//! flushed row by row, so an interrupted import resumes where it stopped:
//! a handle whose last output row is `done` is skipped; a handle whose
//! `started` row names the DID the handle resolves to is taken up again
//! (its password reset with the admin password, the profile put again, the
//! first post written only if the account has no post yet, the app
//! password made anew). A `started` row without a DID (the run stopped
//! while the account was being created) takes up the account only if it
//! carries the email this import gives. A handle that already exists under
//! another DID, or without any output row, belongs to someone else and is
//! refused. Each
//! row's error is reported and the batch goes on.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use atp_xrpc::client::XrpcClient;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::client::{random_password, upload_image, Connection, Session};
use crate::commands::account::{create_invite, invite_required, string_field};
use crate::commands::repo::{create_record, post_record, put_record};
use crate::error::Error;

/// Name of the app password made for each imported account.
pub const APP_PASSWORD_NAME: &str = "bulk-import";

/// Output status of a row whose account exists but is not finished.
pub const STATUS_STARTED: &str = "started";
/// Output status of a finished row.
pub const STATUS_DONE: &str = "done";

/// One row of the input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRow {
    /// Line number in the input (1-based), for messages.
    pub line: u64,
    /// The handle (a bare name gets the server's first handle domain).
    pub handle: String,
    /// `displayName` of the profile.
    pub display_name: String,
    /// `description` of the profile.
    pub description: String,
    /// Avatar image file.
    pub avatar: Option<PathBuf>,
    /// Text of a first post.
    pub first_post: Option<String>,
}

/// One row of the output file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputRow {
    /// The handle as created.
    pub handle: String,
    /// The account's DID (empty before the account exists).
    pub did: String,
    /// The app password (on `done` rows).
    pub app_password: String,
    /// `started` or `done`.
    pub status: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows in the input.
    pub rows: usize,
    /// Accounts created and finished in this run.
    pub created: usize,
    /// Accounts started by an earlier run and finished in this one.
    pub resumed: usize,
    /// Rows already done by an earlier run.
    pub skipped: usize,
    /// Rows that failed (reported one by one).
    pub failed: usize,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows: {} created, {} resumed, {} already done, {} failed",
            self.rows, self.created, self.resumed, self.skipped, self.failed
        )
    }
}

/// How to run an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The input CSV.
    pub input: PathBuf,
    /// The output CSV (created 0600 if absent, else appended to).
    pub output: PathBuf,
    /// Domain of the generated email addresses (`<handle>@<domain>`);
    /// default: the server's first handle domain.
    pub email_domain: Option<String>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// The output file that goes with `input` (`people.csv` ->
/// `people.out.csv`).
pub fn default_output_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "accounts".to_owned());
    input.with_file_name(format!("{stem}.out.csv"))
}

/// Reads the input rows.
pub fn read_input(path: &Path) -> Result<Vec<InputRow>, Error> {
    let file = File::open(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record?;
        let line = record
            .position()
            .map(|p| p.line())
            .unwrap_or(index as u64 + 1);
        let field = |i: usize| record.get(i).unwrap_or("").to_owned();
        let handle = field(0);
        if index == 0 && handle.eq_ignore_ascii_case("handle") {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let avatar = Some(field(3))
            .filter(|a| !a.is_empty())
            .map(|a| base.join(a));
        rows.push(InputRow {
            line,
            handle,
            display_name: field(1),
            description: field(2),
            avatar,
            first_post: Some(field(4)).filter(|p| !p.is_empty()),
        });
    }
    Ok(rows)
}

/// The last output row of each handle in `path` (none if absent).
pub fn read_output(path: &Path) -> Result<HashMap<String, OutputRow>, Error> {
    let mut state = HashMap::new();
    if !path.exists() {
        return Ok(state);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)?;
    for row in reader.deserialize::<OutputRow>() {
        let row = row?;
        state.insert(row.handle.clone(), row);
    }
    Ok(state)
}

/// The output file, appended to and flushed row by row.
struct OutputLog {
    writer: csv::Writer<File>,
}

impl OutputLog {
    fn open(path: &Path) -> Result<OutputLog, Error> {
        let is_new = std::fs::metadata(path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // App passwords are secrets.
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|source| Error::File {
            path: path.display().to_string(),
            source,
        })?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        if is_new {
            writer.write_record(["handle", "did", "app_password", "status"])?;
            writer.flush()?;
        }
        Ok(OutputLog { writer })
    }

    fn append(&mut self, row: &OutputRow) -> Result<(), Error> {
        self.writer.serialize(row)?;
        self.writer.flush()?;
        self.writer.get_ref().sync_data()?;
        Ok(())
    }
}

/// What the import needs to know about the server once.
struct ServerFacts {
    handle_domain: String,
    email_domain: String,
    invite_required: bool,
}

/// Runs the import.
pub async fn run(conn: &Connection, options: &ImportOptions) -> Result<ImportSummary, Error> {
    let rows = read_input(&options.input)?;
    let mut state = read_output(&options.output)?;

    let description = conn.describe().await?;
    let handle_domain = description
        .get("availableUserDomains")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .and_then(Value::as_str)
        .unwrap_or(".test")
        .to_owned();
    let facts = ServerFacts {
        email_domain: options
            .email_domain
            .clone()
            .unwrap_or_else(|| handle_domain.trim_start_matches('.').to_owned()),
        handle_domain,
        invite_required: invite_required(conn).await?,
    };

    if facts.invite_required {
        // Every row needs an invite code: stop before the first row rather
        // than failing each one.
        conn.admin()?;
    }
    let mut log = OutputLog::open(&options.output)?;

    let bar = if options.progress {
        let bar = ProgressBar::new(rows.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut summary = ImportSummary {
        rows: rows.len(),
        ..ImportSummary::default()
    };
    for row in &rows {
        let handle = full_handle(&row.handle, &facts.handle_domain);
        bar.set_message(handle.clone());
        let prior = state.get(&handle).cloned();
        if prior.as_ref().is_some_and(|p| p.status == STATUS_DONE) {
            summary.skipped += 1;
            bar.inc(1);
            continue;
        }
        match import_row(conn, &facts, row, &handle, prior.as_ref(), &mut log).await {
            Ok(done) => {
                if prior.is_some() {
                    summary.resumed += 1;
                } else {
                    summary.created += 1;
                }
                state.insert(handle, done);
            }
            Err(err) => {
                summary.failed += 1;
                bar.println(format!("line {} ({handle}): {err}", row.line));
                if !options.progress {
                    eprintln!("line {} ({handle}): {err}", row.line);
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// `name` with the server's handle domain when it has no dot.
fn full_handle(name: &str, domain: &str) -> String {
    let name = name.trim().trim_start_matches('@').to_ascii_lowercase();
    if name.contains('.') {
        name
    } else {
        format!("{name}{domain}")
    }
}

async fn import_row(
    conn: &Connection,
    facts: &ServerFacts,
    row: &InputRow,
    handle: &str,
    prior: Option<&OutputRow>,
    log: &mut OutputLog,
) -> Result<OutputRow, Error> {
    if row.handle.is_empty() {
        return Err(Error::Usage("empty handle".to_owned()));
    }
    let existing = conn.lookup_handle(handle).await?;
    let password = random_password(24);
    let session = match (existing, prior) {
        (Some(_), None) => {
            return Err(Error::Usage(
                "the handle is already taken by an account this import did not create".to_owned(),
            ))
        }
        (Some(did), Some(prior))
            if prior.did.is_empty()
                && created_by_this_import(conn, facts, handle, &did).await? =>
        {
            // Interrupted between createAccount's answer and the `started`
            // row with the DID: the account carries the email this import
            // gives, so it is ours to take up.
            log.append(&started(handle, &did))?;
            reset_and_login(conn, &did, &password).await?
        }
        (Some(did), Some(prior)) if prior.did != did => {
            return Err(Error::Usage(if prior.did.is_empty() {
                format!(
                    "the handle belongs to {did}, but this import recorded no DID for it: check the account, then add a started row with its DID to the output to take it up"
                )
            } else {
                format!(
                    "the handle belongs to {did}, not to {} as this import recorded",
                    prior.did
                )
            }));
        }
        (Some(did), Some(_)) => reset_and_login(conn, &did, &password).await?,
        (None, _) => {
            log.append(&started(handle, ""))?;
            let mut input = json!({
                "handle": handle,
                "email": import_email(facts, handle),
                "password": password,
            });
            if facts.invite_required {
                input["inviteCode"] = Value::String(create_invite(conn, 1, None).await?);
            }
            let answer: Value = conn
                .anonymous()?
                .procedure("com.atproto.server.createAccount", &(), &input)
                .await?;
            let did = string_field(&answer, "did", "createAccount")?;
            log.append(&started(handle, &did))?;
            // createAccount answers with a session: no second password
            // check (a scrypt hash on the server) is needed.
            let access = string_field(&answer, "accessJwt", "createAccount")?;
            Session {
                client: XrpcClient::new(conn.url())?.with_bearer(&access)?,
                did,
                handle: handle.to_owned(),
            }
        }
    };

    put_profile(&session, row).await?;
    if let Some(text) = &row.first_post {
        if !has_posts(&session).await? {
            create_record(&session, "app.bsky.feed.post", &post_record(text, None)).await?;
        }
    }
    let app_password = new_app_password(&session).await?;
    let done = OutputRow {
        handle: handle.to_owned(),
        did: session.did.clone(),
        app_password,
        status: STATUS_DONE.to_owned(),
    };
    log.append(&done)?;
    Ok(done)
}

/// The email address this import gives `handle`.
fn import_email(facts: &ServerFacts, handle: &str) -> String {
    format!("{handle}@{}", facts.email_domain)
}

/// Whether the account `did` (found under `handle`, for which an earlier
/// run wrote a `started` row without a DID) was created by that run: its
/// email is the one this import gives. An account made otherwise is not
/// taken over.
async fn created_by_this_import(
    conn: &Connection,
    facts: &ServerFacts,
    handle: &str,
    did: &str,
) -> Result<bool, Error> {
    let info: Value = conn
        .admin()?
        .query("com.atproto.admin.getAccountInfo", &json!({ "did": did }))
        .await?;
    let email = info.get("email").and_then(Value::as_str).unwrap_or("");
    Ok(email.eq_ignore_ascii_case(&import_email(facts, handle)))
}

/// Sets the account's password with the admin password and signs in.
async fn reset_and_login(conn: &Connection, did: &str, password: &str) -> Result<Session, Error> {
    let _: Value = conn
        .admin()?
        .procedure(
            "com.atproto.admin.updateAccountPassword",
            &(),
            &json!({ "did": did, "password": password }),
        )
        .await?;
    conn.login(did, password).await
}

fn started(handle: &str, did: &str) -> OutputRow {
    OutputRow {
        handle: handle.to_owned(),
        did: did.to_owned(),
        app_password: String::new(),
        status: STATUS_STARTED.to_owned(),
    }
}

/// Puts `app.bsky.actor.profile/self` (replacing an earlier attempt's).
async fn put_profile(session: &Session, row: &InputRow) -> Result<(), Error> {
    let mut profile = json!({ "$type": "app.bsky.actor.profile" });
    if !row.display_name.is_empty() {
        profile["displayName"] = Value::String(row.display_name.clone());
    }
    if !row.description.is_empty() {
        profile["description"] = Value::String(row.description.clone());
    }
    if let Some(avatar) = &row.avatar {
        profile["avatar"] = upload_image(session, avatar).await?;
    }
    put_record(session, "app.bsky.actor.profile", "self", &profile).await?;
    Ok(())
}

/// Whether the account has any `app.bsky.feed.post` record.
async fn has_posts(session: &Session) -> Result<bool, Error> {
    let answer: Value = session
        .client
        .query(
            "com.atproto.repo.listRecords",
            &json!({ "repo": session.did, "collection": "app.bsky.feed.post", "limit": 1 }),
        )
        .await?;
    Ok(answer
        .get("records")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty()))
}

/// A fresh app password named [`APP_PASSWORD_NAME`] (one left by an
/// interrupted run is revoked first).
async fn new_app_password(session: &Session) -> Result<String, Error> {
    let listed: Value = session
        .client
        .query("com.atproto.server.listAppPasswords", &())
        .await?;
    let exists = listed
        .get("passwords")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|p| p.get("name").and_then(Value::as_str) == Some(APP_PASSWORD_NAME))
        });
    if exists {
        let _: Value = session
            .client
            .procedure(
                "com.atproto.server.revokeAppPassword",
                &(),
                &json!({ "name": APP_PASSWORD_NAME }),
            )
            .await?;
    }
    let answer: Value = session
        .client
        .procedure(
            "com.atproto.server.createAppPassword",
            &(),
            &json!({ "name": APP_PASSWORD_NAME }),
        )
        .await?;
    string_field(&answer, "password", "createAppPassword")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rows_with_header_quotes_and_missing_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(
            &path,
            "handle,display name,description,avatar,first post\n\
             alice,Alice,\"Likes, commas\",alice.png,Hello world\n\
             bob.example.com,Bob\n\
             \n\
             carol,,,,\n",
        )
        .unwrap();
        let rows = read_input(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].handle, "alice");
        assert_eq!(rows[0].description, "Likes, commas");
        assert_eq!(rows[0].avatar, Some(dir.path().join("alice.png")));
        assert_eq!(rows[0].first_post.as_deref(), Some("Hello world"));
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].display_name, "Bob");
        assert_eq!(rows[1].avatar, None);
        assert_eq!(rows[2].handle, "carol");
        assert_eq!(rows[2].first_post, None);
    }

    #[test]
    fn output_log_resumes_with_the_last_row_of_each_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        {
            let mut log = OutputLog::open(&path).unwrap();
            log.append(&started("alice.test", "")).unwrap();
            log.append(&started("alice.test", "did:plc:a")).unwrap();
            log.append(&started("bob.test", "did:plc:b")).unwrap();
        }
        {
            let mut log = OutputLog::open(&path).unwrap();
            log.append(&OutputRow {
                handle: "alice.test".into(),
                did: "did:plc:a".into(),
                app_password: "aaaa-bbbb-cccc-dddd".into(),
                status: STATUS_DONE.into(),
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some("handle,did,app_password,status"));
        assert_eq!(text.matches("handle,did").count(), 1);
        let state = read_output(&path).unwrap();
        assert_eq!(state["alice.test"].status, STATUS_DONE);
        assert_eq!(state["alice.test"].app_password, "aaaa-bbbb-cccc-dddd");
        assert_eq!(state["bob.test"].status, STATUS_STARTED);
        assert_eq!(state["bob.test"].did, "did:plc:b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bare_names_get_the_server_domain() {
        assert_eq!(
            full_handle("Alice", ".pds.example.com"),
            "alice.pds.example.com"
        );
        assert_eq!(full_handle("@bob.example.org", ".test"), "bob.example.org");
        assert_eq!(
            default_output_path(Path::new("/x/people.csv")),
            PathBuf::from("/x/people.out.csv")
        );
    }

    #[test]
    fn summary_reads_as_a_sentence() {
        let s = ImportSummary {
            rows: 5,
            created: 2,
            resumed: 1,
            skipped: 1,
            failed: 1,
        };
        assert_eq!(
            s.to_string(),
            "5 rows: 2 created, 1 resumed, 1 already done, 1 failed"
        );
    }
}
