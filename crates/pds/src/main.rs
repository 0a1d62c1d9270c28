//! The `pds` binary: assembles the workspace crates into a Personal Data Server.

use std::process::ExitCode;

const USAGE: &str = "\
pds: an AT Protocol Personal Data Server

USAGE:
    pds serve      run the server (not yet available: the server crates are being built)
    pds help       print this message

The identity, cryptography and repository layers are available as library
crates (atp-syntax, atp-crypto, atp-did-plc, atp-repo-mst); see README.md.";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("serve") => {
            eprintln!("pds serve: the HTTP server is not implemented yet.\n\n{USAGE}");
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("pds: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
