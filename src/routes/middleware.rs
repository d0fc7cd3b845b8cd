//! The middleware every route runs through: request metrics and the
//! conversion of non-JSON error responses into the contract's error shape.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, OptionalFromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::{json_response, AppError, ErrorBody, ErrorCode};
use crate::metrics::{RouteLabel, RouteStatus};
use crate::ratelimit::{counter_key, user_subject, Decision, Policy, StepCounted, StepLimit};
use crate::routes::identity::{bearer_token, Caller};
use crate::routes::negotiate::{is_browser_form, BODY_LIMIT};
use crate::state::AppState;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The request's route template (`/exclusions/{id}`), once routed.
fn route_of(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
}

/// Counts every request by its route template (never the raw path: ids in
/// paths would explode the label set).
pub async fn track_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_of(&request).unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .http_duration
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&RouteStatus {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Turns every error response that is not already JSON or HTML (axum's own
/// rejections, 405s, the CSRF layer's 403, the body limit's 413) into the
/// contract's JSON error shape.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let message = match status {
        StatusCode::FORBIDDEN => "cross-site request refused".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body is larger than {BODY_LIMIT} bytes"),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut converted = json_response(
        status,
        &ErrorBody {
            error: ErrorCode::for_status(status),
            message,
        },
    );
    if let Some(allow) = response.headers().get(header::ALLOW) {
        converted.headers_mut().insert(header::ALLOW, allow.clone());
    }
    converted
}

/// The writes whose own step counts them against the write limit.
fn counts_in_step(method: &Method, route: &str) -> bool {
    matches!(
        (method.as_str(), route),
        ("POST", "/exclude") | ("DELETE", "/exclusions/{id}") | ("POST", "/exclusions/{id}/delete")
    )
}

/// Which limit a request falls under, by route template and method.
fn limit_of(method: &Method, route: &str) -> Option<&'static str> {
    match (method.as_str(), route) {
        ("POST", "/exclude")
        | ("DELETE", "/exclusions/{id}")
        | ("POST", "/exclusions/{id}/delete")
        | ("POST", "/tokens")
        | ("POST", "/tokens/new")
        | ("DELETE", "/tokens/{id}")
        | ("POST", "/tokens/{id}/revoke") => Some("writes"),
        ("GET", "/login") => Some("login"),
        _ => None,
    }
}

/// The client's address: the peer, or with `TRUST_PROXY=1` the last entry
/// of `X-Forwarded-For` (the one our own proxy appended).
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy: bool,
) -> Option<IpAddr> {
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|last| last.trim().parse::<IpAddr>().ok())
    };
    match trust_proxy {
        true => forwarded().or(peer.map(|p| p.ip())),
        false => peer.map(|p| p.ip()),
    }
}

/// Per-user limits on state-changing requests and per-address limits on
/// `GET /login`, counted in the local Redis ([`crate::ratelimit`]). Allowed
/// answers carry `RateLimit-Policy` and `RateLimit`; refused ones are 429
/// `rate_limited` with `Retry-After` too (a browser form gets a 303 back to
/// the page). Requests without a user pass: the handler answers 401.
pub async fn enforce_rate_limits(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = route_of(&request) else {
        return next.run(request).await;
    };
    let Some(limit) = limit_of(request.method(), &route) else {
        return next.run(request).await;
    };
    let config = &state.config;
    let in_step = counts_in_step(request.method(), &route);
    let (mut request, policy, subject) = if limit == "login" {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let Some(address) = client_address(request.headers(), peer, config.trust_proxy) else {
            return next.run(request).await;
        };
        (
            request,
            Policy::per_minute("login", config.login_rate_per_minute),
            address.to_string(),
        )
    } else {
        // A token counts as its user.
        let (mut parts, body) = request.into_parts();
        let caller =
            <Caller as OptionalFromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
                .await;
        let request = Request::from_parts(parts, body);
        let Ok(Some(Caller { user_id, .. })) = caller else {
            return next.run(request).await;
        };
        (
            request,
            Policy::per_minute("writes", config.rate_limit_per_minute),
            user_subject(user_id),
        )
    };
    if policy.quota == 0 {
        return next.run(request).await;
    }
    if in_step {
        // The write's own step counts it (one round trip less); only when
        // the handler stopped before its step is the request counted here.
        let browser = is_browser_form(request.headers());
        request.extensions_mut().insert(StepLimit {
            policy,
            key: counter_key(&policy, &subject),
        });
        let mut response = next.run(request).await;
        let decision = match response.extensions_mut().remove::<StepCounted>() {
            Some(StepCounted(decision)) => Some(decision),
            None => state.limiter.check(&policy, &subject).await.ok(),
        };
        return match decision {
            Some(decision) if !decision.allowed => refuse(&policy, &decision, browser),
            Some(decision) => {
                add_limit_headers(response.headers_mut(), &policy, &decision);
                response
            }
            None => response,
        };
    }
    let decision = match state.limiter.check(&policy, &subject).await {
        Ok(decision) => decision,
        // The count lives in the local Redis: when it is down the request
        // fails on its own (503); a login still goes to GitHub.
        Err(_) => return next.run(request).await,
    };
    if !decision.allowed {
        return refuse(&policy, &decision, is_browser_form(request.headers()));
    }
    let mut response = next.run(request).await;
    add_limit_headers(response.headers_mut(), &policy, &decision);
    response
}

fn refuse(policy: &Policy, decision: &Decision, browser_form: bool) -> Response {
    let mut response = if browser_form {
        Redirect::to(&format!("/?error={}", ErrorCode::RateLimited)).into_response()
    } else {
        AppError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests: at most {} per {} s; try again in {} s",
                policy.quota,
                policy.window.as_secs(),
                decision.retry_after_secs
            ),
        )
        .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(decision.retry_after_secs),
    );
    add_limit_headers(headers, policy, decision);
    response
}

fn add_limit_headers(headers: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    for (name, value) in [
        (RATELIMIT_POLICY, policy.header()),
        (RATELIMIT, decision.header(policy)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// The `Content-Security-Policy` of HTML answers: scripts, styles and
/// fetches from this origin only (the page has no inline script; its one
/// inline `<script type="application/json">` is data, which CSP does not
/// run), avatars from GitHub (`avatar_origin`, plus https in general since
/// GitHub Enterprise serves them from its own host), never framed.
pub fn content_security_policy(avatar_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: {avatar_origin}; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// Headers every answer gets: `nosniff` everywhere; on HTML the CSP and
/// `Referrer-Policy: same-origin`; on JSON `Cache-Control: no-store` (the
/// answers are personal, or say something about this instant), unless a
/// handler chose its own.
pub async fn security_headers(
    State(csp): State<HeaderValue>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    } else if content_type.starts_with("application/json")
        && !headers.contains_key(header::CACHE_CONTROL)
    {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A request with a bearer token and no cookie is a script's, not a
/// browser's: the cross-site check (which protects cookies) does not apply,
/// so the headers it judges by are dropped before it runs. Nothing else
/// changes: the token is still checked by the route.
pub async fn bearer_skips_cross_site_check(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    if bearer_token(headers).is_some() && !headers.contains_key(header::COOKIE) {
        let headers = request.headers_mut();
        headers.remove(header::ORIGIN);
        headers.remove("sec-fetch-site");
        headers.remove(header::REFERER);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_peer_unless_the_proxy_is_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 9.9.9.9"),
        );
        let ip = |h: &HeaderMap, trust| client_address(h, Some(peer), trust).unwrap().to_string();
        assert_eq!(
            ip(&headers, false),
            "10.0.0.1",
            "a client-set header is not trusted"
        );
        assert_eq!(
            ip(&headers, true),
            "9.9.9.9",
            "the last entry is our proxy's"
        );
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("not an address"),
        );
        assert_eq!(ip(&headers, true), "10.0.0.1");
    }

    #[test]
    fn only_state_changing_routes_and_login_are_limited() {
        assert_eq!(limit_of(&Method::POST, "/exclude"), Some("writes"));
        assert_eq!(
            limit_of(&Method::DELETE, "/exclusions/{id}"),
            Some("writes")
        );
        assert_eq!(limit_of(&Method::GET, "/exclusions"), None);
        assert_eq!(limit_of(&Method::GET, "/login"), Some("login"));
        assert_eq!(limit_of(&Method::POST, "/logout"), None);
    }
}
