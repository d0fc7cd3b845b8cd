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

use sponsorgate_sync::RedisLink;

use crate::store::StoreError;

/// Prefix of the counters: `sync:rate:{policy}:{subject}` (the service's own
/// keys live under `session:`, `auth:` and `sync:` only).
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

/// KEYS[1] the subject's counter; ARGV: window µs, quota. Returns
/// {allowed, remaining, reset µs, retry-after µs}.
const GCRA: &str = r#"
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) * 1000000 + tonumber(now_t[2])
local window = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local interval = math.floor(window / quota)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.floor((window - (new_tat - now)) / interval)
return {1, remaining, new_tat - now, 0}
"#;

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
            script: redis::Script::new(GCRA),
        }
    }

    /// Counts one request of `subject` under `policy`.
    pub async fn check(&self, policy: &Policy, subject: &str) -> Result<Decision, StoreError> {
        let window_us = u64::try_from(policy.window.as_micros()).unwrap_or(u64::MAX);
        let key = format!("{RATE_PREFIX}{}:{subject}", policy.name);
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .script
            .key(key)
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
