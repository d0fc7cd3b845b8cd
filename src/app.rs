//! Wiring: build the state from the config, serve HTTP with the sync worker
//! and the sponsorship tasks beside it, and the standalone `sync` command.
//! Every spawned task is watched: one that ends before shutdown (an error or
//! a panic) is logged and stops the process with a failure status.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sponsorgate_sync::RedisLink;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower_sessions::cookie::Key;

use crate::config::Config;
use crate::github::{GithubClient, GithubConfig};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
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
    Sync(#[from] sponsorgate_sync::SyncError),
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
    /// A task that runs for the process's whole life ended early.
    #[error("task {name} ended before shutdown: {reason}")]
    TaskEnded { name: &'static str, reason: String },
}

/// The local tier for the service's own keys (a single server or a
/// cluster): fails fast while the Redis is down, so requests answer 503
/// instead of hanging on reconnect attempts.
pub fn local_connection(url: &str) -> Result<RedisLink, StartError> {
    RedisLink::open(url, Duration::from_secs(2)).map_err(StartError::Redis)
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
        client_secret: github_settings.client_secret.clone(),
        web_url: github_settings.web_url.clone(),
        api_url: github_settings.api_url.clone(),
        graphql_url: github_settings.graphql_url.clone(),
        redirect_url: config.redirect_url(),
        timeout: github_settings.timeout,
    })
    .map_err(|e| StartError::Config(e.to_string()))?;
    let mut conn = local_connection(config.redis_url.expose_secret())?;
    if let Err(e) = crate::sponsorship::migrate_legacy_keys(&mut conn).await {
        tracing::warn!(error.message = %e, "could not rename the sponsorship schedule's keys of an older version");
    }
    let service = SyncService::start(&config).await?;
    let metrics = Metrics::new(|registry| service.register_metrics(registry));
    let limiter = RateLimiter::new(conn.clone());
    let store = Store::new(conn, service.store().clone());
    let sync = service.sync_on().then_some(service);
    let session_key = match &config.session_key {
        Some(bytes) => Key::from(bytes.expose_secret()),
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
        limiter,
        lists: crate::listcache::ListCache::new(),
    }));
    let router = crate::routes::router(state.clone(), session_key);
    Ok(Built {
        state,
        router,
        sync,
    })
}

/// Named tasks that are meant to run until shutdown.
#[derive(Default)]
pub struct Tasks {
    set: JoinSet<Result<(), String>>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// The next task to end, with how it ended (a panic is an error);
    /// `None` once every task has ended.
    pub async fn next_exit(&mut self) -> Option<(&'static str, Result<(), String>)> {
        let (id, result) = match self.set.join_next_with_id().await? {
            Ok((id, result)) => (id, result),
            Err(e) => {
                let reason = if e.is_panic() {
                    "panicked".to_owned()
                } else {
                    e.to_string()
                };
                (e.id(), Err(reason))
            }
        };
        let name = self.names.remove(&id).unwrap_or("unnamed");
        Some((name, result))
    }
}

/// A running service: the HTTP server, the sponsorship tasks and, when
/// enabled, the sync worker.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Tasks,
}

impl Running {
    /// Stops accepting requests, lets in-flight ones finish, stops the tasks.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while let Some((name, result)) = self.tasks.next_exit().await {
            if let Err(reason) = result {
                tracing::error!(task.name = name, error.message = %reason, "task failed while stopping");
            }
        }
    }

    /// Runs until `signal` completes, then stops. A task that ends first
    /// stops the rest and is returned as the error.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), StartError> {
        let ended = tokio::select! {
            _ = signal => None,
            exit = self.tasks.next_exit() => exit,
        };
        let Some((name, result)) = ended else {
            self.stop().await;
            return Ok(());
        };
        let reason = match result {
            Ok(()) => "returned".to_owned(),
            Err(reason) => reason,
        };
        tracing::error!(task.name = name, error.message = %reason, "task ended before shutdown; stopping");
        self.stop().await;
        Err(StartError::TaskEnded { name, reason })
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
    let mut tasks = Tasks::default();
    let mut server_watch = watch.clone();
    let router = built.router;
    let max_connections = built.state.config.max_connections;
    tasks.spawn("http-server", async move {
        let stopped = async move {
            let _ = server_watch.wait_for(|stop| *stop).await;
        };
        crate::server::serve(listener, router, max_connections, stopped)
            .await
            .map_err(|e| e.to_string())
    });
    if let (true, Some(sync)) = (run_worker, built.sync) {
        let mut worker_watch = watch.clone();
        tasks.spawn("sync-worker", async move {
            sync.run(async move {
                let _ = worker_watch.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(|e| e.to_string())
        });
    }
    for (name, task) in crate::sponsorship::background_tasks(built.state.clone(), watch.clone()) {
        tasks.spawn(name, async move {
            task.await;
            Ok(())
        });
    }
    tracing::info!(http.addr = %addr, "listening");
    Ok(Running {
        addr,
        state: built.state,
        shutdown,
        tasks,
    })
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// `sponsorgate sync [--reconcile]`.
pub async fn run_sync_command(
    config: Config,
    reconcile: bool,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    if config.enterprise_redis_url.is_none() {
        return Err(StartError::Config(
            "ENTERPRISE_REDIS_URL: is required by `sponsorgate sync`".into(),
        ));
    }
    let service = SyncService::start(&config).await?;
    if !reconcile {
        return Ok(service.run(shutdown).await?);
    }
    let store = service.store();
    // Pending changes first, then the comparison, then what it queued;
    // bounded, so a failing remote cannot hang the command.
    let limit = Duration::from_secs(30);
    store
        .drain(limit)
        .await
        .map_err(|e| StartError::Config(format!("sync: pushing pending changes: {e}")))?;
    let report = store.reconcile().await?;
    store
        .drain(limit)
        .await
        .map_err(|e| StartError::Config(format!("sync: applying the repairs: {e}")))?;
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_fails_is_reported_by_name() {
        let mut tasks = Tasks::default();
        tasks.spawn("panics", async { panic!("boom") });
        tasks.spawn("fails", async { Err("no".to_owned()) });
        tasks.spawn("waits", std::future::pending());
        let mut ended = vec![
            tasks.next_exit().await.unwrap(),
            tasks.next_exit().await.unwrap(),
        ];
        ended.sort_by_key(|(name, _)| *name);
        assert_eq!(
            ended,
            vec![
                ("fails", Err("no".to_owned())),
                ("panics", Err("panicked".to_owned()))
            ]
        );
    }
}
