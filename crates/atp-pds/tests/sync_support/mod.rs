//! Helpers shared by the sync and firehose tests: a loopback PDS whose
//! storage and event log the test can reach, and commits made directly on
//! an account's store (then sequenced), as the record-writing methods do.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;

use atp_crypto::Ipld;
use atp_pds::http::PdsState;
use atp_pds::sequencer::Sequencer;
use atp_pds::Storage;
use atp_repo_mst::repo::{CommitData, Repo};
use atp_xrpc::server::ServerConfig;

use crate::common::{account_key, Pds};

/// A test PDS with handles on its storage and event log.
pub struct Node {
    pub pds: Pds,
    pub storage: Storage,
    pub sequencer: Sequencer,
}

impl Node {
    /// A PDS from the shared harness; `adjust` may change the state.
    pub async fn start_with(adjust: impl FnOnce(&mut PdsState)) -> Node {
        Self::serving(ServerConfig::default(), adjust).await
    }

    /// A PDS with defaults.
    pub async fn start() -> Node {
        Self::start_with(|_| {}).await
    }

    /// A PDS from the shared harness served with `config` (for small
    /// subscription buffers).
    pub async fn start_with_config(config: ServerConfig) -> Node {
        Self::serving(config, |_| {}).await
    }

    /// A PDS from the shared harness served with `config`, whose state
    /// `adjust` may change.
    async fn serving(config: ServerConfig, adjust: impl FnOnce(&mut PdsState)) -> Node {
        let mut parts = None;
        let pds = Pds::start_serving(
            config,
            |_| {},
            |state| {
                adjust(state);
                parts = Some((state.storage.clone(), state.sequencer.clone()));
            },
        )
        .await;
        let (storage, sequencer) = parts.unwrap();
        Node {
            pds,
            storage,
            sequencer,
        }
    }

    /// The subscription URL of the firehose.
    pub fn firehose_url(&self) -> String {
        format!(
            "{}/xrpc/com.atproto.sync.subscribeRepos",
            self.pds.url.replacen("http://", "ws://", 1)
        )
    }

    /// Makes the edits of `edit` in one commit on `did`'s repository,
    /// stores it and sequences its `#commit`; returns the sequence number
    /// and the commit.
    pub async fn commit(
        &self,
        did: &str,
        edit: impl FnOnce(&mut Repo<atp_pds::block_store::StagedBlockStore>) + Send + 'static,
    ) -> (i64, CommitData) {
        let storage = self.storage.clone();
        let sequencer = self.sequencer.clone();
        let did = did.to_owned();
        tokio::task::spawn_blocking(move || {
            let store = storage.actors().open(&did).unwrap();
            let key = store.signing_key().unwrap();
            let mut repo = store.open_repo().unwrap();
            edit(&mut repo);
            let rev = atp_syntax::TidClock::global().next();
            let commit = store
                .commit(&mut repo, &key, rev.as_str(), &BTreeMap::new())
                .unwrap();
            let seq = sequencer.sequence_commit(&did, &commit, &[]).unwrap();
            (seq, commit)
        })
        .await
        .unwrap()
    }

    /// The `did:key` of `did`'s repository signing key.
    pub fn signing_did_key(&self, did: &str) -> String {
        account_key(&self.storage, did).did_key()
    }
}

/// A post record with `text`.
pub fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("text".to_owned(), Ipld::String(text.to_owned())),
        (
            "createdAt".to_owned(),
            Ipld::String("2024-01-01T00:00:00.000Z".to_owned()),
        ),
    ]))
}

/// The collection of [`post`] records.
pub const POSTS: &str = "app.bsky.feed.post";
