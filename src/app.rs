//! Wiring: build the state from the config, serve HTTP, and run the sync
//! worker as a sibling task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_sessions::cookie::Key;

use crate::config::Config;
use crate::github::{GithubClient, GithubConfig, SecretString};
use crate::metrics::Metrics;
use crate::state::{App, AppState};
use crate::store::Store;
use crate::sync_glue::SyncService;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("local Redis: {0}")]
    Redis(String),
    #[error("sync worker: {0}")]
    Sync(String),
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

/// A connection manager that fails fast when the Redis is down, so requests
/// answer 503 instead of hanging on reconnect attempts.
pub fn local_connection(url: &str) -> Result<ConnectionManager, StartError> {
    let client =
        redis::Client::open(url).map_err(|e| StartError::Redis(format!("{:?}", e.kind())))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| StartError::Redis(format!("{:?}", e.kind())))
}

pub struct Built {
    pub state: AppState,
    pub router: axum::Router,
    pub sync: Option<SyncService>,
}

pub async fn build(config: Config) -> Result<Built, StartError> {
    let github_settings = config
        .github
        .clone()
        .ok_or_else(|| StartError::Config("GitHub settings are required to serve".into()))?;
    let github = GithubClient::new(GithubConfig {
        client_id: github_settings.client_id.clone(),
        client_secret: SecretString::new(github_settings.client_secret.expose()),
        web_url: github_settings.web_url.clone(),
        api_url: github_settings.api_url.clone(),
        graphql_url: github_settings.graphql_url.clone(),
        redirect_url: config.redirect_url(),
        timeout: github_settings.timeout,
    })
    .map_err(|e| StartError::Config(e.to_string()))?;
    let conn = local_connection(config.redis_url.expose())?;
    let service = SyncService::start(&config).await?;
    let metrics = Metrics::new(|registry| service.register_metrics(registry));
    let store = Store::new(conn, service.store().clone());
    let sync = service.sync_on().then_some(service);
    let session_key = match &config.session_key {
        Some(bytes) => Key::from(bytes),
        None => {
            tracing::warn!(
                "SESSION_KEY is not set: using a random key, so every restart signs everyone out"
            );
            Key::generate()
        }
    };
    let state = AppState(Arc::new(App {
        config,
        store,
        github,
        sync: sync.as_ref().map(|s| s.store().clone()),
        metrics,
    }));
    let router = crate::routes::router(state.clone(), session_key);
    Ok(Built {
        state,
        router,
        sync,
    })
}

/// A running service: the HTTP server and, when enabled, the sync worker.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    worker: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, lets in-flight ones finish, stops the worker.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        if let Some(worker) = self.worker {
            let _ = worker.await;
        }
    }

    /// Runs until `signal` completes, then stops.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), StartError> {
        tokio::select! {
            _ = signal => {}
            _ = self.shutdown.closed() => {}
        }
        self.stop().await;
        Ok(())
    }
}

/// Serves on `listener`; with `run_worker`, the sync worker runs beside it.
pub async fn start(
    config: Config,
    listener: TcpListener,
    run_worker: bool,
) -> Result<Running, StartError> {
    let built = build(config).await?;
    let addr = listener.local_addr()?;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let mut server_watch = watch.clone();
    let app = built.router.into_make_service();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_watch.wait_for(|stop| *stop).await;
            })
            .await
    });
    let worker = match (run_worker, built.sync) {
        (true, Some(sync)) => {
            let mut worker_watch = watch.clone();
            Some(tokio::spawn(async move {
                sync.run(async move {
                    let _ = worker_watch.wait_for(|stop| *stop).await;
                })
                .await
            }))
        }
        _ => None,
    };
    // Due sponsorship changes and re-verification; they stop with the same watch.
    let _sponsorship_tasks =
        crate::sponsorship::spawn_background(built.state.clone(), watch.clone());
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        state: built.state,
        shutdown,
        server,
        worker,
    })
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
