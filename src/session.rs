//! Server-side sessions in the local Redis under `session:` and a typed facade
//! over them. No maintained tower-sessions 0.15 store runs on the `redis`
//! crate (the maintained one uses `fred`, a second Redis client we would
//! have to configure and pool apart), so this one mirrors the fred store in
//! ~80 lines.

use async_trait::async_trait;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use redis::aio::ConnectionManager;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::Session;

use crate::error::AppError;

/// Prefix of session keys: the service's own keys live under `session:` and `sync:` only.
const SESSION_PREFIX: &str = "session:";

#[derive(Clone)]
pub struct RedisSessionStore {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisSessionStore")
    }
}

impl RedisSessionStore {
    pub fn new(conn: ConnectionManager) -> Self {
        Self { conn }
    }

    fn key(id: &Id) -> String {
        format!("{SESSION_PREFIX}{id}")
    }

    /// `SET key value EXAT expiry [NX|XX]`; answers whether it was written.
    async fn set(&self, record: &Record, condition: Option<&str>) -> session_store::Result<bool> {
        let value =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(Self::key(&record.id))
            .arg(value)
            .arg("EXAT")
            .arg(record.expiry_date.unix_timestamp());
        if let Some(c) = condition {
            cmd.arg(c);
        }
        let reply: Option<String> = cmd
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(reply.is_some())
    }
}

fn backend(e: redis::RedisError) -> session_store::Error {
    session_store::Error::Backend(format!("{:?}", e.kind()))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id must not take over someone else's session.
        while !self.set(record, Some("NX")).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.set(record, None).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Self::key(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        match raw {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| session_store::Error::Decode(e.to_string())),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _: i64 = redis::cmd("DEL")
            .arg(Self::key(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }
}

const USER_ID: &str = "user_id";
const OAUTH_STATE: &str = "oauth_state";
const PKCE_VERIFIER: &str = "pkce_verifier";

/// What the OAuth callback needs back from `/login`, taken out of the session
/// (single use) before anything is compared.
pub struct PendingLogin {
    pub state: Option<String>,
    pub pkce_verifier: Option<String>,
}

/// Typed access to the session: the only place that spells session field names.
pub struct AuthSession(pub Session);

impl AuthSession {
    pub async fn user_id(&self) -> Result<Option<u64>, AppError> {
        Ok(self.0.get::<u64>(USER_ID).await?)
    }

    pub async fn begin_login(&self, state: &str, pkce_verifier: &str) -> Result<(), AppError> {
        self.0.insert(OAUTH_STATE, state).await?;
        self.0.insert(PKCE_VERIFIER, pkce_verifier).await?;
        Ok(())
    }

    pub async fn take_pending_login(&self) -> Result<PendingLogin, AppError> {
        Ok(PendingLogin {
            state: self.0.remove::<String>(OAUTH_STATE).await?,
            pkce_verifier: self.0.remove::<String>(PKCE_VERIFIER).await?,
        })
    }

    /// Starts a fresh session for the user (new id: no session fixation).
    pub async fn sign_in(&self, user_id: u64) -> Result<(), AppError> {
        self.0.clear().await;
        self.0.cycle_id().await?;
        self.0.insert(USER_ID, user_id).await?;
        Ok(())
    }

    pub async fn sign_out(&self) -> Result<(), AppError> {
        self.0.flush().await?;
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Session::from_request_parts(parts, state)
            .await
            .map(AuthSession)
            .map_err(|_| AppError::internal("session layer missing"))
    }
}

/// The signed-in user's GitHub id, from the server-side session only.
#[derive(Clone, Copy, Debug)]
pub struct CurrentUser(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = AuthSession::from_request_parts(parts, state).await?;
        session
            .user_id()
            .await?
            .map(CurrentUser)
            .ok_or_else(AppError::not_signed_in)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let session = AuthSession::from_request_parts(parts, state).await?;
        Ok(session.user_id().await?.map(CurrentUser))
    }
}
