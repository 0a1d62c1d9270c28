//! `pds serve`: opens the storage, connects (or embeds) the PLC directory
//! and serves XRPC until Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_pds::blob_store::{BlobStore, DiskBlobStore, S3BlobStore, S3Config};
use atp_pds::handle_policy::HandlePolicy;
use atp_pds::handle_resolver::HandleResolver;
use atp_pds::http::{router, PdsState, ServiceInfo};
use atp_pds::invite::InviteSchedule;
use atp_pds::mailer::{LogMailer, Mailer, SmtpMailer};
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::Storage;
use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::server::{ServerConfig, XrpcServer};
use chrono::{DateTime, Utc};

use crate::config::{BlobstoreSettings, PlcSettings, Settings};
use crate::error::Error;
use crate::secrets::{
    load_or_create_admin_password, load_or_create_jwt_secret, load_or_create_rotation_key,
};

/// Runs the server with `settings` until a shutdown signal.
pub async fn serve(settings: Settings) -> Result<(), Error> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| Error::File {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    if settings.dev_mode {
        tracing::warn!(
            "DEVELOPMENT MODE: not for production (generated secrets, loopback addresses allowed; set PDS_HOSTNAME and the secrets, see docs/configuration.md)"
        );
    }

    let jwt_secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => load_or_create_jwt_secret(&settings.data_dir)?,
    };
    let admin_password = match &settings.admin_password {
        Some(password) => password.clone(),
        None => {
            let password = load_or_create_admin_password(&settings.data_dir)?;
            tracing::warn!(
                path = %settings.data_dir.join(crate::secrets::ADMIN_PASSWORD_FILE).display(),
                "no PDS_ADMIN_PASSWORD: using the generated admin password kept in the data directory"
            );
            password
        }
    };
    let rotation_key = match &settings.plc_rotation_key_hex {
        Some(hex) => SigningKey::from_hex(Algorithm::K256, hex)?,
        None => load_or_create_rotation_key(&settings.data_dir)?,
    };
    tracing::info!(did_key = %rotation_key.did_key(), "PLC rotation key");

    // The embedded directory keeps its logs next to the PDS's data.
    let (plc_url, embedded_plc) = match &settings.plc {
        PlcSettings::Url(url) => (url.clone(), None),
        PlcSettings::Embedded => {
            let plc = PlcServer::start(PlcConfig::with_file(settings.data_dir.join("plc.sqlite")))
                .await?;
            tracing::warn!(url = %plc.url(), "using an embedded PLC directory (development only)");
            (plc.url(), Some(plc))
        }
    };

    let mut config = ServiceConfig::new(&settings.data_dir, settings.public_url());
    config.handle_domains = settings.handle_domains.clone();
    config.invite_required = settings.invite_required;
    config.recovery_did_key = settings.recovery_did_key.clone();
    let storage = Storage::open(config)?;
    let orphans = storage.remove_orphaned_actor_stores()?;
    if !orphans.is_empty() {
        tracing::warn!(
            count = orphans.len(),
            "removed actor stores without an account"
        );
    }

    let mut state = PdsState::new(
        storage,
        ServiceKeys {
            plc_rotation_key: rotation_key,
        },
        PlcClient::new(&plc_url)?,
        SessionTokenAuthority::new(jwt_secret, settings.service_did.clone())?,
        ServiceInfo {
            did: settings.service_did.clone(),
            privacy_policy: settings.privacy_policy.clone(),
            terms_of_service: settings.terms_of_service.clone(),
            contact_email: settings.contact_email.clone(),
        },
    )?;
    state.admin_password = Some(admin_password);
    state.dev_mode = settings.dev_mode;
    state.handles = HandleResolver::new(settings.dev_mode);
    state.crawlers = settings.crawlers.clone();
    state.appview = settings.appview.clone();
    state.blob_upload_limit = settings.blob_upload_limit;
    state.rate_limits = settings.rate_limits_enabled;
    state.handle_policy = HandlePolicy::default().with_banned_words(&settings.handle_banned_words);
    state.invite_schedule = settings.invite_interval_ms.map(|interval| InviteSchedule {
        interval: Duration::from_millis(interval),
        epoch: DateTime::<Utc>::UNIX_EPOCH
            + chrono::Duration::milliseconds(
                i64::try_from(settings.invite_epoch_ms).unwrap_or(i64::MAX),
            ),
    });
    state
        .sequencer
        .set_backfill_window(Duration::from_millis(settings.repo_backfill_limit_ms))?;
    state.blobs = blob_store(&settings)?;
    state.mailer = mailer(&settings)?;

    let server_config = ServerConfig {
        subscription_buffer: usize::try_from(settings.max_subscription_buffer)
            .unwrap_or(usize::MAX)
            .max(1),
        ..ServerConfig::default()
    };
    let server = XrpcServer::bind(settings.listen, router(state)?, server_config).await?;
    tracing::info!(
        listen = %server.local_addr(),
        public_url = %settings.public_url(),
        service_did = %settings.service_did,
        data_dir = %settings.data_dir.display(),
        plc = %plc_url,
        handle_domains = ?settings.handle_domains,
        invite_required = settings.invite_required,
        dev_mode = settings.dev_mode,
        "PDS listening"
    );

    server.run_until(shutdown_signal()).await;
    tracing::info!("PDS stopped");
    if let Some(plc) = embedded_plc {
        plc.shutdown().await?;
    }
    Ok(())
}

/// The blob store the settings name.
fn blob_store(settings: &Settings) -> Result<Arc<dyn BlobStore>, Error> {
    match &settings.blobstore {
        BlobstoreSettings::Disk { location, .. } => {
            tracing::info!(location = %location.display(), "blobs on disk");
            Ok(Arc::new(DiskBlobStore::new(location.clone())))
        }
        BlobstoreSettings::S3(s3) => {
            let mut config = S3Config::new(s3.bucket.clone());
            if let Some(region) = &s3.region {
                config.region = region.clone();
            }
            config.endpoint = s3.endpoint.clone();
            config.force_path_style = s3.force_path_style;
            if let Some((id, secret)) = &s3.credentials {
                config.access_key_id = Some(id.clone());
                config.secret_access_key = Some(secret.clone());
            }
            config.upload_timeout = Duration::from_millis(s3.upload_timeout_ms);
            config.request_timeout = match s3.request_timeout_ms {
                Some(ms) => Duration::from_millis(ms),
                None => config.upload_timeout.min(config.request_timeout),
            };
            tracing::info!(bucket = %s3.bucket, endpoint = ?s3.endpoint, "blobs in S3");
            Ok(Arc::new(S3BlobStore::new(&config)?))
        }
    }
}

/// The mailer the settings name: SMTP when configured, else the log.
fn mailer(settings: &Settings) -> Result<Arc<dyn Mailer>, Error> {
    match &settings.email {
        Some(email) => {
            let mailer = SmtpMailer::new(&email.smtp_url, &email.from_address)?;
            tracing::info!(from = %email.from_address, "emails sent over SMTP");
            Ok(Arc::new(mailer))
        }
        None => {
            tracing::info!("no PDS_EMAIL_SMTP_URL: emails are written to the log, not sent");
            Ok(Arc::new(LogMailer))
        }
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
