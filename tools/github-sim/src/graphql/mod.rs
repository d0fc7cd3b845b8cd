//! `POST /graphql`: a small real executor over the fixture world.

mod exec;
mod field_rules;
mod owner;
mod paging;
mod resolve;
mod schema;
mod validate;
mod variables;

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use graphql_parser::query::{Definition, OperationDefinition};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use crate::failure::gate;
use crate::fixtures::FixtureUser;
use crate::rest::{api_headers, bad_credentials, missing_user_agent};
use crate::state::{Auth, Endpoint, Shared};
use exec::{locations, Exec, Fragments, Out};
use resolve::{Obj, World};
use validate::Validator;
use variables::coerce_variables;

/// A GraphQL answer: `data` absent (validation errors), null, or an object.
#[derive(Serialize, Debug)]
pub(crate) struct GqlResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Out>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Json>,
}

impl GqlResponse {
    fn errors(errors: Vec<Json>) -> Self {
        GqlResponse { data: None, errors }
    }
    fn null_data(errors: Vec<Json>) -> Self {
        GqlResponse {
            data: Some(Out::Null),
            errors,
        }
    }
}

fn message(text: &str) -> Json {
    json!({ "message": text })
}

/// `POST /graphql`
pub(crate) async fn graphql(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = gate(&shared, Endpoint::Graphql, &headers).await {
        return response;
    }
    if let Some(response) = missing_user_agent(&headers) {
        return response;
    }
    let (grant, user) = match shared.auth(&headers) {
        Auth::Valid { grant, user } => (grant, user),
        Auth::Unknown => return bad_credentials(),
        Auth::Missing => {
            let body = json!({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"
            });
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
    };
    let used = shared.count_rate(&user.login, "graphql");
    let answer = match serde_json::from_slice::<Json>(&body) {
        Err(_) => {
            let body = json!({"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        Ok(request) => {
            let accounts = shared.with(|s| s.world.clone());
            answer(&request, &accounts, &user, &grant.scopes, &shared.base)
        }
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::to_string(&answer).unwrap_or_default(),
    )
        .into_response();
    api_headers(&mut response, &grant, used, "graphql", "");
    response
}

/// Runs one request body `{query, variables, operationName}`.
pub(crate) fn answer(
    request: &Json,
    accounts: &[FixtureUser],
    viewer: &FixtureUser,
    scopes: &[String],
    base: &str,
) -> GqlResponse {
    let Some(query) = request.get("query").and_then(Json::as_str) else {
        return GqlResponse::errors(vec![message(
            "A query attribute must be specified and must be a string.",
        )]);
    };
    let variables = match request.get("variables") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map.clone(),
        Some(Json::String(text)) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => map,
            _ => return GqlResponse::errors(vec![message("Variables are invalid JSON.")]),
        },
        Some(_) => return GqlResponse::errors(vec![message("Variables must be an object.")]),
    };
    let operation_name = request.get("operationName").and_then(Json::as_str);
    let doc = match graphql_parser::parse_query::<&str>(query) {
        Ok(doc) => doc,
        Err(e) => {
            let text = e.to_string();
            let text = text.trim().trim_start_matches("query parse error: ");
            return GqlResponse::errors(vec![message(&format!("Parse error: {text}"))]);
        }
    };
    let mut fragments: Fragments<'_> = HashMap::new();
    let mut operations = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::Fragment(f) => {
                fragments.insert(f.name, f);
            }
            Definition::Operation(op) => operations.push(op),
        }
    }
    let chosen = match operation_name {
        Some(name) => operations.iter().find(|op| op_name(op) == Some(name)),
        None if operations.len() == 1 => operations.first(),
        None if operations.is_empty() => {
            return GqlResponse::errors(vec![message("No operations in query document")]);
        }
        None => {
            return GqlResponse::errors(vec![message("An operation name is required")]);
        }
    };
    let Some(op) = chosen else {
        let name = operation_name.unwrap_or_default();
        return GqlResponse::errors(vec![message(&format!("No operation named \"{name}\""))]);
    };
    let (name, var_defs, root, pos) = match op {
        OperationDefinition::Query(q) => (
            q.name,
            &q.variable_definitions[..],
            &q.selection_set,
            q.position,
        ),
        OperationDefinition::SelectionSet(set) => (None, &[][..], set, set.span.0),
        OperationDefinition::Mutation(m) => {
            let e = json!({"locations": locations(m.position), "message": "Schema is not configured for mutations"});
            return GqlResponse::errors(vec![e]);
        }
        OperationDefinition::Subscription(s) => {
            let e = json!({"locations": locations(s.position), "message": "Schema is not configured for subscriptions"});
            return GqlResponse::errors(vec![e]);
        }
    };
    let label = name.map_or("query".to_string(), |n| format!("query {n}"));
    let op_name = name.map_or("anonymous query".to_string(), str::to_string);
    let declared: HashSet<&str> = var_defs.iter().map(|d| d.name).collect();
    let mut validator = Validator::new(&fragments, label, op_name, declared, scopes);
    validator.run(root, pos);
    if !validator.errors.is_empty() {
        return GqlResponse::errors(validator.errors);
    }
    if !validator.scope_errors.is_empty() {
        return GqlResponse::null_data(validator.scope_errors);
    }
    let vars = match coerce_variables(var_defs, &variables) {
        Ok(vars) => vars,
        Err(errors) => return GqlResponse::errors(errors),
    };
    let Some(viewer) = accounts.iter().position(|a| a.id == viewer.id) else {
        return GqlResponse::null_data(vec![message("Viewer not found.")]);
    };
    let mut ex = Exec {
        fragments: &fragments,
        vars: &vars,
        world: World {
            accounts,
            viewer,
            base,
        },
        errors: Vec::new(),
        fatal: false,
    };
    let data = ex.select(&Obj::Query, &[root], &mut Vec::new());
    GqlResponse {
        data: Some(if ex.fatal { Out::Null } else { data }),
        errors: ex.errors,
    }
}

fn op_name<'x>(op: &OperationDefinition<'x, &'x str>) -> Option<&'x str> {
    match op {
        OperationDefinition::Query(q) => q.name,
        OperationDefinition::Mutation(m) => m.name,
        OperationDefinition::Subscription(s) => s.name,
        OperationDefinition::SelectionSet(_) => None,
    }
}
