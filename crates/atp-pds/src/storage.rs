//! The storage of a whole PDS: the account database and the per-account
//! stores, with the operations that span both (account creation and
//! deletion).
//!
//! # Account creation and the directory
//!
//! [`Storage::create_account`] runs these steps:
//!
//! 1. check the handle (syntax, allowed domains), email and invite code,
//!    and that neither handle nor email is taken;
//! 2. generate the account's signing key and build the `did:plc` genesis
//!    operation (rotation keys: the optional recovery key, then the
//!    service's), which fixes the DID;
//! 3. create the account's store: key file, SQLite file, and the signed
//!    first commit of the empty repository;
//! 4. submit the genesis operation to the directory;
//! 5. insert the account row (and consume the invite code) in one
//!    transaction: this is the commit point.
//!
//! Any failure before step 5 removes the store created at step 3. A store
//! directory without an account row is never served (every lookup starts
//! from the account row), and [`Storage::remove_orphaned_actor_stores`]
//! removes such leftovers of a crash at start-up. If step 5 fails after
//! the directory accepted the genesis (a concurrent creation took the
//! handle), the DID exists in the directory but not here: the PDS then
//! submits a tombstone signed with its rotation key, so the orphan DID is
//! deactivated; if even that fails, it stays registered pointing to this
//! PDS, which does not know it (harmless: it resolves to no repository).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use atp_did_plc::{GenesisBuilder, Operation};
use atp_repo_mst::repo::CommitData;
use atp_syntax::TidClock;

use crate::account::{normalize_email, normalize_handle, Account, AccountStore, NewAccount};
use crate::actor_store::ActorStores;
use crate::db::run_blocking;
use crate::error::{Error, Result};
use crate::service::{ServiceConfig, ServiceKeys};

/// Where `did:plc` operations are submitted: a [`atp_did_plc::client::PlcClient`]
/// in production; tests may provide their own.
pub trait DidDirectory: Sync {
    /// Submits a signed operation for `did`.
    fn submit_operation(
        &self,
        did: &str,
        op: &Operation,
    ) -> impl Future<Output = std::result::Result<(), atp_did_plc::Error>> + Send;
}

impl DidDirectory for atp_did_plc::client::PlcClient {
    fn submit_operation(
        &self,
        did: &str,
        op: &Operation,
    ) -> impl Future<Output = std::result::Result<(), atp_did_plc::Error>> + Send {
        self.submit(did, op)
    }
}

/// What a new account needs.
#[derive(Clone)]
pub struct CreateAccountRequest {
    /// The handle.
    pub handle: String,
    /// The email address.
    pub email: String,
    /// The password.
    pub password: String,
    /// An invite code (required if the service says so).
    pub invite_code: Option<String>,
}

impl fmt::Debug for CreateAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateAccountRequest")
            .field("handle", &self.handle)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("invite_code", &self.invite_code)
            .finish()
    }
}

/// A newly created account.
#[derive(Clone, Debug)]
pub struct CreatedAccount {
    /// The account row.
    pub account: Account,
    /// The account's signing key as `did:key`.
    pub signing_did_key: String,
    /// The genesis operation registered in the directory.
    pub genesis: Operation,
    /// The repository's first commit.
    pub commit: CommitData,
}

/// An account created for a DID that already exists (moving in from
/// another PDS); it starts deactivated.
#[derive(Clone, Debug)]
pub struct MovedInAccount {
    /// The account row.
    pub account: Account,
    /// The account's new signing key here as `did:key` (the DID document
    /// is to list it before the account is activated).
    pub signing_did_key: String,
    /// The empty repository's first commit.
    pub commit: CommitData,
}

/// The PDS's storage: configuration, accounts, per-account stores.
#[derive(Debug, Clone)]
pub struct Storage {
    config: Arc<ServiceConfig>,
    accounts: Arc<AccountStore>,
    actors: Arc<ActorStores>,
}

impl Storage {
    /// Opens (creating and migrating as needed) the storage under
    /// `config.data_dir`.
    pub fn open(config: ServiceConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let accounts = AccountStore::open(&config.account_db_path(), config.invite_required)?;
        if crate::db::pooled_page_caches(&*accounts.database().lock_writer()?)? {
            tracing::warn!(
                "SQLite was built with SQLITE_ENABLE_MEMORY_MANAGEMENT: page caches are pooled and \
                 per-connection cache sizes do not hold (build with \
                 LIBSQLITE3_FLAGS=-USQLITE_ENABLE_MEMORY_MANAGEMENT)"
            );
        }
        let actors = ActorStores::new(config.actors_dir())?;
        Ok(Storage {
            config: Arc::new(config),
            accounts: Arc::new(accounts),
            actors: Arc::new(actors),
        })
    }

    /// The same storage with another account store (for a test clock).
    pub fn with_account_store(mut self, accounts: AccountStore) -> Self {
        self.accounts = Arc::new(accounts);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The account database.
    pub fn accounts(&self) -> &Arc<AccountStore> {
        &self.accounts
    }

    /// The per-account stores.
    pub fn actors(&self) -> &Arc<ActorStores> {
        &self.actors
    }

    /// Creates an account (see the module documentation for the steps and
    /// what happens on failure).
    pub async fn create_account<D: DidDirectory>(
        &self,
        keys: &ServiceKeys,
        directory: &D,
        request: CreateAccountRequest,
    ) -> Result<CreatedAccount> {
        let (handle, email) = self.checked_handle_and_email(&request)?;
        let signing_key = crate::keys::generate_signing_key();
        let signing_did_key = signing_key.did_key();
        let mut builder = GenesisBuilder::new();
        if let Some(recovery) = &self.config.recovery_did_key {
            builder = builder.rotation_key(recovery.clone());
        }
        let genesis = builder
            .rotation_key(keys.plc_rotation_key.did_key())
            .signing_key(signing_did_key.clone())
            .handle(handle.clone())
            .pds_endpoint(self.config.public_url.clone())
            .sign(&keys.plc_rotation_key)?;
        let did = genesis.did.clone();

        let commit = self
            .check_and_create_store(&request, &handle, &email, &did, None, signing_key)
            .await?;

        if let Err(err) = directory.submit_operation(&did, &genesis.operation).await {
            self.discard_store(&did).await;
            return Err(err.into());
        }

        let new = NewAccount {
            did: did.clone(),
            handle,
            email,
            password: request.password,
            invite_code: request.invite_code,
        };
        let accounts = Arc::clone(&self.accounts);
        match run_blocking(move || accounts.create_account(&new)).await {
            Ok(account) => Ok(CreatedAccount {
                account,
                signing_did_key,
                genesis: genesis.operation,
                commit,
            }),
            Err(err) => {
                self.discard_store(&did).await;
                match atp_did_plc::tombstone(&genesis.operation, &keys.plc_rotation_key) {
                    Ok(tombstone) => {
                        if let Err(plc_err) = directory.submit_operation(&did, &tombstone).await {
                            tracing::warn!(%did, error = %plc_err, "could not tombstone the DID of a failed account creation");
                        }
                    }
                    Err(plc_err) => {
                        tracing::warn!(%did, error = %plc_err, "could not build a tombstone for a failed account creation");
                    }
                }
                Err(err)
            }
        }
    }

    /// Creates an account for a DID that already exists elsewhere (an
    /// account moving in from another PDS, as the reference's
    /// `createAccount` with `did`): a new signing key and an empty
    /// repository here, no directory operation, and the account starts
    /// deactivated until its repository is imported and its DID document
    /// points here.
    pub async fn create_account_for_did(
        &self,
        did: &str,
        request: CreateAccountRequest,
    ) -> Result<MovedInAccount> {
        atp_syntax::Did::new(did)?;
        let (handle, email) = self.checked_handle_and_email(&request)?;
        let signing_key = crate::keys::generate_signing_key();
        let signing_did_key = signing_key.did_key();
        let commit = self
            .check_and_create_store(&request, &handle, &email, did, Some(did), signing_key)
            .await?;

        let new = NewAccount {
            did: did.to_owned(),
            handle,
            email,
            password: request.password,
            invite_code: request.invite_code,
        };
        let accounts = Arc::clone(&self.accounts);
        let owner = did.to_owned();
        let created = run_blocking(move || {
            accounts.create_account(&new)?;
            accounts.deactivate(&owner, None)
        })
        .await;
        match created {
            Ok(account) => Ok(MovedInAccount {
                account,
                signing_did_key,
                commit,
            }),
            Err(err) => {
                let accounts = Arc::clone(&self.accounts);
                let owner = did.to_owned();
                let _ = run_blocking(move || accounts.delete_account(&owner)).await;
                self.discard_store(did).await;
                Err(err)
            }
        }
    }

    /// The normalized handle and email of `request`, once its handle is
    /// under a domain of this service and its password is not empty.
    fn checked_handle_and_email(&self, request: &CreateAccountRequest) -> Result<(String, String)> {
        let handle = normalize_handle(&request.handle)?;
        if !self.config.handle_allowed(&handle) {
            return Err(Error::InvalidInput(format!(
                "handle {handle} is not under a domain of this service"
            )));
        }
        let email = normalize_email(&request.email)?;
        if request.password.is_empty() {
            return Err(Error::InvalidInput("password is empty".to_owned()));
        }
        Ok((handle, email))
    }

    /// In one trip to the blocking pool: checks that `handle` and `email`
    /// are free and the invite code usable (and, when `existing` names a
    /// DID moving in, that it has no account here yet), then creates the
    /// store of `did` with `signing_key` and its empty repository's first
    /// commit. A store left half made is removed.
    async fn check_and_create_store(
        &self,
        request: &CreateAccountRequest,
        handle: &str,
        email: &str,
        did: &str,
        existing: Option<&str>,
        signing_key: atp_crypto::SigningKey,
    ) -> Result<CommitData> {
        let accounts = Arc::clone(&self.accounts);
        let actors = Arc::clone(&self.actors);
        let (handle, email, did) = (handle.to_owned(), email.to_owned(), did.to_owned());
        let existing = existing.map(str::to_owned);
        let invite = request.invite_code.clone();
        let required = self.config.invite_required;
        run_blocking(move || {
            if let Some(owner) = existing {
                if accounts.account_by_did(&owner)?.is_some() || actors.exists(&owner) {
                    return Err(Error::InvalidInput(format!(
                        "an account already exists for {owner}"
                    )));
                }
            }
            accounts.check_available(&handle, &email)?;
            match invite {
                Some(code) => accounts.ensure_invite_available(&code)?,
                None if required => return Err(Error::InviteCodeRequired),
                None => {}
            }
            let store = actors.create(&did, &signing_key)?;
            let result = (|| {
                let mut repo = store.open_repo()?;
                let rev = TidClock::global().next();
                store.commit(&mut repo, &signing_key, rev.as_str(), &BTreeMap::new())
            })();
            if result.is_err() {
                let _ = actors.remove(&did);
            }
            result
        })
        .await
    }

    async fn discard_store(&self, did: &str) {
        let actors = Arc::clone(&self.actors);
        let did = did.to_owned();
        let outcome = run_blocking(move || actors.remove(&did)).await;
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "could not remove the store of a failed account creation");
        }
    }

    /// Deletes an account: its rows first (so it stops existing at once),
    /// then its store and key. Returns whether the account existed.
    pub fn delete_account(&self, did: &str) -> Result<bool> {
        let existed = self.accounts.delete_account(did)?;
        let had_store = self.actors.remove(did)?;
        Ok(existed || had_store)
    }

    /// Removes store directories that have no account row (left by a crash
    /// during account creation); returns their DIDs.
    pub fn remove_orphaned_actor_stores(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for did in self.actors.list_dids()? {
            if self.accounts.account_by_did(&did)?.is_none() {
                self.actors.remove(&did)?;
                removed.push(did);
            }
        }
        Ok(removed)
    }
}
