//! Shared mutable state of one simulator: the world, codes, tokens, switches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::watch;

use crate::fixtures::FixtureUser;
use crate::SimOptions;

/// The endpoints whose behaviour can be switched and whose calls are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /login/oauth/authorize`
    Authorize,
    /// `POST /login/oauth/access_token`
    Token,
    /// `GET /user`
    User,
    /// `GET /user/emails`
    Emails,
    /// `POST /graphql`
    Graphql,
}

/// How an endpoint misbehaves (see [`crate::GithubSim::set_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Normal behaviour.
    None,
    /// Answer with this HTTP status and a GitHub-like body.
    Status(u16),
    /// Never answer (until the simulator shuts down); other requests go on.
    Hang,
    /// `401 Bad credentials` on the API; `incorrect_client_credentials` on the
    /// token endpoint; a 401 page on authorize.
    Unauthorized,
    /// GraphQL: HTTP 200, `data: null`, `errors: [{type: RATE_LIMITED}]`.
    /// REST: 403 rate-limit answer. Web endpoints: 429 page.
    GraphqlErrors,
    /// Succeed this many more requests, then answer `Status(502)` from then on.
    FailAfter(usize),
}

/// The parameters of the last `GET /login/oauth/authorize`, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizeRecord {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// An authorization code waiting to be exchanged.
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub challenge: Option<String>,
    pub login: String,
    pub issued: Instant,
}

/// What an access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct TokenGrant {
    pub login: String,
    pub scopes: Vec<String>,
}

pub(crate) struct Inner {
    pub world: Vec<FixtureUser>,
    pub codes: HashMap<String, CodeGrant>,
    pub tokens: HashMap<String, TokenGrant>,
    pub failures: HashMap<Endpoint, Failure>,
    pub calls: HashMap<Endpoint, usize>,
    pub last_authorize: Option<AuthorizeRecord>,
    pub code_ttl: Duration,
    /// Requests counted against each user's rate limit, per resource.
    pub rate_used: HashMap<(String, &'static str), u64>,
}

/// Cheap-to-clone handle given to every handler.
#[derive(Clone)]
pub(crate) struct Shared {
    inner: Arc<Mutex<Inner>>,
    pub opts: Arc<SimOptions>,
    /// `http://127.0.0.1:PORT`
    pub base: Arc<str>,
    pub shutdown: watch::Receiver<bool>,
}

/// What the `Authorization` header of an API request amounts to.
pub(crate) enum Auth {
    Missing,
    Unknown,
    Valid {
        grant: TokenGrant,
        user: Box<FixtureUser>,
    },
}

impl Shared {
    pub fn new(opts: SimOptions, base: String, shutdown: watch::Receiver<bool>) -> Self {
        let inner = Inner {
            world: crate::world::fixtures(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            failures: HashMap::new(),
            calls: HashMap::new(),
            last_authorize: None,
            code_ttl: Duration::from_secs(600),
            rate_used: HashMap::new(),
        };
        Shared {
            inner: Arc::new(Mutex::new(inner)),
            opts: Arc::new(opts),
            base: base.into(),
            shutdown,
        }
    }

    /// Runs `f` under the lock (never held across an await).
    pub fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard: MutexGuard<'_, Inner> = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// A new `gho_` token for `login` with `scopes`.
    pub fn mint_token(&self, login: &str, scopes: Vec<String>) -> String {
        let token = format!("gho_{}", random_alnum(36));
        let grant = TokenGrant {
            login: login.to_string(),
            scopes,
        };
        self.with(|s| s.tokens.insert(token.clone(), grant));
        token
    }

    /// Resolves `Authorization: token X` / `Bearer X` to a grant and its user.
    pub fn auth(&self, headers: &HeaderMap) -> Auth {
        let Some(token) = bearer(headers) else {
            return Auth::Missing;
        };
        self.with(|s| {
            let Some(grant) = s.tokens.get(&token).cloned() else {
                return Auth::Unknown;
            };
            match find(&s.world, &grant.login) {
                Some(user) => Auth::Valid {
                    grant,
                    user: Box::new(user.clone()),
                },
                None => Auth::Unknown,
            }
        })
    }

    /// Counts one request of `login` against `resource`; returns requests used.
    pub fn count_rate(&self, login: &str, resource: &'static str) -> u64 {
        self.with(|s| {
            let used = s
                .rate_used
                .entry((login.to_ascii_lowercase(), resource))
                .or_insert(0);
            *used += 1;
            *used
        })
    }
}

/// The token of an `Authorization: token X` or `Bearer X` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    let known = scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer");
    (known && !token.is_empty()).then(|| token.to_string())
}

/// The account with this login (case-insensitive, as on GitHub).
pub(crate) fn find<'a>(world: &'a [FixtureUser], login: &str) -> Option<&'a FixtureUser> {
    world.iter().find(|u| u.login.eq_ignore_ascii_case(login))
}

/// Splits a requested scope list (spaces or commas) and normalises it the way
/// GitHub stores scopes: duplicates and scopes implied by `user` are dropped.
pub(crate) fn normalize_scopes(requested: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in requested.split([' ', ',']).filter(|s| !s.is_empty()) {
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_string());
        }
    }
    if out.iter().any(|s| s == "user") {
        out.retain(|s| !matches!(s.as_str(), "read:user" | "user:email" | "user:follow"));
    }
    out
}

/// Whether `scopes` grant `needed` (directly or through its parent `user`).
pub(crate) fn has_scope(scopes: &[String], needed: &str) -> bool {
    scopes.iter().any(|s| {
        s == needed || (s == "user" && matches!(needed, "read:user" | "user:email" | "user:follow"))
    })
}

pub(crate) fn random_alnum(len: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

pub(crate) fn random_hex(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_normalised_like_github() {
        assert_eq!(
            normalize_scopes("read:user user:email"),
            vec!["read:user", "user:email"]
        );
        assert_eq!(
            normalize_scopes("user,gist,user:email"),
            vec!["user", "gist"]
        );
        assert!(normalize_scopes("").is_empty());
        assert!(has_scope(&["user".into()], "read:user"));
        assert!(!has_scope(&["user:email".into()], "read:user"));
    }

    #[test]
    fn bearer_accepts_token_and_bearer_schemes() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "token abc".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some("abc"));
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some("xyz"));
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
