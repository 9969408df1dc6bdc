//! Assembling the router and running it, from `refreshd serve` or from a test.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use refreshd_broker::{Broker, MasterKey};
use refreshd_core::{Clock, SystemClock};
use refreshd_provider::Provider;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::Config;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every route refreshd serves: both provider dialects and the broker.
pub fn router(provider: Provider, broker: Broker) -> Router {
    refreshd_provider::github::router(provider.clone())
        .merge(refreshd_provider::google::router(provider.clone()))
        .merge(refreshd_provider::web::router(provider))
        .merge(refreshd_broker::router(broker))
        .merge(crate::docs::router())
        .layer(axum::middleware::from_fn(crate::metrics::track_request))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    // The path only: query strings may carry client secrets or codes.
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
}

/// A server started by `launch`: its address, and a handle to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, if `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Client connections served at once (`max_connections`, lowered to fit the open-file limit).
    pub max_connections: usize,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
    refresher: Option<refreshd_broker::Refresher>,
}

impl RunningServer {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests and connection refreshes finish, and waits.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        for task in &self.background {
            task.abort();
        }
        if let Some(refresher) = self.refresher {
            refresher.stop().await;
        }
        let _ = self.task.await;
        Ok(())
    }
}

/// The shortest replay window that lets waiting instances find a refresh's answer, with room
/// for a wait on the connection pool (up to 5 s) and for clocks a little apart.
const MIN_SHARED_REPLAY_WINDOW_SECS: i64 = 30;

/// Opens the database and serves on `listener` until stopped.
pub async fn launch(
    config: &Config,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer, BoxError> {
    let addr = listener.local_addr()?;
    // Every instance on one database must seal and unseal the broker's replays alike, so on
    // PostgreSQL the key is never generated per instance.
    let shared_database = crate::store::is_postgres(config.database_url.expose());
    if shared_database && config.master_key.is_none() && config.master_key_file.is_none() {
        return Err(
            "on PostgreSQL every instance must share one master key: set \
                    REFRESHD_MASTER_KEY (64 hex characters) or master_key_file"
                .into(),
        );
    }
    // Instances waiting on another's refresh of a token read its answer from the vault.
    if shared_database && config.replay_window_secs < MIN_SHARED_REPLAY_WINDOW_SECS {
        return Err(format!(
            "on PostgreSQL replay_window_secs must be at least {MIN_SHARED_REPLAY_WINDOW_SECS}: \
             an instance waiting on another's refresh of a token reads its answer from there"
        )
        .into());
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::listener::Tls::load(cert, key)?),
        (None, None) => None,
        _ => return Err("tls_cert and tls_key must be set together".into()),
    };
    let store = config.open_store().await?;
    let public_url = config.public_url_at(addr);
    let master_key = MasterKey::load(
        config.master_key.as_ref(),
        &config.master_key_path(),
        !shared_database,
    )?;
    let sealer = refreshd_core::KeySealer::new(master_key.bytes());
    let provider = Provider {
        store,
        clock,
        lifetimes: config.lifetimes,
        public_url,
        trusted_proxies: config.trusted_proxies.clone(),
        oidc: refreshd_provider::Oidc {
            issuer: config.oidc_issuer.clone(),
            sealer: Some(sealer.clone()),
        },
    };
    // Before serving: the first id_token signing key, generated once per database, and a
    // master key that opens every key kept (startup fails loudly otherwise).
    refreshd_provider::oidc::ensure_signing_key(
        provider.store.as_ref(),
        &sealer,
        provider.clock.now(),
    )
    .await?;
    let broker = Broker::new(
        provider.store.clone(),
        provider.clock.clone(),
        config.broker_settings(),
        master_key,
    )?;
    crate::metrics::install();
    let limits = config.connection_limits();
    let max_connections = limits.max_connections;
    let mut background = vec![
        tokio::spawn(sweep_periodically(provider.clone())),
        tokio::spawn(crate::listener::return_freed_memory(
            std::time::Duration::from_secs(10),
        )),
    ];
    let refresher = config.connection_refresher.then(|| {
        refreshd_broker::Refresher::start(
            broker.clone(),
            std::time::Duration::from_secs(config.connection_refresher_interval_secs),
        )
    });
    // Returns at once unless webhooks are configured.
    background.push(tokio::spawn(refreshd_broker::run_webhook_deliverer(
        broker.clone(),
    )));
    let mut metrics_addr = None;
    if let Some(metrics_listen) = &config.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_listen)
            .await
            .map_err(|e| format!("cannot listen on {metrics_listen} (metrics_listen): {e}"))?;
        metrics_addr = Some(metrics_listener.local_addr()?);
        let exposition = crate::metrics::router(provider.store.clone());
        let limits = limits.clone();
        background.push(tokio::spawn(async move {
            crate::listener::serve(
                metrics_listener,
                exposition,
                limits,
                None,
                std::future::pending(),
            )
            .await
        }));
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(provider, broker);
    let task = tokio::spawn(async move {
        crate::listener::serve(listener, app, limits, tls, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningServer {
        addr,
        metrics_addr,
        max_connections,
        stop,
        task,
        background,
        refresher,
    })
}

/// How often dead codes and expired replay answers are cleared.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn sweep_periodically(provider: Provider) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = provider.clock.now();
        match provider
            .store
            .sweep(now, provider.lifetimes.grace_window_secs)
            .await
        {
            Ok(swept) => tracing::debug!(
                codes = swept.codes,
                replays = swept.replays,
                tokens = swept.tokens,
                "swept"
            ),
            Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
        }
        // id_token signing keys no longer published (rotation drops them too).
        if let Err(e) =
            refreshd_provider::oidc::drop_retired_keys(provider.store.as_ref(), now).await
        {
            tracing::warn!(error = %e, "dropping retired signing keys failed; will retry");
        }
    }
}

/// `refreshd serve`: runs until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn serve(config: Config) -> Result<(), BoxError> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let server = launch(&config, listener, Arc::new(SystemClock)).await?;
    tracing::info!(
        addr = %server.addr,
        metrics = ?server.metrics_addr,
        database = %config.database_url,
        max_connections = server.max_connections,
        "refreshd is serving"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
