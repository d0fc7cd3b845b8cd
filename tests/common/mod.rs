//! Shared helpers: throwaway Redis servers, a TCP proxy for outages, the fake
//! GitHub, and a `TestApp` builder that wires them to a real sponsorgate.
#![allow(
    dead_code,
    reason = "helpers for every test; a run of part of them leaves some unused"
)]

/// Runs each named `async fn name(mode: Mode)` as two tests, `name::single`
/// and `name::cluster` (both tiers three-primary Redis Clusters): the same
/// test code against either deployment.
macro_rules! in_every_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::common::app::Mode;

            #[tokio::test]
            async fn single() {
                super::$name(Mode::Single).await
            }

            #[tokio::test]
            async fn cluster() {
                super::$name(Mode::Cluster).await
            }
        }
    )*};
}

pub mod app;
pub mod proxy;
pub mod redis;
pub mod sync;

pub use app::TestApp;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
