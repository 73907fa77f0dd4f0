//! The review queue of integrity flags: what deserves a second look before HQ publishes.
//! Flags are computed by the recomputes (`kepatuhan_app::flags`); they never change a score.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/flags` | admin, office (its provinces) |
//! | `POST /flags/{id}/dismiss` | admin |
//! | `POST /flags/{id}/escalate` | admin |
//!
//! A dismissal holds while the flag's evidence stays the same; new evidence reopens the flag.
//! An escalation before publication sends the flag's verified submissions back to their office
//! (the flag opens again if the same evidence comes back once they are verified again); after
//! publication it waits for a correction that names it. Every decision is audited.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use kepatuhan_app::cycles::{self as app_cycles, InputChange};
use kepatuhan_core::flags::Subject;
use kepatuhan_core::{SubmissionAction, SubmissionState};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination;
use crate::problem::{FieldError, Problem, text_problem};
use crate::routes::cycles;

/// The longest reason or comment.
const TEXT_MAX: usize = 4_000;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(dismiss))
        .routes(routes!(escalate))
}

/// One integrity flag.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagView {
    /// Its id.
    pub id: i64,
    /// Its kind: `year_on_year_jump`, `identical_sheets`, `survey_contradiction`,
    /// `top_marks_without_evidence`, `fast_review`, `never_returned`, `assessor_outlier` or
    /// `cutoff_bunching`.
    pub kind: String,
    /// Who or what it is about, e.g. `{ "type": "unit", "unit": 12 }`.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// The unit it names first, if any.
    pub unit_id: Option<i64>,
    /// The entity's code, if it belongs to one.
    pub entity_code: Option<String>,
    /// The regional office it belongs to, if known.
    pub office: Option<String>,
    /// The province it belongs to, if any.
    pub province: Option<String>,
    /// The numbers that triggered it.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// What they were compared with.
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    /// Whether its rule fires on the latest recompute.
    pub current: bool,
    /// `open`, `dismissed`, `escalated` or `corrected` (escalated after publication, then
    /// corrected).
    pub status: String,
    /// The reason of a dismissal or the comment of an escalation.
    pub decision_note: Option<String>,
    /// When it was decided.
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was first raised.
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
}

/// The queue: counts of the cycle's flags the caller may see, and one page of them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagQueue {
    /// Current flags not yet dismissed or escalated, over the whole filter.
    pub open: i64,
    /// Flags matching the filter.
    pub total: i64,
    /// This page, high severity first.
    pub items: Vec<FlagView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters of the queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FlagFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this province.
    pub province: Option<String>,
    /// Only this regional office.
    pub office: Option<String>,
    /// Only this severity (`low`, `medium`, `high`).
    pub severity: Option<String>,
    /// Only this status (`open`, `dismissed`, `escalated`, `corrected`).
    pub status: Option<String>,
    /// Also flags whose rule no longer fires (default false).
    #[serde(default)]
    pub include_resolved: bool,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl FlagFilter {
    /// Every filter value that is not one of the allowed ones, as field errors.
    fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(k) = &self.kind
            && kepatuhan_core::flags::FlagKind::from_code(k).is_none()
        {
            errors.push(FieldError::new("kind", format!("unknown flag kind `{k}`")));
        }
        if let Some(s) = &self.severity
            && kepatuhan_core::flags::Severity::from_code(s).is_none()
        {
            errors.push(FieldError::new(
                "severity",
                format!("`{s}` is not low, medium or high"),
            ));
        }
        if let Some(s) = &self.status
            && !["open", "dismissed", "escalated", "corrected"].contains(&s.as_str())
        {
            errors.push(FieldError::new(
                "status",
                format!("`{s}` is not open, dismissed, escalated or corrected"),
            ));
        }
        errors
    }
}

/// List a cycle's integrity flags, with filters.
///
/// Who may call: admin, office (the flags of its provinces and its own office).
#[utoipa::path(get, path = "/cycles/{year}/flags", operation_id = "list_flags", tag = "flags", params(("year" = i64, Path, description = "Cycle year"), FlagFilter), responses((status = 200, description = "Success", body = FlagQueue), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(filter): Query<FlagFilter>,
) -> ApiResult<Json<FlagQueue>> {
    actor.require_staff()?;
    let errors = filter.problems();
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let limit = pagination::limit(filter.limit)?;
    let offset = pagination::offset(filter.cursor.as_deref())?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let provinces: Option<Vec<String>> = match &actor {
        Actor::Office { provinces, .. } => Some(provinces.clone()),
        _ => None,
    };
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE f.current AND f.status = 'open') AS "open!"
           FROM flags f
           WHERE f.cycle_id = $1 AND (f.current OR $2)
             AND ($3::text IS NULL OR f.kind = $3) AND ($4::text IS NULL OR f.province_code = $4)
             AND ($5::text IS NULL OR f.office_code = $5) AND ($6::text IS NULL OR f.severity = $6)
             AND ($7::text IS NULL OR f.status = $7)
             AND ($8::text[] IS NULL OR f.province_code = ANY($8)
                  OR f.office_code IN (SELECT office_code FROM office_provinces WHERE province_code = ANY($8)))"#,
        cycle.id,
        filter.include_resolved,
        filter.kind,
        filter.province,
        filter.office,
        filter.severity,
        filter.status,
        provinces.as_deref()
    )
    .fetch_one(&state.pool)
    .await?;
    let flags = sqlx::query_as!(
        FlagView,
        r#"SELECT f.id, f.kind, f.subject, f.severity, f.unit_id, e.code AS "entity_code?", f.office_code AS office,
                  f.province_code AS province, f.evidence, f.context, f.current, f.status, f.decision_note,
                  f.decided_at, f.first_seen_at
           FROM flags f LEFT JOIN entities e ON e.id = f.entity_id
           WHERE f.cycle_id = $1 AND (f.current OR $2)
             AND ($3::text IS NULL OR f.kind = $3) AND ($4::text IS NULL OR f.province_code = $4)
             AND ($5::text IS NULL OR f.office_code = $5) AND ($6::text IS NULL OR f.severity = $6)
             AND ($7::text IS NULL OR f.status = $7)
             AND ($8::text[] IS NULL OR f.province_code = ANY($8)
                  OR f.office_code IN (SELECT office_code FROM office_provinces WHERE province_code = ANY($8)))
           ORDER BY CASE f.severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, f.kind, f.id
           LIMIT $9 OFFSET $10"#,
        cycle.id,
        filter.include_resolved,
        filter.kind,
        filter.province,
        filter.office,
        filter.severity,
        filter.status,
        provinces.as_deref(),
        limit + 1,
        offset
    )
    .fetch_all(&state.pool)
    .await?;
    let page = pagination::offset_page(flags, limit, offset);
    Ok(Json(FlagQueue {
        open: counts.open,
        total: counts.total,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Body of a dismissal or an escalation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why the flag is dismissed, or what the office should look at.
    pub note: String,
}

/// Dismiss a current, open flag with a reason. It stays dismissed while its evidence stays the
/// same.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/flags/{id}/dismiss", operation_id = "dismiss_flag", tag = "flags", params(("id" = i64, Path, description = "Flag id")), request_body(content = Decision, content_type = "application/json"), responses((status = 200, description = "Success", body = FlagView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn dismiss(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<Decision>,
) -> ApiResult<Json<FlagView>> {
    decide(&state, &actor, id, &body, "dismissed").await
}

/// What an escalation did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Escalation {
    /// The flag, now escalated.
    pub flag: FlagView,
    /// `returned`: the cycle is not published, so the flag's verified submissions went back to
    /// their office with the flag as the comment (listed in `returned_submissions`; none for a
    /// flag about an office or a province), and the recompute that takes them out of the results
    /// until they are verified again is scheduled. `correction`: the cycle is published, so the
    /// flag waits for a correction of the unit's verified inputs (`POST /cycles/{year}/corrections`
    /// with its `flag_id`), which marks it `corrected`.
    pub outcome: String,
    /// The submissions sent back to their office (before publication).
    pub returned_submissions: Vec<i64>,
    /// The recompute job scheduled for them, if any were sent back.
    pub recompute_job: Option<String>,
}

/// Escalate a current, open flag with a comment for the office: HQ's decision that the data
/// must be looked at again. Before publication, each verified submission the flag is about
/// (its unit, both units of a pair, an entity's units, an assessor's units in the province) goes
/// back to its office as `returned`, with the flag and the comment as the review note and a
/// comment on each indicator the flag names; the results drop them until they are verified
/// again, and the flag opens again if the same evidence comes back. After publication the flag
/// becomes a pending correction (`POST /cycles/{year}/corrections` with its `flag_id`). Audited
/// on the flag and on each submission.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/flags/{id}/escalate", operation_id = "escalate_flag", tag = "flags", params(("id" = i64, Path, description = "Flag id")), request_body(content = Decision, content_type = "application/json"), responses((status = 200, description = "Success", body = Escalation), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn escalate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<Decision>,
) -> ApiResult<Json<Escalation>> {
    let (actor_id, note) = check_decision(&actor, &body)?;
    let mut tx = state.pool.begin().await?;
    let cycle_id = sqlx::query_scalar!("SELECT cycle_id FROM flags WHERE id = $1", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no flag {id}")))?;
    // The cycle's lock first, as every writer of its inputs takes it: returning a verified
    // submission changes them.
    let mut cycle = app_cycles::lock(&mut tx, app_cycles::CycleId(cycle_id)).await?;
    let flag = lock_open(&mut tx, id, "escalated").await?;
    let published = cycle.state.is_published();
    let (returned, recompute_job) = if published {
        (Vec::new(), None)
    } else {
        let sent_back = send_back(&mut tx, actor_id, id, &flag, note).await?;
        let job = match sent_back.as_slice() {
            [] => None,
            [(_, unit)] => Some(
                app_cycles::inputs_changed(&mut tx, &mut cycle, InputChange::Unit(*unit)).await?,
            ),
            _ => Some(app_cycles::inputs_changed(&mut tx, &mut cycle, InputChange::Cycle).await?),
        };
        (sent_back.into_iter().map(|(s, _)| s).collect(), job)
    };
    sqlx::query!(
        "UPDATE flags SET status = 'escalated', decision_note = $2, decided_by = $3, decided_at = now(),
                current = current AND $4
         WHERE id = $1",
        id,
        note,
        actor_id,
        returned.is_empty()
    )
    .execute(&mut *tx)
    .await?;
    let outcome = if published { "correction" } else { "returned" };
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("flag", id.to_string()),
        flag.province_code.as_deref(),
        "escalated",
        serde_json::json!({
            "kind": flag.kind, "note": note, "fingerprint": flag.fingerprint,
            "outcome": outcome, "returned_submissions": returned,
        }),
    )
    .await?;
    let view = read_flag(&mut tx, id).await?;
    crate::error::commit(tx).await?;
    Ok(Json(Escalation {
        flag: view,
        outcome: outcome.to_owned(),
        returned_submissions: returned,
        recompute_job,
    }))
}

/// Checks the caller (admin) and the note of a decision; returns the caller's id and the note.
fn check_decision<'a>(actor: &Actor, body: &'a Decision) -> ApiResult<(i64, &'a str)> {
    let actor_id = actor.require_admin()?;
    let note = body.note.trim();
    if let Some(problem) = text_problem("note".to_owned(), note, TEXT_MAX) {
        return Err(ApiError::fields(vec![problem]));
    }
    Ok((actor_id, note))
}

/// A flag locked for a decision.
struct LockedFlag {
    kind: String,
    subject: serde_json::Value,
    province_code: Option<String>,
    fingerprint: String,
    evidence: serde_json::Value,
    cycle_id: i64,
}

/// Locks a flag that is current and open, or explains why it cannot be `status` (409).
async fn lock_open(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    status: &str,
) -> ApiResult<LockedFlag> {
    let row = sqlx::query!(
        "SELECT current, status, kind, subject, province_code, fingerprint, evidence, cycle_id FROM flags WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no flag {id}")))?;
    if !row.current || row.status != "open" {
        return Err(ApiError::conflict(
            "flag-decided",
            format!(
                "flag {id} is {}{}: only a current, open flag can be {status}",
                row.status,
                if row.current {
                    ""
                } else {
                    " and no longer fires"
                }
            ),
        ));
    }
    Ok(LockedFlag {
        kind: row.kind,
        subject: row.subject,
        province_code: row.province_code,
        fingerprint: row.fingerprint,
        evidence: row.evidence,
        cycle_id: row.cycle_id,
    })
}

/// The verified submissions a flag is about, locked, as (submission, unit): its unit, both units
/// of a pair, an entity's units, or an assessor's units in the province; none for an office or a
/// province.
pub(crate) async fn flagged_submissions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    cycle_id: i64,
    subject: &serde_json::Value,
) -> ApiResult<Vec<(i64, i64)>> {
    let (mut units, mut entity, mut assessor) = (Vec::new(), None, None);
    match serde_json::from_value::<Subject>(subject.clone()) {
        Ok(Subject::Unit { unit }) => units.push(unit),
        Ok(Subject::UnitPair { unit, other }) => units.extend([unit, other]),
        Ok(Subject::Entity { entity: e }) => entity = Some(e),
        Ok(Subject::Assessor {
            assessor: a,
            province,
        }) => assessor = Some((a, province)),
        Ok(Subject::Office { .. } | Subject::Province { .. }) | Err(_) => return Ok(Vec::new()),
    }
    let (assessor_id, province) = assessor.unzip();
    Ok(sqlx::query!(
        "SELECT s.id, s.unit_id FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
         WHERE s.cycle_id = $1 AND s.state = 'verified'
           AND (s.unit_id = ANY($2) OR u.entity_id = $3 OR (s.created_by = $4 AND e.province_code = $5))
         ORDER BY s.id FOR UPDATE OF s",
        cycle_id,
        &units,
        entity,
        assessor_id,
        province
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.id, r.unit_id))
    .collect())
}

/// Sends the verified submissions a flag is about back to their office (core's `escalate`
/// transition: verified → returned), with the flag and HQ's note as the review note and a comment
/// on each indicator the flag's evidence names. Audited on each submission as `escalated` (not
/// as an office's return). Returns (submission, unit) of each.
async fn send_back(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor_id: i64,
    id: i64,
    flag: &LockedFlag,
    note: &str,
) -> ApiResult<Vec<(i64, i64)>> {
    let to = SubmissionState::Verified
        .apply(SubmissionAction::Escalate)
        .map_err(|e| ApiError::conflict("invalid-transition", e.to_string()))?;
    let submissions = flagged_submissions(tx, flag.cycle_id, &flag.subject).await?;
    let review_note = format!(
        "Integrity flag {id} ({}) escalated by HQ: {note}",
        flag.kind
    );
    let indicators = flagged_indicators(&flag.evidence);
    let comment = format!("HQ: {note}");
    for (submission, _) in &submissions {
        sqlx::query!(
            "UPDATE submissions SET state = $2, version = version + 1, updated_at = now(), review_note = $3 WHERE id = $1",
            submission,
            to.as_str(),
            review_note
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            "UPDATE submission_values SET review_comment = CASE WHEN indicator_code = ANY($2) THEN $3 END
             WHERE submission_id = $1",
            submission,
            &indicators,
            comment
        )
        .execute(&mut **tx)
        .await?;
        crate::routes::submissions::audit::audit(
            tx,
            actor_id,
            *submission,
            "escalated",
            Some("state"),
            Some(serde_json::json!(SubmissionState::Verified.as_str())),
            Some(serde_json::json!({ "state": to.as_str(), "flag": id, "kind": flag.kind, "note": note, "indicators": indicators })),
        )
        .await?;
    }
    Ok(submissions)
}

/// The indicator codes a flag's evidence names (top marks without evidence, contradictions).
fn flagged_indicators(evidence: &serde_json::Value) -> Vec<String> {
    let mut codes: Vec<String> = evidence["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .chain(
            evidence["contradictions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["indicator"].as_str().map(str::to_owned)),
        )
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// One flag as the queue shows it.
async fn read_flag(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, id: i64) -> ApiResult<FlagView> {
    Ok(sqlx::query_as!(
        FlagView,
        r#"SELECT f.id, f.kind, f.subject, f.severity, f.unit_id, e.code AS "entity_code?", f.office_code AS office,
                  f.province_code AS province, f.evidence, f.context, f.current, f.status, f.decision_note,
                  f.decided_at, f.first_seen_at
           FROM flags f LEFT JOIN entities e ON e.id = f.entity_id WHERE f.id = $1"#,
        id
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// Records HQ's dismissal of a flag, audited in the same transaction.
async fn decide(
    state: &AppState,
    actor: &Actor,
    id: i64,
    body: &Decision,
    status: &'static str,
) -> ApiResult<Json<FlagView>> {
    let (actor_id, note) = check_decision(actor, body)?;
    let mut tx = state.pool.begin().await?;
    let flag = lock_open(&mut tx, id, status).await?;
    sqlx::query!(
        "UPDATE flags SET status = $2, decision_note = $3, decided_by = $4, decided_at = now() WHERE id = $1",
        id,
        status,
        note,
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("flag", id.to_string()),
        flag.province_code.as_deref(),
        status,
        serde_json::json!({ "kind": flag.kind, "note": note, "fingerprint": flag.fingerprint }),
    )
    .await?;
    let view = read_flag(&mut tx, id).await?;
    crate::error::commit(tx).await?;
    Ok(Json(view))
}
