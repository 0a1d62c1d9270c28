//! `pds serve`: opens the storage, connects (or embeds) the PLC directory
//! and serves XRPC until Ctrl-C or SIGTERM.

use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_pds::http::{router, PdsState, ServiceInfo};
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::Storage;
use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::server::{ServerConfig, XrpcServer};

use crate::config::Settings;
use crate::error::Error;
use crate::secrets::{load_or_create_jwt_secret, load_or_create_rotation_key};

/// Runs the server with `settings` until a shutdown signal.
pub async fn serve(settings: Settings) -> Result<(), Error> {
    std::fs::create_dir_all(&settings.data_dir)?;
    if settings.is_development() {
        tracing::warn!(
            "DEVELOPMENT MODE: not for production (set PDS_HOSTNAME, PDS_DID_PLC_URL and PDS_JWT_SECRET to run a real service)"
        );
    }

    let jwt_secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => load_or_create_jwt_secret(&settings.data_dir)?,
    };
    let rotation_key = load_or_create_rotation_key(&settings.data_dir)?;

    // The embedded directory keeps its logs next to the PDS's data.
    let embedded_plc = match &settings.plc_url {
        Some(_) => None,
        None => {
            let plc = PlcServer::start(PlcConfig::with_file(settings.data_dir.join("plc.sqlite")))
                .await?;
            tracing::warn!(url = %plc.url(), "using an embedded PLC directory (development only)");
            Some(plc)
        }
    };
    let plc_url = match (&settings.plc_url, &embedded_plc) {
        (Some(url), _) => url.clone(),
        (None, Some(plc)) => plc.url(),
        (None, None) => return Err(Error::Config("no PLC directory".to_owned())),
    };

    let mut config = ServiceConfig::new(&settings.data_dir, settings.public_url());
    config.handle_domains = settings.handle_domains.clone();
    config.invite_required = settings.invite_required;
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
    state.dev_mode = settings.is_development();
    let server = XrpcServer::bind(settings.listen, router(state)?, ServerConfig::default()).await?;
    tracing::info!(
        listen = %server.local_addr(),
        public_url = %settings.public_url(),
        data_dir = %settings.data_dir.display(),
        plc = %plc_url,
        handle_domains = ?settings.handle_domains,
        "PDS listening"
    );

    server.run_until(shutdown_signal()).await;
    tracing::info!("PDS stopped");
    if let Some(plc) = embedded_plc {
        plc.shutdown().await?;
    }
    Ok(())
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
