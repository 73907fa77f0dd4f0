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

#[tokio::main]
async fn main() -> ExitCode {
    let Some(settings) = Settings::load_or_report() else {
        return ExitCode::FAILURE;
    };
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
