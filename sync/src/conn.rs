//! A lazily connected, self-healing multiplexed connection.
//!
//! `connect` never needs the server to be up. A call after a failed connect
//! within the backoff window fails at once (so the request path fails fast
//! while a Redis is down), and any I/O error or timeout drops the connection
//! so the next call reconnects. Blocking commands and pub/sub use connections
//! of their own (RUST-NOTES §5).

use std::future::Future;
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
    conn: Option<(u64, MultiplexedConnection)>,
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

    async fn get(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let mut st = self.state.lock().await;
        if let Some((generation, conn)) = &st.conn {
            return Ok((*generation, conn.clone()));
        }
        if st.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "not connected (waiting to reconnect)",
            )));
        }
        let attempt = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config);
        match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_millis(100), attempt).await {
            Ok(Ok(conn)) => {
                st.generation += 1;
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some((st.generation, conn.clone()));
                Ok((st.generation, conn))
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
        let (generation, conn) = self.get().await?;
        let result = f(conn).await;
        if let Err(e) = &result {
            if is_connection_error(e) {
                let mut st = self.state.lock().await;
                if st.conn.as_ref().is_some_and(|(g, _)| *g == generation) {
                    st.conn = None;
                }
            }
        }
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
