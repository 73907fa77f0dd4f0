//! The certificate queues: `certificates` fans out one `certificate-render` job per recipient
//! (award-eligible entities and their units) whose valid certificate is missing or states an
//! outdated result; each render job makes the PDF, stores it, and records it, superseding the
//! recipient's previous certificate. Progress is counted on the fan-out job.

use std::sync::Arc;

use apalis::prelude::*;
use chrono::Utc;
use kepatuhan_api::AppState;
use kepatuhan_api::jobs::{self, IssueCertificates, RenderCertificate};
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::WorkerConfig;
use crate::render::{CertificateData, Renderer};

/// Why a certificate job failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CertificateError(pub String);

impl CertificateError {
    fn from<E: std::fmt::Display>(e: E) -> Self {
        Self(e.to_string())
    }
}

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

/// Fans out one render job per recipient needing a certificate.
pub async fn issue(
    job: IssueCertificates,
    state: Data<AppState>,
    id: TaskId,
) -> Result<(), CertificateError> {
    let span = tracing::info_span!(
        "issue_certificates",
        year = job.year,
        revision = job.revision
    );
    kepatuhan_api::telemetry::continue_trace(&span, job.traceparent.as_deref());
    tracing::Instrument::instrument(issue_in_span(job, &state, id), span).await
}

async fn issue_in_span(
    job: IssueCertificates,
    state: &AppState,
    id: TaskId,
) -> Result<(), CertificateError> {
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
    .fetch_all(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    let parent = id.to_string();
    let mut tx = state.pool.begin().await.map_err(CertificateError::from)?;
    sqlx::query!(
        "INSERT INTO job_progress (job_id, done, total) VALUES ($1, 0, $2)
         ON CONFLICT (job_id) DO UPDATE SET total = excluded.total, updated_at = now()",
        parent,
        i32::try_from(recipients.len()).unwrap_or(i32::MAX)
    )
    .execute(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    // One statement for all of them: a national publication fans out ≈ 4,400 jobs.
    let renders: Vec<(RenderCertificate, String)> = recipients
        .iter()
        .map(|r| {
            let render = RenderCertificate {
                year: job.year,
                revision: job.revision,
                entity_id: r.entity_id,
                unit_id: r.unit_id,
                parent: Some(parent.clone()),
                force: false,
            };
            let key = format!(
                "render-{}-{}-{}-{}",
                job.year,
                job.revision,
                r.entity_id,
                r.unit_id.unwrap_or(0)
            );
            (render, key)
        })
        .collect();
    jobs::enqueue_many(&mut tx, &renders)
        .await
        .map_err(CertificateError::from)?;
    tx.commit().await.map_err(CertificateError::from)?;
    tracing::info!(job = %parent, year = job.year, revision = job.revision, certificates = recipients.len(), "certificates fanned out");
    Ok(())
}

/// Renders, stores and records one certificate.
pub async fn render(
    job: RenderCertificate,
    state: Data<AppState>,
    renderer: Data<Arc<Renderer>>,
    config: Data<WorkerConfig>,
) -> Result<(), CertificateError> {
    let started = std::time::Instant::now();
    let outcome = render_one(&job, &state, &renderer, &config).await;
    crate::record_job("certificate-render", outcome.is_ok(), started);
    if outcome.is_ok()
        && let Some(parent) = &job.parent
    {
        sqlx::query!("UPDATE job_progress SET done = LEAST(done + 1, total), updated_at = now() WHERE job_id = $1", parent)
            .execute(&state.pool)
            .await
            .map_err(CertificateError::from)?;
    }
    outcome
}

async fn render_one(
    job: &RenderCertificate,
    state: &AppState,
    renderer: &Arc<Renderer>,
    config: &WorkerConfig,
) -> Result<(), CertificateError> {
    let year = i32::from(job.year);
    let cycle = sqlx::query!(
        "SELECT methodology_code, results_revision, published_at FROM cycles WHERE year = $1",
        year
    )
    .fetch_one(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    if cycle.results_revision != job.revision {
        tracing::info!(
            year,
            revision = job.revision,
            "results revision superseded; a newer issue renders instead"
        );
        return Ok(());
    }
    let Some(data) = certificate_data(state, job, cycle.methodology_code.as_str(), config).await?
    else {
        return Ok(());
    };
    let existing = sqlx::query!(
        "SELECT id, score, grade_code FROM certificates WHERE cycle_year = $1 AND entity_id = $2 AND unit_id IS NOT DISTINCT FROM $3 AND status = 'valid'",
        year,
        job.entity_id,
        job.unit_id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    if !job.force
        && existing
            .as_ref()
            .is_some_and(|e| e.score == data.score.value() && e.grade_code == data.grade_code)
    {
        return Ok(()); // already issued: generating twice never makes a second valid certificate
    }
    let renderer = renderer.clone();
    let input = data.clone();
    let pdf = tokio::task::spawn_blocking(move || renderer.render(&input))
        .await
        .map_err(CertificateError::from)?
        .map_err(CertificateError::from)?;
    let sha = Sha256::digest(&pdf).to_vec();
    let key = format!("certificates/{}/{}.pdf", job.year, data.code);
    let size = i32::try_from(pdf.len()).unwrap_or(i32::MAX);
    state
        .store
        .put(&object_store::path::Path::from(key.as_str()), pdf.into())
        .await
        .map_err(CertificateError::from)?;

    record(
        state,
        job,
        &data,
        Stored { sha, key, size },
        existing.map(|e| e.id),
    )
    .await
}

/// A stored PDF.
struct Stored {
    sha: Vec<u8>,
    key: String,
    size: i32,
}

/// Records a stored certificate, superseding the recipient's valid one (`expected` is the one
/// seen before rendering; if another worker replaced it meanwhile, this render is dropped).
async fn record(
    state: &AppState,
    job: &RenderCertificate,
    data: &CertificateData,
    stored: Stored,
    expected: Option<i64>,
) -> Result<(), CertificateError> {
    let Stored { sha, key, size } = stored;
    let year = i32::from(job.year);
    let mut tx = state.pool.begin().await.map_err(CertificateError::from)?;
    // The recipient's valid certificate, locked: concurrent renders of one recipient serialize here.
    let previous = sqlx::query_scalar!(
        "SELECT id FROM certificates WHERE cycle_year = $1 AND entity_id = $2 AND unit_id IS NOT DISTINCT FROM $3 AND status = 'valid' FOR UPDATE",
        year,
        job.entity_id,
        job.unit_id
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    if previous.is_some() && previous != expected {
        return Ok(()); // another worker issued one meanwhile
    }
    if let Some(old) = previous {
        sqlx::query!("UPDATE certificates SET status = 'superseded', status_changed_at = now() WHERE id = $1", old)
            .execute(&mut *tx)
            .await
            .map_err(CertificateError::from)?;
    }
    let new_id = sqlx::query_scalar!(
        "INSERT INTO certificates (code, cycle_year, revision, entity_id, unit_id, recipient, recipient_detail, score, grade_code,
                                   grade_label, zone, rank_text, sha256, object_key, size_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        data.code,
        year,
        job.revision,
        job.entity_id,
        job.unit_id,
        data.recipient,
        data.recipient_detail,
        data.score.value(),
        data.grade_code,
        data.grade_label,
        data.zone.map(|z| z.to_string()),
        data.rank,
        sha,
        key,
        size
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    // The certificate this one replaces: the superseded valid one, or else the latest revoked one
    // (a reissue after revocation), so old verification links point to the new certificate.
    let replaced: Option<String> = sqlx::query_scalar!(
        "UPDATE certificates SET replaced_by = $4
         WHERE id = (SELECT id FROM certificates
                     WHERE cycle_year = $1 AND entity_id = $2 AND unit_id IS NOT DISTINCT FROM $3
                       AND status <> 'valid' AND replaced_by IS NULL AND id <> $4
                     ORDER BY (id = $5) DESC, id DESC LIMIT 1)
         RETURNING code",
        year,
        job.entity_id,
        job.unit_id,
        new_id,
        previous.unwrap_or(0)
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    let event = serde_json::json!({
        "code": data.code,
        "year": job.year,
        "revision": job.revision,
        "recipient": data.recipient,
        "recipient_detail": data.recipient_detail,
        "unit_id": job.unit_id,
        "score": data.score.value(),
        "grade": data.grade_code,
        "verify_url": data.verify_url,
        "replaces": replaced,
    });
    let kind = if replaced.is_some() {
        "certificate.reissued"
    } else {
        "certificate.issued"
    };
    kepatuhan_api::webhooks::emit(&mut tx, kind, Some(job.entity_id), event)
        .await
        .map_err(CertificateError::from)?;
    tx.commit().await.map_err(CertificateError::from)?;
    metrics::counter!("kepatuhan_certificates_issued_total").increment(1);
    tracing::info!(code = %data.code, year, entity = job.entity_id, unit = ?job.unit_id, "certificate issued");
    Ok(())
}

/// What the certificate of this recipient says, from the stored results; `None` if the recipient
/// has no result in this revision.
async fn certificate_data(
    state: &AppState,
    job: &RenderCertificate,
    methodology: &str,
    config: &WorkerConfig,
) -> Result<Option<CertificateData>, CertificateError> {
    let year = i32::from(job.year);
    let entity = sqlx::query!(
        r#"SELECT e.name, e.kind, p.name AS "province?", r.score, r.grade_code, r.grade_label, r.zone,
                  r.national_rank, r.national_of, r.provincial_rank, r.provincial_of, c.published_at
           FROM entity_results r JOIN entities e ON e.id = r.entity_id LEFT JOIN provinces p ON p.code = e.province_code
           JOIN cycles c ON c.year = r.cycle_year
           WHERE r.cycle_year = $1 AND r.revision = $2 AND r.entity_id = $3"#,
        year,
        job.revision,
        job.entity_id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    let Some(entity) = entity else {
        return Ok(None);
    };
    let date = entity.published_at.unwrap_or_else(Utc::now).date_naive();
    let code = new_code();
    let base = CertificateData {
        verify_url: format!("{}/verify/{code}", state.public_base_url),
        code,
        recipient: entity.name.clone(),
        recipient_detail: None,
        year: job.year,
        score: PublishedScore::new(entity.score).map_err(CertificateError::from)?,
        grade_code: entity.grade_code.clone(),
        grade_label: entity.grade_label.clone(),
        zone: zone(entity.zone.as_deref()),
        rank: Some(
            match (
                entity.kind.as_str(),
                entity.provincial_rank,
                entity.provincial_of,
                &entity.province,
            ) {
                ("city" | "regency", Some(r), Some(of), Some(p)) => {
                    format!("Peringkat {r} dari {of} kabupaten/kota di Provinsi {p}")
                }
                (kind, ..) => format!(
                    "Peringkat {} dari {} {} secara nasional",
                    entity.national_rank,
                    entity.national_of,
                    kind_plural(kind)
                ),
            },
        ),
        place: config.place.clone(),
        date,
        signatory_name: config.signatory_name.clone(),
        signatory_title: config.signatory_title.clone(),
    };
    let Some(unit_id) = job.unit_id else {
        return Ok(Some(base));
    };
    let unit = sqlx::query!(
        "SELECT u.name, r.score, r.grade_code FROM unit_results r JOIN units u ON u.id = r.unit_id
         WHERE r.cycle_year = $1 AND r.revision = $2 AND r.unit_id = $3",
        year,
        job.revision,
        unit_id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    let Some(unit) = unit else { return Ok(None) };
    let band = state.methodology(methodology).and_then(|m| {
        m.bands()
            .bands()
            .iter()
            .find(|b| b.code == unit.grade_code)
            .cloned()
    });
    Ok(Some(CertificateData {
        recipient: unit.name,
        recipient_detail: Some(entity.name),
        score: PublishedScore::new(unit.score).map_err(CertificateError::from)?,
        grade_label: band
            .as_ref()
            .map_or_else(|| unit.grade_code.clone(), |b| b.label.clone()),
        zone: band.and_then(|b| b.zone),
        grade_code: unit.grade_code,
        rank: None,
        ..base
    }))
}

fn zone(text: Option<&str>) -> Option<Zone> {
    match text? {
        "green" => Some(Zone::Green),
        "yellow" => Some(Zone::Yellow),
        "red" => Some(Zone::Red),
        _ => None,
    }
}

fn kind_plural(kind: &str) -> &'static str {
    match kind {
        "ministry" => "kementerian",
        "agency" => "lembaga",
        "province" => "pemerintah provinsi",
        "city" => "pemerintah kota",
        _ => "pemerintah kabupaten",
    }
}
