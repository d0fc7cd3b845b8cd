//! The keyspace-notification flags the worker needs on the local Redis.

use std::sync::atomic::Ordering;

use redis::Value;

use crate::conn::Conn;
use crate::error::{is_connection_error, SyncError};
use crate::Inner;

/// Flags the worker needs: keyevent channel, generic, set, hash, key-miss.
pub const NEEDED_FLAGS: &str = "Egshm";
/// What `A` stands for in `notify-keyspace-events` (it does not include `m` or `n`).
const ALL_ALIAS: &str = "g$lshzxetd";

/// `notify-keyspace-events` before and after [`crate::Sync::ensure_notifications`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyFlags {
    /// `None` when `CONFIG` is refused (managed Redis): only API changes are
    /// mirrored at once, other clients' at the next reconciliation.
    pub before: Option<String>,
    pub after: Option<String>,
}

impl NotifyFlags {
    pub fn configurable(&self) -> bool {
        self.before.is_some()
    }
}

fn has_flag(flags: &str, flag: char) -> bool {
    flags.contains(flag) || (flags.contains('A') && ALL_ALIAS.contains(flag))
}

/// `current` plus the needed flags it lacks (never removes one).
pub(crate) fn merge_flags(current: &str) -> String {
    let mut out = current.to_string();
    for flag in NEEDED_FLAGS.chars() {
        if !has_flag(&out, flag) {
            out.push(flag);
        }
    }
    out
}

impl Inner {
    /// The flags on every primary of the local tier (flags are per node);
    /// the first node's answer, or the first refusal.
    pub(crate) async fn ensure_notifications(&self) -> Result<NotifyFlags, SyncError> {
        let topology = self.local.topology().await.map_err(SyncError::Local)?;
        let mut first = None;
        for (_, node) in &topology.primaries {
            let flags = self.ensure_notifications_on(node).await?;
            if !flags.configurable() {
                return Ok(flags);
            }
            first.get_or_insert(flags);
        }
        first.ok_or_else(|| SyncError::protocol("notifications", "no primary"))
    }

    /// The flags on one server.
    pub(crate) async fn ensure_notifications_on(
        &self,
        node: &Conn,
    ) -> Result<NotifyFlags, SyncError> {
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg("notify-keyspace-events");
        let before = match node.query::<Value>(&get).await {
            Ok(v) => config_value(&v).unwrap_or_default(),
            Err(e) if is_connection_error(&e) => return Err(SyncError::Local(e)),
            Err(e) => return Ok(self.config_refused(&e)),
        };
        let after = merge_flags(&before);
        if after != before {
            let mut set = redis::cmd("CONFIG");
            set.arg("SET").arg("notify-keyspace-events").arg(&after);
            match node.query::<()>(&set).await {
                Ok(()) => {
                    tracing::info!(before = %before, after = %after, "enabled keyspace notifications on the local redis")
                }
                Err(e) if is_connection_error(&e) => return Err(SyncError::Local(e)),
                Err(e) => return Ok(self.config_refused(&e)),
            }
        }
        Ok(NotifyFlags {
            before: Some(before),
            after: Some(after),
        })
    }

    fn config_refused(&self, e: &redis::RedisError) -> NotifyFlags {
        if !self.notify.config_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error.message = %e,
                "CONFIG is refused on the local redis: keyspace notifications cannot be enabled here; \
                 changes and reads through the API are synced at once, other clients' writes at the next reconciliation"
            );
        }
        NotifyFlags {
            before: None,
            after: None,
        }
    }
}

/// The value of a `CONFIG GET` reply (RESP2 array or RESP3 map).
pub(crate) fn config_value(v: &Value) -> Option<String> {
    let value = match v {
        Value::Array(items) => items.get(1)?,
        Value::Map(pairs) => &pairs.first()?.1,
        _ => return None,
    };
    redis::from_redis_value_ref::<String>(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_added_never_removed() {
        assert_eq!(merge_flags(""), "Egshm");
        assert_eq!(merge_flags("Em"), "Emgsh");
        assert_eq!(merge_flags("AKE"), "AKEm", "A covers g, s and h but not m");
        assert_eq!(merge_flags("KExl"), "KExlgshm");
        assert_eq!(merge_flags("AKEm"), "AKEm");
        assert_eq!(merge_flags("gshmE"), "gshmE");
    }

    #[test]
    fn config_replies_in_both_protocols() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            config_value(&Value::Array(vec![b("notify-keyspace-events"), b("AKE")])),
            Some("AKE".into())
        );
        assert_eq!(
            config_value(&Value::Map(vec![(b("notify-keyspace-events"), b(""))])),
            Some("".into())
        );
        assert_eq!(config_value(&Value::Nil), None);
    }
}
