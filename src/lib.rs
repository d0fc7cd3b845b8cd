//! sponsorgate: GitHub sign-in, a sponsorship check, and preferences in Redis
//! that persist (mirrored to a durable remote Redis) for sponsors only.

pub mod app;
pub mod clock;
pub mod config;
pub mod error;
pub mod github;
pub mod listcache;
pub mod metrics;
pub mod node_id;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod session;
pub mod sponsorship;
pub mod state;
pub mod store;
pub mod sync_glue;
pub mod telemetry;
pub mod tokens;
