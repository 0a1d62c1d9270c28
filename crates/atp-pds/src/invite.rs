//! Invite codes: created by the service or an account, each usable a fixed
//! number of times, consumed inside the account-creation transaction.

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

/// Consumes one use of `code` for `did` inside the caller's transaction.
pub(crate) fn use_invite_code(
    tx: &Transaction<'_>,
    code: &str,
    did: &str,
    now: &str,
) -> Result<()> {
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
    let used: u32 = tx.query_row(
        "SELECT COUNT(*) FROM invite_code_use WHERE code = ?1",
        [code],
        |row| row.get(0),
    )?;
    if disabled || used >= available {
        return Err(Error::InvalidInviteCode);
    }
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

    /// Fails with [`Error::InvalidInviteCode`] unless `code` can be used.
    pub fn ensure_invite_available(&self, code: &str) -> Result<()> {
        match self.invite_code(code)? {
            Some(invite) if !invite.disabled && invite.uses < invite.available_uses => Ok(()),
            _ => Err(Error::InvalidInviteCode),
        }
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
