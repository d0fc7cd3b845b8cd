//! Announced deprecations (docs/api.md): a route listed here answers with
//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to the notes,
//! for at least one release before it is removed. Its OpenAPI operation is
//! marked `deprecated` by hand (`#[utoipa::path(..., deprecated)]`).

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// One deprecated route.
#[derive(Clone, Copy, Debug)]
pub struct Deprecation {
    pub method: &'static str,
    /// The route template, as routed (`/exclusions/{id}`).
    pub route: &'static str,
    /// When it was deprecated (unix seconds).
    pub since: i64,
    /// The earliest removal, as an HTTP date (`Sat, 01 May 2027 00:00:00 GMT`).
    pub sunset: &'static str,
    /// Where the replacement is explained.
    pub notes: &'static str,
}

/// Nothing is deprecated today.
pub const DEPRECATIONS: &[Deprecation] = &[];

pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// Adds the announcement of `method route` from `table`, if it has one.
pub fn announce(table: &[Deprecation], method: &str, route: &str, headers: &mut HeaderMap) {
    let Some(d) = table
        .iter()
        .find(|d| d.method == method && d.route == route)
    else {
        return;
    };
    let values = [
        (DEPRECATION, format!("@{}", d.since)),
        (SUNSET, d.sunset.to_owned()),
        (
            axum::http::header::LINK,
            format!("<{}>; rel=\"deprecation\"", d.notes),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
}

/// The middleware over [`DEPRECATIONS`].
pub async fn announce_deprecations(request: Request, next: Next) -> Response {
    if DEPRECATIONS.is_empty() {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        announce(DEPRECATIONS, &method, &route, response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deprecated_route_says_so_in_three_headers() {
        let table = [Deprecation {
            method: "GET",
            route: "/exclusions",
            since: 1_767_225_600,
            sunset: "Sat, 01 May 2027 00:00:00 GMT",
            notes: "https://example.com/docs/api.md",
        }];
        let mut headers = HeaderMap::new();
        announce(&table, "GET", "/exclusions", &mut headers);
        assert_eq!(headers["deprecation"], "@1767225600");
        assert_eq!(headers["sunset"], "Sat, 01 May 2027 00:00:00 GMT");
        assert_eq!(
            headers["link"],
            "<https://example.com/docs/api.md>; rel=\"deprecation\""
        );
        let mut other = HeaderMap::new();
        announce(&table, "POST", "/exclusions", &mut other);
        assert!(other.is_empty());
    }
}
