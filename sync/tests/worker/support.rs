//! Helpers: Redis pairs, the API's gated calls, state comparison, polling.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Once;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Commands;
use sponsorgate_sync::{
    AddOutcome, Gate, Keys, Quotas, StatusUpdate, Sync, SyncConfig, SyncMetrics, WritePath,
};
use tokio::sync::{oneshot, Mutex, MutexGuard};
use tokio::task::JoinHandle;

use crate::proxy::ChaosProxy;
use crate::redis_server::RedisServer;

pub const ORG: &str = "acme";
pub const PASSWORD: &str = "remote-pw";
pub const TTL: u64 = 3600;
pub const QUOTAS: Quotas = Quotas {
    sponsor: 100_000,
    free: 1000,
};

/// Timing guarantees are tested one test at a time (2 cores, real servers).
pub async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    static LOG: Once = Once::new();
    LOG.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("sponsorgate_sync=debug"))
                .with_test_writer()
                .try_init();
        }
    });
    LOCK.lock().await
}

/// A local Redis, a password-protected remote, optionally a proxy in between.
pub struct Pair {
    pub local: RedisServer,
    pub remote: RedisServer,
    pub proxy: Option<ChaosProxy>,
}

impl Pair {
    pub async fn start(with_proxy: bool) -> Self {
        let local = RedisServer::start();
        let remote = RedisServer::start_with_password(PASSWORD);
        let proxy = if with_proxy {
            Some(ChaosProxy::start(remote.port()).await)
        } else {
            None
        };
        Self {
            local,
            remote,
            proxy,
        }
    }

    pub fn proxy(&self) -> &ChaosProxy {
        self.proxy.as_ref().expect("pair started with a proxy")
    }

    /// A worker's configuration; through the proxy when there is one.
    pub fn config(&self, consumer: &str) -> SyncConfig {
        let remote_url = match &self.proxy {
            Some(p) => self.remote.url_via(p.port()),
            None => self.remote.url(),
        };
        let mut cfg = SyncConfig::new(self.local.url(), remote_url, ORG);
        cfg.remote_timeout = Duration::from_millis(300);
        cfg.consumer = consumer.to_string();
        cfg
    }

    pub async fn sync(&self, consumer: &str) -> Sync {
        Sync::connect(self.config(consumer), SyncMetrics::new())
            .await
            .expect("connect")
    }

    /// The API's connection to the local Redis.
    pub async fn api_conn(&self) -> MultiplexedConnection {
        self.local
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("local")
    }
}

pub fn write_path() -> WritePath {
    WritePath::new(Keys::new(ORG), true)
}

/// What the API does with a gated call: fetch back what it asks for, and go
/// ahead with `force` when the fetch-back fails.
macro_rules! gated {
    ($sync:expr, |$force:ident| $call:expr) => {{
        let mut $force = false;
        let mut fetched = 0;
        loop {
            match $call.await.expect("write path") {
                Gate::Done(v) => break v,
                Gate::NeedsFetchBack(key) => {
                    fetched += 1;
                    $force = $sync.fetch_back(&key).await.is_err() || fetched > 2;
                }
            }
        }
    }};
}

pub async fn add(sync: &Sync, conn: &mut MultiplexedConnection, uid: u64, id: &str) -> AddOutcome {
    let wp = write_path();
    gated!(sync, |force| wp
        .add_exclusion(conn, uid, id, QUOTAS, TTL, force))
}

pub async fn remove(sync: &Sync, conn: &mut MultiplexedConnection, uid: u64, id: &str) -> bool {
    let wp = write_path();
    gated!(sync, |force| wp.remove_exclusion(conn, uid, id, TTL, force)).0
}

pub async fn read(
    sync: &Sync,
    conn: &mut MultiplexedConnection,
    uid: u64,
) -> (BTreeSet<String>, bool) {
    let wp = write_path();
    let (ids, sponsor) = gated!(sync, |force| wp.read_exclusions(conn, uid, force));
    (ids.into_iter().collect(), sponsor)
}

pub async fn set_sponsor(
    sync: &Sync,
    conn: &mut MultiplexedConnection,
    uid: u64,
    status: StatusUpdate,
) {
    let wp = write_path();
    let fields = [
        ("id", uid.to_string()),
        ("user_login", format!("user{uid}")),
    ];
    gated!(sync, |force| wp
        .set_sponsor(conn, uid, status, &fields, TTL, force));
}

/// Makes `uid` a sponsor holding `ids`.
pub async fn sponsor_with(sync: &Sync, conn: &mut MultiplexedConnection, uid: u64, ids: &[&str]) {
    set_sponsor(sync, conn, uid, StatusUpdate::Sponsor).await;
    for id in ids {
        add(sync, conn, uid, id).await;
    }
}

/// A key's content as compared between the two servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Absent,
    Set(BTreeSet<String>),
    Hash(BTreeMap<String, String>),
    Other(String),
}

pub fn content(conn: &mut redis::Connection, key: &str) -> Content {
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).expect("TYPE");
    match kind.as_str() {
        "none" => Content::Absent,
        "set" => Content::Set(conn.smembers(key).expect("SMEMBERS")),
        "hash" => Content::Hash(conn.hgetall(key).expect("HGETALL")),
        other => Content::Other(other.to_string()),
    }
}

pub fn members(conn: &mut redis::Connection, key: &str) -> BTreeSet<String> {
    conn.smembers(key).expect("SMEMBERS")
}

pub fn set_of(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Sponsor keys of `uids` (and the sponsors set) whose content differs.
pub fn differences(
    local: &mut redis::Connection,
    remote: &mut redis::Connection,
    uids: &[u64],
) -> Vec<String> {
    let keys = Keys::new(ORG);
    let mut names = vec![keys.sponsors().to_string()];
    for uid in uids {
        names.push(keys.user_details(*uid));
        names.push(keys.mnodes(*uid));
    }
    names
        .into_iter()
        .filter(|k| content(local, k) != content(remote, k))
        .collect()
}

/// Polls `check` every 10 ms until it holds; panics after `limit`. Returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until local and remote agree on the sponsor keys of `uids` and the
/// journal is empty.
pub async fn converged(pair: &Pair, uids: &[u64], limit: Duration) -> Duration {
    let mut local = pair.local.conn();
    let mut remote = pair.remote.conn();
    let start = Instant::now();
    loop {
        let last = differences(&mut local, &mut remote, uids);
        if last.is_empty() && backlog(&mut local) == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "local and remote still differ after {limit:?} on {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn backlog(conn: &mut redis::Connection) -> u64 {
    redis::cmd("XLEN")
        .arg("sync:journal")
        .query(conn)
        .expect("XLEN")
}

/// `Sync::run` in the background until [`Running::stop`].
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

pub fn run(sync: &Sync) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let worker = sync.clone();
    let handle = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = rx.await;
            })
            .await
            .expect("run");
    });
    Running {
        stop: Some(tx),
        handle,
    }
}

/// Runs the worker and waits until it leads and listens to keyspace events.
pub async fn run_ready(sync: &Sync) -> Running {
    let running = run(sync);
    eventually(
        Duration::from_secs(5),
        "notification leader subscribed",
        || async {
            let s = sync.status();
            s.notify_leader && s.subscribed
        },
    )
    .await;
    running
}

/// Steps until the journal is empty.
pub async fn drain(sync: &Sync, conn: &mut redis::Connection, limit: Duration) {
    let start = Instant::now();
    while backlog(conn) > 0 {
        sync.step().await.expect("step");
        assert!(
            start.elapsed() < limit,
            "journal not drained within {limit:?}"
        );
    }
}
