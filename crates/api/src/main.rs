//! `kepatuhan-api`: runs the REST service, or checks a methodology file.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kepatuhan_api::{AppState, router};
use kepatuhan_core::Methodology;

#[derive(Parser)]
#[command(version, about = "kepatuhan REST API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KEPATUHAN_HTTP_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Validate a methodology file (TOML or JSON) and list every problem with its path.
    CheckMethodology {
        /// The file to check.
        file: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        addr: default_addr(),
    }) {
        Command::Serve { addr } => serve(addr).await,
        Command::CheckMethodology { file } => check(&file),
    }
}

fn default_addr() -> SocketAddr {
    std::env::var("KEPATUHAN_HTTP_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
}

async fn serve(addr: SocketAddr) -> ExitCode {
    let state = match AppState::load() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, "kepatuhan-api listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let loaded = if is_json {
        Methodology::from_json(&text)
    } else {
        Methodology::from_toml(&text)
    };
    match loaded {
        Ok(m) => {
            println!(
                "{}: ok — {} ({}), {} dimensions, {} indicators, {} survey(s)",
                file.display(),
                m.code(),
                m.name(),
                m.dimensions().len(),
                m.indicator_count(),
                m.survey_count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}:", file.display());
            for p in e.problems() {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}
