//! The command line: `pds serve` and the operator commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// pds: an AT Protocol Personal Data Server.
///
/// With no configuration, `pds serve` is a development server on
/// 127.0.0.1:2583 keeping its data in ./pds-data (generated secrets, mode
/// 0600) with an embedded PLC directory. Settings are the reference PDS's
/// PDS_* variables (docs/configuration.md); the other commands talk XRPC
/// to a running server (docs/cli.md).
#[derive(Debug, Parser)]
#[command(name = "pds", version, arg_required_else_help = true)]
pub struct Cli {
    /// Read PDS_* settings from this file (KEY=VALUE lines, # comments);
    /// variables in the environment win.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// URL of the running server for the operator commands [default:
    /// https://<PDS_HOSTNAME>, or http://localhost:<PDS_PORT>].
    #[arg(long, global = true, value_name = "URL")]
    pub pds_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage accounts (with the admin password).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage invite codes (with the admin password).
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Export or import repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Post as an account.
    Post(PostArgs),
    /// Create many accounts from a CSV file.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Ask relays to crawl this server (com.atproto.sync.requestCrawl).
    RequestCrawl {
        /// Relay URLs [default: PDS_CRAWLERS, else <https://bsky.network>].
        relays: Vec<String>,
        /// The server's public host name [default: PDS_HOSTNAME].
        #[arg(long)]
        hostname: Option<String>,
    },
}

/// `pds account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account (an invite code is made when the server wants one).
    Create {
        /// The handle, like alice.pds.example.com.
        #[arg(long)]
        handle: String,
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// The password [default: 24 random letters and digits, printed].
        #[arg(long)]
        password: Option<String>,
    },
    /// List every account: handle, email, DID, status.
    List,
    /// Show an account (admin.getAccountInfo) as JSON.
    Info {
        /// DID or handle.
        actor: String,
    },
    /// Delete an account and its data.
    Delete {
        /// DID or handle.
        actor: String,
    },
    /// Take an account down (or back up with --revert).
    Takedown {
        /// DID or handle.
        actor: String,
        /// Lift the takedown.
        #[arg(long)]
        revert: bool,
    },
    /// Set a new password.
    ResetPassword {
        /// DID or handle.
        actor: String,
        /// The new password [default: 24 random letters and digits, printed].
        #[arg(long)]
        password: Option<String>,
    },
}

/// `pds invite ...`.
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create an invite code.
    Create {
        /// How many accounts the code may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// The DID the code is credited to.
        #[arg(long, value_name = "DID")]
        for_account: Option<String>,
    },
}

/// `pds repo ...`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Download a repository as a CAR file (sync.getRepo).
    Export {
        /// DID or handle.
        actor: String,
        /// The CAR file to write.
        #[arg(short, long, value_name = "FILE.car")]
        output: PathBuf,
    },
    /// Load a CAR file into an account's repository (repo.importRepo).
    Import {
        /// The CAR file.
        file: PathBuf,
        #[command(flatten)]
        login: Login,
    },
}

/// An account's credentials.
#[derive(Debug, Args)]
pub struct Login {
    /// The account's handle (or DID).
    #[arg(long)]
    pub handle: String,
    /// The account's password (or an app password).
    #[arg(long)]
    pub password: String,
}

/// `pds post`.
#[derive(Debug, Args)]
pub struct PostArgs {
    #[command(flatten)]
    /// Who posts.
    pub login: Login,
    /// The text of the post.
    #[arg(long)]
    pub text: String,
    /// An image to attach (png, jpg, gif or webp).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Alt text of the image.
    #[arg(long, default_value = "")]
    pub alt: String,
}

/// `pds accounts ...`.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create one account per row of a CSV file (handle, display name,
    /// description, avatar path, first post); resumable.
    Import {
        /// The input CSV.
        file: PathBuf,
        /// Where DIDs and app passwords are written [default: FILE.out.csv].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Domain of the generated email addresses (HANDLE@DOMAIN)
        /// [default: the server's first handle domain].
        #[arg(long, value_name = "DOMAIN")]
        email_domain: Option<String>,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from([
            "pds",
            "account",
            "info",
            "alice.test",
            "--pds-url",
            "http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(cli.pds_url.as_deref(), Some("http://localhost:3000"));
        assert!(matches!(
            cli.command,
            Command::Account(AccountCommand::Info { .. })
        ));
        let cli = Cli::try_parse_from(["pds", "--env-file", "pds.env", "serve"]).unwrap();
        assert_eq!(cli.env_file, Some(PathBuf::from("pds.env")));
        assert!(Cli::try_parse_from(["pds", "account", "create", "--handle", "a.test"]).is_err());
    }
}
