//! The certificate queues: `certificates` fans out `certificate-render` jobs, each for a batch of
//! recipients (award-eligible entities and their units) whose valid certificate is missing or
//! states an outdated result; a render job makes the batch's PDFs, stores them, and records them
//! in one transaction, each superseding its recipient's previous certificate. Progress is
//! counted on the fan-out job.

use std::sync::Arc;

use apalis::prelude::*;
use chrono::Utc;
use kepatuhan_api::AppState;
use kepatuhan_api::jobs::{self, IssueCertificates, Recipient, RenderCertificates};
use kepatuhan_api::webhooks::Event;
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

/// Recipients per render job of a fan-out: a batch shares its job bookkeeping, its queries and
/// the transaction recording its certificates (one job per certificate spent more time in the
/// queue and in Postgres than in rendering).
pub const RENDER_BATCH: usize = 16;

/// Fans out render jobs, [`RENDER_BATCH`] recipients each, for every recipient needing a
/// certificate.
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
    let recipients: Vec<Recipient> = recipients
        .into_iter()
        .map(|r| Recipient {
            entity_id: r.entity_id,
            unit_id: r.unit_id,
        })
        .collect();
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
    jobs::enqueue_many(&mut tx, &renders)
        .await
        .map_err(CertificateError::from)?;
    tx.commit().await.map_err(CertificateError::from)?;
    tracing::info!(job = %parent, year = job.year, revision = job.revision, certificates = recipients.len(), jobs = renders.len(), "certificates fanned out");
    Ok(())
}

/// Renders, stores and records a batch of certificates, then counts the batch towards its
/// fan-out's progress.
pub async fn render(
    job: RenderCertificates,
    state: Data<AppState>,
    renderer: Data<Arc<Renderer>>,
    config: Data<WorkerConfig>,
) -> Result<(), CertificateError> {
    let started = std::time::Instant::now();
    let outcome = render_batch(&job, &state, &renderer, &config).await;
    crate::record_job("certificate-render", outcome.is_ok(), started);
    if outcome.is_ok()
        && let Some(parent) = &job.parent
    {
        sqlx::query!(
            "UPDATE job_progress SET done = LEAST(done + $2, total), updated_at = now() WHERE job_id = $1",
            parent,
            i32::try_from(job.recipients.len()).unwrap_or(i32::MAX)
        )
        .execute(&state.pool)
        .await
        .map_err(CertificateError::from)?;
    }
    outcome
}

/// A certificate to make: whose, what it says, and the valid certificate seen before rendering.
struct Pending {
    recipient: Recipient,
    data: CertificateData,
    existing: Option<i64>,
}

async fn render_batch(
    job: &RenderCertificates,
    state: &AppState,
    renderer: &Arc<Renderer>,
    config: &WorkerConfig,
) -> Result<(), CertificateError> {
    let year = i32::from(job.year);
    let cycle = sqlx::query!(
        "SELECT methodology_code, results_revision FROM cycles WHERE year = $1",
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
    let pending = certificate_data(state, job, cycle.methodology_code.as_str(), config).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let inputs: Vec<CertificateData> = pending.iter().map(|p| p.data.clone()).collect();
    let pdfs = Arc::clone(renderer)
        .render_on_pool(inputs)
        .await
        .map_err(CertificateError::from)?;
    let mut stored = Vec::with_capacity(pdfs.len());
    for (p, pdf) in pending.iter().zip(pdfs) {
        let sha = Sha256::digest(&pdf).to_vec();
        let key = format!("certificates/{}/{}.pdf", job.year, p.data.code);
        let size = i32::try_from(pdf.len()).unwrap_or(i32::MAX);
        state
            .store
            .put(&object_store::path::Path::from(key.as_str()), pdf.into())
            .await
            .map_err(CertificateError::from)?;
        stored.push(Stored { sha, key, size });
    }
    record(state, job, &pending, stored).await
}

/// A stored PDF.
struct Stored {
    sha: Vec<u8>,
    key: String,
    size: i32,
}

/// Records stored certificates in one transaction, each superseding its recipient's valid one.
/// A certificate whose recipient's valid certificate changed since it was rendered (another
/// worker issued one meanwhile) is dropped.
async fn record(
    state: &AppState,
    job: &RenderCertificates,
    pending: &[Pending],
    stored: Vec<Stored>,
) -> Result<(), CertificateError> {
    let year = i32::from(job.year);
    let (entities, units): (Vec<i64>, Vec<Option<i64>>) = pending
        .iter()
        .map(|p| (p.recipient.entity_id, p.recipient.unit_id))
        .unzip();
    let mut tx = state.pool.begin().await.map_err(CertificateError::from)?;
    // The recipients' valid certificates, locked (in the batch's recipient order, as every
    // batch is cut from one ordered list): concurrent renders of one recipient serialize here.
    // One index lookup per recipient (`certificates_one_valid`); a join let the planner, which
    // has no statistics for a table filled during the run, scan every certificate per batch.
    let current = sqlx::query!(
        r#"SELECT c.id AS "id!", c.entity_id AS "entity_id!", c.unit_id
           FROM UNNEST($2::bigint[], $3::bigint[]) AS r(entity_id, unit_id)
           CROSS JOIN LATERAL (
               SELECT v.id, v.entity_id, v.unit_id FROM certificates v
               WHERE v.cycle_year = $1 AND v.status = 'valid'
                 AND v.entity_id = r.entity_id AND COALESCE(v.unit_id, 0) = COALESCE(r.unit_id, 0)
               FOR UPDATE) c"#,
        year,
        &entities,
        &units as &[Option<i64>]
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    let valid_now = |r: Recipient| {
        current
            .iter()
            .find(|c| c.entity_id == r.entity_id && c.unit_id == r.unit_id)
            .map(|c| c.id)
    };
    let issue: Vec<(&Pending, Stored, Option<i64>)> = pending
        .iter()
        .zip(stored)
        .filter_map(|(p, s)| {
            let previous = valid_now(p.recipient);
            // Another worker issued one meanwhile: its certificate stands.
            (previous.is_none() || previous == p.existing).then_some((p, s, previous))
        })
        .collect();
    if issue.is_empty() {
        return Ok(());
    }
    let superseded: Vec<i64> = issue
        .iter()
        .filter_map(|(.., previous)| *previous)
        .collect();
    sqlx::query!(
        "UPDATE certificates SET status = 'superseded', status_changed_at = now() WHERE id = ANY($1)",
        &superseded
    )
    .execute(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    let rows = CertificateRows::new(&issue);
    let new_ids = insert(&mut tx, job, &rows).await?;
    let previous: Vec<i64> = issue.iter().map(|(.., prev)| prev.unwrap_or(0)).collect();
    let links = link_replaced(&mut tx, year, &new_ids, &rows, &previous).await?;
    let events: Vec<Event> = issue
        .iter()
        .zip(&new_ids)
        .map(|((p, ..), id)| {
            let replaced_code = links
                .iter()
                .find(|(new_id, _)| new_id == id)
                .map(|(_, code)| code.as_str());
            issued_event(job, p, replaced_code)
        })
        .collect();
    kepatuhan_api::webhooks::emit_many(&mut tx, events)
        .await
        .map_err(CertificateError::from)?;
    tx.commit().await.map_err(CertificateError::from)?;
    metrics::counter!("kepatuhan_certificates_issued_total").increment(issue.len() as u64);
    for (p, ..) in &issue {
        tracing::info!(code = %p.data.code, year, entity = p.recipient.entity_id, unit = ?p.recipient.unit_id, "certificate issued");
    }
    Ok(())
}

/// Inserts a batch's certificates; returns their ids in the order of `rows`.
async fn insert(
    tx: &mut sqlx::PgConnection,
    job: &RenderCertificates,
    rows: &CertificateRows,
) -> Result<Vec<i64>, CertificateError> {
    let inserted = sqlx::query!(
        r#"INSERT INTO certificates (code, cycle_year, revision, entity_id, unit_id, recipient, recipient_detail, score, grade_code,
                                    grade_label, zone, rank_text, sha256, object_key, size_bytes)
           SELECT r.code, $1, $2, r.entity_id, r.unit_id, r.recipient, r.recipient_detail, r.score, r.grade_code,
                  r.grade_label, r.zone, r.rank_text, r.sha256, r.object_key, r.size_bytes
           FROM UNNEST($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::numeric[], $9::text[],
                       $10::text[], $11::text[], $12::text[], $13::bytea[], $14::text[], $15::int[])
                AS r(code, entity_id, unit_id, recipient, recipient_detail, score, grade_code,
                     grade_label, zone, rank_text, sha256, object_key, size_bytes)
           RETURNING id, code"#,
        i32::from(job.year),
        job.revision,
        &rows.code,
        &rows.entity_id,
        &rows.unit_id as &[Option<i64>],
        &rows.recipient,
        &rows.recipient_detail as &[Option<String>],
        &rows.score,
        &rows.grade_code,
        &rows.grade_label,
        &rows.zone as &[Option<String>],
        &rows.rank_text as &[Option<String>],
        &rows.sha256,
        &rows.object_key,
        &rows.size_bytes
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    Ok(rows
        .code
        .iter()
        .map(|code| {
            inserted
                .iter()
                .find(|i| &i.code == code)
                .map_or(0, |i| i.id)
        })
        .collect())
}

/// Points the certificate each new one replaces at it: the superseded valid one (`previous`), or
/// else the latest revoked one (a reissue after revocation), so old verification links lead to
/// the new certificate. Returns `(new id, replaced code)` pairs.
async fn link_replaced(
    tx: &mut sqlx::PgConnection,
    year: i32,
    new_ids: &[i64],
    rows: &CertificateRows,
    previous: &[i64],
) -> Result<Vec<(i64, String)>, CertificateError> {
    let linked = sqlx::query!(
        r#"UPDATE certificates o SET replaced_by = n.new_id
           FROM (SELECT r.new_id,
                        (SELECT c.id FROM certificates c
                         WHERE c.cycle_year = $1 AND c.entity_id = r.entity_id AND c.unit_id IS NOT DISTINCT FROM r.unit_id
                           AND c.status <> 'valid' AND c.replaced_by IS NULL AND c.id <> r.new_id
                         ORDER BY (c.id = r.previous) DESC, c.id DESC LIMIT 1) AS old_id
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS r(new_id, entity_id, unit_id, previous)) n
           WHERE o.id = n.old_id
           RETURNING n.new_id AS "new_id!", o.code"#,
        year,
        new_ids,
        &rows.entity_id,
        &rows.unit_id as &[Option<i64>],
        previous
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(CertificateError::from)?;
    Ok(linked.into_iter().map(|l| (l.new_id, l.code)).collect())
}

/// The `certificate.issued` event of a new certificate, or `certificate.reissued` when it
/// replaces one (`replaces`: that one's code).
fn issued_event(job: &RenderCertificates, p: &Pending, replaces: Option<&str>) -> Event {
    Event {
        event_type: if replaces.is_some() {
            "certificate.reissued"
        } else {
            "certificate.issued"
        },
        entity_id: Some(p.recipient.entity_id),
        data: serde_json::json!({
            "code": p.data.code,
            "year": job.year,
            "revision": job.revision,
            "recipient": p.data.recipient,
            "recipient_detail": p.data.recipient_detail,
            "unit_id": p.recipient.unit_id,
            "score": p.data.score.value(),
            "grade": p.data.grade_code,
            "verify_url": p.data.verify_url,
            "replaces": replaces,
        }),
    }
}

/// The certificates of a batch as columns, for one `INSERT … SELECT FROM UNNEST`.
struct CertificateRows {
    code: Vec<String>,
    entity_id: Vec<i64>,
    unit_id: Vec<Option<i64>>,
    recipient: Vec<String>,
    recipient_detail: Vec<Option<String>>,
    score: Vec<rust_decimal::Decimal>,
    grade_code: Vec<String>,
    grade_label: Vec<String>,
    zone: Vec<Option<String>>,
    rank_text: Vec<Option<String>>,
    sha256: Vec<Vec<u8>>,
    object_key: Vec<String>,
    size_bytes: Vec<i32>,
}

impl CertificateRows {
    fn new(issue: &[(&Pending, Stored, Option<i64>)]) -> Self {
        let mut rows = Self {
            code: Vec::new(),
            entity_id: Vec::new(),
            unit_id: Vec::new(),
            recipient: Vec::new(),
            recipient_detail: Vec::new(),
            score: Vec::new(),
            grade_code: Vec::new(),
            grade_label: Vec::new(),
            zone: Vec::new(),
            rank_text: Vec::new(),
            sha256: Vec::new(),
            object_key: Vec::new(),
            size_bytes: Vec::new(),
        };
        for (p, s, _) in issue {
            let d = &p.data;
            rows.code.push(d.code.clone());
            rows.entity_id.push(p.recipient.entity_id);
            rows.unit_id.push(p.recipient.unit_id);
            rows.recipient.push(d.recipient.clone());
            rows.recipient_detail.push(d.recipient_detail.clone());
            rows.score.push(d.score.value());
            rows.grade_code.push(d.grade_code.clone());
            rows.grade_label.push(d.grade_label.clone());
            rows.zone.push(d.zone.map(|z| z.to_string()));
            rows.rank_text.push(d.rank.clone());
            rows.sha256.push(s.sha.clone());
            rows.object_key.push(s.key.clone());
            rows.size_bytes.push(s.size);
        }
        rows
    }
}

/// What each recipient's certificate says, from the stored results, with one query for the
/// batch. A recipient without a result in this revision is left out, and so is one whose valid
/// certificate already states its result (unless the job forces a reissue).
async fn certificate_data(
    state: &AppState,
    job: &RenderCertificates,
    methodology: &str,
    config: &WorkerConfig,
) -> Result<Vec<Pending>, CertificateError> {
    let year = i32::from(job.year);
    let (entities, units): (Vec<i64>, Vec<Option<i64>>) = job
        .recipients
        .iter()
        .map(|r| (r.entity_id, r.unit_id))
        .unzip();
    let rows = sqlx::query!(
        r#"SELECT r.entity_id AS "entity_id!", r.unit_id, e.name, e.kind, p.name AS "province?",
                  er.score, er.grade_code, er.grade_label, er.zone,
                  er.national_rank, er.national_of, er.provincial_rank, er.provincial_of, c.published_at,
                  u.name AS "unit_name?", ur.score AS "unit_score?", ur.grade_code AS "unit_grade?",
                  cert.id AS "existing_id?", cert.score AS "existing_score?", cert.grade_code AS "existing_grade?"
           FROM UNNEST($3::bigint[], $4::bigint[]) WITH ORDINALITY AS r(entity_id, unit_id, ord)
           JOIN entity_results er ON er.cycle_year = $1 AND er.revision = $2 AND er.entity_id = r.entity_id
           JOIN entities e ON e.id = r.entity_id
           LEFT JOIN provinces p ON p.code = e.province_code
           JOIN cycles c ON c.year = $1
           LEFT JOIN units u ON u.id = r.unit_id AND u.entity_id = r.entity_id
           LEFT JOIN unit_results ur ON ur.cycle_year = $1 AND ur.revision = $2 AND ur.unit_id = r.unit_id
           LEFT JOIN certificates cert ON cert.cycle_year = $1 AND cert.status = 'valid'
                AND cert.entity_id = r.entity_id AND COALESCE(cert.unit_id, 0) = COALESCE(r.unit_id, 0)
           ORDER BY r.ord"#,
        year,
        job.revision,
        &entities,
        &units as &[Option<i64>]
    )
    .fetch_all(&state.pool)
    .await
    .map_err(CertificateError::from)?;
    let bands = state.methodology(methodology).map(|m| m.bands().bands());
    let mut pending = Vec::with_capacity(rows.len());
    for row in rows {
        let recipient = Recipient {
            entity_id: row.entity_id,
            unit_id: row.unit_id,
        };
        let signed_on = row.published_at.unwrap_or_else(Utc::now).date_naive();
        let code = new_code();
        let mut data = CertificateData {
            verify_url: format!("{}/verify/{code}", state.public_base_url),
            code,
            recipient: row.name.clone(),
            recipient_detail: None,
            year: job.year,
            score: PublishedScore::new(row.score).map_err(CertificateError::from)?,
            grade_code: row.grade_code,
            grade_label: row.grade_label,
            zone: zone(row.zone.as_deref()),
            rank: Some(rank_sentence(
                &row.kind,
                row.provincial_rank.zip(row.provincial_of),
                row.province.as_deref(),
                (row.national_rank, row.national_of),
            )),
            place: config.place.clone(),
            date: signed_on,
            signatory_name: config.signatory_name.clone(),
            signatory_title: config.signatory_title.clone(),
        };
        if recipient.unit_id.is_some() {
            let (Some(name), Some(score), Some(grade)) =
                (row.unit_name, row.unit_score, row.unit_grade)
            else {
                continue; // no result in this revision
            };
            let band = bands.and_then(|b| b.iter().find(|b| b.code == grade));
            data = CertificateData {
                recipient: name,
                recipient_detail: Some(row.name),
                score: PublishedScore::new(score).map_err(CertificateError::from)?,
                grade_label: band.map_or_else(|| grade.clone(), |b| b.label.clone()),
                zone: band.and_then(|b| b.zone),
                grade_code: grade,
                rank: None,
                ..data
            };
        }
        let unchanged = row.existing_score == Some(data.score.value())
            && row.existing_grade.as_deref() == Some(data.grade_code.as_str());
        if unchanged && !job.force {
            continue; // already issued: generating twice never makes a second valid certificate
        }
        pending.push(Pending {
            recipient,
            data,
            existing: row.existing_id,
        });
    }
    Ok(pending)
}

/// The rank sentence of an entity's certificate: within its province for a city or regency,
/// nationally among its kind otherwise.
fn rank_sentence(
    kind: &str,
    provincial: Option<(i32, i32)>,
    province: Option<&str>,
    (national_rank, national_of): (i32, i32),
) -> String {
    match (kind, provincial, province) {
        ("city" | "regency", Some((r, of)), Some(p)) => {
            format!("Peringkat {r} dari {of} kabupaten/kota di Provinsi {p}")
        }
        (kind, ..) => format!(
            "Peringkat {national_rank} dari {national_of} {} secara nasional",
            kind_plural(kind)
        ),
    }
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
