//! The health probe behind [`crate::SyncStore::status`]: every second it pings
//! the remote, reads the local `maxmemory-policy` (can an absent key have
//! been evicted?), and checks the remote's identity (`run_id` and the
//! sentinel `sync:alive`): a remote that restarted or was flushed may have
//! lost data, and every complete local key is copied back to it (guarantee 12 of docs/contract.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;

use crate::config::HEALTH_EVERY;
use crate::conn::Conn;
use crate::core::{remote_lost, RemoteIdentity};
use crate::flags::config_value;
use crate::keys::{REMOTE_IDENTITY, REMOTE_SENTINEL, RESYNCING};
use crate::topology::{Primary, SLOTS};
use crate::Inner;

/// What `/readyz` reports about sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The remote answered the last ping.
    pub remote_up: bool,
    /// The remote lost data and the complete local keys are being copied back.
    pub resyncing: bool,
    /// Keys with changes this process has not pushed yet.
    pub backlog: u64,
    /// This process turns keyspace notifications into pending changes.
    pub notify_leader: bool,
    /// The keyspace-notification subscription is live (only while `run` runs).
    pub subscribed: bool,
}

pub(crate) struct Health {
    pub(crate) remote_up: AtomicBool,
    pub(crate) resyncing: AtomicBool,
    pub(crate) evicting: Arc<AtomicBool>,
}

impl Health {
    pub(crate) fn new(evicting: Arc<AtomicBool>) -> Self {
        Self {
            remote_up: AtomicBool::new(false),
            resyncing: AtomicBool::new(false),
            // Until the policy is read, assume the worst: an absent key is a loss.
            evicting: {
                evicting.store(true, Ordering::Relaxed);
                evicting
            },
        }
    }
}

/// `allkeys-*` can evict keys without a TTL; an unknown policy counts as one.
pub(crate) fn policy_evicts(policy: Option<&str>) -> bool {
    policy.is_none_or(|p| p.starts_with("allkeys"))
}

impl Inner {
    /// Bound of one probe: short, and never longer than a request may wait.
    fn probe_timeout(&self) -> Duration {
        self.cfg
            .remote_timeout
            .clamp(Duration::from_millis(200), Duration::from_millis(900))
    }

    /// The remote's identity now, or `None` when it did not answer (on a
    /// cluster: when a slot is not served or a primary did not answer).
    async fn remote_identity(&self) -> Option<RemoteIdentity> {
        let remote = self.remote.as_ref()?;
        let limit = self.probe_timeout();
        tokio::time::timeout(limit, identity_of(remote))
            .await
            .ok()
            .flatten()
    }

    async fn known_identity(&self) -> Option<RemoteIdentity> {
        let mut get = redis::cmd("GET");
        get.arg(REMOTE_IDENTITY);
        let raw: Option<String> = self.local.query(&get).await.ok()?;
        let (run_id, sentinel) = raw?
            .split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string()))?;
        Some(RemoteIdentity {
            run_id,
            sentinel: Some(sentinel),
        })
    }

    /// One probe: remote identity (PING included), local policy and resync flag.
    pub(crate) async fn probe(self: &Arc<Self>) {
        let identity = self.remote_identity().await;
        let up = identity.is_some();
        let was = self.health.remote_up.swap(up, Ordering::Relaxed);
        if up != was {
            if up {
                tracing::info!(sync.remote = %self.cfg.remote_addr(), "remote redis is reachable");
                self.resync.notify_one();
            } else {
                tracing::warn!(sync.remote = %self.cfg.remote_addr(), "remote redis is unreachable; changes stay pending locally");
            }
        }
        let limit = self.probe_timeout();
        match tokio::time::timeout(limit, local_evicts(&self.local)).await {
            Ok(Ok(evicts)) => self.health.evicting.store(evicts, Ordering::Relaxed),
            _ => tracing::debug!("local redis did not answer the probe"),
        }
        let mut exists = redis::cmd("EXISTS");
        exists.arg(RESYNCING);
        if let Ok(Ok(r)) = tokio::time::timeout(limit, self.local.query::<bool>(&exists)).await {
            self.health.resyncing.store(r, Ordering::Relaxed);
        }
        self.metrics.backlog.set(self.queue.len() as i64);
        if let Some(now) = identity {
            let known = self.known_identity().await;
            if remote_lost(known.as_ref(), &now) && !self.health.resyncing.load(Ordering::Relaxed) {
                tracing::warn!(sync.remote = %self.cfg.remote_addr(), "the remote redis may have lost data (restarted or flushed); copying the local keys back");
                let mut set = redis::cmd("SET");
                set.arg(RESYNCING).arg("1").arg("EX").arg(3600);
                if self.local.query::<()>(&set).await.is_ok() {
                    self.health.resyncing.store(true, Ordering::Relaxed);
                    self.metrics.resyncs.inc();
                }
            }
            if self.health.resyncing.load(Ordering::Relaxed) {
                self.resync.notify_one();
            }
        }
    }

    /// After a repair pass: a fresh sentinel, and the identity it was made for.
    pub(crate) async fn mark_remote_whole(&self) -> Result<(), crate::SyncError> {
        let Some(remote) = self.remote.as_ref() else {
            return Ok(());
        };
        let token = format!("{:016x}", rand::random::<u64>());
        let remote_err = |e| crate::SyncError::Remote {
            addr: self.cfg.remote_addr(),
            source: e,
        };
        let topology = remote.topology().await.map_err(remote_err)?;
        for (primary, node) in &topology.primaries {
            let mut set = redis::cmd("SET");
            set.arg(sentinel_key(remote, primary)).arg(&token);
            node.query::<()>(&set).await.map_err(remote_err)?;
        }
        let Some(now) = self.remote_identity().await else {
            return Err(crate::SyncError::protocol(
                "resync",
                "remote stopped answering",
            ));
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(REMOTE_IDENTITY)
            .arg(format!("{} {token}", now.run_id))
            .ignore()
            .cmd("DEL")
            .arg(RESYNCING)
            .ignore();
        self.local
            .pipe::<()>(&pipe)
            .await
            .map_err(crate::SyncError::Local)?;
        self.health.resyncing.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// The sentinel of one primary: `sync:alive` on a single server, a key in
/// one of its own slots on each primary of a cluster (a flush of one primary
/// loses that one).
fn sentinel_key(tier: &Conn, primary: &Primary) -> String {
    if tier.is_cluster() {
        primary.own_key(&format!("{REMOTE_SENTINEL}:"))
    } else {
        REMOTE_SENTINEL.to_owned()
    }
}

fn run_id_of(info: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The identity of a tier: every primary's `run_id` and sentinel.
async fn identity_of(tier: &Arc<Conn>) -> Option<RemoteIdentity> {
    let topology = tier.topology().await.ok()?;
    if topology.served != SLOTS {
        return None;
    }
    let mut nodes = Vec::with_capacity(topology.primaries.len());
    for (primary, node) in &topology.primaries {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO")
            .arg("server")
            .cmd("GET")
            .arg(sentinel_key(tier, primary));
        let (info, sentinel): (String, Option<String>) = node.pipe(&pipe).await.ok()?;
        nodes.push((primary.addr(), run_id_of(&info), sentinel));
    }
    Some(RemoteIdentity::of_nodes(tier.is_cluster(), nodes))
}

/// Whether an absent sponsor key of the local tier may have been evicted:
/// when any primary's policy can evict keys without a TTL, or one refuses
/// `CONFIG` (a managed Redis).
async fn local_evicts(local: &Arc<Conn>) -> redis::RedisResult<bool> {
    let topology = local.topology().await?;
    let mut evicts = false;
    for (_, node) in &topology.primaries {
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg("maxmemory-policy");
        match node.query::<Value>(&get).await {
            Ok(policy) => evicts |= policy_evicts(config_value(&policy).as_deref()),
            Err(e) if e.code().is_some() => evicts = true,
            Err(e) => return Err(e),
        }
    }
    Ok(evicts)
}

/// Whether every slot of a tier is served and every primary answers `PING`
/// within `within` (`/readyz`).
pub(crate) async fn tier_whole(tier: &Arc<Conn>, within: Duration) -> bool {
    let check = async {
        let topology = tier.topology().await.ok()?;
        if topology.served != SLOTS {
            return None;
        }
        for (_, node) in &topology.primaries {
            node.query::<String>(&redis::cmd("PING")).await.ok()?;
        }
        Some(())
    };
    matches!(tokio::time::timeout(within, check).await, Ok(Some(())))
}

/// Probes every second for as long as a `SyncStore` exists.
pub(crate) fn spawn(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            inner.probe().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allkeys_or_unknown_policies_evict_sponsor_keys() {
        assert!(policy_evicts(Some("allkeys-lru")));
        assert!(policy_evicts(Some("allkeys-random")));
        assert!(policy_evicts(None));
        assert!(!policy_evicts(Some("noeviction")));
        assert!(!policy_evicts(Some("volatile-lru")));
    }
}
