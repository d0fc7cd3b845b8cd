//! The sync crate against real redis-server processes (SPEC §6): the
//! model-based simulation of the engine with faults between any two steps,
//! and the bounds on the work it sends to either Redis.

#[allow(dead_code)]
#[path = "../../../tests/common/redis.rs"]
mod redis_server;

mod bounded;
mod sim;
mod steps;
