//! The `pds` binary: assembles the workspace crates into a Personal Data Server.

mod config;
mod error;
mod secrets;
mod serve;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
pds: an AT Protocol Personal Data Server

USAGE:
    pds serve      run the server
    pds help       print this message

With no configuration, `pds serve` is a development server on
127.0.0.1:2583 keeping its data in ./pds-data (generated JWT secret and PLC
rotation key, mode 0600) with an embedded PLC directory on a loopback port.

ENVIRONMENT:
    PDS_PORT                    port to listen on (2583)
    PDS_BIND_ADDRESS            address to listen on (127.0.0.1)
    PDS_HOSTNAME                public host name (localhost)
    PDS_DATA_DIRECTORY          data directory (./pds-data)
    PDS_JWT_SECRET              session token secret (generated)
    PDS_DID_PLC_URL             PLC directory URL (embedded)
    PDS_SERVICE_HANDLE_DOMAINS  comma-separated handle domains (.test on localhost)
    PDS_SERVICE_DID             service DID (did:web:<hostname>)
    PDS_INVITE_REQUIRED         true to require invite codes (false)
    PDS_CONTACT_EMAIL_ADDRESS, PDS_PRIVACY_POLICY_URL, PDS_TERMS_OF_SERVICE_URL
    RUST_LOG                    log filter (info)";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("serve") => run_serve(),
        Some(other) => {
            eprintln!("pds: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let settings = match config::Settings::from_vars(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
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
