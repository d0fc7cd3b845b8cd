//! The one error type of the sync crate.

use std::time::Duration;

use redis::RedisError;

/// What went wrong, and where. Cheap to clone (coalesced fetch-backs hand one
/// outcome to every waiter). Messages name `host:port` at most, never a URL.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid sync configuration: {0}")]
    Config(String),
    #[error("local redis: {0}")]
    Local(RedisError),
    #[error("remote redis {addr}: {source}")]
    Remote { addr: String, source: RedisError },
    #[error("remote redis {addr} did not answer within {after:?}")]
    RemoteTimeout { addr: String, after: Duration },
    #[error("local redis did not answer within {0:?}")]
    LocalTimeout(Duration),
    #[error("unexpected reply from {place}: {detail}")]
    Protocol { place: &'static str, detail: String },
}

impl SyncError {
    /// Label of `sync_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Config(_) => "config",
            SyncError::Local(_) | SyncError::LocalTimeout(_) => "local",
            SyncError::Remote { source, .. } if is_connection_error(source) => "remote_unavailable",
            SyncError::Remote { .. } => "remote",
            SyncError::RemoteTimeout { .. } => "remote_unavailable",
            SyncError::Protocol { .. } => "protocol",
        }
    }

    /// Whether the remote could not be reached at all (as opposed to a
    /// command failing there): callers stop their batch and back off.
    pub fn is_remote_unavailable(&self) -> bool {
        self.kind() == "remote_unavailable"
    }

    pub(crate) fn protocol(place: &'static str, detail: impl Into<String>) -> Self {
        SyncError::Protocol {
            place,
            detail: detail.into(),
        }
    }
}

/// Errors after which a connection must be replaced.
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_separate_outages_from_failures() {
        let io = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "x",
        ));
        let remote = SyncError::Remote {
            addr: "h:1".into(),
            source: io.clone(),
        };
        assert_eq!(remote.kind(), "remote_unavailable");
        assert!(remote.is_remote_unavailable());
        assert_eq!(SyncError::Local(io).kind(), "local");
        let timeout = SyncError::RemoteTimeout {
            addr: "h:1".into(),
            after: Duration::from_millis(5),
        };
        assert!(timeout.is_remote_unavailable());
        assert!(timeout.to_string().contains("h:1"));
        assert_eq!(SyncError::protocol("x", "y").kind(), "protocol");
    }
}
