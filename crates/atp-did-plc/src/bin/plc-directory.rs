//! A standalone PLC directory: the same HTTP API as `plc.directory`, with
//! the operation logs in a SQLite file.
//!
//! ```text
//! plc-directory [--host ADDR] [--port PORT] [--db PATH] [--no-rate-limit]
//! ```
//!
//! Without `--db` the logs live in memory and are lost at exit. Stops
//! gracefully on Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use atp_did_plc::server::{Database, PlcServer, ServerConfig};

const USAGE: &str = "usage: plc-directory [--host ADDR] [--port PORT] [--db PATH] [--no-rate-limit]

  --host ADDR       address to listen on (default 127.0.0.1)
  --port PORT       port to listen on (default 2582; 0 picks a free port)
  --db PATH         SQLite file for the operation logs (default: in memory)
  --no-rate-limit   accept any number of operations per DID";

struct Options {
    host: IpAddr,
    port: u16,
    db: Option<PathBuf>,
    rate_limit: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        host: IpAddr::from([127, 0, 0, 1]),
        port: 2582,
        db: None,
        rate_limit: true,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--host" => {
                let text = value("--host")?;
                options.host = text
                    .parse()
                    .map_err(|_| format!("--host: {text:?} is not an IP address"))?;
            }
            "--port" => {
                let text = value("--port")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("--port: {text:?} is not a port number"))?;
            }
            "--db" => options.db = Some(PathBuf::from(value("--db")?)),
            "--no-rate-limit" => options.rate_limit = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("plc-directory: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let mut config = ServerConfig::in_memory().bind(SocketAddr::new(options.host, options.port));
    config.rate_limit = options.rate_limit;
    if let Some(path) = &options.db {
        config.database = Database::File(path.clone());
    }
    let server = match PlcServer::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("plc-directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &options.db {
        Some(path) => eprintln!(
            "plc-directory: serving {} (logs in {})",
            server.url(),
            path.display()
        ),
        None => eprintln!(
            "plc-directory: serving {} (logs in memory, lost at exit)",
            server.url()
        ),
    }
    stop_signal().await;
    eprintln!("plc-directory: stopping");
    match server.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plc-directory: {e}");
            ExitCode::FAILURE
        }
    }
}
