//! Creates a `did:plc` identity and registers it with a PLC directory: the
//! step an account needs before the rest of the network accepts it.
//!
//! ```sh
//! # against a directory started inside this example (nothing to set up):
//! cargo run -p atp-examples --example register_did_plc -- alice.museum.example
//! # against a directory you run (e.g. `cargo run -p atp-did-plc --bin plc-directory`):
//! cargo run -p atp-examples --example register_did_plc -- alice.museum.example http://127.0.0.1:2582
//! ```
//!
//! The genesis operation is built by `GenesisBuilder`, so it always carries
//! `prev: null`, a full-domain handle as `at://<handle>`, and a signature over
//! the canonical DAG-CBOR of the unsigned operation; the DID is derived from
//! the signed operation in lower-case base32.

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig};
use atp_did_plc::GenesisBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let handle = args
        .next()
        .unwrap_or_else(|| "scribe.museum.example".to_owned());
    let directory_url = args.next();

    // A directory of our own for the demo, unless one was named.
    let (embedded, url) = match directory_url {
        Some(url) => (None, url),
        None => {
            let server = PlcServer::start(ServerConfig::in_memory()).await?;
            let url = server.url();
            (Some(server), url)
        }
    };

    // The rotation key controls the identity; the signing key signs the
    // account's repository. Keep them apart.
    let rotation_key = SigningKey::generate(Algorithm::K256);
    let signing_key = SigningKey::generate(Algorithm::K256);

    let genesis = GenesisBuilder::new()
        .rotation_key(rotation_key.did_key())
        .signing_key(signing_key.did_key())
        .handle(&handle)
        .pds_endpoint("https://pds.museum.example")
        .sign(&rotation_key)?;

    println!("DID:       {}", genesis.did);
    println!("operation: {}", genesis.operation.to_json());

    let client = PlcClient::new(&url)?;
    // A refusal comes back with the directory's own status and message.
    client.submit(&genesis.did, &genesis.operation).await?;

    let document = client.resolve(&genesis.did).await?;
    println!("document:  {}", serde_json::to_string_pretty(&document)?);

    if let Some(server) = embedded {
        server.shutdown().await?;
    }
    Ok(())
}
