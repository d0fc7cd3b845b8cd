//! The sync crate against real redis-server processes (the guarantees of docs/contract.md): the
//! model-based simulation of the engine with faults between any two steps,
//! and the bounds on the work it sends to either Redis.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

#[allow(
    dead_code,
    reason = "shared with the app's tests, which use more of it"
)]
#[path = "../../../tests/common/redis.rs"]
mod redis_server;

mod bounded;
mod sim;
mod steps;

/// The simulation loads both cores of a small machine; the bounded-work test
/// measures how long each command takes (SLOWLOG, 10 ms) and must not share
/// the cores with it, or a descheduled server counts as a slow command.
pub(crate) static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
