//! Refresh-token ids (the `jti` of refresh JWTs) and their rotation.
//!
//! A refresh token is used once: [`AccountStore::rotate_refresh_token`]
//! issues its successor and records it in the old token's `next_id`, and
//! cuts the old token's life down to the grace period. Presenting the old
//! token again within the grace period (a client that retried after a lost
//! response) yields the same successor instead of failing; after it, the
//! old token is expired.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::account::AccountStore;
use crate::error::{Error, Result};
use crate::time;

/// A stored refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// The token id (the JWT's `jti`).
    pub id: String,
    /// The account it belongs to.
    pub did: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The app password the session was opened with, if any.
    pub app_password_name: Option<String>,
    /// The successor, once the token has been rotated.
    pub next_id: Option<String>,
}

fn to_chrono(duration: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(duration)
        .map_err(|_| Error::InvalidInput("duration out of range".to_owned()))
}

fn get_token(tx: &Transaction<'_>, id: &str) -> Result<Option<RefreshToken>> {
    let row = tx
        .query_row(
            "SELECT id, did, expires_at, app_password_name, next_id FROM refresh_token WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, did, expires, app_password_name, next_id)| {
        Ok(RefreshToken {
            id,
            did,
            expires_at: time::parse(&expires)?,
            app_password_name,
            next_id,
        })
    })
    .transpose()
}

fn insert_token(tx: &Transaction<'_>, token: &RefreshToken) -> Result<()> {
    tx.execute(
        "INSERT INTO refresh_token (id, did, expires_at, app_password_name, next_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.id,
            token.did,
            time::format(&token.expires_at),
            token.app_password_name,
            token.next_id
        ],
    )?;
    Ok(())
}

impl AccountStore {
    /// Issues a new refresh token for `did`, valid for `lifetime`.
    pub fn issue_refresh_token(
        &self,
        did: &str,
        app_password_name: Option<&str>,
        lifetime: Duration,
    ) -> Result<RefreshToken> {
        let token = RefreshToken {
            id: crate::password::random_hex(16),
            did: did.to_owned(),
            expires_at: self.now() + to_chrono(lifetime)?,
            app_password_name: app_password_name.map(str::to_owned),
            next_id: None,
        };
        self.db.write(|tx| {
            if crate::account::account_where(tx, "did", did)?.is_none() {
                return Err(Error::AccountNotFound(did.to_owned()));
            }
            insert_token(tx, &token)?;
            Ok(token.clone())
        })
    }

    /// The token with this id, if it exists and has not expired.
    pub fn refresh_token(&self, id: &str) -> Result<Option<RefreshToken>> {
        let now = self.now();
        let token = self.db.read(|tx| get_token(tx, id))?;
        Ok(token.filter(|token| token.expires_at > now))
    }

    /// Uses the token `id`: returns its successor (a new token valid for
    /// `lifetime`) and lets the old one live at most `grace` longer. A
    /// token already rotated and still within its grace period returns the
    /// same successor. Unknown: [`Error::InvalidToken`]; expired:
    /// [`Error::ExpiredToken`] (and the token is removed).
    pub fn rotate_refresh_token(
        &self,
        id: &str,
        lifetime: Duration,
        grace: Duration,
    ) -> Result<RefreshToken> {
        let now = self.now();
        let lifetime = to_chrono(lifetime)?;
        let grace = to_chrono(grace)?;
        let next_id = crate::password::random_hex(16);
        // The outer result is the transaction's; the inner one is the
        // verdict, returned after committing (an expired token is removed).
        self.db.write(|tx| {
            let Some(token) = get_token(tx, id)? else {
                return Ok(Err(Error::InvalidToken));
            };
            if token.expires_at <= now {
                tx.execute("DELETE FROM refresh_token WHERE id = ?1", [id])?;
                return Ok(Err(Error::ExpiredToken));
            }
            if let Some(next) = &token.next_id {
                return match get_token(tx, next)? {
                    Some(successor) if successor.expires_at > now => Ok(Ok(successor)),
                    _ => Ok(Err(Error::InvalidToken)),
                };
            }
            let successor = RefreshToken {
                id: next_id.clone(),
                did: token.did.clone(),
                expires_at: now + lifetime,
                app_password_name: token.app_password_name.clone(),
                next_id: None,
            };
            insert_token(tx, &successor)?;
            let old_expiry = token.expires_at.min(now + grace);
            tx.execute(
                "UPDATE refresh_token SET next_id = ?2, expires_at = ?3 WHERE id = ?1",
                params![id, successor.id, time::format(&old_expiry)],
            )?;
            Ok(Ok(successor))
        })?
    }

    /// Revokes one refresh token; returns whether it existed.
    pub fn revoke_refresh_token(&self, id: &str) -> Result<bool> {
        self.db
            .write(|tx| Ok(tx.execute("DELETE FROM refresh_token WHERE id = ?1", [id])? > 0))
    }

    /// Revokes every refresh token of `did`; returns how many.
    pub fn revoke_refresh_tokens_for(&self, did: &str) -> Result<usize> {
        self.db
            .write(|tx| Ok(tx.execute("DELETE FROM refresh_token WHERE did = ?1", [did])?))
    }

    /// Removes every expired refresh token; returns how many.
    pub fn purge_expired_refresh_tokens(&self) -> Result<usize> {
        let now = time::format(&self.now());
        self.db
            .write(|tx| Ok(tx.execute("DELETE FROM refresh_token WHERE expires_at <= ?1", [now])?))
    }
}
