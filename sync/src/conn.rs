//! A lazily connected, self-healing multiplexed connection.
//!
//! `connect` never needs the server to be up. A call after a failed connect
//! within the backoff window fails at once (so the request path fails fast
//! while a Redis is down), and any I/O error or timeout drops the connection
//! so the next call reconnects. Blocking commands and pub/sub use connections
//! of their own: one blocking command on the shared
//! multiplexed connection would stall every request queued behind it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use tokio::sync::Mutex;

use crate::config::{backoff, CONNECT_TIMEOUT};
use crate::error::is_connection_error;

pub(crate) struct Conn {
    client: Client,
    config: AsyncConnectionConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The connection, its generation, and the server's `run_id` read on it
    /// right after connecting: a connection lives no longer than the server
    /// process it reached, so its `run_id` is exact for every call made on it.
    conn: Option<(u64, MultiplexedConnection, Arc<str>)>,
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Conn {
    /// `response_timeout` bounds every command on the connection.
    pub(crate) fn new(client: Client, response_timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        Self {
            client,
            config,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    async fn get(&self) -> RedisResult<(u64, MultiplexedConnection, Arc<str>)> {
        let mut st = self.state.lock().await;
        if let Some((generation, conn, run_id)) = &st.conn {
            return Ok((*generation, conn.clone(), Arc::clone(run_id)));
        }
        if st.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "not connected (waiting to reconnect)",
            )));
        }
        let attempt = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
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
            Ok::<_, RedisError>((conn, run_id))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_millis(100), attempt).await {
            Ok(Ok((conn, run_id))) => {
                st.generation += 1;
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some((st.generation, conn.clone(), Arc::clone(&run_id)));
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
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (generation, conn, _) = self.get().await?;
        let result = f(conn).await;
        self.after(generation, &result).await;
        result
    }

    async fn after<T>(&self, generation: u64, result: &RedisResult<T>) {
        if let Err(e) = result {
            if is_connection_error(e) {
                let mut st = self.state.lock().await;
                if st.conn.as_ref().is_some_and(|(g, _, _)| *g == generation) {
                    st.conn = None;
                }
            }
        }
    }

    /// Runs a script of `sync/lua/` (with the prelude) and hands it the
    /// `run_id` of the server this very connection reached, as a last
    /// argument the prelude takes off (`epoch:<run_id>`): no `INFO` per call.
    pub(crate) async fn invoke_epoch<T: redis::FromRedisValue>(
        &self,
        mut inv: redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        let (generation, mut conn, run_id) = self.get().await?;
        inv.arg(format!("epoch:{run_id}"));
        let result = inv.invoke_async(&mut conn).await;
        self.after(generation, &result).await;
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
