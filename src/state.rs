//! The one state type every handler shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::github::GithubClient;
use crate::metrics::Metrics;
use crate::store::Store;

/// What `/readyz` needs to know about the sync worker.
pub trait SyncProbe: Send + Sync {
    /// (remote reachable, journal entries not yet applied on the remote)
    fn status(&self) -> (bool, u64);
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub github: GithubClient,
    /// `None` when no `ENTERPRISE_REDIS_URL` is set (sync off).
    pub sync: Option<Arc<dyn SyncProbe>>,
    pub metrics: Metrics,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
