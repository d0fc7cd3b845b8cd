//! Content negotiation and request limits: who gets JSON, who gets HTML or a
//! redirect, and how large a body may be.

use axum::http::{header, HeaderMap};

/// Largest request body accepted anywhere (16 KiB).
pub const BODY_LIMIT: usize = 16 * 1024;

/// The request's media type, lower-cased, without parameters (`""` when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A JSON media type: `application/json` or any `+json` suffix.
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

pub const FORM: &str = "application/x-www-form-urlencoded";

/// A `limit` query value: a whole number from 1 to `max` (else 422).
pub fn parse_limit(value: &str, max: usize) -> crate::error::AppResult<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| {
            crate::error::AppError::new(
                crate::error::ErrorCode::InvalidRequest,
                format!("limit must be a whole number from 1 to {max}"),
            )
        })
}

/// The client asks for JSON (`Accept` lists `application/json`).
pub fn accepts_json(headers: &HeaderMap) -> bool {
    accept_lists(headers, "application/json")
}

/// A browser navigation or form post (`Accept` lists `text/html`).
pub fn prefers_html(headers: &HeaderMap) -> bool {
    accept_lists(headers, "text/html")
}

/// A form post from a browser (form body, `Accept: text/html`): answered with
/// redirects to the page rather than JSON, errors included.
pub fn is_browser_form(headers: &HeaderMap) -> bool {
    media_type(headers) == FORM && prefers_html(headers)
}

fn accept_lists(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(media))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        let h = headers(&[(header::CONTENT_TYPE, "Application/JSON; charset=utf-8")]);
        assert_eq!(media_type(&h), "application/json");
        assert!(is_json(&media_type(&h)));
        assert!(is_json("application/merge-patch+json"));
        assert_eq!(media_type(&HeaderMap::new()), "");
    }

    #[test]
    fn a_browser_form_is_a_form_body_that_accepts_html() {
        let form = (header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let html = (header::ACCEPT, "text/html,application/xhtml+xml");
        assert!(is_browser_form(&headers(&[form.clone(), html.clone()])));
        assert!(!is_browser_form(&headers(std::slice::from_ref(&form))));
        assert!(!is_browser_form(&headers(&[
            (header::CONTENT_TYPE, "application/json"),
            html
        ])));
        assert!(accepts_json(&headers(&[(
            header::ACCEPT,
            "application/json"
        )])));
    }
}
