//! The one integration-test binary: real HTTP against real `redis-server`
//! processes the tests start themselves, and the fake GitHub.

mod common;

mod exclusions;
mod http_contract;
mod signin;
