//! The `sponsorgate` command: `serve`, `sync`, `check-config`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sponsorgate::config::{Config, Needs};

// glibc's malloc was a fifth of the instructions per request (callgrind,
// `POST /exclude`): hyper, tower, serde and redis allocate small and often.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sponsorgate",
    version,
    about = "Sponsor-only preferences behind GitHub sign-in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and run the sync worker beside it).
    Serve {
        /// Do not run the sync worker in this process.
        #[arg(long)]
        no_sync: bool,
    },
    /// Run the sync worker alone.
    Sync {
        /// Make one full compare-and-repair pass, print what changed, and exit.
        #[arg(long)]
        reconcile: bool,
    },
    /// Parse the configuration, print it without secrets, and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `.env` is loaded before the runtime starts any thread (set_var is only
    // sound while the process has one thread); real variables win over it.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("sponsorgate: cannot read .env: {e}");
            return ExitCode::from(2);
        }
    }
    let needs = match cli.command {
        Command::Sync { .. } => Needs::RedisOnly,
        _ => Needs::Everything,
    };
    let config = match Config::from_env(needs) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sponsorgate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    sponsorgate::telemetry::init(config.log_format, config.log_filter.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sponsorgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Log lines may go elsewhere (JSON to a collector); this line is for
            // whoever started the process.
            eprintln!("sponsorgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), sponsorgate::app::StartError> {
    match command {
        Command::CheckConfig => {
            print!("{}", config.summary());
            Ok(())
        }
        Command::Serve { no_sync } => {
            let listener = sponsorgate::app::bind(config.bind).await?;
            let running = sponsorgate::app::start(config, listener, !no_sync).await?;
            running.run_until(shutdown_signal()).await
        }
        Command::Sync { reconcile } => {
            sponsorgate::app::run_sync_command(config, reconcile, shutdown_signal()).await
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
