//! The `certificate-render` queue: a job makes its batch's PDFs ([`crate::render`]), stores them,
//! and records them in one transaction ([`record`]), each superseding its recipient's previous
//! certificate; then counts the batch towards its fan-out's progress. What each certificate
//! states is read in [`data`].

mod data;
mod record;

use std::sync::Arc;

use apalis::prelude::*;
use kepatuhan_app::App;
use kepatuhan_app::jobs::{Recipient, RenderCertificates};
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
    let year = i32::from(job.year);
    let cycle = sqlx::query!(
        "SELECT methodology_code, results_revision FROM cycles WHERE year = $1",
        year
    )
    .fetch_one(&app.pool)
    .await?;
    if cycle.results_revision != job.revision {
        tracing::info!(
            year,
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
        let key = format!("certificates/{}/{}.pdf", job.year, p.data.code);
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
