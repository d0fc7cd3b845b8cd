//! The OAuth web flow, step 1: `GET /login/oauth/authorize` (sign-in page,
//! deny, codes bound to client, redirect_uri, scope and PKCE challenge).

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use url::form_urlencoded;

use crate::failure::gate;
use crate::fixtures::AccountKind;
use crate::pages::{error_page, sign_in_page};
use crate::state::{
    find, normalize_scopes, random_hex, AuthorizeRecord, CodeGrant, Endpoint, Shared,
};

const ACCESS_DENIED: &str = "error=access_denied\
&error_description=The+user+has+denied+your+application+access.\
&error_uri=/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/%23access-denied";

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `redirect_uri` plus `pairs` (already encoded), keeping an existing query.
fn redirect_to(redirect_uri: &str, pairs: &str) -> Response {
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{sep}{pairs}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn state_suffix(state: &Option<String>) -> String {
    state
        .as_ref()
        .map(|s| format!("&state={}", encode(s)))
        .unwrap_or_default()
}

fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /login/oauth/authorize`
pub(crate) async fn authorize(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = gate(&shared, Endpoint::Authorize, &headers).await {
        return response;
    }
    let get = |k: &str| q.get(k).cloned();
    let record = AuthorizeRecord {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        scope: get("scope"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
    };
    shared.with(|s| s.last_authorize = Some(record.clone()));

    if record.client_id.as_deref() != Some(shared.opts.client_id.as_str()) {
        return error_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no OAuth application with this client_id.",
        );
    }
    let Some(redirect_uri) = record.redirect_uri.clone() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri required",
            "The simulator has no registered callback URL: send redirect_uri.",
        );
    };
    match url::Url::parse(&redirect_uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.fragment().is_none() => {}
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect_uri",
                "redirect_uri must be an absolute http(s) URL without a fragment.",
            )
        }
    }
    let state = record.state.clone();
    let pkce_problem = match (&record.code_challenge, &record.code_challenge_method) {
        (None, None) => None,
        (Some(_), None) => Some("code_challenge_method is required with code_challenge."),
        (None, Some(_)) => Some("code_challenge is required with code_challenge_method."),
        (Some(_), Some(m)) if m != "S256" => Some("code_challenge_method must be S256."),
        (Some(c), Some(_)) if !valid_challenge(c) => {
            Some("code_challenge must be 43 characters of base64url (SHA-256 of the verifier).")
        }
        _ => None,
    };
    if let Some(problem) = pkce_problem {
        let pairs = format!(
            "error=invalid_request&error_description={}{}",
            encode(problem),
            state_suffix(&state)
        );
        return redirect_to(&redirect_uri, &pairs);
    }
    if q.get("sim_deny").is_some_and(|v| !v.is_empty() && v != "0") {
        tracing::info!("authorize: user denied access");
        return redirect_to(
            &redirect_uri,
            &format!("{ACCESS_DENIED}{}", state_suffix(&state)),
        );
    }
    let scope = record.scope.clone().unwrap_or_default();
    let Some(chosen) = get("sim_user") else {
        let world = shared.with(|s| s.world.clone());
        let keys = [
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        ];
        let hidden: Vec<(&str, &str)> = keys
            .iter()
            .filter_map(|k| q.get(*k).map(|v| (*k, v.as_str())))
            .collect();
        return sign_in_page(&hidden, &scope, &world);
    };
    let login = shared.with(|s| {
        find(&s.world, &chosen)
            .filter(|u| u.kind == AccountKind::User)
            .map(|u| u.login.clone())
    });
    let Some(login) = login else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown user",
            &format!("There is no fixture user named '{chosen}'."),
        );
    };
    let code = random_hex(20);
    let grant = CodeGrant {
        client_id: shared.opts.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes: normalize_scopes(&scope),
        challenge: record.code_challenge.clone(),
        login: login.clone(),
        issued: Instant::now(),
    };
    shared.with(|s| s.codes.insert(code.clone(), grant));
    tracing::info!(user = %login, "authorize: code issued");
    redirect_to(
        &redirect_uri,
        &format!("code={code}{}", state_suffix(&state)),
    )
}
