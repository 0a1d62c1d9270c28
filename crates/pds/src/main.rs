//! The `pds` binary: assembles the workspace crates into a Personal Data
//! Server (`pds serve`) and gives its operator commands that talk XRPC to
//! a running server (`pds account`, `pds invite`, `pds repo`, `pds post`,
//! `pds accounts import`) or to relays (`pds request-crawl`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod allocator;
mod cli;
mod client;
mod commands;
mod config;
mod env_file;
mod error;
mod secrets;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{AccountCommand, AccountsCommand, Cli, Command, InviteCommand, RepoCommand};
use crate::client::Connection;
use crate::commands::{account, bulk_import, repo};
use crate::config::{Environment, Settings};
use crate::error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve) {
        allocator::limit_malloc_arenas();
    }
    let env = match Environment::load(cli.env_file.as_deref()) {
        Ok(env) => env,
        Err(err) => {
            eprintln!("pds: {err}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Serve => run_serve(&env),
        _ => run_operator_command(&cli, &env),
    }
}

fn run_serve(env: &Environment) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let settings = match Settings::from_env(env) {
        Ok((settings, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            settings
        }
        Err(err) => {
            eprintln!("pds: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pds: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "pds failed");
            eprintln!("pds: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_operator_command(cli: &Cli, env: &Environment) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pds: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let conn = Connection::new(cli.pds_url.as_deref(), env);
    if let Command::RequestCrawl { relays, hostname } = &cli.command {
        return match runtime.block_on(request_crawl(relays, hostname.as_deref(), env)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("pds: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(operator_command(&cli.command, &conn)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pds: {err} (server {})", conn.url());
            ExitCode::FAILURE
        }
    }
}

/// The relay every PDS is usually crawled by.
const DEFAULT_RELAY: &str = "https://bsky.network";

/// `pds request-crawl`: `requestCrawl` with this server's host name to
/// each relay; every relay is tried, the first failure is returned.
async fn request_crawl(
    relays: &[String],
    hostname: Option<&str>,
    env: &Environment,
) -> Result<(), Error> {
    let hostname = hostname
        .or_else(|| env.get("PDS_HOSTNAME"))
        .ok_or_else(|| Error::Usage("no host name: set PDS_HOSTNAME or pass --hostname".into()))?;
    let relays: Vec<String> = if relays.is_empty() {
        match env.get("PDS_CRAWLERS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec![DEFAULT_RELAY.to_owned()],
        }
    } else {
        relays.to_vec()
    };
    let mut first_error = None;
    for relay in &relays {
        match atp_pds::crawlers::request_crawl(relay, hostname).await {
            Ok(()) => println!("{relay}: asked to crawl {hostname}"),
            Err(err) => {
                eprintln!("{relay}: {err}");
                first_error.get_or_insert(Error::Xrpc(err));
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

async fn operator_command(command: &Command, conn: &Connection) -> Result<ExitCode, Error> {
    match command {
        Command::Serve | Command::RequestCrawl { .. } => {}
        Command::Account(AccountCommand::Create {
            handle,
            email,
            password,
        }) => {
            let created = account::create(conn, handle, email, password.as_deref()).await?;
            println!("Account created");
            println!("  handle:   {}", created.handle);
            println!("  DID:      {}", created.did);
            if password.is_none() {
                println!("  password: {}", created.password);
                println!("Save this password: it will not be shown again.");
            }
        }
        Command::Account(AccountCommand::List) => {
            let lines = account::list(conn).await?;
            println!("{:<40} {:<32} {:<40} STATUS", "HANDLE", "EMAIL", "DID");
            for line in &lines {
                println!(
                    "{:<40} {:<32} {:<40} {}",
                    line.handle,
                    line.email.as_deref().unwrap_or("-"),
                    line.did,
                    line.status
                );
            }
            eprintln!("{} accounts", lines.len());
        }
        Command::Account(AccountCommand::Info { actor }) => {
            let info = account::info(conn, actor).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&info).unwrap_or_else(|_| info.to_string())
            );
        }
        Command::Account(AccountCommand::Delete { actor }) => {
            let did = account::delete(conn, actor).await?;
            println!("Deleted {did}");
        }
        Command::Account(AccountCommand::Takedown { actor, revert }) => {
            let did = account::takedown(conn, actor, *revert).await?;
            if *revert {
                println!("Takedown of {did} lifted");
            } else {
                println!("{did} taken down");
            }
        }
        Command::Account(AccountCommand::ResetPassword { actor, password }) => {
            let (did, new_password) =
                account::reset_password(conn, actor, password.as_deref()).await?;
            println!("Password of {did} changed");
            if password.is_none() {
                println!("  new password: {new_password}");
            }
        }
        Command::Invite(InviteCommand::Create { uses, for_account }) => {
            let code = account::create_invite(conn, *uses, for_account.as_deref()).await?;
            println!("{code}");
        }
        Command::Repo(RepoCommand::Export { actor, output }) => {
            let (did, len) = repo::export(conn, actor, output).await?;
            println!("Wrote {len} bytes of {did} to {}", output.display());
        }
        Command::Repo(RepoCommand::Import { file, login }) => {
            let session = conn.login(&login.handle, &login.password).await?;
            let len = repo::import(&session, file).await?;
            println!(
                "Imported {len} bytes into {} ({})",
                session.did, session.handle
            );
        }
        Command::Post(args) => {
            let session = conn.login(&args.login.handle, &args.login.password).await?;
            let written =
                repo::post(&session, &args.text, args.image.as_deref(), &args.alt).await?;
            println!("{}", written.uri);
            println!("{}", written.cid);
        }
        Command::Accounts(AccountsCommand::Import {
            file,
            output,
            email_domain,
            no_progress,
        }) => {
            let options = bulk_import::ImportOptions {
                input: file.clone(),
                output: output
                    .clone()
                    .unwrap_or_else(|| bulk_import::default_output_path(file)),
                email_domain: email_domain.clone(),
                progress: !no_progress,
            };
            let summary = bulk_import::run(conn, &options).await?;
            println!("{summary}");
            println!("Output: {}", options.output.display());
            if summary.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
