//! The `certificates` queue: a published results revision fans out `certificate-render` jobs,
//! each for a batch of recipients (award-eligible entities and their units) whose valid
//! certificate is missing or states an outdated result. Progress is counted on the fan-out job.

use apalis::prelude::*;
use kepatuhan_app::App;
use kepatuhan_app::jobs::{self, IssueCertificates, Recipient, RenderCertificates};
use sha2::{Digest, Sha256};

use crate::error::JobError;
use crate::retry::{Retry, finish};

/// Recipients per render job of a fan-out: a batch shares its job bookkeeping, its queries and
/// the transaction recording its certificates (one job per certificate spent more time in the
/// queue and in Postgres than in rendering).
pub const RENDER_BATCH: usize = 16;

/// Fans out render jobs, [`RENDER_BATCH`] recipients each, for every recipient needing a
/// certificate.
pub async fn issue(
    job: IssueCertificates,
    app: Data<App>,
    config: Data<crate::WorkerConfig>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), JobError> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "issue_certificates",
        year = job.year,
        revision = job.revision
    );
    kepatuhan_app::telemetry::continue_trace(&span, job.traceparent.as_deref());
    let outcome = tracing::Instrument::instrument(issue_in_span(job, &app, &id), span).await;
    let retry = Retry {
        queue: "certificates",
        id,
        attempt,
    };
    finish(&retry, &app, &config, started, outcome).await
}

async fn issue_in_span(job: IssueCertificates, app: &App, id: &TaskId) -> Result<(), JobError> {
    let year = i32::from(job.year);
    let recipients = sqlx::query!(
        r#"WITH wanted AS (
               SELECT r.entity_id, NULL::bigint AS unit_id, r.score, r.grade_code
               FROM entity_results r WHERE r.cycle_year = $1 AND r.revision = $2 AND r.award_eligible
               UNION ALL
               SELECT u.entity_id, ur.unit_id, ur.score, ur.grade_code
               FROM unit_results ur JOIN units u ON u.id = ur.unit_id
               JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_year = ur.cycle_year AND r.revision = ur.revision
               WHERE ur.cycle_year = $1 AND ur.revision = $2 AND r.award_eligible)
           SELECT w.entity_id AS "entity_id!", w.unit_id
           FROM wanted w
           LEFT JOIN certificates c ON c.cycle_year = $1 AND c.status = 'valid' AND c.entity_id = w.entity_id
                AND c.unit_id IS NOT DISTINCT FROM w.unit_id
           WHERE c.id IS NULL OR c.score <> w.score OR c.grade_code <> w.grade_code
           ORDER BY w.entity_id, w.unit_id NULLS FIRST"#,
        year,
        job.revision
    )
    .fetch_all(&app.pool)
    .await?;
    let recipients: Vec<Recipient> = recipients
        .into_iter()
        .map(|r| Recipient {
            entity_id: r.entity_id,
            unit_id: r.unit_id,
        })
        .collect();
    let parent = id.to_string();
    let mut tx = app.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO job_progress (job_id, done, total) VALUES ($1, 0, $2)
         ON CONFLICT (job_id) DO UPDATE SET total = excluded.total, updated_at = now()",
        parent,
        i32::try_from(recipients.len()).unwrap_or(i32::MAX)
    )
    .execute(&mut *tx)
    .await?;
    // One statement for all of them. A batch's key names its recipients, so a second fan-out of
    // the same revision does not queue a batch that is still waiting; a recipient in two
    // differently cut batches is rendered once (the second finds it issued).
    let renders: Vec<(RenderCertificates, Option<String>)> = recipients
        .chunks(RENDER_BATCH)
        .map(|batch| {
            let mut hash = Sha256::new();
            for r in batch {
                hash.update(r.entity_id.to_le_bytes());
                hash.update(r.unit_id.unwrap_or(0).to_le_bytes());
            }
            let key = format!(
                "render-{}-{}-{}",
                job.year,
                job.revision,
                hex::encode(&hash.finalize()[..12])
            );
            let render = RenderCertificates {
                year: job.year,
                revision: job.revision,
                recipients: batch.to_vec(),
                parent: Some(parent.clone()),
                force: false,
            };
            (render, Some(key))
        })
        .collect();
    jobs::enqueue_many(&mut tx, &renders).await?;
    tx.commit().await?;
    tracing::info!(job = %parent, year = job.year, revision = job.revision, certificates = recipients.len(), jobs = renders.len(), "certificates fanned out");
    Ok(())
}
