//! `pds account ...`: accounts managed with the admin password, as the
//! reference's `pdsadmin account` does.

use serde_json::{json, Value};

use crate::client::{random_password, Connection};
use crate::error::Error;

/// Length of generated account passwords (as `pdsadmin`).
pub const GENERATED_PASSWORD_LENGTH: usize = 24;

/// A created account.
#[derive(Clone, Debug)]
pub struct CreatedAccount {
    /// The new DID.
    pub did: String,
    /// The handle.
    pub handle: String,
    /// The password (generated unless given).
    pub password: String,
}

/// `pds account create`: makes an invite code first when the server wants
/// one, then `createAccount`.
pub async fn create(
    conn: &Connection,
    handle: &str,
    email: &str,
    password: Option<&str>,
) -> Result<CreatedAccount, Error> {
    let password = password
        .map(str::to_owned)
        .unwrap_or_else(|| random_password(GENERATED_PASSWORD_LENGTH));
    let mut input = json!({ "handle": handle, "email": email, "password": password });
    if invite_required(conn).await? {
        input["inviteCode"] = Value::String(create_invite(conn, 1, None).await?);
    }
    let answer: Value = conn
        .anonymous()?
        .procedure("com.atproto.server.createAccount", &(), &input)
        .await?;
    Ok(CreatedAccount {
        did: string_field(&answer, "did", "createAccount")?,
        handle: string_field(&answer, "handle", "createAccount")?,
        password,
    })
}

/// Whether `describeServer` says invite codes are required.
pub async fn invite_required(conn: &Connection) -> Result<bool, Error> {
    let description = conn.describe().await?;
    Ok(description
        .get("inviteCodeRequired")
        .and_then(Value::as_bool)
        .unwrap_or(false))
}

/// `createInviteCode` with the admin password: a code for `uses` accounts.
pub async fn create_invite(
    conn: &Connection,
    uses: u32,
    for_account: Option<&str>,
) -> Result<String, Error> {
    let mut input = json!({ "useCount": uses });
    if let Some(did) = for_account {
        input["forAccount"] = Value::String(did.to_owned());
    }
    let answer: Value = conn
        .admin()?
        .procedure("com.atproto.server.createInviteCode", &(), &input)
        .await?;
    string_field(&answer, "code", "createInviteCode")
}

/// One line of `pds account list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLine {
    /// The DID.
    pub did: String,
    /// The handle (`handle.invalid` when unknown).
    pub handle: String,
    /// The email address, if the server shows it.
    pub email: Option<String>,
    /// `active`, or the status (`takendown`, `deactivated`, ...).
    pub status: String,
}

/// DIDs per `admin.getAccountInfos` call.
const INFO_BATCH: usize = 100;

/// `pds account list`: every repository (`sync.listRepos`, all pages) with
/// its handle and email (`admin.getAccountInfos`, in batches).
pub async fn list(conn: &Connection) -> Result<Vec<AccountLine>, Error> {
    let anonymous = conn.anonymous()?;
    let admin = conn.admin()?;
    let mut lines = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = json!({ "limit": 1000 });
        if let Some(cursor) = &cursor {
            params["cursor"] = Value::String(cursor.clone());
        }
        let page: Value = anonymous
            .query("com.atproto.sync.listRepos", &params)
            .await?;
        let repos = page
            .get("repos")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Answer(format!("listRepos gave no repos: {page}")))?;
        let mut statuses = Vec::new();
        for repo in repos {
            let did = string_field(repo, "did", "listRepos")?;
            let status = match repo.get("active").and_then(Value::as_bool) {
                Some(false) => repo
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("inactive")
                    .to_owned(),
                _ => "active".to_owned(),
            };
            statuses.push((did, status));
        }
        for batch in statuses.chunks(INFO_BATCH) {
            let dids: Vec<&str> = batch.iter().map(|(did, _)| did.as_str()).collect();
            let answer: Value = admin
                .query(
                    "com.atproto.admin.getAccountInfos",
                    &json!({ "dids": dids }),
                )
                .await?;
            let infos = answer
                .get("infos")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (did, status) in batch {
                let info = infos
                    .iter()
                    .find(|i| i.get("did").and_then(Value::as_str) == Some(did.as_str()));
                lines.push(AccountLine {
                    did: did.clone(),
                    handle: info
                        .and_then(|i| i.get("handle"))
                        .and_then(Value::as_str)
                        .unwrap_or("handle.invalid")
                        .to_owned(),
                    email: info
                        .and_then(|i| i.get("email"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    status: status.clone(),
                });
            }
        }
        cursor = page
            .get("cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() || repos.is_empty() {
            break;
        }
    }
    Ok(lines)
}

/// `pds account info`: `admin.getAccountInfo` of the account.
pub async fn info(conn: &Connection, actor: &str) -> Result<Value, Error> {
    let did = conn.resolve_actor(actor).await?;
    Ok(conn
        .admin()?
        .query("com.atproto.admin.getAccountInfo", &json!({ "did": did }))
        .await?)
}

/// `pds account delete`: `admin.deleteAccount`; returns the DID.
pub async fn delete(conn: &Connection, actor: &str) -> Result<String, Error> {
    let did = conn.resolve_actor(actor).await?;
    let _: Value = conn
        .admin()?
        .procedure(
            "com.atproto.admin.deleteAccount",
            &(),
            &json!({ "did": did }),
        )
        .await?;
    Ok(did)
}

/// `pds account takedown` (or `--revert`): `admin.updateSubjectStatus` on
/// the account's repository; returns the DID.
pub async fn takedown(conn: &Connection, actor: &str, revert: bool) -> Result<String, Error> {
    let did = conn.resolve_actor(actor).await?;
    let mut takedown = json!({ "applied": !revert });
    if !revert {
        takedown["ref"] = Value::String(chrono::Utc::now().timestamp().to_string());
    }
    let _: Value = conn
        .admin()?
        .procedure(
            "com.atproto.admin.updateSubjectStatus",
            &(),
            &json!({
                "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": did },
                "takedown": takedown,
            }),
        )
        .await?;
    Ok(did)
}

/// `pds account reset-password`: `admin.updateAccountPassword` with the
/// given or a generated password; returns the DID and the password.
pub async fn reset_password(
    conn: &Connection,
    actor: &str,
    password: Option<&str>,
) -> Result<(String, String), Error> {
    let did = conn.resolve_actor(actor).await?;
    let password = password
        .map(str::to_owned)
        .unwrap_or_else(|| random_password(GENERATED_PASSWORD_LENGTH));
    let _: Value = conn
        .admin()?
        .procedure(
            "com.atproto.admin.updateAccountPassword",
            &(),
            &json!({ "did": did, "password": password }),
        )
        .await?;
    Ok((did, password))
}

/// The string `field` of an answer of `method`.
pub fn string_field(answer: &Value, field: &str, method: &str) -> Result<String, Error> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Answer(format!("{method} gave no {field}: {answer}")))
}
