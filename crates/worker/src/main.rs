//! `kepatuhan-worker`: runs background jobs until SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use kepatuhan_api::config::Settings;
use kepatuhan_api::{AppState, connect, migrate};
use kepatuhan_worker::{WorkerConfig, run};

/// jemalloc: typst's layout and PDF export allocate heavily from several threads at once
/// (certificate renders on rayon's pool); it renders ≈ 5 % faster than with the system
/// allocator (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let (_telemetry, problem) = kepatuhan_api::telemetry::init("kepatuhan-worker");
    if let Some(problem) = problem {
        eprintln!("invalid configuration:\n  {problem}");
        return ExitCode::FAILURE;
    }
    let Some(settings) = Settings::load_or_report() else {
        return ExitCode::FAILURE;
    };
    let w = &settings.worker;
    let config = WorkerConfig {
        backoff_base: Duration::from_secs(w.backoff_secs),
        concurrency: w.concurrency,
        place: w.place.clone(),
        signatory_name: w.signatory_name.clone(),
        signatory_title: w.signatory_title.clone(),
        ..WorkerConfig::default()
    };
    let metrics_addr = w.metrics_addr;
    let result = async {
        let pool = connect(&settings).await?;
        // Safe with several processes: the migrator holds an advisory lock.
        migrate(&pool).await?;
        let state = AppState::configured(pool, &settings)?;
        tracing::info!(name = %config.name, "kepatuhan-worker started");
        let (stop_metrics, metrics_stop) = tokio::sync::watch::channel(false);
        let metrics = tokio::spawn(kepatuhan_worker::serve_metrics(metrics_addr, metrics_stop));
        let outcome = run(state, config, kepatuhan_api::startup::shutdown_signal()).await;
        let _ = stop_metrics.send(true);
        if let Ok(Err(e)) = metrics.await {
            tracing::warn!(error = %e, "metrics endpoint failed");
        }
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
