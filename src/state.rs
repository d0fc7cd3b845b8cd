//! The one state type every handler shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::github::GithubClient;
use crate::listcache::ListCache;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub github: GithubClient,
    /// `None` when no `ENTERPRISE_REDIS_URL` is set (sync off).
    pub sync: Option<sponsorgate_sync::SyncStore>,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    pub lists: ListCache,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
