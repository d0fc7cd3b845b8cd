//! `bench-probe`: the two measurements of `scripts/bench` that a load tool
//! cannot make.
//!
//! - `lag`: while a write load runs, POSTs its own `/exclude` with unique ids
//!   and polls the remote Redis with `SISMEMBER` about every millisecond until
//!   the id is there: acknowledged write → present on the remote.
//! - `fetch-back`: fills a sponsor's set to N members, waits until the remote
//!   holds them all, then repeatedly deletes the local key and its
//!   `sync:m:{…}` meta key (what a flush of the local Redis does to that key) and
//!   times the API's `GET /exclusions`, which must fetch the set back first
//!   (and, with `--direct`, the same loss followed by `SyncStore::exclusions`).
//!
//! Every loop is bounded (duration, tries, per-sample timeout). Prints one
//! `PROBE ...` line of `key=value` pairs per measurement.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use redis::AsyncCommands;
use sponsorgate_sync::{RedisLink, SyncConfig, SyncMetrics, SyncStore};

#[derive(Parser)]
struct Cli {
    /// sponsorgate's base URL.
    #[arg(long)]
    app: String,
    /// Session cookie, `name=value`.
    #[arg(long)]
    cookie: String,
    /// The signed-in user's GitHub id.
    #[arg(long)]
    user_id: u64,
    #[arg(long)]
    local: String,
    #[arg(long)]
    remote: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Lag {
        /// How long to keep sampling, in seconds.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Pause between samples, in milliseconds.
        #[arg(long, default_value_t = 10)]
        every_ms: u64,
    },
    FetchBack {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 100)]
        tries: usize,
        /// Also time `SyncStore::exclusions` directly (same loss, no HTTP).
        #[arg(long)]
        direct: bool,
        /// Only the direct timing (a set larger than one API page).
        #[arg(long)]
        direct_only: bool,
        #[arg(long, default_value = "acme-org")]
        sponsorable: String,
    },
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + std::marker::Sync>>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn summary(name: &str, mut samples: Vec<Duration>, extra: &str) {
    samples.sort();
    println!(
        "PROBE {name} samples={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}{extra}",
        samples.len(),
        pct(&samples, 50.0),
        pct(&samples, 99.0),
        samples.last().map(|d| ms(*d)).unwrap_or(f64::NAN),
    );
}

struct Api {
    http: reqwest::Client,
    app: String,
    cookie: String,
}

impl Api {
    async fn exclude(&self, id: &str) -> Res<()> {
        let r = self
            .http
            .post(format!("{}/exclude", self.app))
            .header("Cookie", &self.cookie)
            .json(&serde_json::json!({ "id": id }))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("POST /exclude: {}", r.status()).into());
        }
        r.bytes().await?;
        Ok(())
    }

    async fn exclusions(&self) -> Res<usize> {
        let r = self
            .http
            .get(format!("{}/exclusions", self.app))
            .header("Cookie", &self.cookie)
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("GET /exclusions: {}", r.status()).into());
        }
        let body: serde_json::Value = r.json().await?;
        Ok(body["ids"].as_array().map(Vec::len).unwrap_or(0))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let cli = Cli::parse();
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        app: cli.app.trim_end_matches('/').to_owned(),
        cookie: cli.cookie.clone(),
    };
    // Single servers or clusters (`redis+cluster://`), as the service reaches them.
    let mut remote = RedisLink::open(&cli.remote, Duration::from_secs(5))?;
    let mut local = RedisLink::open(&cli.local, Duration::from_secs(5))?;
    let key = format!("user:{}:mnodes", cli.user_id);
    let nonce = std::process::id();
    match cli.command {
        Command::Lag { duration, every_ms } => {
            let end = Instant::now() + Duration::from_secs(duration);
            let mut samples = Vec::new();
            let mut missed = 0usize;
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                let id = format!("lag-{nonce}-{i}");
                api.exclude(&id).await?;
                let acked = Instant::now();
                let deadline = acked + Duration::from_secs(5);
                loop {
                    if remote.sismember::<_, _, bool>(&key, &id).await? {
                        samples.push(acked.elapsed());
                        break;
                    }
                    if Instant::now() > deadline {
                        missed += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::sleep(Duration::from_millis(every_ms)).await;
            }
            summary("sync_lag", samples, &format!(" missing_after_5s={missed}"));
        }
        Command::FetchBack {
            members,
            tries,
            direct,
            direct_only,
            sponsorable,
        } => {
            let have: usize = local.scard(&key).await?;
            for i in have..members {
                api.exclude(&format!("fb-{i:04}")).await?;
            }
            let meta = format!("sync:m:{{{key}}}");
            // The remote must hold the whole set before the local one loses it.
            let mut waited = 0;
            while remote.scard::<_, usize>(&key).await? < members {
                waited += 1;
                if waited > 1000 {
                    return Err("the remote never received the whole set".into());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut samples = Vec::new();
            for _ in 0..(if direct_only { 0 } else { tries }) {
                let _: i64 = local.del(&[&key, &meta]).await?;
                let started = Instant::now();
                let n = api.exclusions().await?;
                samples.push(started.elapsed());
                if n != members {
                    return Err(format!("fetch-back gave {n} members, not {members}").into());
                }
                // Let the keyspace events of the loss settle before the next try.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !direct_only {
                summary(
                    "fetch_back_api",
                    samples,
                    &format!(" members={members} how=DEL(key,meta)+GET_/exclusions"),
                );
            }
            if direct || direct_only {
                let mut cfg =
                    SyncConfig::new(cli.local.as_str(), Some(cli.remote.clone()), sponsorable);
                cfg.remote_timeout = Duration::from_secs(10);
                let sync = SyncStore::connect(cfg, SyncMetrics::new()).await?;
                let mut samples = Vec::new();
                for _ in 0..tries {
                    let _: i64 = local.del(&[&key, &meta]).await?;
                    let started = Instant::now();
                    sync.exclusions(cli.user_id).await?;
                    samples.push(started.elapsed());
                    let n: usize = local.scard(&key).await?;
                    if n != members {
                        return Err(format!("fetch-back gave {n} members, not {members}").into());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                summary(
                    "fetch_back_direct",
                    samples,
                    &format!(" members={members} how=DEL(key,meta)+SyncStore::exclusions"),
                );
            }
        }
    }
    Ok(())
}
