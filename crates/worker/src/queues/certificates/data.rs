//! What each certificate of a batch states, read from the stored results.

use chrono::Utc;
use kepatuhan_app::App;
use kepatuhan_app::jobs::{Recipient, RenderCertificates};
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;

use super::Pending;
use crate::WorkerConfig;
use crate::error::JobError;
use crate::render::CertificateData;

/// What each recipient's certificate says, from the stored results, with one query for the
/// batch. A recipient without a result in this revision is left out, and so is one whose valid
/// certificate already states its result (unless the job forces a reissue).
pub(super) async fn certificate_data(
    app: &App,
    job: &RenderCertificates,
    methodology: &str,
    config: &WorkerConfig,
) -> Result<Vec<Pending>, JobError> {
    let (entities, units): (Vec<i64>, Vec<Option<i64>>) = job
        .recipients
        .iter()
        .map(|r| (r.entity_id, r.unit_id))
        .unzip();
    let rows = sqlx::query!(
        r#"SELECT r.entity_id AS "entity_id!", r.unit_id, e.name, e.kind, p.name AS "province?",
                  er.score, er.grade_code, er.grade_label, er.zone,
                  er.national_rank, er.national_of, er.provincial_rank, er.provincial_of, c.year, c.published_at,
                  u.name AS "unit_name?", ur.score AS "unit_score?", ur.grade_code AS "unit_grade?",
                  cert.id AS "existing_id?", cert.score AS "existing_score?", cert.grade_code AS "existing_grade?",
                  cert.rank_text AS "existing_rank?"
           FROM UNNEST($3::bigint[], $4::bigint[]) WITH ORDINALITY AS r(entity_id, unit_id, ord)
           JOIN entity_results er ON er.cycle_id = $1 AND er.revision = $2 AND er.entity_id = r.entity_id
           JOIN entities e ON e.id = r.entity_id
           LEFT JOIN provinces p ON p.code = e.province_code
           JOIN cycles c ON c.id = $1
           LEFT JOIN units u ON u.id = r.unit_id AND u.entity_id = r.entity_id
           LEFT JOIN unit_results ur ON ur.cycle_id = $1 AND ur.revision = $2 AND ur.unit_id = r.unit_id
           LEFT JOIN certificates cert ON cert.cycle_id = $1 AND cert.status = 'valid'
                AND cert.entity_id = r.entity_id AND COALESCE(cert.unit_id, 0) = COALESCE(r.unit_id, 0)
           ORDER BY r.ord"#,
        job.cycle_id.get(),
        job.revision,
        &entities,
        &units as &[Option<i64>]
    )
    .fetch_all(&app.pool)
    .await?;
    let bands = app.methodology(methodology).map(|m| m.bands().bands());
    let mut pending = Vec::with_capacity(rows.len());
    for row in rows {
        let recipient = Recipient {
            entity_id: row.entity_id,
            unit_id: row.unit_id,
        };
        let signed_on = row.published_at.unwrap_or_else(Utc::now).date_naive();
        let code = super::new_code();
        let mut data = CertificateData {
            verify_url: format!("{}/verify/{code}", app.public_base_url),
            code,
            recipient: row.name.clone(),
            recipient_detail: None,
            year: u16::try_from(row.year).map_err(|e| JobError::Inconsistent(e.to_string()))?,
            score: PublishedScore::new(row.score)
                .map_err(|e| JobError::Inconsistent(e.to_string()))?,
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
                score: PublishedScore::new(score)
                    .map_err(|e| JobError::Inconsistent(e.to_string()))?,
                grade_label: band.map_or_else(|| grade.clone(), |b| b.label.clone()),
                zone: band.and_then(|b| b.zone),
                grade_code: grade,
                rank: None,
                ..data
            };
        }
        let unchanged = row.existing_score == Some(data.score.value())
            && row.existing_grade.as_deref() == Some(data.grade_code.as_str())
            && row.existing_rank == data.rank;
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
pub(super) fn rank_sentence(
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
