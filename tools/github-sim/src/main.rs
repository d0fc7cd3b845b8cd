//! `github-sim`: runs the fake GitHub until Ctrl-C / SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use github_sim::{GithubSim, SimOptions};

/// A fake GitHub (OAuth web flow, REST /user, GraphQL sponsorships) for the
/// dev stack. Never use it in production.
#[derive(Parser, Debug)]
#[command(name = "github-sim", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    bind: SocketAddr,
    /// OAuth client id to accept [env: GITHUB_CLIENT_ID; default: sim-client-id].
    #[arg(long)]
    client_id: Option<String>,
    /// OAuth client secret to accept [env: GITHUB_CLIENT_SECRET; default: sim-client-secret].
    #[arg(long)]
    client_secret: Option<String>,
}

fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "github_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let defaults = SimOptions::default();
    let opts = SimOptions {
        client_id: cli
            .client_id
            .or_else(|| from_env("GITHUB_CLIENT_ID"))
            .unwrap_or(defaults.client_id),
        client_secret: cli
            .client_secret
            .or_else(|| from_env("GITHUB_CLIENT_SECRET"))
            .unwrap_or(defaults.client_secret),
    };
    let client_id = opts.client_id.clone();
    let sim = match GithubSim::start_on(opts, cli.bind).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("github-sim: cannot listen on {}: {e}", cli.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    let url = sim.url();
    println!("{url}");
    eprintln!("github-sim listening on {url} (client_id {client_id})");
    eprintln!("  GITHUB_URL={url}  GITHUB_API_URL={url}  GITHUB_GRAPHQL_URL={url}/graphql");
    eprintln!("  sign in as a fixture user at the authorize page; users:");
    for user in sim.users().iter().filter(|u| u.listed) {
        eprintln!("    {:>5}  {}", user.id, user.description);
    }
    terminated().await;
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}
