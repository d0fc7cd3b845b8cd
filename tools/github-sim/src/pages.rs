//! HTML pages (self-contained: inline CSS, no external assets) and the avatar.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::fixtures::{AccountKind, FixtureUser};
use crate::state::Shared;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
background:#f6f8fa;color:#1f2328;margin:0}main{max-width:36rem;margin:2rem auto;\
background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1.5rem}\
h1{font-size:1.4rem;margin-top:0}ul{list-style:none;padding:0}li{margin:.4rem 0}\
button{width:100%;text-align:left;padding:.6rem .8rem;border:1px solid #d0d7de;\
border-radius:6px;background:#f6f8fa;font:inherit;cursor:pointer}\
button:hover,button:focus{background:#eaeef2;outline:2px solid #0969da}\
button.deny{background:#fff;color:#cf222e;text-align:center}\
code{background:#eaeef2;padding:0 .2rem;border-radius:3px}\
.login{font-weight:600}.note{color:#57606a;font-size:.9rem}";

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        title = esc(title)
    )
}

/// An HTML error page with `status`.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"note\">GitHub simulator</p>",
        esc(title),
        esc(message)
    );
    (status, Html(page(title, &body))).into_response()
}

/// The sign-in page: one button per listed fixture user, plus "Deny".
/// `hidden` are the authorize parameters to carry over (name, value).
pub(crate) fn sign_in_page(
    hidden: &[(&str, &str)],
    scope: &str,
    users: &[FixtureUser],
) -> Response {
    let mut body = String::from("<h1>Sign in to GitHub (simulator)</h1>");
    let shown_scope = if scope.trim().is_empty() {
        "no scopes (public data only)".to_string()
    } else {
        format!("<code>{}</code>", esc(scope))
    };
    body.push_str(&format!(
        "<p>An application asks for {shown_scope}. Choose who you are:</p>"
    ));
    body.push_str(
        "<form method=\"get\" action=\"/login/oauth/authorize\" aria-label=\"Choose a user\">",
    );
    for (name, value) in hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(name),
            esc(value)
        ));
    }
    body.push_str("<ul>");
    for user in users.iter().filter(|u| u.listed) {
        let rest = user
            .description
            .strip_prefix(&format!("{} — ", user.login))
            .unwrap_or(&user.description);
        body.push_str(&format!(
            "<li><button type=\"submit\" name=\"sim_user\" value=\"{login}\">\
             <span class=\"login\">{login}</span> <span class=\"note\">(id {id})</span> — {rest}\
             </button></li>",
            login = esc(&user.login),
            id = user.id,
            rest = esc(rest)
        ));
    }
    body.push_str(
        "</ul><button type=\"submit\" class=\"deny\" name=\"sim_deny\" value=\"1\">Deny</button>\
         </form>",
    );
    Html(page("Sign in to GitHub · GitHub simulator", &body)).into_response()
}

/// `GET /` — what this server is.
pub(crate) async fn index(State(shared): State<Shared>) -> Response {
    let base = esc(&shared.base);
    let users = shared.with(|s| s.world.clone());
    let mut body = format!(
        "<h1>GitHub simulator</h1><p>OAuth host, REST base and GraphQL at one address.</p>\
         <ul><li><code>{base}/login/oauth/authorize</code></li>\
         <li><code>{base}/login/oauth/access_token</code></li>\
         <li><code>{base}/user</code>, <code>{base}/user/emails</code></li>\
         <li><code>{base}/graphql</code></li></ul><h2>Fixture users</h2><ul>"
    );
    for user in users
        .iter()
        .filter(|u| u.listed || u.kind == AccountKind::Organization)
    {
        body.push_str(&format!(
            "<li>{} (id {})</li>",
            esc(&user.description),
            user.id
        ));
    }
    body.push_str("<li>project-001 … project-130 — sponsorable users sponsored by dave</li></ul>");
    Html(page("GitHub simulator", &body)).into_response()
}

/// `GET /avatars/{id}` — a tiny SVG with the account's initial.
pub(crate) async fn avatar(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let id: u64 = id.trim_end_matches(".svg").parse().unwrap_or(0);
    let Some(login) = shared.with(|s| s.world.iter().find(|u| u.id == id).map(|u| u.login.clone()))
    else {
        return crate::rest::not_found();
    };
    let initial = login.chars().next().unwrap_or('?').to_ascii_uppercase();
    let hue = (id * 47) % 360;
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"96\" viewBox=\"0 0 96 96\">\
         <rect width=\"96\" height=\"96\" fill=\"hsl({hue},55%,55%)\"/>\
         <text x=\"48\" y=\"62\" font-size=\"44\" text-anchor=\"middle\" fill=\"#fff\" \
         font-family=\"sans-serif\">{initial}</text></svg>"
    );
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        svg,
    )
        .into_response()
}
