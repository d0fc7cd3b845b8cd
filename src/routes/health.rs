//! `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
pub async fn check_liveness() -> &'static str {
    "ok"
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `down`
    local: &'static str,
    /// `ok`, `down`, `resyncing` (the remote lost data and the local keys
    /// are being copied back) or `disabled` (no ENTERPRISE_REDIS_URL)
    remote: &'static str,
    /// Keys with changes this instance has not pushed to the remote yet.
    backlog: u64,
}

/// Readiness: 200 when the local Redis answers, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn check_readiness(State(state): State<AppState>) -> impl IntoResponse {
    let local_ok = state.store.ping(Duration::from_secs(1)).await;
    let (remote, backlog) = match &state.sync {
        None => ("disabled", 0),
        Some(sync) => {
            let status = sync.status();
            let remote = match (status.remote_up, status.resyncing) {
                (false, _) => "down",
                (true, true) => "resyncing",
                (true, false) => "ok",
            };
            (remote, status.backlog)
        }
    };
    let status = if local_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        local: if local_ok { "ok" } else { "down" },
        remote,
        backlog,
    };
    (status, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text")))]
pub async fn export_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
