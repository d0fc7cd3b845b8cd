//! Plugs the sync crate in: the door for the store, status for `/readyz`,
//! metrics and the worker.

use std::future::Future;

use prometheus_client::registry::Registry;
use secrecy::ExposeSecret;
use sponsorgate_sync::{SyncConfig, SyncError, SyncMetrics, SyncStore, WriteSettings};

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
        .map(|url| url.expose_secret().to_owned());
    let mut cfg = SyncConfig::new(
        config.redis_url.expose_secret(),
        remote,
        &config.sponsorable,
    );
    cfg.remote_timeout = config.remote_timeout;
    cfg.reconcile_every = config.sync_reconcile;
    cfg.settings = WriteSettings {
        quota_sponsor: config.quota_sponsor,
        quota_free: config.quota_free,
        quota_tokens: crate::tokens::MAX_TOKENS,
        activity_max: config.activity_max,
        ttl_secs: config.ephemeral_ttl_secs,
    };
    cfg
}

impl SyncService {
    /// Prepares the door (and, with a remote, the worker's connections).
    pub async fn start(config: &Config) -> Result<Self, SyncError> {
        let cfg = sync_config(config);
        match &config.enterprise_redis_url {
            None => tracing::info!("ENTERPRISE_REDIS_URL is not set: sync is off, preferences live only in the local Redis"),
            Some(_) => tracing::info!(sync.remote = %cfg.remote_addr(), "sync on"),
        }
        let metrics = SyncMetrics::new();
        let store = SyncStore::connect(cfg, metrics.clone()).await?;
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

    /// Runs the worker until `shutdown`.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), SyncError> {
        self.store.run(shutdown).await
    }
}
