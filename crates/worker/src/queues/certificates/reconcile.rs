//! Reconciling a cycle's certificates with a results revision: who needs a new certificate, and
//! which valid certificates are withdrawn.
//!
//! - A recipient earning an award in the revision (an award-eligible entity, and each of its
//!   units with a result) needs a certificate when it has no valid one, or when its valid one
//!   states another score, grade or rank (the rank is printed). An admin's revocation sticks: a
//!   recipient whose latest certificate was revoked gets none until an explicit reissue.
//! - A valid certificate whose recipient earns no award in the revision (its eligibility lost,
//!   or its result gone) is withdrawn, with the reason, and a `certificate.withdrawn` event.

use kepatuhan_app::App;
use kepatuhan_app::events::{self, Event};
use kepatuhan_app::jobs::Recipient;
use sqlx::{Postgres, Transaction};

use super::data::rank_sentence;
use crate::error::JobError;

/// The recipients of revision `revision` of the cycle `cycle_id` whose certificate is missing or states
/// an outdated result, in recipient order.
pub(super) async fn needing_certificates(
    app: &App,
    cycle_id: i64,
    revision: i32,
) -> Result<Vec<Recipient>, JobError> {
    let rows = sqlx::query!(
        r#"WITH wanted AS (
               SELECT r.entity_id, NULL::bigint AS unit_id, r.score, r.grade_code,
                      r.national_rank, r.national_of, r.provincial_rank, r.provincial_of
               FROM entity_results r WHERE r.cycle_id = $1 AND r.revision = $2 AND r.award_eligible
               UNION ALL
               SELECT u.entity_id, ur.unit_id, ur.score, ur.grade_code,
                      r.national_rank, r.national_of, r.provincial_rank, r.provincial_of
               FROM unit_results ur JOIN units u ON u.id = ur.unit_id
               JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_id = ur.cycle_id AND r.revision = ur.revision
               WHERE ur.cycle_id = $1 AND ur.revision = $2 AND r.award_eligible)
           SELECT w.entity_id AS "entity_id!", w.unit_id, w.score AS "score!", w.grade_code AS "grade_code!",
                  e.kind, p.name AS "province?",
                  w.national_rank AS "national_rank!", w.national_of AS "national_of!",
                  w.provincial_rank, w.provincial_of,
                  c.id AS "valid_id?", c.score AS "valid_score?", c.grade_code AS "valid_grade?", c.rank_text AS "valid_rank?",
                  (SELECT l.status = 'revoked' FROM certificates l
                   WHERE l.cycle_id = $1 AND l.entity_id = w.entity_id AND COALESCE(l.unit_id, 0) = COALESCE(w.unit_id, 0)
                   ORDER BY l.id DESC LIMIT 1) AS "revoked?"
           FROM wanted w
           JOIN entities e ON e.id = w.entity_id
           LEFT JOIN provinces p ON p.code = e.province_code
           LEFT JOIN certificates c ON c.cycle_id = $1 AND c.status = 'valid' AND c.entity_id = w.entity_id
                AND COALESCE(c.unit_id, 0) = COALESCE(w.unit_id, 0)
           ORDER BY w.entity_id, w.unit_id NULLS FIRST"#,
        cycle_id,
        revision
    )
    .fetch_all(&app.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| match r.valid_id {
            // An admin's revocation sticks until an explicit reissue.
            None => r.revoked != Some(true),
            Some(_) => {
                let rank = r.unit_id.is_none().then(|| {
                    rank_sentence(
                        &r.kind,
                        r.provincial_rank.zip(r.provincial_of),
                        r.province.as_deref(),
                        (r.national_rank, r.national_of),
                    )
                });
                r.valid_score != Some(r.score)
                    || r.valid_grade.as_deref() != Some(r.grade_code.as_str())
                    || r.valid_rank != rank
            }
        })
        .map(|r| Recipient {
            entity_id: r.entity_id,
            unit_id: r.unit_id,
        })
        .collect())
}

/// Withdraws, in the caller's transaction, the valid certificates of the cycle `cycle_id` (of
/// `year`) whose
/// recipient earns no award in revision `revision`, and emits their events; returns how many.
pub(super) async fn withdraw_unearned(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
    year: i32,
    revision: i32,
) -> Result<usize, JobError> {
    let reason = format!("tidak lagi memenuhi syarat penghargaan pada revisi hasil {revision}");
    let withdrawn = sqlx::query!(
        r#"UPDATE certificates c SET status = 'withdrawn', revoke_reason = $3, status_changed_at = now()
           WHERE c.cycle_id = $1 AND c.status = 'valid'
             AND NOT EXISTS (
                 SELECT 1 FROM entity_results r
                 WHERE r.cycle_id = $1 AND r.revision = $2 AND r.entity_id = c.entity_id AND r.award_eligible
                   AND (c.unit_id IS NULL OR EXISTS (
                        SELECT 1 FROM unit_results ur
                        WHERE ur.cycle_id = $1 AND ur.revision = $2 AND ur.unit_id = c.unit_id)))
           RETURNING c.code, c.entity_id, c.unit_id"#,
        cycle_id,
        revision,
        reason
    )
    .fetch_all(&mut **tx)
    .await?;
    let events: Vec<Event> = withdrawn
        .iter()
        .map(|w| Event {
            event_type: "certificate.withdrawn",
            entity_id: Some(w.entity_id),
            data: serde_json::json!({
                "code": w.code, "year": year, "unit_id": w.unit_id, "revision": revision, "reason": reason,
            }),
        })
        .collect();
    events::emit_many(tx, events).await?;
    for w in &withdrawn {
        tracing::info!(code = %w.code, year, revision, "certificate withdrawn");
    }
    Ok(withdrawn.len())
}
