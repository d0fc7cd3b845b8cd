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
