//! Rate limits counted in the local Redis, so they hold for every instance
//! that shares it. `tower_governor` counts per process, which N instances
//! would turn into N times the limit; the shared count is one small script.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): one key per
//! subject holds the "theoretical arrival time" (TAT) in microseconds of the
//! Redis server's clock (`TIME`, so instances' clocks do not matter). Each
//! request moves the TAT one emission interval (`window / quota`) forward; a
//! request is allowed while the TAT stays within one window of now. That is a
//! sliding window without per-request entries: a burst of `quota` is allowed,
//! then one request per interval.

use std::time::Duration;

use sponsorgate_sync::{LimitCount, RateLimit, RedisLink, GCRA_SCRIPT};

use crate::store::StoreError;

/// Prefix of the counters: `sync:rate:{policy}:{subject}` (the service's own
/// keys live under `session:`, `auth:` and `sync:` only). The algorithm's
/// Lua is the sync crate's (`sync/lua/gcra.lua`), shared with the write step.
pub const RATE_PREFIX: &str = "sync:rate:";

/// One named limit: `quota` requests per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Shown in the `RateLimit-Policy` and `RateLimit` headers.
    pub name: &'static str,
    pub quota: u64,
    pub window: Duration,
}

impl Policy {
    pub const fn per_minute(name: &'static str, quota: u64) -> Self {
        Self {
            name,
            quota,
            window: Duration::from_secs(60),
        }
    }

    /// `"writes";q=600;w=60`
    pub fn header(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.name,
            self.quota,
            self.window.as_secs()
        )
    }
}

/// What one check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the window after this one.
    pub remaining: u64,
    /// Seconds until the whole quota is available again.
    pub reset_secs: u64,
    /// Seconds until a request would be allowed (0 when allowed).
    pub retry_after_secs: u64,
}

impl Decision {
    /// `"writes";r=599;t=1`
    pub fn header(&self, policy: &Policy) -> String {
        format!(
            "\"{}\";r={};t={}",
            policy.name, self.remaining, self.reset_secs
        )
    }
}

impl From<LimitCount> for Decision {
    fn from(count: LimitCount) -> Self {
        let secs = |us: u64| us.div_ceil(1_000_000);
        Self {
            allowed: count.allowed,
            remaining: count.remaining,
            reset_secs: secs(count.reset_us),
            retry_after_secs: secs(count.retry_us).max(u64::from(!count.allowed)),
        }
    }
}

/// The subject of a user's write limit: the user's `user:{id}:mnodes` as a
/// hash tag, so that on a Redis Cluster the counter shares that key's slot
/// and a write to it can count itself in its own step ([`StepLimit`]).
pub fn user_subject(user_id: u64) -> String {
    format!("{{user:{user_id}:mnodes}}")
}

/// The counter of `subject` under `policy`: `sync:rate:{policy}:{subject}`.
pub fn counter_key(policy: &Policy, subject: &str) -> String {
    format!("{RATE_PREFIX}{}:{subject}", policy.name)
}

/// A limit the write step itself counts (one round trip less than a check
/// of its own): the middleware hands it to the handler in the request's
/// extensions; the handler passes it to the step and answers with a
/// [`StepCounted`] extension.
#[derive(Clone, Debug)]
pub struct StepLimit {
    pub policy: Policy,
    pub key: String,
}

impl StepLimit {
    pub fn as_rate(&self) -> RateLimit<'_> {
        RateLimit {
            key: &self.key,
            window_us: u64::try_from(self.policy.window.as_micros()).unwrap_or(u64::MAX),
            quota: self.policy.quota.max(1),
        }
    }
}

/// What the step counted, in the response's extensions (absent: the handler
/// stopped before its step, and the middleware counts the request itself).
#[derive(Clone, Copy, Debug)]
pub struct StepCounted(pub Decision);

/// Rate limits over the local Redis.
#[derive(Clone)]
pub struct RateLimiter {
    conn: RedisLink,
    script: redis::Script,
}

impl RateLimiter {
    pub fn new(conn: RedisLink) -> Self {
        Self {
            conn,
            script: redis::Script::new(GCRA_SCRIPT),
        }
    }

    /// Counts one request of `subject` under `policy`.
    pub async fn check(&self, policy: &Policy, subject: &str) -> Result<Decision, StoreError> {
        let window_us = u64::try_from(policy.window.as_micros()).unwrap_or(u64::MAX);
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .script
            .key(counter_key(policy, subject))
            .arg(window_us)
            .arg(policy.quota.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let secs = |us: i64| u64::try_from(us).unwrap_or(0).div_ceil(1_000_000);
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u64::try_from(remaining).unwrap_or(0),
            reset_secs: secs(reset_us),
            retry_after_secs: secs(retry_us).max(u64::from(allowed != 1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_ietf_draft() {
        let policy = Policy::per_minute("writes", 600);
        assert_eq!(policy.header(), "\"writes\";q=600;w=60");
        let decision = Decision {
            allowed: true,
            remaining: 599,
            reset_secs: 1,
            retry_after_secs: 0,
        };
        assert_eq!(decision.header(&policy), "\"writes\";r=599;t=1");
    }
}
