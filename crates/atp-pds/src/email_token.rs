//! One-time tokens sent by email: confirming an address, changing it,
//! resetting a password, deleting an account, signing a PLC operation.
//!
//! Each account has at most one token per purpose; issuing a new one
//! replaces the old. Tokens expire after the configured lifetime and are
//! removed when used.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::account::AccountStore;
use crate::error::{Error, Result};
use crate::time;

/// How long an email token stays valid (the reference PDS's 15 minutes).
pub const EMAIL_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// What an email token authorizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmailTokenPurpose {
    /// Confirm the account's email address.
    ConfirmEmail,
    /// Change the account's email address.
    UpdateEmail,
    /// Reset the password.
    ResetPassword,
    /// Delete the account.
    DeleteAccount,
    /// Sign a PLC operation for the account.
    PlcOperation,
}

impl EmailTokenPurpose {
    /// The stored name, as in the reference PDS.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailTokenPurpose::ConfirmEmail => "confirm_email",
            EmailTokenPurpose::UpdateEmail => "update_email",
            EmailTokenPurpose::ResetPassword => "reset_password",
            EmailTokenPurpose::DeleteAccount => "delete_account",
            EmailTokenPurpose::PlcOperation => "plc_operation",
        }
    }
}

impl AccountStore {
    /// Issues a token for `did` and `purpose` (replacing any earlier one)
    /// and returns it, to be sent by email.
    pub fn issue_email_token(&self, did: &str, purpose: EmailTokenPurpose) -> Result<String> {
        let token = crate::password::random_code(2, 5).to_uppercase();
        let now = time::format(&self.now());
        self.db.write(|tx| {
            if crate::account::account_where(tx, "did", did)?.is_none() {
                return Err(Error::AccountNotFound(did.to_owned()));
            }
            tx.execute(
                "INSERT INTO email_token (purpose, did, token, requested_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (purpose, did) DO UPDATE SET token = ?3, requested_at = ?4",
                params![purpose.as_str(), did, token, now],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Checks and consumes the token of `did` for `purpose`: it must match
    /// (case-insensitively, compared in constant time) and be younger than
    /// `lifetime`. A used or expired token is removed.
    pub fn consume_email_token(
        &self,
        did: &str,
        purpose: EmailTokenPurpose,
        token: &str,
        lifetime: Duration,
    ) -> Result<()> {
        let now = self.now();
        let lifetime = chrono_lifetime(lifetime)?;
        let given = token.trim().to_uppercase();
        // The outer result is the transaction's; the inner one is the
        // verdict, returned after committing (an expired token is removed).
        self.db.write(|tx| {
            let Some((stored, requested)) = stored_token(tx, did, purpose)? else {
                return Ok(Err(Error::InvalidToken));
            };
            if !crate::password::constant_time_eq(&stored, &given) {
                return Ok(Err(Error::InvalidToken));
            }
            delete_token(tx, did, purpose)?;
            if is_expired(&requested, now, lifetime)? {
                return Ok(Err(Error::ExpiredToken));
            }
            Ok(Ok(()))
        })?
    }
}

/// The token of `did` for `purpose` and when it was requested (stored
/// form), if there is one.
fn stored_token(
    tx: &Transaction<'_>,
    did: &str,
    purpose: EmailTokenPurpose,
) -> Result<Option<(String, String)>> {
    Ok(tx
        .query_row(
            "SELECT token, requested_at FROM email_token WHERE purpose = ?1 AND did = ?2",
            params![purpose.as_str(), did],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Removes the token of `did` for `purpose`.
fn delete_token(tx: &Transaction<'_>, did: &str, purpose: EmailTokenPurpose) -> Result<()> {
    tx.execute(
        "DELETE FROM email_token WHERE purpose = ?1 AND did = ?2",
        params![purpose.as_str(), did],
    )?;
    Ok(())
}

/// A token lifetime as a `chrono` duration.
fn chrono_lifetime(lifetime: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(lifetime)
        .map_err(|_| Error::InvalidInput("duration out of range".to_owned()))
}

/// Whether a token requested at `requested` (stored form) has outlived
/// `lifetime` at `now`.
fn is_expired(
    requested: &str,
    now: chrono::DateTime<chrono::Utc>,
    lifetime: chrono::Duration,
) -> Result<bool> {
    Ok(time::parse(requested)? + lifetime <= now)
}

/// Whether a token requested at `requested` (stored form) is still valid
/// at `now`.
fn check_age(
    requested: &str,
    now: chrono::DateTime<chrono::Utc>,
    lifetime: Duration,
) -> Result<()> {
    if is_expired(requested, now, chrono_lifetime(lifetime)?)? {
        return Err(Error::ExpiredToken);
    }
    Ok(())
}

impl AccountStore {
    /// Checks the token of `did` for `purpose` without consuming it:
    /// [`Error::InvalidToken`] when it does not match,
    /// [`Error::ExpiredToken`] when it is older than `lifetime`.
    pub fn check_email_token(
        &self,
        did: &str,
        purpose: EmailTokenPurpose,
        token: &str,
        lifetime: Duration,
    ) -> Result<()> {
        let now = self.now();
        let given = token.trim().to_uppercase();
        match self.db.read(|tx| stored_token(tx, did, purpose))? {
            Some((stored, requested)) if crate::password::constant_time_eq(&stored, &given) => {
                check_age(&requested, now, lifetime)
            }
            _ => Err(Error::InvalidToken),
        }
    }

    /// Finds the account whose token for `purpose` is `token` (for a
    /// password reset, where the caller is not logged in), consumes the
    /// token and returns the account's DID. A matching but expired token
    /// is removed and refused with [`Error::ExpiredToken`].
    pub fn redeem_email_token(
        &self,
        purpose: EmailTokenPurpose,
        token: &str,
        lifetime: Duration,
    ) -> Result<String> {
        let now = self.now();
        let given = token.trim().to_uppercase();
        if given.is_empty() {
            return Err(Error::InvalidToken);
        }
        self.db.write(|tx| {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT did, requested_at FROM email_token WHERE purpose = ?1 AND token = ?2",
                    params![purpose.as_str(), given],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((did, requested)) = row else {
                return Ok(Err(Error::InvalidToken));
            };
            delete_token(tx, &did, purpose)?;
            Ok(check_age(&requested, now, lifetime).map(|()| did))
        })?
    }

    /// Removes every email token of `did` (after its address changed);
    /// returns how many there were.
    pub fn delete_email_tokens(&self, did: &str) -> Result<usize> {
        self.db
            .write(|tx| Ok(tx.execute("DELETE FROM email_token WHERE did = ?1", [did])?))
    }
}
