//! A lazily connected, self-healing connection to one tier: a multiplexed
//! connection to a single server, or the `redis` crate's cluster client
//! (`redis+cluster://` URLs), which routes each command by its first key.
//!
//! `connect` never needs the server to be up. A call after a failed connect
//! within the backoff window fails at once (so the request path fails fast
//! while a Redis is down), and any I/O error or timeout drops the connection
//! so the next call reconnects. Blocking commands and pub/sub use connections
//! of their own: one blocking command on the shared
//! multiplexed connection would stall every request queued behind it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult,
    ServerErrorKind, Value,
};
use tokio::sync::Mutex;

use crate::config::{backoff, CONNECT_TIMEOUT};
use crate::error::is_connection_error;
use crate::target::RedisTarget;
use crate::topology::{parse_slots, Primary, SLOTS};

pub(crate) struct Conn {
    dialer: Dialer,
    target: RedisTarget,
    response_timeout: Duration,
    state: std::sync::Mutex<State>,
    dialing: Mutex<()>,
    /// A cluster's primaries, each reached directly for the commands that
    /// are per node (`SCAN`, `CONFIG`, `INFO`, pub/sub).
    nodes: std::sync::Mutex<HashMap<String, Arc<Conn>>>,
}

enum Dialer {
    Single(Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
}

/// The connection of a [`Conn`]: one server, or a cluster client that routes
/// each command to its key's slot (and follows `MOVED`, `ASK`, `TRYAGAIN`).
#[derive(Clone)]
pub(crate) enum Link {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            // A plain pipeline is a batch of independent commands; on a
            // cluster its keys may live on several nodes, which the crate
            // refuses before sending anything. Such a batch goes out one
            // command at a time instead. (A transaction must stay in one
            // slot: that is the caller's design, never split.)
            Link::Cluster(c) => Box::pin(async move {
                match c.req_packed_commands(pipeline, offset, count).await {
                    Err(e)
                        if !pipeline.is_transaction()
                            && e.kind() == ErrorKind::Server(ServerErrorKind::CrossSlot) =>
                    {
                        let mut out = Vec::with_capacity(pipeline.len());
                        for cmd in pipeline.cmd_iter() {
                            out.push(c.req_packed_command(cmd).await?);
                        }
                        Ok(out)
                    }
                    other => other,
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(_) => 0,
        }
    }
}

/// A lazily connected, self-healing connection to one tier, single server
/// or cluster, for code outside this crate (the app's own keys: sessions,
/// rate limits, schedules). Cheap to clone; every command fails fast while
/// the tier is down, like the sync machinery's own.
#[derive(Clone)]
pub struct RedisLink(Arc<Conn>);

impl RedisLink {
    /// `url`: a `REDIS_URL` ([`RedisTarget`]); nothing is reached yet.
    pub fn open(url: &str, response_timeout: Duration) -> Result<Self, String> {
        let target = RedisTarget::parse(url)?;
        Conn::open(target, response_timeout)
            .map(|c| Self(Arc::new(c)))
            .map_err(|e| e.category().to_string())
    }

    pub fn is_cluster(&self) -> bool {
        self.0.target.is_cluster()
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(
            self.0
                .with(move |mut link| async move { link.req_packed_command(cmd).await }),
        )
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.0.with(move |mut link| async move {
            link.req_packed_commands(pipeline, offset, count).await
        }))
    }

    fn get_db(&self) -> i64 {
        match &self.0.target {
            RedisTarget::Single(info) => info.redis_settings().db(),
            RedisTarget::Cluster(_) => 0,
        }
    }
}

/// What [`Conn::topology`] found.
pub(crate) struct Topology {
    /// Every primary with a connection of its own (a single server: itself).
    pub(crate) primaries: Vec<(Primary, Arc<Conn>)>,
    /// Slots served by a primary; a tier is whole at [`SLOTS`].
    pub(crate) served: u32,
}

/// A live connection: its generation, the link, and its server's `run_id`.
type Live = (u64, Link, Option<Arc<str>>);

#[derive(Default)]
struct State {
    /// The connection, its generation, and the server's `run_id` read on it
    /// right after connecting: a connection lives no longer than the server
    /// process it reached, so its `run_id` is exact for every call made on it.
    /// (A cluster connection reaches several servers: no `run_id`.)
    conn: Option<(u64, Link, Option<Arc<str>>)>,
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Conn {
    /// `response_timeout` bounds every command on the connection.
    pub(crate) fn new(client: Client, response_timeout: Duration) -> Self {
        let target = RedisTarget::Single(client.get_connection_info().clone());
        Self::with_dialer(
            Dialer::Single(client, single_config(response_timeout)),
            target,
            response_timeout,
        )
    }

    /// A connection to `target`, single server or cluster; nothing is reached yet.
    pub(crate) fn open(target: RedisTarget, response_timeout: Duration) -> RedisResult<Self> {
        let dialer = match &target {
            RedisTarget::Single(info) => {
                Dialer::Single(Client::open(info.clone())?, single_config(response_timeout))
            }
            RedisTarget::Cluster(seeds) => Dialer::Cluster(
                ClusterClient::builder(seeds.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(response_timeout)
                    // Retries cover MOVED/ASK/TRYAGAIN during a slot
                    // migration or failover; few and short, so a request
                    // still fails fast while the cluster is down.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200)
                    .build()?,
            ),
        };
        Ok(Self::with_dialer(dialer, target, response_timeout))
    }

    fn with_dialer(dialer: Dialer, target: RedisTarget, response_timeout: Duration) -> Self {
        Self {
            dialer,
            target,
            response_timeout,
            state: Default::default(),
            dialing: Mutex::new(()),
            nodes: Default::default(),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    /// The database number of a single server (pub/sub channel names carry it).
    pub(crate) fn db(&self) -> i64 {
        match &self.target {
            RedisTarget::Single(info) => info.redis_settings().db(),
            RedisTarget::Cluster(_) => 0,
        }
    }

    /// A client for a connection of its own (pub/sub) to a single server.
    pub(crate) fn single_client(&self) -> Option<&Client> {
        match &self.dialer {
            Dialer::Single(client, _) => Some(client),
            Dialer::Cluster(_) => None,
        }
    }

    /// The primaries now, each with its own connection. On a single server,
    /// the server itself, serving every slot.
    pub(crate) async fn topology(self: &Arc<Self>) -> RedisResult<Topology> {
        if !self.is_cluster() {
            let (host, port) = match &self.target {
                RedisTarget::Single(info) => match info.addr() {
                    redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
                    redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
                    other => (other.to_string(), 0),
                },
                RedisTarget::Cluster(_) => unreachable!("checked above"),
            };
            let me = Primary {
                host,
                port,
                id: String::new(),
                ranges: vec![(0, (SLOTS - 1) as u16)],
            };
            return Ok(Topology {
                primaries: vec![(me, Arc::clone(self))],
                served: SLOTS,
            });
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let reply: Value = self.query(&cmd).await?;
        let (primaries, served) = parse_slots(&reply).map_err(|detail| {
            RedisError::from((ErrorKind::Parse, "unexpected CLUSTER SLOTS reply", detail))
        })?;
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.retain(|addr, _| primaries.iter().any(|p| &p.addr() == addr));
        let mut out = Vec::with_capacity(primaries.len());
        for primary in primaries {
            let conn = match nodes.get(&primary.addr()) {
                Some(conn) => Arc::clone(conn),
                None => {
                    let info = self.target.node(&primary.host, primary.port);
                    let conn = Arc::new(Conn::new(Client::open(info)?, self.response_timeout));
                    nodes.insert(primary.addr(), Arc::clone(&conn));
                    conn
                }
            };
            out.push((primary, conn));
        }
        Ok(Topology {
            primaries: out,
            served,
        })
    }

    async fn dial(&self) -> RedisResult<(Link, Option<Arc<str>>)> {
        match &self.dialer {
            Dialer::Single(client, config) => {
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(config)
                    .await?;
                let info: String = redis::cmd("INFO")
                    .arg("server")
                    .query_async(&mut conn)
                    .await?;
                let run_id: Arc<str> = info
                    .lines()
                    .find_map(|l| l.strip_prefix("run_id:"))
                    .unwrap_or_default()
                    .trim()
                    .into();
                Ok((Link::Single(conn), Some(run_id)))
            }
            Dialer::Cluster(client) => {
                Ok((Link::Cluster(client.get_async_connection().await?), None))
            }
        }
    }

    /// The live connection, or an error while waiting to reconnect; `None`
    /// when a connect is due. A plain mutex held for a clone only: every
    /// command of every request passes here.
    fn current(&self) -> Option<RedisResult<Live>> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((generation, conn, run_id)) = &st.conn {
            return Some(Ok((*generation, conn.clone(), run_id.clone())));
        }
        if st.retry_at.is_some_and(|at| Instant::now() < at) {
            return Some(Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "not connected (waiting to reconnect)",
            ))));
        }
        None
    }

    async fn get(&self) -> RedisResult<Live> {
        if let Some(ready) = self.current() {
            return ready;
        }
        // One connect at a time; whoever waited for it takes its outcome.
        let _dialing = self.dialing.lock().await;
        if let Some(ready) = self.current() {
            return ready;
        }
        // A cluster client first reads the topology from a seed: allow it
        // one more connect.
        let limit = match self.dialer {
            Dialer::Single(..) => CONNECT_TIMEOUT + Duration::from_millis(100),
            Dialer::Cluster(_) => CONNECT_TIMEOUT * 2 + Duration::from_millis(100),
        };
        let outcome = tokio::time::timeout(limit, self.dial()).await;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(Ok((conn, run_id))) => {
                st.generation += 1;
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some((st.generation, conn.clone(), run_id.clone()));
                Ok((st.generation, conn, run_id))
            }
            outcome => {
                st.failures += 1;
                st.retry_at =
                    Some(Instant::now() + backoff(st.failures, Duration::from_millis(100)));
                Err(match outcome {
                    Ok(Err(e)) => e,
                    _ => RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    )),
                })
            }
        }
    }

    /// Runs `f` on the connection; a connection-level failure discards it.
    pub(crate) async fn with<T, F, Fut>(&self, f: F) -> RedisResult<T>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (generation, conn, _) = self.get().await?;
        let result = f(conn).await;
        self.after(generation, &result);
        result
    }

    fn after<T>(&self, generation: u64, result: &RedisResult<T>) {
        if let Err(e) = result {
            if is_connection_error(e) {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if st.conn.as_ref().is_some_and(|(g, _, _)| *g == generation) {
                    st.conn = None;
                }
            }
        }
    }

    /// Runs a script of `sync/lua/` (with the prelude) and hands it the
    /// `run_id` of the server this very connection reached, as a last
    /// argument the prelude takes off (`epoch:<run_id>`): no `INFO` per call.
    /// On a cluster the script's node is known only to the router, so the
    /// prelude asks its own server (`INFO`, a few µs).
    pub(crate) async fn invoke_epoch<T: redis::FromRedisValue>(
        &self,
        mut inv: redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        let (generation, mut conn, run_id) = self.get().await?;
        if let Some(run_id) = run_id {
            inv.arg(format!("epoch:{run_id}"));
        }
        let result = inv.invoke_async(&mut conn).await;
        self.after(generation, &result);
        result
    }

    /// Runs one command.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        self.with(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs a script invocation.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        self.with(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    /// Runs a pipeline (or transaction).
    pub(crate) async fn pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> RedisResult<T> {
        self.with(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }
}

fn single_config(response_timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
}
