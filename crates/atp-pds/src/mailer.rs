//! Sending the PDS's emails (confirmation, reset and other tokens).
//!
//! [`Mailer`] is what handlers call; [`LogMailer`] (the default, for
//! development) only logs each message.

use std::fmt;

use crate::error::Result;

/// One email to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Delivers mail. Implementations block (call them from
/// [`crate::db::run_blocking`]).
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Sends `mail`, returning once it was accepted for delivery.
    fn send(&self, mail: &Mail) -> Result<()>;
}

/// A mailer that writes each message to the log instead of sending it
/// (development mode).
#[derive(Clone, Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, mail: &Mail) -> Result<()> {
        tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.body, "email (not sent: no SMTP server configured)");
        Ok(())
    }
}
