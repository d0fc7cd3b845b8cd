//! The one generic GraphQL POST helper.
//!
//! `graphql_client::Response` has only optional fields, so GitHub's 401 body
//! (`{"message":"Bad credentials"}`) would deserialise into "no data, no
//! errors"; the HTTP status is therefore checked first. A 200 carrying
//! `errors` is an error even when partial `data` came along: a sponsorship
//! answer is used only when it is clean and complete.

use graphql_client::GraphQLQuery;
use serde::Deserialize;

use super::{AccessToken, GithubClient, GithubError};

/// GitHub's error entries carry a top-level `type` (`NOT_FOUND`,
/// `INSUFFICIENT_SCOPES`, …) that `graphql_client::Error` does not keep.
#[derive(Deserialize)]
struct GraphqlError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    path: Option<Vec<serde_json::Value>>,
}

impl GraphqlError {
    fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(kind) = &self.kind {
            out.push_str(kind);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(path) = self.path.as_ref().filter(|p| !p.is_empty()) {
            let path: Vec<String> = path
                .iter()
                .map(|p| match p {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push_str(&format!(" (at {})", path.join(".")));
        }
        out
    }
}

/// The response envelope; `data` is decoded into the query's type only
/// after `errors` were checked.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

impl GithubClient {
    /// POSTs `Q` with `variables` to `GITHUB_GRAPHQL_URL` as `token`.
    ///
    /// 401 → [`GithubError::Unauthorized`]; other non-2xx →
    /// [`GithubError::Status`]; non-empty `errors` or no `data` →
    /// [`GithubError::Graphql`]; a `data` of the wrong shape →
    /// [`GithubError::Decode`].
    pub(crate) async fn graphql<Q: GraphQLQuery>(
        &self,
        token: &AccessToken,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, GithubError> {
        let body = Q::build_query(variables);
        let response = self
            .http()
            .post(self.graphql_url().clone())
            .bearer_auth(token.secret())
            .json(&body)
            .send()
            .await
            .map_err(GithubError::from_reqwest)?;

        let response = GithubError::check_status(response)?;
        let bytes = response.bytes().await.map_err(GithubError::from_reqwest)?;
        decode::<Q::ResponseData>(body.operation_name, &bytes)
    }
}

fn decode<T: serde::de::DeserializeOwned>(operation: &str, bytes: &[u8]) -> Result<T, GithubError> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| GithubError::Decode(format!("{operation}: not a GraphQL response: {e}")))?;
    if let Some(errors) = envelope.errors.filter(|e| !e.is_empty()) {
        return Err(GithubError::Graphql(
            errors.iter().map(GraphqlError::describe).collect(),
        ));
    }
    match envelope.data {
        None | Some(serde_json::Value::Null) => Err(GithubError::Graphql(vec![format!(
            "{operation}: the response carries no data"
        )])),
        Some(data) => serde_json::from_value(data)
            .map_err(|e| GithubError::Decode(format!("{operation}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Data {
        viewer: Viewer,
    }
    #[derive(Debug, Deserialize)]
    struct Viewer {
        login: String,
    }

    #[test]
    fn errors_win_over_partial_data() {
        let body = br#"{"data":{"viewer":{"login":"alice"}},"errors":[{"type":"INSUFFICIENT_SCOPES","message":"needs read:user","path":["viewer","sponsorshipsAsSponsor"]}]}"#;
        match decode::<Data>("Q", body) {
            Err(GithubError::Graphql(msgs)) => {
                assert_eq!(
                    msgs,
                    vec!["INSUFFICIENT_SCOPES: needs read:user (at viewer.sponsorshipsAsSponsor)"]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_or_null_data_is_an_error() {
        assert!(matches!(
            decode::<Data>("Q", br#"{"data":null}"#),
            Err(GithubError::Graphql(_))
        ));
        // What a 401 body would look like if the status were not checked.
        assert!(matches!(
            decode::<Data>("Q", br#"{"message":"Bad credentials"}"#),
            Err(GithubError::Graphql(_))
        ));
        assert!(matches!(
            decode::<Data>("Q", br#"{"data":{"viewer":null}}"#),
            Err(GithubError::Decode(_))
        ));
        assert!(matches!(
            decode::<Data>("Q", b"<html>"),
            Err(GithubError::Decode(_))
        ));
        let ok = decode::<Data>("Q", br#"{"data":{"viewer":{"login":"alice"}},"errors":[]}"#);
        assert_eq!(ok.unwrap().viewer.login, "alice");
    }
}
