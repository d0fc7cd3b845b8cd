//! `GET /`: the server-rendered page, and small HTML error pages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;

use crate::error::AppError;
use crate::session::CurrentUser;
use crate::state::AppState;

pub fn escape(s: &str) -> String {
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

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head><body><main>{body}</main></body></html>",
        escape(title)
    ))
}

pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    layout(
        "Sign-in problem — sponsorgate",
        &format!(
            "<h1>{} {}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Back to the start page</a></p>",
            status.as_u16(),
            escape(status.canonical_reason().unwrap_or("Error")),
            escape(message)
        ),
    )
}

/// The start page: sign in when signed out; profile and exclusions when signed in.
pub async fn index(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
) -> Result<Html<String>, AppError> {
    let sponsorable = escape(&state.config.sponsorable);
    let Some(CurrentUser(id)) = user else {
        return Ok(layout(
            "sponsorgate",
            &format!(
                "<h1>sponsorgate</h1><p>Sponsors of <strong>{sponsorable}</strong> keep their preferences for good.</p>\
                 <p><a href=\"/login\">Sign in with GitHub</a></p>"
            ),
        ));
    };
    let record = state.store.user(id).await?.unwrap_or_default();
    let (ids, persistent) = state.store.exclusions(id).await?;
    let items: String = ids
        .iter()
        .map(|node| {
            let e = escape(node);
            let path = url::form_urlencoded::byte_serialize(node.as_bytes()).collect::<String>();
            format!(
                "<li>{e} <form method=\"post\" action=\"/exclusions/{path}/delete\" style=\"display:inline\">\
                 <button type=\"submit\">Remove</button></form></li>"
            )
        })
        .collect();
    let status = if record.sponsor {
        format!("<p>Sponsor of {sponsorable}: your preferences are kept.</p>")
    } else {
        format!(
            "<p>Your preferences expire after {} hours. <a href=\"https://github.com/sponsors/{sponsorable}\">Sponsor {sponsorable}</a> to keep them.</p>",
            state.config.ephemeral_ttl_secs / 3600
        )
    };
    Ok(layout(
        "sponsorgate",
        &format!(
            "<h1>Signed in as {login}</h1><img src=\"{avatar}\" alt=\"\" width=\"48\" height=\"48\">{status}\
             <h2>Excluded nodes ({count}{persist})</h2><ul>{items}</ul>\
             <form method=\"post\" action=\"/exclude\"><label for=\"id\">Node id</label> \
             <input id=\"id\" name=\"id\" required maxlength=\"256\"> <button type=\"submit\">Exclude</button></form>\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
            login = escape(&record.user_login),
            avatar = escape(&record.avatar_url),
            count = ids.len(),
            persist = if persistent { ", kept" } else { "" },
        ),
    ))
}
