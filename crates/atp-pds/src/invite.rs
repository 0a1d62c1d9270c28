//! Invite codes: created by the service or an account, each usable a fixed
//! number of times, consumed inside the account-creation transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::account::AccountStore;
use crate::error::{Error, Result};
use crate::time;

/// An invite code and how much of it is left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCode {
    /// The code.
    pub code: String,
    /// How many accounts it may create in total.
    pub available_uses: u32,
    /// How many accounts it has created.
    pub uses: u32,
    /// Whether it was disabled.
    pub disabled: bool,
    /// The account it was issued to (`admin` for the service).
    pub for_account: String,
}

/// Fails with [`Error::InvalidInviteCode`] unless `code` exists, is not
/// disabled, has uses left and was not issued to a taken-down account.
fn check_invite_code(tx: &Transaction<'_>, code: &str) -> Result<()> {
    let row: Option<(u32, bool)> = tx
        .query_row(
            "SELECT available_uses, disabled FROM invite_code WHERE code = ?1",
            [code],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((available, disabled)) = row else {
        return Err(Error::InvalidInviteCode);
    };
    // A code issued to an account that is now taken down is void.
    let owner_taken_down: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM invite_code c JOIN account a ON a.did = c.for_account
                       WHERE c.code = ?1 AND a.takedown_ref IS NOT NULL)",
        [code],
        |row| row.get(0),
    )?;
    let used: u32 = tx.query_row(
        "SELECT COUNT(*) FROM invite_code_use WHERE code = ?1",
        [code],
        |row| row.get(0),
    )?;
    if disabled || owner_taken_down || used >= available {
        return Err(Error::InvalidInviteCode);
    }
    Ok(())
}

/// Consumes one use of `code` for `did` inside the caller's transaction.
pub(crate) fn use_invite_code(
    tx: &Transaction<'_>,
    code: &str,
    did: &str,
    now: &str,
) -> Result<()> {
    check_invite_code(tx, code)?;
    tx.execute(
        "INSERT INTO invite_code_use (code, used_by, used_at) VALUES (?1, ?2, ?3)",
        params![code, did, now],
    )?;
    Ok(())
}

impl AccountStore {
    /// Creates `count` codes for `for_account`, each usable `uses` times.
    pub fn create_invite_codes(
        &self,
        for_account: &str,
        created_by: &str,
        count: usize,
        uses: u32,
    ) -> Result<Vec<String>> {
        if uses == 0 || count == 0 || count > 1000 {
            return Err(Error::InvalidInput(
                "bad invite code count or uses".to_owned(),
            ));
        }
        let codes: Vec<String> = (0..count)
            .map(|_| crate::password::random_code(2, 5))
            .collect();
        let now = time::format(&self.now());
        self.db.write(|tx| {
            for code in &codes {
                tx.execute(
                    "INSERT INTO invite_code (code, available_uses, disabled, for_account, created_by, created_at)
                     VALUES (?1, ?2, 0, ?3, ?4, ?5)",
                    params![code, uses, for_account, created_by, now],
                )?;
            }
            Ok(())
        })?;
        Ok(codes)
    }

    /// The state of one invite code.
    pub fn invite_code(&self, code: &str) -> Result<Option<InviteCode>> {
        self.db.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT code, available_uses, disabled, for_account,
                        (SELECT COUNT(*) FROM invite_code_use u WHERE u.code = c.code)
                     FROM invite_code c WHERE code = ?1",
                    [code],
                    |row| {
                        Ok(InviteCode {
                            code: row.get(0)?,
                            available_uses: row.get(1)?,
                            disabled: row.get(2)?,
                            for_account: row.get(3)?,
                            uses: row.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Fails with [`Error::InvalidInviteCode`] unless `code` can be used
    /// (exists, not disabled, uses left, not issued to a taken-down
    /// account).
    pub fn ensure_invite_available(&self, code: &str) -> Result<()> {
        self.db.read(|tx| check_invite_code(tx, code))
    }

    /// Disables a code; returns whether it existed.
    pub fn disable_invite_code(&self, code: &str) -> Result<bool> {
        self.db.write(|tx| {
            Ok(tx.execute(
                "UPDATE invite_code SET disabled = 1 WHERE code = ?1",
                [code],
            )? > 0)
        })
    }
}

/// One account created with an invite code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCodeUse {
    /// The account created.
    pub used_by: String,
    /// When.
    pub used_at: DateTime<Utc>,
}

/// An invite code with its whole history, as the admin and account views
/// show it (`com.atproto.server.defs#inviteCode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCodeDetail {
    /// The code.
    pub code: String,
    /// How many accounts it may create in total.
    pub available: u32,
    /// Whether it was disabled.
    pub disabled: bool,
    /// The account it was issued to (`admin` for the service).
    pub for_account: String,
    /// Who created it (`admin`, or the account itself).
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The accounts created with it, newest first.
    pub uses: Vec<InviteCodeUse>,
}

/// The order of [`AccountStore::list_invite_codes`], both newest/most used
/// first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteCodeSort {
    /// By creation time.
    Recent,
    /// By number of uses.
    Usage,
}

/// Where a page of [`AccountStore::list_invite_codes`] starts: after the
/// code with this sort value and code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteCodeCursor {
    /// After codes created at this time (then by code).
    Recent(DateTime<Utc>, String),
    /// After codes with this number of uses (then by code).
    Usage(u32, String),
}

const DETAIL_SELECT: &str =
    "SELECT code, available_uses, disabled, for_account, created_by, created_at,
        (SELECT COUNT(*) FROM invite_code_use u WHERE u.code = c.code) AS uses
     FROM invite_code c";

type DetailRow = (String, u32, bool, String, String, String, u32);

fn detail_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DetailRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn code_uses(tx: &Transaction<'_>, code: &str) -> Result<Vec<InviteCodeUse>> {
    let mut stmt = tx.prepare(
        "SELECT used_by, used_at FROM invite_code_use WHERE code = ?1 ORDER BY used_at DESC, used_by",
    )?;
    let rows = stmt
        .query_map([code], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(used_by, used_at)| {
            Ok(InviteCodeUse {
                used_by,
                used_at: time::parse(&used_at)?,
            })
        })
        .collect()
}

fn details(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<InviteCodeDetail>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt
        .query_map(params, detail_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(
            |(code, available, disabled, for_account, created_by, created_at, _)| {
                let uses = code_uses(tx, &code)?;
                Ok(InviteCodeDetail {
                    code,
                    available,
                    disabled,
                    for_account,
                    created_by,
                    created_at: time::parse(&created_at)?,
                    uses,
                })
            },
        )
        .collect()
}

impl AccountStore {
    /// Stores the given codes, each usable `uses` times: `batches` pairs
    /// an account (or `admin`) with the codes issued to it. All or nothing.
    pub fn insert_invite_codes(
        &self,
        batches: &[(String, Vec<String>)],
        created_by: &str,
        uses: u32,
    ) -> Result<()> {
        let now = time::format(&self.now());
        self.db.write(|tx| {
            for (for_account, codes) in batches {
                for code in codes {
                    tx.execute(
                        "INSERT INTO invite_code (code, available_uses, disabled, for_account, created_by, created_at)
                         VALUES (?1, ?2, 0, ?3, ?4, ?5)",
                        params![code, uses, for_account, created_by, now],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// The codes issued to `for_account`, oldest first, with their uses.
    pub fn invite_codes_for(&self, for_account: &str) -> Result<Vec<InviteCodeDetail>> {
        self.db.read(|tx| {
            details(
                tx,
                &format!("{DETAIL_SELECT} WHERE for_account = ?1 ORDER BY created_at, code"),
                &[&for_account],
            )
        })
    }

    /// The code `did` was created with, if any.
    pub fn invited_by(&self, did: &str) -> Result<Option<InviteCodeDetail>> {
        self.db.read(|tx| {
            let found = details(
                tx,
                &format!(
                    "{DETAIL_SELECT} WHERE code IN (SELECT code FROM invite_code_use WHERE used_by = ?1)
                     ORDER BY created_at, code"
                ),
                &[&did],
            )?;
            Ok(found.into_iter().next())
        })
    }

    /// One page of every invite code, in `sort` order (descending), at
    /// most `limit`, after `cursor`.
    pub fn list_invite_codes(
        &self,
        sort: InviteCodeSort,
        limit: usize,
        cursor: Option<&InviteCodeCursor>,
    ) -> Result<Vec<InviteCodeDetail>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.read(|tx| {
            let outer = format!("SELECT * FROM ({DETAIL_SELECT}) AS codes");
            match (sort, cursor) {
                (InviteCodeSort::Recent, None) => details(
                    tx,
                    &format!("{outer} ORDER BY created_at DESC, code DESC LIMIT ?1"),
                    &[&limit],
                ),
                (InviteCodeSort::Usage, None) => details(
                    tx,
                    &format!("{outer} ORDER BY uses DESC, code DESC LIMIT ?1"),
                    &[&limit],
                ),
                (InviteCodeSort::Recent, Some(InviteCodeCursor::Recent(at, code))) => details(
                    tx,
                    &format!(
                        "{outer} WHERE created_at < ?1 OR (created_at = ?1 AND code < ?2)
                         ORDER BY created_at DESC, code DESC LIMIT ?3"
                    ),
                    &[&time::format(at), code, &limit],
                ),
                (InviteCodeSort::Usage, Some(InviteCodeCursor::Usage(uses, code))) => details(
                    tx,
                    &format!(
                        "{outer} WHERE uses < ?1 OR (uses = ?1 AND code < ?2)
                         ORDER BY uses DESC, code DESC LIMIT ?3"
                    ),
                    &[uses, code, &limit],
                ),
                _ => Err(Error::InvalidInput("Malformed cursor".to_owned())),
            }
        })
    }

    /// Disables the listed codes and every code issued to the listed
    /// accounts, in one transaction.
    pub fn disable_invite_codes(&self, codes: &[String], accounts: &[String]) -> Result<()> {
        self.db.write(|tx| {
            for code in codes {
                tx.execute(
                    "UPDATE invite_code SET disabled = 1 WHERE code = ?1",
                    [code],
                )?;
            }
            for account in accounts {
                tx.execute(
                    "UPDATE invite_code SET disabled = 1 WHERE for_account = ?1",
                    [account],
                )?;
            }
            Ok(())
        })
    }
}

/// A fresh invite code as the reference shapes them: the service's
/// hostname with its dots turned into dashes, then two groups of five
/// base32 characters (`pds-example-com-abc23-567xy`), so it cannot be
/// mistaken for a link.
pub fn generate_invite_code(hostname: &str) -> String {
    format!(
        "{}-{}",
        hostname.replace('.', "-"),
        crate::password::random_code(2, 5)
    )
}
