//! Prometheus metrics (`sponsorgate_` prefix), kept in one explicit registry
//! per app so parallel tests do not share global state.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<RouteStatus, Counter>,
    pub http_duration: Family<RouteLabel, Histogram>,
    pub github_errors: Family<KindLabel, Counter>,
}

impl Metrics {
    /// `register_more` adds metrics owned elsewhere (the sync worker's).
    pub fn new(register_more: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::with_prefix("sponsorgate");
        let http_requests = Family::<RouteStatus, Counter>::default();
        let http_duration = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let github_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration by route",
            http_duration.clone(),
        );
        registry.register(
            "github_errors",
            "Failed calls to GitHub by kind",
            github_errors.clone(),
        );
        // Known kinds exist from the start at 0 (an empty family is not rendered).
        for kind in crate::github::GithubError::KINDS {
            let kind = KindLabel {
                kind: kind.to_owned(),
            };
            drop(github_errors.get_or_create(&kind));
        }
        register_more(&mut registry);
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            github_errors,
        }
    }

    pub fn github_error(&self, kind: &str) {
        self.github_errors
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
