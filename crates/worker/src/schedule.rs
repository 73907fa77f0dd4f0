//! The worker's own schedule: collection windows that have closed get one full recompute, so do
//! published cycles whose award eligibility predates the award rule,
//! expired idempotency keys and (hourly) certificate PDFs without a record are swept, and the
//! queue and certificate gauges are refreshed.

use std::time::Duration;

use kepatuhan_app::jobs::{self, Recompute};
use kepatuhan_app::recompute;
use kepatuhan_app::{App, AppResult};
use kepatuhan_core::CycleId;
use tokio::sync::watch;

/// Enqueues a full recompute for every collecting cycle whose window closed before today, once
/// per closing date (across all workers: the job's idempotency key is `window-closed-YEAR-DATE`).
/// Returns the ids of the jobs for the closed windows.
pub async fn enqueue_closed_windows(app: &App) -> AppResult<Vec<String>> {
    let closed = sqlx::query!(
        r#"SELECT id, year, kind, closes_on AS "closes_on!" FROM cycles
           WHERE state = 'collecting' AND closes_on IS NOT NULL AND closes_on < current_date"#
    )
    .fetch_all(&app.pool)
    .await?;
    let mut ids = Vec::with_capacity(closed.len());
    for c in closed {
        // The official cycle of a year keeps its year in the key; the others are named by id.
        let key = if c.kind == "official" {
            format!("window-closed-{}-{}", c.year, c.closes_on)
        } else {
            format!("window-closed-cycle{}-{}", c.id, c.closes_on)
        };
        let mut tx = app.pool.begin().await?;
        let id = jobs::enqueue(&mut tx, &Recompute::full(CycleId(c.id)), Some(&key)).await?;
        tx.commit().await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Enqueues one full recompute for each published cycle whose stored award eligibility predates
/// its methodology's award rule ([`recompute::outdated_award_eligibility`]), once per results
/// revision across all workers (key `award-rule-YEAR-rREVISION`). The recompute's new revision
/// withdraws the certificates the rule excludes. Returns the jobs' ids.
pub async fn enqueue_award_rule_recomputes(app: &App) -> AppResult<Vec<String>> {
    let mut ids = Vec::new();
    for cycle in recompute::outdated_award_eligibility(app).await? {
        let revision = cycle.revision;
        let mut tx = app.pool.begin().await?;
        let id = jobs::enqueue(
            &mut tx,
            &Recompute::full(cycle.id),
            Some(&format!("award-rule-{}-r{revision}", cycle.year)),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(year = %cycle.year, revision, job = %id, "results predate the award rule: recompute enqueued");
        ids.push(id);
    }
    Ok(ids)
}

/// How often certificate PDFs without a record are looked for.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_hours(1);

/// How old such a PDF must be before it is removed (a batch being recorded is younger).
const ORPHAN_GRACE: Duration = Duration::from_hours(1);

/// Sets the gauges `kepatuhan_jobs{queue, status}` (queue depth) and
/// `kepatuhan_certificates{status}` from the database: once per schedule tick, never per scrape.
pub async fn refresh_gauges(app: &App) -> AppResult<()> {
    let jobs = sqlx::query!(
        r#"SELECT job_type, status, count(*) AS "n!" FROM apalis.jobs GROUP BY job_type, status"#
    )
    .fetch_all(&app.pool)
    .await?;
    for r in jobs {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("kepatuhan_jobs", "queue" => r.job_type, "status" => r.status)
            .set(r.n as f64);
    }
    let certificates =
        sqlx::query!(r#"SELECT status, count(*) AS "n!" FROM certificates GROUP BY status"#)
            .fetch_all(&app.pool)
            .await?;
    for r in certificates {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("kepatuhan_certificates", "status" => r.status).set(r.n as f64);
    }
    Ok(())
}

/// Runs [`enqueue_closed_windows`] and sweeps expired idempotency keys every `every` until `stop`
/// turns true.
pub async fn run(app: App, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        if let Err(e) = enqueue_closed_windows(&app).await {
            tracing::warn!(error = %e, "schedule check failed");
        }
        if let Err(e) = enqueue_award_rule_recomputes(&app).await {
            tracing::warn!(error = %e, "award rule check failed");
        }
        if let Err(e) = refresh_gauges(&app).await {
            tracing::warn!(error = %e, "could not refresh the queue gauges");
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= ORPHAN_SWEEP_EVERY) {
            last_sweep = Some(tokio::time::Instant::now());
            match kepatuhan_app::storage::sweep_orphan_pdfs(
                app.store.as_ref(),
                &app.pool,
                ORPHAN_GRACE,
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "orphan certificate PDFs swept"),
                Err(e) => tracing::warn!(error = %e, "orphan PDF sweep failed"),
            }
        }
        match kepatuhan_app::db::sweep_idempotency_keys(&app.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "expired idempotency keys swept"),
            Err(e) => tracing::warn!(error = %e, "idempotency key sweep failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
