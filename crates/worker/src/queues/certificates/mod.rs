//! The two certificate queues, in the order they run:
//!
//! - `certificates` ([`issue`]): a new results revision reconciles the cycle's certificates with
//!   it ([`reconcile`]): it withdraws those whose recipient no longer earns an award, and fans out
//!   `certificate-render` jobs, each for a batch of recipients whose certificate is missing or
//!   states an outdated score, grade or rank. Progress is counted on this job.
//! - `certificate-render` ([`render`]): a job makes its batch's PDFs ([`crate::render`]), stores
//!   them, and records them in one transaction ([`record`]), each superseding its recipient's
//!   previous certificate; then counts the batch towards its fan-out's progress. What each
//!   certificate states is read in [`data`].

mod data;
mod reconcile;
mod record;

use std::sync::Arc;

use apalis::prelude::*;
use kepatuhan_app::App;
use kepatuhan_app::cycles::CycleKind;
use kepatuhan_app::jobs::{self, IssueCertificates, Recipient, RenderCertificates};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::WorkerConfig;
use crate::error::JobError;
use crate::render::{CertificateData, Renderer};
use crate::retry::{Retry, finish};

/// Crockford's base-32 alphabet (no I, L, O, U: nothing to misread on paper).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh verification code: 120 random bits as 24 base-32 characters in groups of four,
/// e.g. `K7QX-9D2M-4HTR-WB6N-PQ3E-ZA8C`.
pub fn new_code() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(b);
    }
    let chars: Vec<u8> = (0..24)
        .rev()
        .map(|i| ALPHABET[usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0)])
        .collect();
    chars
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Recipients per render job of a fan-out: a batch shares its job bookkeeping, its queries and
/// the transaction recording its certificates (one job per certificate spent more time in the
/// queue and in Postgres than in rendering).
pub const RENDER_BATCH: usize = 16;

/// Fans out render jobs, [`RENDER_BATCH`] recipients each, for every recipient needing a
/// certificate.
pub async fn issue(
    job: IssueCertificates,
    app: Data<App>,
    config: Data<WorkerConfig>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), JobError> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "issue_certificates",
        cycle_id = %job.cycle_id,
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
    let cycle_id = job.cycle_id.get();
    let cycle = sqlx::query!(
        "SELECT year, kind, results_revision FROM cycles WHERE id = $1",
        cycle_id
    )
    .fetch_one(&app.pool)
    .await?;
    if cycle.kind != CycleKind::Official.as_str() {
        tracing::warn!(cycle_id, "an unofficial cycle is never certified");
        return Ok(());
    }
    let current = cycle.results_revision;
    if current != job.revision {
        tracing::info!(
            cycle_id,
            revision = job.revision,
            current,
            "results revision superseded; a newer issue reconciles"
        );
        return Ok(());
    }
    let recipients = reconcile::needing_certificates(app, cycle_id, job.revision).await?;
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
    let withdrawn =
        reconcile::withdraw_unearned(&mut tx, cycle_id, cycle.year, job.revision).await?;
    // One statement for all of them. A batch's key names this fan-out and its recipients, so a
    // retry of this job does not queue a batch twice, while a later fan-out of the same revision
    // reconciles afresh; a recipient in two batches is rendered once (the second finds it issued).
    let renders: Vec<(RenderCertificates, Option<String>)> = recipients
        .chunks(RENDER_BATCH)
        .map(|batch| {
            let mut hash = Sha256::new();
            for r in batch {
                hash.update(r.entity_id.to_le_bytes());
                hash.update(r.unit_id.unwrap_or(0).to_le_bytes());
            }
            let key = format!("render-{parent}-{}", hex::encode(&hash.finalize()[..12]));
            let render = RenderCertificates {
                cycle_id: job.cycle_id,
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
    tracing::info!(job = %parent, year = cycle.year, revision = job.revision, certificates = recipients.len(), jobs = renders.len(), withdrawn, "certificates reconciled");
    Ok(())
}

/// Renders, stores and records a batch of certificates, then counts the batch towards its
/// fan-out's progress.
pub async fn render(
    job: RenderCertificates,
    app: Data<App>,
    renderer: Data<Arc<Renderer>>,
    config: Data<WorkerConfig>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), JobError> {
    let started = std::time::Instant::now();
    let outcome = render_and_count(&job, &app, &renderer, &config).await;
    let retry = Retry {
        queue: "certificate-render",
        id,
        attempt,
    };
    finish(&retry, &app, &config, started, outcome).await
}

/// Renders a batch, then counts it towards its fan-out's progress.
async fn render_and_count(
    job: &RenderCertificates,
    app: &App,
    renderer: &Arc<Renderer>,
    config: &WorkerConfig,
) -> Result<(), JobError> {
    render_batch(job, app, renderer, config).await?;
    if let Some(parent) = &job.parent {
        sqlx::query!(
            "UPDATE job_progress SET done = LEAST(done + $2, total), updated_at = now() WHERE job_id = $1",
            parent,
            i32::try_from(job.recipients.len()).unwrap_or(i32::MAX)
        )
        .execute(&app.pool)
        .await?;
    }
    Ok(())
}

/// A certificate to make: whose, what it says, and the valid certificate seen before rendering.
struct Pending {
    recipient: Recipient,
    data: CertificateData,
    existing: Option<i64>,
}

async fn render_batch(
    job: &RenderCertificates,
    app: &App,
    renderer: &Arc<Renderer>,
    config: &WorkerConfig,
) -> Result<(), JobError> {
    let cycle = sqlx::query!(
        "SELECT year, methodology_code, results_revision FROM cycles WHERE id = $1",
        job.cycle_id.get()
    )
    .fetch_one(&app.pool)
    .await?;
    if cycle.results_revision != job.revision {
        tracing::info!(
            cycle_id = %job.cycle_id,
            revision = job.revision,
            "results revision superseded; a newer issue renders instead"
        );
        return Ok(());
    }
    let pending = data::certificate_data(app, job, cycle.methodology_code.as_str(), config).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let inputs: Vec<CertificateData> = pending.iter().map(|p| p.data.clone()).collect();
    let pdfs = Arc::clone(renderer).render_on_pool(inputs).await?;
    let mut stored = Vec::with_capacity(pdfs.len());
    for (p, pdf) in pending.iter().zip(pdfs) {
        let sha = Sha256::digest(&pdf).to_vec();
        let key = format!("certificates/{}/{}.pdf", cycle.year, p.data.code);
        let size = i32::try_from(pdf.len()).unwrap_or(i32::MAX);
        app.store
            .put(&object_store::path::Path::from(key.as_str()), pdf.into())
            .await?;
        stored.push(Stored { sha, key, size });
    }
    record::record(app, job, &pending, stored).await
}

/// A stored PDF.
struct Stored {
    sha: Vec<u8>,
    key: String,
    size: i32,
}
