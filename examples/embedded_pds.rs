//! A PDS embedded in a Rust program, and a client talking to it.
//!
//! ```sh
//! cargo run -p atp-examples --example embedded_pds
//! ```
//!
//! The program starts a PLC directory and a PDS in this process (from the
//! `atp-did-plc` and `atp-pds` library crates, as `pds serve` does), then,
//! as an XRPC client, creates an account, posts, reads the post back,
//! exports the repository and verifies the export with `atp-repo-mst`.
//! The data lives in a temporary directory removed at the end.
//!
//! The steps are in `examples/embedded_pds_tour.rs`
//! (`atp_examples::embedded_pds_tour::run`), which a test runs too.

use atp_examples::embedded_pds_tour;

#[tokio::main]
async fn main() -> Result<(), embedded_pds_tour::TourError> {
    let data = tempfile::tempdir()?;
    println!("data directory: {}", data.path().display());
    let tour = embedded_pds_tour::run(data.path(), |step| println!("- {step}")).await?;
    println!();
    println!("records in the repository of {}:", tour.did);
    for (path, cid) in &tour.records {
        println!("  {path}  {cid}");
    }
    Ok(())
}
