//! App passwords: extra passwords an account gives to apps, each with a
//! name, revocable one by one.
//!
//! Generated as four groups of four characters (`xxxx-xxxx-xxxx-xxxx`),
//! hashed with scrypt like the main password; the plain text is returned
//! once, at creation.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::account::AccountStore;
use crate::error::{Error, Result};
use crate::password::PasswordHash;
use crate::time;

/// An app password's public description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPassword {
    /// Its name, unique per account.
    pub name: String,
    /// Whether it may use privileged endpoints (direct messages, ...).
    pub privileged: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An app password just created: the only time its text is available.
#[derive(Clone)]
pub struct NewAppPassword {
    /// Its description.
    pub info: AppPassword,
    /// The password to give to the app.
    pub password: String,
}

impl std::fmt::Debug for NewAppPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAppPassword")
            .field("info", &self.info)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Longest app-password name accepted.
const MAX_NAME_LEN: usize = 128;

impl AccountStore {
    /// Creates an app password named `name` for `did`.
    pub fn create_app_password(
        &self,
        did: &str,
        name: &str,
        privileged: bool,
    ) -> Result<NewAppPassword> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidInput("bad app password name".to_owned()));
        }
        let password = crate::password::random_code(4, 4);
        let hash = PasswordHash::new(&password)?;
        let now = self.now();
        self.db.write(|tx| {
            if crate::account::account_where(tx, "did", did)?.is_none() {
                return Err(Error::AccountNotFound(did.to_owned()));
            }
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM app_password WHERE did = ?1 AND name = ?2)",
                params![did, name],
                |row| row.get(0),
            )?;
            if exists {
                return Err(Error::AppPasswordExists(name.to_owned()));
            }
            tx.execute(
                "INSERT INTO app_password (did, name, password_hash, privileged, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![did, name, hash.as_stored(), privileged, time::format(&now)],
            )?;
            Ok(())
        })?;
        Ok(NewAppPassword {
            info: AppPassword {
                name: name.to_owned(),
                privileged,
                created_at: now,
            },
            password,
        })
    }

    /// The app passwords of `did`, newest first (as the reference lists
    /// them).
    pub fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPassword>> {
        self.db.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name, privileged, created_at FROM app_password WHERE did = ?1
                 ORDER BY created_at DESC, name",
            )?;
            let rows = stmt
                .query_map([did], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(name, privileged, created)| {
                    Ok(AppPassword {
                        name,
                        privileged,
                        created_at: time::parse(&created)?,
                    })
                })
                .collect()
        })
    }

    /// The app password of `did` that `password` matches;
    /// [`Error::InvalidPassword`] if none does.
    pub fn verify_app_password(&self, did: &str, password: &str) -> Result<AppPassword> {
        let candidates: Vec<(String, bool, String, String)> = self.db.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name, privileged, created_at, password_hash FROM app_password WHERE did = ?1",
            )?;
            let rows = stmt
                .query_map([did], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        for (name, privileged, created, hash) in candidates {
            if PasswordHash::from_stored(hash).verify(password)? {
                return Ok(AppPassword {
                    name,
                    privileged,
                    created_at: time::parse(&created)?,
                });
            }
        }
        Err(Error::InvalidPassword)
    }

    /// Revokes the app password `name` of `did` and the refresh tokens
    /// issued through it; returns whether it existed.
    pub fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool> {
        self.db.write(|tx| {
            tx.execute(
                "DELETE FROM refresh_token WHERE did = ?1 AND app_password_name = ?2",
                params![did, name],
            )?;
            Ok(tx.execute(
                "DELETE FROM app_password WHERE did = ?1 AND name = ?2",
                params![did, name],
            )? > 0)
        })
    }
}
