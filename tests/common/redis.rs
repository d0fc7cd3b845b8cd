//! Throwaway `redis-server` processes on free TCP ports, stopped on drop.
//! Tests never touch a Redis they did not start.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// A local-style Redis: no persistence, no password.
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// A remote-style Redis protected by a password.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password), &[])
    }

    pub fn start_with(password: Option<&str>, extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Self {
            child: None,
            port: 0,
            password: password.map(str::to_owned),
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        // The port is picked by bind-and-release, which can race with another
        // test; retry on a different port when the server does not come up.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start; is it installed? (apt-get install -y redis-server)");
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path());
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        cmd.args(&self.extra_args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn redis-server");
        self.child = Some(child);
        if self.wait_ready(Duration::from_secs(5)) {
            true
        } else {
            self.kill();
            false
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200))
                {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://[:password@]127.0.0.1:port`
    pub fn url(&self) -> String {
        url_for(self.port, self.password.as_deref())
    }

    /// The same server reached through another port (e.g. a [`super::proxy::ChaosProxy`]).
    pub fn url_via(&self, port: u16) -> String {
        url_for(port, self.password.as_deref())
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }

    /// A plain synchronous connection, as "another program" reading the Redis would use.
    pub fn conn(&self) -> redis::Connection {
        self.client()
            .get_connection()
            .expect("connect to test redis")
    }

    /// Stops the server (SIGKILL), keeping its port for [`Self::restart`].
    pub fn stop(&mut self) {
        self.kill();
    }

    /// From now on, every command slower than `micros` is logged (SLOWLOG,
    /// emptied first): what [`Self::slow_commands`] reads.
    pub fn watch_slow_commands(&self, micros: u64) {
        let mut conn = self.conn();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(micros)
            .query(&mut conn)
            .expect("CONFIG SET slowlog-log-slower-than");
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query(&mut conn)
            .expect("SLOWLOG RESET");
    }

    /// The commands logged since [`Self::watch_slow_commands`].
    pub fn slow_commands(&self) -> Vec<redis::Value> {
        redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(100)
            .query(&mut self.conn())
            .expect("SLOWLOG GET")
    }

    /// Saves the dataset as a snapshot to come back to ([`Self::rewind`]).
    pub fn snapshot(&mut self) {
        let _: () = redis::cmd("SAVE").query(&mut self.conn()).expect("SAVE");
        std::fs::copy(
            self.dir.path().join("dump.rdb"),
            self.dir.path().join("snapshot.rdb"),
        )
        .expect("keep the snapshot");
    }

    /// Restarts on the same port from the last [`Self::snapshot`]: an older
    /// dataset, as after a restore from a backup or a lagging replica's promotion.
    pub fn rewind(&mut self) {
        self.kill();
        std::fs::copy(
            self.dir.path().join("snapshot.rdb"),
            self.dir.path().join("dump.rdb"),
        )
        .expect("restore the snapshot");
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn url_for(port: u16, password: Option<&str>) -> String {
    match password {
        Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A connection of "another program": to one server, or a cluster client
/// that routes each command to its key's node, as other programs' own
/// cluster clients do.
#[expect(
    clippy::large_enum_variant,
    reason = "a handful per test; boxing would only add noise"
)]
pub enum AnyConn {
    Single(redis::Connection),
    Cluster(redis::cluster::ClusterConnection),
}

impl redis::ConnectionLike for AnyConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Single(c) => c.req_command(cmd),
            Self::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Self::Single(c) => c.supports_pipelining(),
            Self::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::Single(c) => c.check_connection(),
            Self::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::Single(c) => c.is_open(),
            Self::Cluster(c) => c.is_open(),
        }
    }
}

/// A Redis Cluster of throwaway servers: `primaries` primaries, each with
/// `replicas` replicas, built with `redis-cli --cluster create` from the
/// installed `redis-server`. Stopped on drop.
pub struct RedisCluster {
    /// Every node, in the order they were started.
    pub nodes: Vec<RedisServer>,
    password: Option<String>,
}

impl RedisCluster {
    /// A local-style cluster: three primaries, no persistence, no password.
    pub fn start() -> Self {
        Self::start_with(3, 0, None, &[])
    }

    /// A remote-style cluster: three primaries, a password, AOF.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(3, 0, Some(password), &["--appendonly", "yes"])
    }

    pub fn start_with(
        primaries: usize,
        replicas: usize,
        password: Option<&str>,
        extra_args: &[&str],
    ) -> Self {
        let count = primaries * (1 + replicas);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            // The bus port is named: port + 10000 may not exist.
            let bus = free_port().to_string();
            let mut args = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                bus.as_str(),
            ];
            if let Some(pw) = password {
                args.extend(["--masterauth", pw]);
            }
            args.extend(extra_args);
            nodes.push(RedisServer::start_with(password, &args));
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = password {
            create.env("REDISCLI_AUTH", pw);
        }
        let status = create.status().expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self {
            nodes,
            password: password.map(str::to_owned),
        };
        cluster.wait_whole(Duration::from_secs(20));
        cluster
    }

    /// Waits until every node says `cluster_state:ok` and every replica has
    /// finished its first sync.
    pub fn wait_whole(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let whole = self.nodes.iter().all(|n| {
                let mut conn = match n.client().get_connection() {
                    Ok(c) => c,
                    Err(_) => return false,
                };
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .unwrap_or_default();
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut conn)
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
                    && !replication.contains("master_link_status:down")
                    && !replication.contains("master_sync_in_progress:1")
            });
            if whole {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not form");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://[:password@]127.0.0.1:p1,…` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        match &self.password {
            Some(pw) => format!("redis+cluster://:{pw}@{}", seeds.join(",")),
            None => format!("redis+cluster://{}", seeds.join(",")),
        }
    }

    /// A cluster connection, as another program's cluster client.
    pub fn conn(&self) -> AnyConn {
        let seeds: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        let client = redis::cluster::ClusterClient::builder(seeds)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .build()
            .expect("cluster client");
        AnyConn::Cluster(
            client
                .get_connection()
                .expect("connect to the test cluster"),
        )
    }

    /// The nodes that are primaries now (from each node's own `ROLE`).
    pub fn primaries(&self) -> Vec<&RedisServer> {
        self.nodes
            .iter()
            .filter(|n| {
                let role: Vec<redis::Value> = n
                    .client()
                    .get_connection()
                    .and_then(|mut c| redis::cmd("ROLE").query(&mut c))
                    .unwrap_or_default();
                matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master")
            })
            .collect()
    }

    /// The index in [`Self::nodes`] of the primary that serves `key` now
    /// (the one that answers for it without `MOVED`).
    pub fn index_of(&self, key: &str) -> usize {
        let primaries: Vec<u16> = self.primaries().iter().map(|n| n.port()).collect();
        self.nodes
            .iter()
            .position(|n| {
                primaries.contains(&n.port())
                    && redis::cmd("EXISTS")
                        .arg(key)
                        .query::<i64>(&mut n.conn())
                        .is_ok()
            })
            .expect("no primary serves the key")
    }

    pub fn node_of(&self, key: &str) -> &RedisServer {
        &self.nodes[self.index_of(key)]
    }

    /// The index of a replica of the node at `primary`.
    pub fn replica_of(&self, primary: usize) -> usize {
        let port = i64::from(self.nodes[primary].port());
        self.nodes
            .iter()
            .position(|n| {
                let role: Vec<redis::Value> =
                    redis::cmd("ROLE").query(&mut n.conn()).unwrap_or_default();
                matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"slave")
                    && matches!(role.get(2), Some(redis::Value::Int(p)) if *p == port)
            })
            .expect("the primary has no replica")
    }

    /// The node id of the node at `index`.
    pub fn id_of(&self, index: usize) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.nodes[index].conn())
            .expect("CLUSTER MYID")
    }

    /// Moves the slot of `key` from its primary to the primary at `to`, the
    /// way `redis-cli --cluster reshard` does (IMPORTING / MIGRATING, then
    /// `MIGRATE` key by key, then `SETSLOT NODE` everywhere), calling
    /// `between` after each key so that writes can land mid-migration.
    pub fn migrate_slot_of(&self, key: &str, to: usize, mut between: impl FnMut()) {
        let from = self.index_of(key);
        assert_ne!(from, to, "the key is on that node already");
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[from].conn())
            .expect("CLUSTER KEYSLOT");
        let (from_id, to_id) = (self.id_of(from), self.id_of(to));
        let setslot = |node: usize, args: &[&str]| {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(args)
                .query(&mut self.nodes[node].conn())
                .expect("CLUSTER SETSLOT");
        };
        setslot(to, &["IMPORTING", &from_id]);
        setslot(from, &["MIGRATING", &to_id]);
        between();
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(1)
                .query(&mut self.nodes[from].conn())
                .expect("CLUSTER GETKEYSINSLOT");
            let Some(name) = keys.first() else { break };
            let mut migrate = redis::cmd("MIGRATE");
            migrate
                .arg("127.0.0.1")
                .arg(self.nodes[to].port())
                .arg(name)
                .arg(0)
                .arg(5000);
            if let Some(pw) = &self.password {
                migrate.arg("AUTH").arg(pw);
            }
            let _: () = migrate
                .query(&mut self.nodes[from].conn())
                .expect("MIGRATE");
            between();
        }
        for node in 0..self.nodes.len() {
            setslot(node, &["NODE", &to_id]);
        }
        self.wait_whole(Duration::from_secs(10));
    }

    /// Every node's process is paused (SIGSTOP) or resumed (SIGCONT): an
    /// outage in which connections hang, as behind a cut network.
    pub fn pause(&self, paused: bool) {
        for node in &self.nodes {
            node.signal(if paused { "STOP" } else { "CONT" });
        }
    }

    /// Flushes every primary (`FLUSHALL`).
    pub fn flush_all(&self) {
        for node in self.primaries() {
            let _: () = redis::cmd("FLUSHALL")
                .query(&mut node.conn())
                .expect("FLUSHALL");
        }
    }
}

/// One tier of a test: a single server or a cluster. Helpers that only make
/// sense on one server (snapshots, the chaos proxy's port) are reached
/// through `Deref` and refuse a cluster.
pub enum Tier {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Tier {
    pub fn url(&self) -> String {
        match self {
            Self::Single(s) => s.url(),
            Self::Cluster(c) => c.url(),
        }
    }

    /// A connection of another program (a cluster client on a cluster).
    pub fn conn(&self) -> AnyConn {
        match self {
            Self::Single(s) => AnyConn::Single(s.conn()),
            Self::Cluster(c) => c.conn(),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub fn cluster(&self) -> &RedisCluster {
        match self {
            Self::Cluster(c) => c,
            Self::Single(_) => panic!("this tier is a single server"),
        }
    }

    pub fn cluster_mut(&mut self) -> &mut RedisCluster {
        match self {
            Self::Cluster(c) => c,
            Self::Single(_) => panic!("this tier is a single server"),
        }
    }

    /// The servers that serve keys now: the server, or a cluster's primaries.
    pub fn primaries(&self) -> Vec<&RedisServer> {
        match self {
            Self::Single(s) => vec![s],
            Self::Cluster(c) => c.primaries(),
        }
    }
}

impl std::ops::Deref for Tier {
    type Target = RedisServer;

    fn deref(&self) -> &RedisServer {
        match self {
            Self::Single(s) => s,
            Self::Cluster(_) => panic!("a single-server helper was used on a cluster"),
        }
    }
}

impl std::ops::DerefMut for Tier {
    fn deref_mut(&mut self) -> &mut RedisServer {
        match self {
            Self::Single(s) => s,
            Self::Cluster(_) => panic!("a single-server helper was used on a cluster"),
        }
    }
}
