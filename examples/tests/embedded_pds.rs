//! The `embedded_pds` example's flow keeps working: account, post, read
//! back, export and verification of the repository.
#![allow(clippy::unwrap_used)]

use atp_examples::embedded_pds_tour::{self, POST_TEXT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_pds_tour_runs() {
    let data = tempfile::tempdir().unwrap();
    let mut steps = Vec::new();
    let tour = embedded_pds_tour::run(data.path(), |step| steps.push(step.to_owned()))
        .await
        .unwrap();

    assert!(tour.did.starts_with("did:plc:"), "{}", tour.did);
    assert_eq!(tour.post["text"], POST_TEXT);
    assert_eq!(
        tour.post_uri,
        format!("at://{}/{}", tour.did, tour.post_path)
    );
    // The verified export holds the post under the CID createRecord gave.
    assert!(tour
        .records
        .contains(&(tour.post_path.clone(), tour.post_cid.clone())));
    assert!(tour.car_len > 0);
    assert_eq!(tour.rev.len(), 13);
    assert!(
        steps.iter().any(|s| s.starts_with("verified: ")),
        "{steps:?}"
    );
    assert_eq!(steps.last().unwrap(), "PDS and PLC directory stopped");
}
