//! Server-side sessions in the local Redis under `session:` and a typed facade
//! over them. No maintained tower-sessions 0.15 store runs on the `redis`
//! crate (the maintained one uses `fred`, a second Redis client we would
//! have to configure and pool apart), so this one mirrors the fred store in
//! ~80 lines.

use async_trait::async_trait;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use sponsorgate_sync::RedisLink;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session};

use crate::error::AppError;

/// Prefix of session keys: the service's own keys live under `session:` and `sync:` only.
const SESSION_PREFIX: &str = "session:";

#[derive(Clone)]
pub struct RedisSessionStore {
    conn: RedisLink,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisSessionStore")
    }
}

impl RedisSessionStore {
    pub fn new(conn: RedisLink) -> Self {
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

/// A stored session record, as `load` reads it: anything else in the key
/// (another program's write, a truncated value) is an error, never a panic.
pub fn decode_record(bytes: &[u8]) -> session_store::Result<Record> {
    serde_json::from_slice(bytes).map_err(|e| session_store::Error::Decode(e.to_string()))
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
        // `XX`: only a session that still exists is saved, so a request that
        // was in flight when `POST /logout` deleted it cannot bring it back.
        self.set(record, Some("XX")).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Self::key(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        match raw {
            None => Ok(None),
            // Not a record of ours: no session (the visitor signs in again)
            // rather than an error on every request with that cookie.
            Some(bytes) => Ok(decode_record(&bytes).ok()),
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

/// How long a signed-in session lives without being renewed.
pub const SESSION_LIFETIME: time::Duration = time::Duration::days(7);
/// How long a sign-in may take between `GET /login` and the callback: the
/// record holding its state and PKCE verifier lives this long at most.
pub const LOGIN_LIFETIME: time::Duration = time::Duration::minutes(10);

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

    /// Keeps the sign-in's state and verifier. An anonymous visitor's record
    /// lives [`LOGIN_LIFETIME`] only; the long session starts at sign-in.
    pub async fn begin_login(&self, state: &str, pkce_verifier: &str) -> Result<(), AppError> {
        if self.user_id().await?.is_none() {
            self.0
                .set_expiry(Some(Expiry::OnInactivity(LOGIN_LIFETIME)));
        }
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
        self.0
            .set_expiry(Some(Expiry::OnInactivity(SESSION_LIFETIME)));
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
