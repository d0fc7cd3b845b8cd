//! Plugs the sync crate into the app: fetch-back for the store, status for
//! `/readyz`, metrics, and the worker task.

use std::future::Future;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::app::StartError;
use crate::config::Config;
use crate::state::SyncProbe;
use crate::store::FetchBack;

/// Placeholder until the sync crate's worker lands: sync stays off.
pub struct SyncService;

impl SyncService {
    pub async fn start(config: &Config) -> Result<Option<Self>, StartError> {
        if config.enterprise_redis_url.is_none() {
            tracing::info!("ENTERPRISE_REDIS_URL is not set: sync is off, preferences live only in the local Redis");
        }
        Ok(None)
    }
    pub fn register_metrics(&self, _registry: &mut Registry) {}
    pub fn fetcher(&self) -> Arc<dyn FetchBack> {
        unreachable!()
    }
    pub fn probe(&self) -> Arc<dyn SyncProbe> {
        unreachable!()
    }
    pub async fn run(&self, _shutdown: impl Future<Output = ()> + Send) {}
}

/// `sponsorgate sync [--reconcile]`.
pub async fn run_standalone(
    config: Config,
    _reconcile: bool,
    _shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    if config.enterprise_redis_url.is_none() {
        return Err(StartError::Config(
            "ENTERPRISE_REDIS_URL: is required by `sponsorgate sync`".into(),
        ));
    }
    Err(StartError::Sync("not built yet".into()))
}
