//! Sending the PDS's emails (confirmation, reset and other tokens).
//!
//! [`Mailer`] is what handlers call; [`LogMailer`] (the default, for
//! development) only logs each message, [`SmtpMailer`] delivers it to an
//! SMTP server named by a URL in the reference PDS's `PDS_EMAIL_SMTP_URL`
//! form. [`token_mail`] writes the message carrying a one-time token for
//! each [`EmailTokenPurpose`].
//!
//! ```
//! use atp_pds::email_token::EmailTokenPurpose;
//! use atp_pds::mailer::{token_mail, SmtpMailer};
//!
//! // Nothing is contacted until a message is sent.
//! let mailer = SmtpMailer::new(
//!     "smtps://pds%40example.com:secret@smtp.example.com",
//!     "Example PDS <pds@example.com>",
//! )?;
//! assert_eq!(mailer.settings().port, 465);
//!
//! let mail = token_mail(EmailTokenPurpose::ResetPassword, "alice@example.com", "ABCDE-12345");
//! assert!(mail.body.contains("ABCDE-12345"));
//! # Ok::<(), atp_pds::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::email_token::EmailTokenPurpose;
use crate::error::{Error, Result};

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

/// The message carrying a one-time `token` for `purpose`, addressed to
/// `to`. Subjects are the reference PDS's; the bodies are plain text.
pub fn token_mail(purpose: EmailTokenPurpose, to: &str, token: &str) -> Mail {
    let (subject, intro, outro) = match purpose {
        EmailTokenPurpose::ConfirmEmail => (
            "Email Confirmation",
            "Please confirm this email address for your account. Enter this code in your app:",
            "If you did not ask for this, you can ignore this message.",
        ),
        EmailTokenPurpose::UpdateEmail => (
            "Email Update Requested",
            "Someone asked to change the email address of your account. To allow the change, enter this code in your app:",
            "If you did not ask for this, do not share the code; your address stays as it is.",
        ),
        EmailTokenPurpose::ResetPassword => (
            "Password Reset Requested",
            "Someone asked to reset the password of your account. To choose a new password, enter this code in your app:",
            "If you did not ask for this, you can ignore this message; your password is unchanged.",
        ),
        EmailTokenPurpose::DeleteAccount => (
            "Account Deletion Requested",
            "Someone asked to delete your account. To confirm the deletion, enter this code in your app:",
            "If you did not ask for this, do not share the code and consider changing your password.",
        ),
        EmailTokenPurpose::PlcOperation => (
            "PLC Update Operation Requested",
            "Someone asked to change your account's identity (its did:plc document). To sign the change, enter this code in your app:",
            "If you did not ask for this, do not share the code and consider changing your password.",
        ),
    };
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body: format!(
            "{intro}\n\n    {token}\n\nThe code is valid for 15 minutes and can be used once.\n\n{outro}\n"
        ),
    }
}

/// How long connecting and each SMTP command may take.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (`smtps://`, port 465 by default).
    ImplicitTls,
    /// STARTTLS when the server offers it, plain text otherwise
    /// (`smtp://`, as nodemailer does by default).
    StartTlsIfOffered,
    /// STARTTLS or failure (`smtp://...?requireTLS=true`).
    StartTlsRequired,
    /// Never TLS (`smtp://...?ignoreTLS=true`).
    Plain,
}

/// What an SMTP URL says.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Server host name or address (IPv6 without brackets).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode.
    pub security: SmtpSecurity,
    /// User name and password, percent-decoded, if given.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl SmtpSettings {
    /// Parses a nodemailer-style URL: `smtp://[user[:pass]@]host[:port]`
    /// or `smtps://...`, with the options `secure`, `requireTLS` and
    /// `ignoreTLS` (`true`/`false`) in the query. The default port is 465
    /// with implicit TLS, 587 otherwise.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("invalid SMTP URL: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let mut security = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => SmtpSecurity::StartTlsIfOffered,
            "smtps" => SmtpSecurity::ImplicitTls,
            _ => return Err(bad("the scheme must be smtp or smtps")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
            let on = match value {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => continue,
            };
            match (key, on) {
                ("secure", true) => security = SmtpSecurity::ImplicitTls,
                ("secure", false) if security == SmtpSecurity::ImplicitTls => {
                    security = SmtpSecurity::StartTlsIfOffered
                }
                ("requireTLS", true) if security != SmtpSecurity::ImplicitTls => {
                    security = SmtpSecurity::StartTlsRequired
                }
                ("ignoreTLS", true) if security != SmtpSecurity::ImplicitTls => {
                    security = SmtpSecurity::Plain
                }
                _ => {}
            }
        }
        let port = match port {
            Some(port) => port,
            None if security == SmtpSecurity::ImplicitTls => 465,
            None => 587,
        };
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user).ok_or_else(|| bad("bad user name encoding"))?;
                let pass = percent_decode(pass).ok_or_else(|| bad("bad password encoding"))?;
                Some((user, pass))
            }
        };
        Ok(SmtpSettings {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(hostport: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((host.to_owned(), port))
}

/// `text` with its `%XX` escapes decoded, if the result is UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(atp_syntax::percent_decode(text)?).ok()
}

/// Delivers mail to an SMTP server (blocking; TLS by rustls with the
/// Mozilla root certificates).
#[derive(Clone)]
pub struct SmtpMailer {
    settings: SmtpSettings,
    from: Mailbox,
    transport: SmtpTransport,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("settings", &self.settings)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `smtp_url` (see [`SmtpSettings::parse`])
    /// sending as `from` (`pds@example.com` or `Name <pds@example.com>`),
    /// with [`DEFAULT_SMTP_TIMEOUT`]. Nothing is contacted yet.
    pub fn new(smtp_url: &str, from: &str) -> Result<Self> {
        Self::with_timeout(smtp_url, from, DEFAULT_SMTP_TIMEOUT)
    }

    /// Like [`SmtpMailer::new`] with another connection and command
    /// timeout.
    pub fn with_timeout(smtp_url: &str, from: &str, timeout: Duration) -> Result<Self> {
        let settings = SmtpSettings::parse(smtp_url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| Error::InvalidInput(format!("invalid sender address {from:?}: {e}")))?;
        let tls = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| Error::InvalidInput(format!("cannot set up TLS for SMTP: {e}")))
        };
        let tls = match settings.security {
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls()?),
            SmtpSecurity::StartTlsRequired => Tls::Required(tls()?),
            SmtpSecurity::StartTlsIfOffered => Tls::Opportunistic(tls()?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, pass)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            settings,
            from,
        })
    }

    /// What the URL said.
    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: &Mail) -> Result<()> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| Error::InvalidInput(format!("invalid recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| Error::Internal(format!("cannot build email: {e}")))?;
        self.transport.send(&message).map_err(|e| {
            tracing::warn!(host = %self.settings.host, error = %e, "SMTP delivery failed");
            Error::Internal(format!("email delivery failed: {e}"))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_the_reference_form() {
        let s = SmtpSettings::parse("smtps://user%40example.com:p%3Ass@smtp.example.com").unwrap();
        assert_eq!(s.host, "smtp.example.com");
        assert_eq!(s.port, 465);
        assert_eq!(s.security, SmtpSecurity::ImplicitTls);
        assert_eq!(
            s.credentials,
            Some(("user@example.com".to_owned(), "p:ss".to_owned()))
        );

        let s = SmtpSettings::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (s.port, s.security, s.credentials),
            (2525, SmtpSecurity::StartTlsIfOffered, None)
        );

        let s = SmtpSettings::parse("smtp://u:p@[::1]:25/?requireTLS=true").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 25));
        assert_eq!(s.security, SmtpSecurity::StartTlsRequired);

        let s = SmtpSettings::parse("smtp://mail.example?ignoreTLS=true").unwrap();
        assert_eq!((s.port, s.security), (587, SmtpSecurity::Plain));

        let s = SmtpSettings::parse("smtp://mail.example?secure=true").unwrap();
        assert_eq!((s.port, s.security), (465, SmtpSecurity::ImplicitTls));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "",
            "mail.example",
            "http://mail.example",
            "smtp://",
            "smtp://host:0",
            "smtp://host:99999",
            "smtp://host:port",
            "smtp://u:%zz@host",
            "smtp://[::1",
        ] {
            assert!(SmtpSettings::parse(url).is_err(), "{url}");
        }
        assert!(SmtpMailer::new("smtp://host", "not an address").is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mailer = SmtpMailer::new("smtp://user:hunter2@host", "pds@example.com").unwrap();
        let shown = format!("{mailer:?}");
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn every_purpose_has_its_mail() {
        let purposes = [
            EmailTokenPurpose::ConfirmEmail,
            EmailTokenPurpose::UpdateEmail,
            EmailTokenPurpose::ResetPassword,
            EmailTokenPurpose::DeleteAccount,
            EmailTokenPurpose::PlcOperation,
        ];
        let mut subjects = std::collections::HashSet::new();
        for purpose in purposes {
            let mail = token_mail(purpose, "a@example.com", "AAAAA-BBBBB");
            assert_eq!(mail.to, "a@example.com");
            assert!(mail.body.contains("AAAAA-BBBBB"));
            subjects.insert(mail.subject);
        }
        assert_eq!(subjects.len(), purposes.len());
    }
}
