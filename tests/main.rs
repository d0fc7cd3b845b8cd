//! The one integration-test binary: real HTTP against real `redis-server`
//! processes the tests start themselves, and the fake GitHub.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

#[macro_use]
mod common;

mod api_fuzz;
mod api_tokens;
mod architecture;
mod browser;
mod cluster;
mod compose;
mod exclusions;
mod github_client;
mod graphql_documents;
mod hardening;
mod http_contract;
mod paging;
mod process;
mod reverify;
mod signin;
mod sync_api;
mod sync_chaos;
mod sync_faults;
mod webhooks;
