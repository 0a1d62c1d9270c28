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
        let batch = [(for_account.to_owned(), codes)];
        self.insert_invite_codes(&batch, created_by, uses)?;
        let [(_, codes)] = batch;
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
    DetailRow::try_from(row)
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

/// How accounts earn invite codes over time (the reference's
/// `PDS_INVITE_INTERVAL` and `PDS_INVITE_EPOCH`): one code per `interval`
/// of account age counted from `epoch` (or from the account's creation if
/// later), at most [`MAX_OPEN_EARNED_CODES`] unused at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteSchedule {
    /// Account age that earns one code (must not be zero).
    pub interval: std::time::Duration,
    /// Codes are earned only for time after this instant (the Unix epoch
    /// when unset, as in the reference).
    pub epoch: DateTime<Utc>,
}

/// Most unused earned codes an account holds (the reference's 5).
pub const MAX_OPEN_EARNED_CODES: i64 = 5;

impl InviteSchedule {
    /// A schedule of one code per `interval` since the Unix epoch.
    pub fn every(interval: std::time::Duration) -> Self {
        InviteSchedule {
            interval,
            epoch: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Whole intervals in `span` (0 for a negative span or a zero
    /// interval).
    fn intervals_in(&self, span: chrono::Duration) -> i64 {
        let interval = i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX);
        if interval == 0 {
            return 0;
        }
        span.num_milliseconds().div_euclid(interval)
    }

    /// How many codes an account created at `created_at` may be given now
    /// given the codes it holds (`codes`, those issued to it): the codes
    /// it earned since the epoch, minus the ones it was given since then,
    /// and no more than makes [`MAX_OPEN_EARNED_CODES`] unused. Codes the
    /// operator gave (created by `admin`) do not count. Also returns the
    /// number of earned codes it will then hold.
    pub fn codes_to_create(
        &self,
        created_at: DateTime<Utc>,
        codes: &[InviteCodeDetail],
        now: DateTime<Utc>,
    ) -> (i64, i64) {
        let earned: Vec<&InviteCodeDetail> = codes
            .iter()
            .filter(|code| code.created_by != ADMIN_CREATOR)
            .collect();
        let unused = earned
            .iter()
            .filter(|code| !code.disabled && (code.uses.len() as u64) < u64::from(code.available))
            .count() as i64;
        let lifetime = self.intervals_in(now - created_at);
        let could_create = if created_at >= self.epoch {
            lifetime
        } else {
            lifetime - self.intervals_in(self.epoch - created_at)
        };
        let since_epoch = earned
            .iter()
            .filter(|code| code.created_at > self.epoch)
            .count() as i64;
        let to_create = (MAX_OPEN_EARNED_CODES - unused).min(could_create - since_epoch);
        (to_create, earned.len() as i64 + to_create)
    }
}

/// The `created_by` of codes the operator issued.
const ADMIN_CREATOR: &str = "admin";

impl AccountStore {
    /// Gives `did` the codes it earned under `schedule` (see
    /// [`InviteSchedule::codes_to_create`]), each usable once, made by
    /// `generate`; disabled at once when the account's invites are
    /// disabled (kept for the count, as in the reference). Counting and
    /// inserting happen in one transaction, so concurrent calls cannot
    /// give more. Returns the new codes.
    pub fn create_earned_invite_codes(
        &self,
        did: &str,
        schedule: &InviteSchedule,
        mut generate: impl FnMut() -> String,
    ) -> Result<Vec<InviteCodeDetail>> {
        let now = self.now();
        let stamp = time::format(&now);
        self.db.write(|tx| {
            let account = crate::account::account_where(tx, "did", did)?
                .ok_or_else(|| Error::AccountNotFound(did.to_owned()))?;
            let held = details(
                tx,
                &format!("{DETAIL_SELECT} WHERE for_account = ?1 ORDER BY created_at, code"),
                &[&did],
            )?;
            let (to_create, _) = schedule.codes_to_create(account.created_at, &held, now);
            let mut created = Vec::new();
            for _ in 0..to_create.max(0) {
                let code = generate();
                tx.execute(
                    "INSERT INTO invite_code (code, available_uses, disabled, for_account, created_by, created_at)
                     VALUES (?1, 1, ?2, ?3, ?3, ?4)",
                    params![code, account.invites_disabled, did, stamp],
                )?;
                created.push(InviteCodeDetail {
                    code,
                    available: 1,
                    disabled: account.invites_disabled,
                    for_account: did.to_owned(),
                    created_by: did.to_owned(),
                    created_at: now,
                    uses: Vec::new(),
                });
            }
            Ok(created)
        })
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(0, 0).unwrap() + chrono::Duration::days(day)
    }

    fn code(created_by: &str, day: i64, used: bool) -> InviteCodeDetail {
        InviteCodeDetail {
            code: format!("c{day}"),
            available: 1,
            disabled: false,
            for_account: "did:plc:a".to_owned(),
            created_by: created_by.to_owned(),
            created_at: at(day),
            uses: if used {
                vec![InviteCodeUse {
                    used_by: "did:plc:b".to_owned(),
                    used_at: at(day),
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn codes_earned_per_interval_since_the_epoch_at_most_five_open() {
        let weekly = InviteSchedule::every(std::time::Duration::from_secs(7 * 86_400));
        let me = "did:plc:a";
        // Created on day 1000, now day 1020: two weeks earned.
        assert_eq!(weekly.codes_to_create(at(1000), &[], at(1020)), (2, 2));
        // One already given and used since: one more.
        assert_eq!(
            weekly.codes_to_create(at(1000), &[code(me, 1008, true)], at(1020)),
            (1, 2)
        );
        // Operator's gifts do not count.
        assert_eq!(
            weekly.codes_to_create(at(1000), &[code("admin", 1001, false)], at(1020)),
            (2, 2)
        );
        // A year earns 52, but five open at most.
        assert_eq!(weekly.codes_to_create(at(1000), &[], at(1365)), (5, 5));
        let open: Vec<_> = (0..3).map(|i| code(me, 1010 + i, false)).collect();
        assert_eq!(weekly.codes_to_create(at(1000), &open, at(1365)), (2, 5));
        // With an epoch after creation: only the weeks since the epoch
        // count, and only codes created after it.
        let since = InviteSchedule {
            epoch: at(1014),
            ..weekly
        };
        assert_eq!(
            since.codes_to_create(at(1000), &[code(me, 1008, true)], at(1029)),
            (2, 3)
        );
        // No time yet: nothing (and a zero interval gives nothing).
        assert_eq!(weekly.codes_to_create(at(1000), &[], at(1003)), (0, 0));
        let never = InviteSchedule::every(std::time::Duration::ZERO);
        assert_eq!(never.codes_to_create(at(0), &[], at(1000)), (0, 0));
    }
}
