//! Plugs the sync crate into the app: fetch-back for the store, status for
//! `/readyz`, metrics, the worker task, and the standalone `sync` command.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::registry::Registry;
use sponsorgate_sync::{SponsorKey, Sync, SyncConfig, SyncMetrics};

use crate::app::StartError;
use crate::config::Config;
use crate::state::SyncProbe;
use crate::store::FetchBack;

/// The sync machinery of this process, when `ENTERPRISE_REDIS_URL` is set.
#[derive(Clone)]
pub struct SyncService {
    sync: Sync,
    metrics: SyncMetrics,
}

struct Fetcher(Sync);

#[async_trait]
impl FetchBack for Fetcher {
    async fn fetch_back(&self, key: &SponsorKey) -> Result<(), String> {
        self.0.fetch_back(key).await.map_err(|e| e.to_string())
    }
}

struct Probe(Sync);

impl SyncProbe for Probe {
    fn status(&self) -> (bool, u64) {
        let status = self.0.status();
        (status.remote_up, status.backlog)
    }
}

fn sync_config(config: &Config, remote_url: &str) -> SyncConfig {
    let mut cfg = SyncConfig::new(config.redis_url.expose(), remote_url, &config.sponsorable);
    cfg.remote_timeout = config.remote_timeout;
    cfg.reconcile_every = config.sync_reconcile;
    cfg
}

impl SyncService {
    /// Connects when a remote is configured; says once that sync is off otherwise.
    pub async fn start(config: &Config) -> Result<Option<Self>, StartError> {
        let Some(remote) = &config.enterprise_redis_url else {
            tracing::info!("ENTERPRISE_REDIS_URL is not set: sync is off, preferences live only in the local Redis");
            return Ok(None);
        };
        let cfg = sync_config(config, remote.expose());
        tracing::info!(remote = %cfg.remote_addr(), "sync on");
        let metrics = SyncMetrics::new();
        let sync = Sync::connect(cfg, metrics.clone())
            .await
            .map_err(|e| StartError::Sync(e.to_string()))?;
        Ok(Some(Self { sync, metrics }))
    }

    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
    }

    pub fn fetcher(&self) -> Arc<dyn FetchBack> {
        Arc::new(Fetcher(self.sync.clone()))
    }

    pub fn probe(&self) -> Arc<dyn SyncProbe> {
        Arc::new(Probe(self.sync.clone()))
    }

    pub fn sync(&self) -> &Sync {
        &self.sync
    }

    /// Runs the worker until `shutdown`; errors are logged (the API keeps serving).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        if let Err(e) = self.sync.run(shutdown).await {
            tracing::error!(error = %e, "sync worker stopped");
        }
    }
}

/// `sponsorgate sync [--reconcile]`.
pub async fn run_standalone(
    config: Config,
    reconcile: bool,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let Some(service) = SyncService::start(&config).await? else {
        return Err(StartError::Config(
            "ENTERPRISE_REDIS_URL: is required by `sponsorgate sync`".into(),
        ));
    };
    if reconcile {
        let report = service
            .sync
            .reconcile()
            .await
            .map_err(|e| StartError::Sync(e.to_string()))?;
        println!("{report}");
        // Repairs are journaled; apply them now rather than leave them to
        // the next worker (bounded: a failing remote must not hang the command).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let step = service
                .sync
                .step()
                .await
                .map_err(|e| StartError::Sync(e.to_string()))?;
            if let Some(e) = step.error {
                return Err(StartError::Sync(format!("applying the repairs: {e}")));
            }
            if step.read == 0 && step.claimed == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StartError::Sync(
                    "the repairs did not drain within 30 s".into(),
                ));
            }
        }
    }
    service
        .sync
        .run(shutdown)
        .await
        .map_err(|e| StartError::Sync(e.to_string()))
}
