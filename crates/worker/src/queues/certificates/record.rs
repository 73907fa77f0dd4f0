//! Recording a rendered batch: one transaction that locks, supersedes, inserts, links the
//! replaced certificates and emits their events.

use kepatuhan_app::App;
use kepatuhan_app::events::{self, Event};
use kepatuhan_app::jobs::{Recipient, RenderCertificates};

use super::{Pending, Stored};
use crate::error::JobError;

/// Records stored certificates in one transaction, each superseding its recipient's valid one.
/// A certificate whose recipient's valid certificate changed since it was rendered (another
/// worker issued one meanwhile) is dropped.
pub(super) async fn record(
    app: &App,
    job: &RenderCertificates,
    pending: &[Pending],
    stored: Vec<Stored>,
) -> Result<(), JobError> {
    let cycle_id = job.cycle_id.get();
    let (entities, units): (Vec<i64>, Vec<Option<i64>>) = pending
        .iter()
        .map(|p| (p.recipient.entity_id, p.recipient.unit_id))
        .unzip();
    let mut tx = app.pool.begin().await?;
    // The recipients' valid certificates, locked (in the batch's recipient order, as every
    // batch is cut from one ordered list): concurrent renders of one recipient serialize here.
    // One index lookup per recipient (`certificates_one_valid`); a join let the planner, which
    // has no statistics for a table filled during the run, scan every certificate per batch.
    let current = sqlx::query!(
        r#"SELECT c.id AS "id!", c.entity_id AS "entity_id!", c.unit_id
           FROM UNNEST($2::bigint[], $3::bigint[]) AS r(entity_id, unit_id)
           CROSS JOIN LATERAL (
               SELECT v.id, v.entity_id, v.unit_id FROM certificates v
               WHERE v.cycle_id = $1 AND v.status = 'valid'
                 AND v.entity_id = r.entity_id AND COALESCE(v.unit_id, 0) = COALESCE(r.unit_id, 0)
               FOR UPDATE) c"#,
        cycle_id,
        &entities,
        &units as &[Option<i64>]
    )
    .fetch_all(&mut *tx)
    .await?;
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
    .await?;
    let rows = CertificateRows::new(&issue);
    let new_ids = insert(&mut tx, job, &rows).await?;
    let previous: Vec<i64> = issue.iter().map(|(.., prev)| prev.unwrap_or(0)).collect();
    let links = link_replaced(&mut tx, cycle_id, &new_ids, &rows, &previous).await?;
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
    events::emit_many(&mut tx, events).await?;
    tx.commit().await?;
    metrics::counter!("kepatuhan_certificates_issued_total").increment(issue.len() as u64);
    for (p, ..) in &issue {
        tracing::info!(code = %p.data.code, year = p.data.year, entity = p.recipient.entity_id, unit = ?p.recipient.unit_id, "certificate issued");
    }
    Ok(())
}

/// Inserts a batch's certificates; returns their ids in the order of `rows`.
async fn insert(
    tx: &mut sqlx::PgConnection,
    job: &RenderCertificates,
    rows: &CertificateRows,
) -> Result<Vec<i64>, JobError> {
    let inserted = sqlx::query!(
        r#"INSERT INTO certificates (code, cycle_id, revision, entity_id, unit_id, recipient, recipient_detail, score, grade_code,
                                    grade_label, zone, rank_text, sha256, object_key, size_bytes)
           SELECT r.code, $1, $2, r.entity_id, r.unit_id, r.recipient, r.recipient_detail, r.score, r.grade_code,
                  r.grade_label, r.zone, r.rank_text, r.sha256, r.object_key, r.size_bytes
           FROM UNNEST($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::numeric[], $9::text[],
                       $10::text[], $11::text[], $12::text[], $13::bytea[], $14::text[], $15::int[])
                AS r(code, entity_id, unit_id, recipient, recipient_detail, score, grade_code,
                     grade_label, zone, rank_text, sha256, object_key, size_bytes)
           RETURNING id, code"#,
        job.cycle_id.get(),
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
    .await?;
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
    cycle_id: i64,
    new_ids: &[i64],
    rows: &CertificateRows,
    previous: &[i64],
) -> Result<Vec<(i64, String)>, JobError> {
    let linked = sqlx::query!(
        r#"UPDATE certificates o SET replaced_by = n.new_id
           FROM (SELECT r.new_id,
                        (SELECT c.id FROM certificates c
                         WHERE c.cycle_id = $1 AND c.entity_id = r.entity_id AND c.unit_id IS NOT DISTINCT FROM r.unit_id
                           AND c.status <> 'valid' AND c.replaced_by IS NULL AND c.id <> r.new_id
                         ORDER BY (c.id = r.previous) DESC, c.id DESC LIMIT 1) AS old_id
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS r(new_id, entity_id, unit_id, previous)) n
           WHERE o.id = n.old_id
           RETURNING n.new_id AS "new_id!", o.code"#,
        cycle_id,
        new_ids,
        &rows.entity_id,
        &rows.unit_id as &[Option<i64>],
        previous
    )
    .fetch_all(&mut *tx)
    .await?;
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
            "year": p.data.year,
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
