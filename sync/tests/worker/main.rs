//! The sync worker against real redis-server processes (SPEC §6). The remote
//! has a password; outages go through a TCP proxy that can cut the network.
//! Timing guarantees are checked one test at a time (see `support::serial`).

#[allow(dead_code)]
#[path = "../../../tests/common/proxy.rs"]
mod proxy;
#[allow(dead_code)]
#[path = "../../../tests/common/redis.rs"]
mod redis_server;
mod support;

mod crash;
mod deletes;
mod fetchback;
mod mirror;
mod outage;
mod reconcile;
mod restart;
mod sponsors;
