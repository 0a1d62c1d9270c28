//! The service-wide account database (`<data>/account.sqlite`): accounts
//! and their credentials.
//!
//! Handles are stored normalized (lower case) and emails lower-cased, each
//! unique. Password hashes never leave this module except as
//! [`PasswordHash`], whose `Debug` is redacted. Refresh tokens, app
//! passwords, invite codes and email tokens live in the same file and are
//! handled by the sibling modules `refresh_token`, `app_password`, `invite`
//! and `email_token`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::db::{Database, Migration};
use crate::error::{Error, Result};
use crate::password::PasswordHash;
use crate::time;

/// The schema of the account database.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "accounts, refresh tokens, app passwords, invite codes, email tokens",
        run: None,
        sql: "
        CREATE TABLE account (
            did TEXT PRIMARY KEY,
            handle TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            email_confirmed_at TEXT,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            deactivated_at TEXT,
            delete_after TEXT,
            takedown_ref TEXT
        );
        CREATE TABLE refresh_token (
            id TEXT PRIMARY KEY,
            did TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
            expires_at TEXT NOT NULL,
            app_password_name TEXT,
            next_id TEXT
        );
        CREATE INDEX refresh_token_did ON refresh_token(did);
        CREATE TABLE app_password (
            did TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            privileged INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (did, name)
        );
        CREATE TABLE invite_code (
            code TEXT PRIMARY KEY,
            available_uses INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            for_account TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE invite_code_use (
            code TEXT NOT NULL REFERENCES invite_code(code) ON DELETE CASCADE,
            used_by TEXT NOT NULL,
            used_at TEXT NOT NULL,
            PRIMARY KEY (code, used_by)
        );
        CREATE TABLE email_token (
            purpose TEXT NOT NULL,
            did TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
            token TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            PRIMARY KEY (purpose, did),
            UNIQUE (purpose, token)
        );
    ",
    },
    Migration {
        version: 2,
        description: "per-account switch for invite codes",
        run: None,
        sql: "ALTER TABLE account ADD COLUMN invites_disabled INTEGER NOT NULL DEFAULT 0;",
    },
];

/// Where the store reads the current time (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// An account as stored (without its password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's DID.
    pub did: String,
    /// The handle, normalized to lower case.
    pub handle: String,
    /// The email address, lower case.
    pub email: String,
    /// When the email address was confirmed.
    pub email_confirmed_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the account was deactivated, if it is.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// When a deactivated account may be deleted, if scheduled.
    pub delete_after: Option<DateTime<Utc>>,
    /// A moderation takedown reference, if the account is taken down.
    pub takedown_ref: Option<String>,
    /// Whether the account may no longer receive invite codes.
    pub invites_disabled: bool,
}

impl Account {
    /// Whether the account is active (neither deactivated nor taken down).
    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none() && self.takedown_ref.is_none()
    }
}

/// What [`AccountStore::create_account`] needs.
#[derive(Clone)]
pub struct NewAccount {
    /// The account's DID.
    pub did: String,
    /// The handle (normalized by the store).
    pub handle: String,
    /// The email address (lower-cased by the store).
    pub email: String,
    /// The plain-text password (hashed by the store, never stored).
    pub password: String,
    /// An invite code, consumed by the creation.
    pub invite_code: Option<String>,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("did", &self.did)
            .field("handle", &self.handle)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("invite_code", &self.invite_code)
            .finish()
    }
}

/// The service-wide account database.
pub struct AccountStore {
    pub(crate) db: Arc<Database>,
    pub(crate) clock: Clock,
    pub(crate) invite_required: bool,
    cache: AccountCache,
}

/// How many accounts [`AccountCache`] keeps before it starts over.
const ACCOUNT_CACHE_CAPACITY: usize = 4096;

/// The accounts last read by DID, so that an authenticated request (which
/// checks its account's status) does not read the account row from
/// SQLite each time.
///
/// Every method of [`AccountStore`] that writes the `account` table
/// drops the account's entry once its transaction has ended, and bumps
/// the cache's generation; a read that started before such a write (and
/// may have seen the old row) finds the generation changed and does not
/// store what it read. So once a write (a takedown, a deactivation, a
/// deletion, a handle change) has returned, no reader sees the old row.
/// Only accounts that exist are kept; a miss reads the database.
#[derive(Default)]
struct AccountCache {
    inner: Mutex<AccountCacheInner>,
}

#[derive(Default)]
struct AccountCacheInner {
    /// Bumped by every write to the `account` table.
    generation: u64,
    /// The accounts by DID.
    accounts: HashMap<String, Account>,
}

impl AccountCache {
    fn lock(&self) -> MutexGuard<'_, AccountCacheInner> {
        // The map stays consistent whatever a panicking holder did (each
        // change is one call), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached account of `did`.
    fn get(&self, did: &str) -> Option<Account> {
        self.lock().accounts.get(did).cloned()
    }

    /// The generation to pass to [`AccountCache::insert`] after a read.
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `account`, read from the database after [`generation`]
    /// returned `generation`, unless the table was written since.
    ///
    /// [`generation`]: AccountCache::generation
    fn insert(&self, generation: u64, account: &Account) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.accounts.len() >= ACCOUNT_CACHE_CAPACITY
            && !inner.accounts.contains_key(&account.did)
        {
            inner.accounts.clear();
        }
        inner.accounts.insert(account.did.clone(), account.clone());
    }

    /// Forgets `did` (after a write to its row).
    fn invalidate(&self, did: &str) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.accounts.remove(did);
    }
}

impl fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountStore")
            .field("db", &self.db.path())
            .field("invite_required", &self.invite_required)
            .finish_non_exhaustive()
    }
}

/// Normalizes and validates a handle.
pub fn normalize_handle(handle: &str) -> Result<String> {
    Ok(atp_syntax::Handle::new(handle)?.as_str().to_owned())
}

/// Lower-cases and minimally checks an email address.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && email.len() <= 254 => {
            Ok(email)
        }
        _ => Err(Error::InvalidInput("invalid email address".to_owned())),
    }
}

const ACCOUNT_COLUMNS: &str = "did, handle, email, email_confirmed_at, created_at, \
    deactivated_at, delete_after, takedown_ref, invites_disabled";

/// The stored columns of an account row.
type AccountColumns = ([Option<String>; 8], bool);

fn opt_time(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(time::parse).transpose()
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<AccountColumns> {
    Ok((
        [
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ],
        row.get(8)?,
    ))
}

fn account_from_columns((cols, invites_disabled): AccountColumns) -> Result<Account> {
    let [did, handle, email, confirmed, created, deactivated, delete_after, takedown] = cols;
    let missing = || Error::Corrupt("account row with a null column".to_owned());
    Ok(Account {
        did: did.ok_or_else(missing)?,
        handle: handle.ok_or_else(missing)?,
        email: email.ok_or_else(missing)?,
        email_confirmed_at: opt_time(confirmed)?,
        created_at: time::parse(&created.ok_or_else(missing)?)?,
        deactivated_at: opt_time(deactivated)?,
        delete_after: opt_time(delete_after)?,
        takedown_ref: takedown,
        invites_disabled,
    })
}

pub(crate) fn account_where(
    tx: &Transaction<'_>,
    column: &str,
    value: &str,
) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE {column} = ?1");
    let cols = tx
        .prepare_cached(&sql)?
        .query_row([value], account_from_row)
        .optional()?;
    cols.map(account_from_columns).transpose()
}

fn require_account(tx: &Transaction<'_>, did: &str) -> Result<Account> {
    account_where(tx, "did", did)?.ok_or_else(|| Error::AccountNotFound(did.to_owned()))
}

fn check_unique(
    tx: &Transaction<'_>,
    did: Option<&str>,
    handle: Option<&str>,
    email: Option<&str>,
) -> Result<()> {
    if let Some(did) = did {
        if account_where(tx, "did", did)?.is_some() {
            return Err(Error::AccountExists(did.to_owned()));
        }
    }
    if let Some(handle) = handle {
        if account_where(tx, "handle", handle)?.is_some() {
            return Err(Error::HandleTaken(handle.to_owned()));
        }
    }
    if let Some(email) = email {
        if account_where(tx, "email", email)?.is_some() {
            return Err(Error::EmailTaken);
        }
    }
    Ok(())
}

impl AccountStore {
    /// Opens (creating and migrating if needed) the account database at
    /// `path`.
    pub fn open(path: &Path, invite_required: bool) -> Result<Self> {
        Ok(AccountStore {
            db: Arc::new(Database::open(path, MIGRATIONS)?),
            clock: Arc::new(Utc::now),
            invite_required,
            cache: AccountCache::default(),
        })
    }

    /// The same store reading the time from `clock` (tests of expiry).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The underlying database.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Runs `write` in a write transaction that changes the `account` row
    /// of `did`, then drops the row from the account cache (whether the
    /// transaction committed or not).
    fn write_account<T>(
        &self,
        did: &str,
        write: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let result = self.db.write(write);
        self.cache.invalidate(did);
        result
    }

    /// The account with this DID if it is in the account cache, without
    /// touching the database (so callable from async code). `None` means
    /// "not cached", not "no such account": then call
    /// [`AccountStore::account_by_did`] on the blocking pool.
    pub fn cached_account_by_did(&self, did: &str) -> Option<Account> {
        self.cache.get(did)
    }

    /// Fails with [`Error::HandleTaken`] / [`Error::EmailTaken`] if the
    /// handle or email belongs to an account (a quick check before the
    /// expensive steps of account creation; creation checks again).
    pub fn check_available(&self, handle: &str, email: &str) -> Result<()> {
        let handle = normalize_handle(handle)?;
        let email = normalize_email(email)?;
        self.db
            .read(|tx| check_unique(tx, None, Some(&handle), Some(&email)))
    }

    /// Creates an account row, consuming the invite code if one is given or
    /// required, in one transaction: either all of it is stored or nothing.
    pub fn create_account(&self, new: &NewAccount) -> Result<Account> {
        let handle = normalize_handle(&new.handle)?;
        let email = normalize_email(&new.email)?;
        atp_syntax::Did::new(&new.did)?;
        if self.invite_required && new.invite_code.is_none() {
            return Err(Error::InviteCodeRequired);
        }
        let hash = PasswordHash::new(&new.password)?;
        let now = time::format(&self.now());
        self.write_account(&new.did, |tx| {
            check_unique(tx, Some(&new.did), Some(&handle), Some(&email))?;
            tx.execute(
                "INSERT INTO account (did, handle, email, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![new.did, handle, email, hash.as_stored(), now],
            )?;
            if let Some(code) = &new.invite_code {
                crate::invite::use_invite_code(tx, code, &new.did, &now)?;
            }
            require_account(tx, &new.did)
        })
    }

    /// The account with this DID (from the account cache when it holds
    /// it).
    pub fn account_by_did(&self, did: &str) -> Result<Option<Account>> {
        if let Some(account) = self.cache.get(did) {
            return Ok(Some(account));
        }
        let generation = self.cache.generation();
        let account = self.db.read(|tx| account_where(tx, "did", did))?;
        if let Some(account) = &account {
            self.cache.insert(generation, account);
        }
        Ok(account)
    }

    /// The account with this handle (any case).
    pub fn account_by_handle(&self, handle: &str) -> Result<Option<Account>> {
        let Ok(handle) = normalize_handle(handle) else {
            return Ok(None);
        };
        self.db.read(|tx| account_where(tx, "handle", &handle))
    }

    /// The account with this email address (any case).
    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
        let email = email.trim().to_lowercase();
        self.db.read(|tx| account_where(tx, "email", &email))
    }

    /// The account named by a login identifier: a DID, an email address or
    /// a handle.
    pub fn account_by_identifier(&self, identifier: &str) -> Result<Option<Account>> {
        if identifier.starts_with("did:") {
            self.account_by_did(identifier)
        } else if identifier.contains('@') {
            self.account_by_email(identifier)
        } else {
            self.account_by_handle(identifier)
        }
    }

    /// Every account, ordered by creation time.
    pub fn list_accounts(&self) -> Result<Vec<Account>> {
        self.db.read(|tx| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account ORDER BY created_at, did");
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt
                .query_map([], account_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(account_from_columns).collect()
        })
    }

    /// Checks the account's main password; [`Error::InvalidPassword`] if it
    /// does not match (or the account does not exist).
    pub fn verify_password(&self, did: &str, password: &str) -> Result<()> {
        let stored: Option<String> = self.db.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT password_hash FROM account WHERE did = ?1",
                    [did],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        match stored {
            Some(stored) if PasswordHash::from_stored(stored.as_str()).verify(password)? => Ok(()),
            _ => Err(Error::InvalidPassword),
        }
    }

    /// Replaces the account's password, revokes its refresh tokens and
    /// drops any pending password-reset token (as the reference does).
    pub fn update_password(&self, did: &str, password: &str) -> Result<()> {
        let hash = PasswordHash::new(password)?;
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            tx.execute(
                "UPDATE account SET password_hash = ?2 WHERE did = ?1",
                params![did, hash.as_stored()],
            )?;
            tx.execute("DELETE FROM refresh_token WHERE did = ?1", [did])?;
            tx.execute(
                "DELETE FROM email_token WHERE did = ?1 AND purpose = 'reset_password'",
                [did],
            )?;
            Ok(())
        })
    }

    /// Sets the account's email address as an operator does: unconfirmed
    /// (even if unchanged), and every pending email token of the account
    /// dropped, in one transaction.
    pub fn replace_email(&self, did: &str, email: &str) -> Result<Account> {
        let email = normalize_email(email)?;
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            if let Some(holder) = account_where(tx, "email", &email)? {
                if holder.did != did {
                    return Err(Error::EmailTaken);
                }
            }
            tx.execute(
                "UPDATE account SET email = ?2, email_confirmed_at = NULL WHERE did = ?1",
                params![did, email],
            )?;
            tx.execute("DELETE FROM email_token WHERE did = ?1", [did])?;
            require_account(tx, did)
        })
    }

    /// Changes the account's handle (normalized, unique).
    pub fn update_handle(&self, did: &str, handle: &str) -> Result<Account> {
        let handle = normalize_handle(handle)?;
        self.write_account(did, |tx| {
            let account = require_account(tx, did)?;
            if account.handle != handle {
                check_unique(tx, None, Some(&handle), None)?;
                tx.execute(
                    "UPDATE account SET handle = ?2 WHERE did = ?1",
                    params![did, handle],
                )?;
            }
            require_account(tx, did)
        })
    }

    /// Changes the account's email address (unique, case-insensitive); the
    /// new address is unconfirmed.
    pub fn update_email(&self, did: &str, email: &str) -> Result<Account> {
        let email = normalize_email(email)?;
        self.write_account(did, |tx| {
            let account = require_account(tx, did)?;
            if account.email != email {
                check_unique(tx, None, None, Some(&email))?;
                tx.execute(
                    "UPDATE account SET email = ?2, email_confirmed_at = NULL WHERE did = ?1",
                    params![did, email],
                )?;
            }
            require_account(tx, did)
        })
    }

    /// Marks the account's email address confirmed now.
    pub fn confirm_email(&self, did: &str) -> Result<Account> {
        let now = time::format(&self.now());
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            tx.execute(
                "UPDATE account SET email_confirmed_at = ?2 WHERE did = ?1",
                params![did, now],
            )?;
            require_account(tx, did)
        })
    }

    /// Deactivates the account, optionally scheduling its deletion.
    pub fn deactivate(&self, did: &str, delete_after: Option<DateTime<Utc>>) -> Result<Account> {
        let now = time::format(&self.now());
        let delete_after = delete_after.as_ref().map(time::format);
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            tx.execute(
                "UPDATE account SET deactivated_at = ?2, delete_after = ?3 WHERE did = ?1",
                params![did, now, delete_after],
            )?;
            require_account(tx, did)
        })
    }

    /// Reactivates a deactivated account.
    pub fn activate(&self, did: &str) -> Result<Account> {
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            tx.execute(
                "UPDATE account SET deactivated_at = NULL, delete_after = NULL WHERE did = ?1",
                [did],
            )?;
            require_account(tx, did)
        })
    }

    /// Sets or clears the account's takedown reference. Setting one also
    /// revokes the account's refresh tokens in the same transaction (as the
    /// reference PDS does), so its sessions cannot be refreshed.
    pub fn set_takedown(&self, did: &str, takedown_ref: Option<&str>) -> Result<Account> {
        self.write_account(did, |tx| {
            require_account(tx, did)?;
            tx.execute(
                "UPDATE account SET takedown_ref = ?2 WHERE did = ?1",
                params![did, takedown_ref],
            )?;
            if takedown_ref.is_some() {
                tx.execute("DELETE FROM refresh_token WHERE did = ?1", [did])?;
            }
            require_account(tx, did)
        })
    }

    /// Allows or forbids new invite codes for the account (an unknown DID
    /// is ignored, as the reference does).
    pub fn set_invites_disabled(&self, did: &str, disabled: bool) -> Result<()> {
        self.write_account(did, |tx| {
            tx.execute(
                "UPDATE account SET invites_disabled = ?2 WHERE did = ?1",
                params![did, disabled],
            )?;
            Ok(())
        })
    }

    /// The accounts among `dids` that exist, in the order given (unknown
    /// DIDs and repeats are skipped).
    pub fn accounts_by_dids(&self, dids: &[String]) -> Result<Vec<Account>> {
        self.db.read(|tx| {
            let mut found: Vec<Account> = Vec::new();
            for did in dids {
                if found.iter().any(|account| &account.did == did) {
                    continue;
                }
                if let Some(account) = account_where(tx, "did", did)? {
                    found.push(account);
                }
            }
            Ok(found)
        })
    }

    /// Removes the account's rows: the account, its refresh tokens, app
    /// passwords and email tokens (in one transaction). Returns whether an
    /// account was removed. The account's files are removed by
    /// [`Storage::delete_account`](crate::Storage::delete_account).
    pub fn delete_account(&self, did: &str) -> Result<bool> {
        self.write_account(did, |tx| {
            tx.execute("DELETE FROM refresh_token WHERE did = ?1", [did])?;
            tx.execute("DELETE FROM app_password WHERE did = ?1", [did])?;
            tx.execute("DELETE FROM email_token WHERE did = ?1", [did])?;
            Ok(tx.execute("DELETE FROM account WHERE did = ?1", [did])? > 0)
        })
    }
}

/// Who logged in, and through which password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The account.
    pub account: Account,
    /// The app password used, or `None` for the main password.
    pub app_password: Option<crate::app_password::AppPassword>,
}

impl AccountStore {
    /// Checks a login: `identifier` is a handle, email or DID; `password`
    /// the main password or one of the account's app passwords.
    /// [`Error::InvalidPassword`] for an unknown account or a wrong
    /// password alike. A taken-down account gets
    /// [`Error::AccountTakendown`] for its main password and
    /// [`Error::InvalidPassword`] for its app passwords (as the reference
    /// PDS answers).
    pub fn login(&self, identifier: &str, password: &str) -> Result<Login> {
        let Some(account) = self.account_by_identifier(identifier)? else {
            return Err(Error::InvalidPassword);
        };
        let taken_down = account.takedown_ref.is_some();
        match self.verify_password(&account.did, password) {
            Ok(()) if taken_down => return Err(Error::AccountTakendown),
            Ok(()) => {
                return Ok(Login {
                    account,
                    app_password: None,
                })
            }
            Err(Error::InvalidPassword) if taken_down => return Err(Error::InvalidPassword),
            Err(Error::InvalidPassword) => {}
            Err(err) => return Err(err),
        }
        let app_password = self.verify_app_password(&account.did, password)?;
        Ok(Login {
            account,
            app_password: Some(app_password),
        })
    }
}
