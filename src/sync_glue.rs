//! Plugs the sync crate in: the door for the store, status for `/readyz`,
//! metrics, the worker task, and the standalone `sync` command.

use std::future::Future;

use prometheus_client::registry::Registry;
use sponsorgate_sync::{SyncConfig, SyncMetrics, SyncStore, WriteSettings};

use crate::app::StartError;
use crate::config::Config;

/// The sync crate's handle of this process; the worker runs only when
/// `ENTERPRISE_REDIS_URL` is set.
#[derive(Clone)]
pub struct SyncService {
    store: SyncStore,
    metrics: SyncMetrics,
}

fn sync_config(config: &Config) -> SyncConfig {
    let remote = config
        .enterprise_redis_url
        .as_ref()
        .map(|url| url.expose().to_string());
    let mut cfg = SyncConfig::new(config.redis_url.expose(), remote, &config.sponsorable);
    cfg.remote_timeout = config.remote_timeout;
    cfg.reconcile_every = config.sync_reconcile;
    cfg.settings = WriteSettings {
        quota_sponsor: config.quota_sponsor,
        quota_free: config.quota_free,
        ttl_secs: config.ephemeral_ttl_secs,
    };
    cfg
}

impl SyncService {
    /// Prepares the door (and, with a remote, the worker's connections).
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let cfg = sync_config(config);
        match &config.enterprise_redis_url {
            None => tracing::info!("ENTERPRISE_REDIS_URL is not set: sync is off, preferences live only in the local Redis"),
            Some(_) => tracing::info!(remote = %cfg.remote_addr(), "sync on"),
        }
        let metrics = SyncMetrics::new();
        let store = SyncStore::connect(cfg, metrics.clone())
            .await
            .map_err(|e| StartError::Sync(e.to_string()))?;
        Ok(Self { store, metrics })
    }

    pub fn sync_on(&self) -> bool {
        self.store.sync_on()
    }

    pub fn register_metrics(&self, registry: &mut Registry) {
        if self.sync_on() {
            self.metrics.register(registry);
        }
    }

    pub fn store(&self) -> &SyncStore {
        &self.store
    }

    /// Runs the worker until `shutdown`; errors are logged (the API keeps serving).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        if let Err(e) = self.store.run(shutdown).await {
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
    if config.enterprise_redis_url.is_none() {
        return Err(StartError::Config(
            "ENTERPRISE_REDIS_URL: is required by `sponsorgate sync`".into(),
        ));
    }
    let service = SyncService::start(&config).await?;
    if reconcile {
        let store = service.store();
        // Pending changes first, then the comparison, then what it queued;
        // bounded, so a failing remote cannot hang the command.
        let limit = std::time::Duration::from_secs(30);
        store
            .drain(limit)
            .await
            .map_err(|e| StartError::Sync(format!("pushing pending changes: {e}")))?;
        let report = store
            .reconcile()
            .await
            .map_err(|e| StartError::Sync(e.to_string()))?;
        store
            .drain(limit)
            .await
            .map_err(|e| StartError::Sync(format!("applying the repairs: {e}")))?;
        println!("{report}");
        return Ok(());
    }
    service
        .store
        .run(shutdown)
        .await
        .map_err(|e| StartError::Sync(e.to_string()))
}
