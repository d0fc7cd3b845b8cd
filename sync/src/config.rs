//! Settings of the sync worker and the tuning constants it runs with.

use std::fmt;
use std::time::Duration;

/// How the worker reaches both Redis servers. Built by the app from its own
/// configuration (`REDIS_URL`, `ENTERPRISE_REDIS_URL`, `SPONSORABLE`,
/// `REMOTE_TIMEOUT_MS`, `SYNC_RECONCILE_SECS`).
#[derive(Clone)]
pub struct SyncConfig {
    pub local_url: String,
    /// May carry a password: never logged ([`SyncConfig::remote_addr`] is).
    /// `None`: sync off (the door still serves every read and write).
    pub remote_url: Option<String>,
    /// Quotas and the non-sponsor TTL the write path applies.
    pub settings: crate::tiers::WriteSettings,
    pub sponsorable: String,
    /// Bound on remote calls made while serving a request (`fetch_back`).
    pub remote_timeout: Duration,
    /// Period of the full compare-and-repair pass (run by the notification leader).
    pub reconcile_every: Duration,
    /// Consumer name in the journal's consumer group: unique per process.
    pub consumer: String,
}

impl SyncConfig {
    /// A configuration with the documented defaults (500 ms, 300 s) and a
    /// fresh consumer name.
    pub fn new(
        local_url: impl Into<String>,
        remote_url: Option<String>,
        sponsorable: impl Into<String>,
    ) -> Self {
        Self {
            local_url: local_url.into(),
            remote_url,
            settings: crate::tiers::WriteSettings {
                quota_sponsor: 100_000,
                quota_free: 1_000,
                quota_tokens: 20,
                activity_max: 1000,
                ttl_secs: 86_400,
            },
            sponsorable: sponsorable.into(),
            remote_timeout: Duration::from_millis(500),
            reconcile_every: Duration::from_secs(300),
            consumer: default_consumer(),
        }
    }

    /// `host:port` of the remote, safe to log.
    pub fn remote_addr(&self) -> String {
        match &self.remote_url {
            Some(url) => redacted_addr(url),
            None => "disabled".into(),
        }
    }

    /// `host:port` of the local Redis, safe to log.
    pub fn local_addr(&self) -> String {
        redacted_addr(&self.local_url)
    }
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("local", &self.local_addr())
            .field("remote", &self.remote_addr())
            .field("sponsorable", &self.sponsorable)
            .field("remote_timeout", &self.remote_timeout)
            .field("reconcile_every", &self.reconcile_every)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// `<hostname>-<pid>-<random>`: unique per process, readable in `XINFO CONSUMERS`.
pub fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// The address part of a Redis URL (`host:port` or a socket path), without
/// user name or password; `<invalid url>` when it does not parse.
pub fn redacted_addr(url: &str) -> String {
    match crate::target::RedisTarget::parse(url) {
        Ok(target) => target.addr(),
        Err(_) => "<invalid url>".into(),
    }
}

/// Longest idle wait of a worker loop.
pub(crate) const BLOCK: Duration = Duration::from_millis(1000);
/// Cap of every retry delay, so a backlog drains soon after the remote is back.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// Response timeout of the worker's own remote calls.
pub(crate) const WORKER_REMOTE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect timeout (TCP + handshake) of both Redis servers.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Health probe period (`/readyz` reflects a change within 3 s).
pub(crate) const HEALTH_EVERY: Duration = Duration::from_millis(1000);
/// Notification leader lease and its renewal period.
pub(crate) const LEASE: Duration = Duration::from_millis(5000);
pub(crate) const LEASE_RENEW: Duration = Duration::from_millis(1000);
/// How long keyspace events are collected before they are turned into journal entries.
pub(crate) const EVENT_WINDOW: Duration = Duration::from_millis(20);
/// How often the worker re-reads the local tier's primaries (a failover, a
/// primary added or removed) to listen on each.
pub(crate) const TOPOLOGY_EVERY: Duration = Duration::from_millis(250);
/// How often a subscribed worker checks that the notification flags are still set.
pub(crate) const FLAGS_RECHECK: Duration = Duration::from_secs(5);

/// Exponential delay with jitter for the `attempt`-th consecutive failure
/// (1-based), between half and all of `min(base * 2^(attempt-1), MAX_BACKOFF)`.
pub(crate) fn backoff(attempt: u32, base: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let full = base.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let jitter = 0.5 + rand::random::<f64>() * 0.5;
    full.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addr_never_shows_the_password() {
        let cfg = SyncConfig::new(
            "redis://127.0.0.1:6379",
            Some("redis://:s3cret@db.example:6380/2".into()),
            "acme",
        );
        assert_eq!(cfg.remote_addr(), "db.example:6380");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("db.example:6380"));
        assert_eq!(redacted_addr("not a url"), "<invalid url>");
        assert_eq!(
            redacted_addr("redis+cluster://:s3cret@a:7000,b:7001"),
            "a:7000,b:7001"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(50);
        for attempt in 1..40 {
            let d = backoff(attempt, base);
            let full = base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
            assert!(d <= MAX_BACKOFF);
        }
    }

    #[test]
    fn consumers_are_unique() {
        assert_ne!(default_consumer(), default_consumer());
    }
}
