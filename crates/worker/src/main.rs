//! `kepatuhan-worker`: runs background jobs until SIGTERM.

use std::process::ExitCode;

use kepatuhan_app::config::Settings;
use kepatuhan_app::db::connect;
use kepatuhan_app::{App, telemetry};
use kepatuhan_worker::{WorkerConfig, run};

/// jemalloc: typst's layout and PDF export allocate heavily from several threads at once
/// (certificate renders on rayon's pool); it renders ≈ 5 % faster than with the system
/// allocator (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: kepatuhan-worker [healthcheck]\n\n\
    (no argument)  run the background jobs until SIGTERM\n\
    healthcheck    exit 0 when the worker on KEPATUHAN_WORKER_METRICS_ADDR answers /health";

#[tokio::main]
async fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("healthcheck") => true,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown argument `{other}`\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let Some(settings) = Settings::load_or_report() else {
        return ExitCode::FAILURE;
    };
    if check {
        return healthcheck(settings.worker.metrics_addr).await;
    }
    let (_telemetry, problem) = telemetry::init("kepatuhan-worker", &settings);
    if let Some(problem) = problem {
        eprintln!("invalid configuration:\n  {problem}");
        return ExitCode::FAILURE;
    }
    let config = WorkerConfig::from_settings(&settings.worker);
    let result = async {
        let pool = connect(&settings).await?;
        // Migrating is safe with several processes (the migrator holds an advisory lock); in
        // deployment `migrate` has run as the owner and this only checks the schema.
        kepatuhan_app::db::prepare(&pool, &settings).await?;
        let app = App::configured(pool, &settings)?;
        // `/metrics` and `/health` from the exporter's own listener, until the process ends.
        let metrics = tokio::spawn(kepatuhan_worker::metrics_listener(
            settings.worker.metrics_addr,
        )?);
        tracing::info!(name = %config.name, metrics = %settings.worker.metrics_addr, "kepatuhan-worker started");
        let outcome = run(app, config, kepatuhan_app::shutdown_signal()).await;
        metrics.abort();
        outcome
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "worker failed");
            ExitCode::FAILURE
        }
    }
}

/// GETs `/health` of the worker's metrics listener on `addr` (on this machine when it listens on
/// every address): the container's healthcheck, as the image has no curl.
async fn healthcheck(addr: std::net::SocketAddr) -> ExitCode {
    match kepatuhan_app::health::probe(addr, "/health").await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("{problem}");
            ExitCode::FAILURE
        }
    }
}
