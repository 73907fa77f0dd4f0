//! Indicator values: checked against the methodology, written with their audit entries.

use std::collections::{HashMap, HashSet};

use kepatuhan_core::Methodology;
use sqlx::{Postgres, Transaction};

use super::ValueInput;
use super::audit::audit;
use crate::error::{ApiError, ApiResult};
use crate::problem::FieldError;

/// Validates values against the methodology, naming each offending entry `{prefix}[i].field`.
pub(crate) fn validate_values(
    m: &Methodology,
    values: &[ValueInput],
    prefix: &str,
) -> Result<(), ApiError> {
    validate_values_at(m, values, |i, f| format!("{prefix}[{i}].{f}"))
}

/// Validates values against the methodology: known and unrepeated indicators, a level of the
/// indicator's scale or `not_applicable` (where the methodology allows it), notes and
/// attachment references within their limits. `path(i, field)` names where entry `i`'s field
/// came from (a JSON path, a CSV line, a spreadsheet cell).
pub(crate) fn validate_values_at(
    m: &Methodology,
    values: &[ValueInput],
    path: impl Fn(usize, &str) -> String,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, v) in values.iter().enumerate() {
        let at = |f: &str| path(i, f);
        let Some(id) = m.indicator_id(&v.indicator) else {
            errors.push(FieldError::new(
                at("indicator"),
                format!(
                    "unknown indicator `{}` in methodology {}",
                    v.indicator,
                    m.code()
                ),
            ));
            continue;
        };
        if !seen.insert(v.indicator.as_str()) {
            errors.push(FieldError::new(
                at("indicator"),
                format!("`{}` appears more than once", v.indicator),
            ));
        }
        let indicator = m.indicator(id);
        let scale = &indicator.scale;
        if v.not_applicable && !indicator.not_applicable_allowed {
            errors.push(FieldError::new(
                at("not_applicable"),
                format!(
                    "`{}` applies to every unit in methodology {}: give a level",
                    v.indicator,
                    m.code()
                ),
            ));
        }
        match (v.value, v.not_applicable) {
            (Some(_), true) => errors.push(FieldError::new(
                at("value"),
                "give a value or not_applicable, not both",
            )),
            (None, false) => errors.push(FieldError::new(
                at("value"),
                "is required unless not_applicable is true",
            )),
            (Some(x), false) if !u8::try_from(x).is_ok_and(|x| scale.position(x).is_some()) => {
                let allowed: Vec<String> =
                    scale.levels.iter().map(|l| l.value.to_string()).collect();
                errors.push(FieldError::new(
                    at("value"),
                    format!(
                        "{x} is not on the scale of `{}` ({})",
                        v.indicator,
                        allowed.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        if v.evidence_note.as_ref().is_some_and(|n| n.len() > 4000) {
            errors.push(FieldError::new(
                at("evidence_note"),
                "at most 4000 characters",
            ));
        }
        if v.evidence_note.as_ref().is_some_and(|n| n.contains('\0')) {
            errors.push(FieldError::new(
                at("evidence_note"),
                "must not contain NUL characters (U+0000)",
            ));
        }
        if let Some(a) = &v.attachments
            && (a.len() > 20 || a.iter().any(|x| x.trim().is_empty() || x.len() > 500))
        {
            errors.push(FieldError::new(
                at("attachments"),
                "at most 20 non-empty references of at most 500 characters",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Writes values and their audit entries: one read of the previous values, one upsert of the
/// changed ones, one insert of their audit entries (three statements, however many values).
/// Unchanged values are neither written nor audited. Indicator codes are unique per request
/// (validated before). Returns how many values changed.
pub(crate) async fn write_values(
    tx: &mut Transaction<'_, Postgres>,
    actor_id: i64,
    submission: i64,
    values: &[ValueInput],
) -> ApiResult<usize> {
    if values.is_empty() {
        return Ok(0);
    }
    let codes: Vec<&str> = values.iter().map(|v| v.indicator.as_str()).collect();
    let previous: HashMap<String, serde_json::Value> = sqlx::query!(
        "SELECT indicator_code, value, not_applicable, evidence_note, attachments FROM submission_values WHERE submission_id = $1 AND indicator_code = ANY($2)",
        submission,
        &codes as &[&str]
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|p| {
        (
            p.indicator_code,
            serde_json::json!({ "value": p.value, "not_applicable": p.not_applicable, "evidence_note": p.evidence_note, "attachments": p.attachments }),
        )
    })
    .collect();
    let mut changed = Vec::new();
    let mut new_values: Vec<Option<i16>> = Vec::new();
    let mut not_applicable = Vec::new();
    let mut notes = Vec::new();
    let mut attachments = Vec::new();
    let mut before: Vec<Option<serde_json::Value>> = Vec::new();
    let mut after = Vec::new();
    for v in values {
        let prev = previous.get(&v.indicator);
        let value = v
            .value
            .and_then(|x| i16::try_from(x).ok())
            .filter(|_| !v.not_applicable);
        let note = v
            .evidence_note
            .clone()
            .or_else(|| prev.and_then(|p| p["evidence_note"].as_str().map(str::to_owned)))
            .unwrap_or_default();
        let files = match &v.attachments {
            Some(a) => serde_json::json!(a),
            None => prev.map_or_else(|| serde_json::json!([]), |p| p["attachments"].clone()),
        };
        let current = serde_json::json!({ "value": value, "not_applicable": v.not_applicable, "evidence_note": note, "attachments": files });
        if prev == Some(&current) {
            continue;
        }
        changed.push(v.indicator.as_str());
        new_values.push(value);
        not_applicable.push(v.not_applicable);
        notes.push(note);
        attachments.push(files);
        before.push(prev.cloned());
        after.push(current);
    }
    if changed.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        "INSERT INTO submission_values (submission_id, indicator_code, value, not_applicable, evidence_note, attachments)
         SELECT $1, * FROM UNNEST($2::text[], $3::smallint[], $4::bool[], $5::text[], $6::jsonb[])
         ON CONFLICT (submission_id, indicator_code) DO UPDATE
           SET value = excluded.value, not_applicable = excluded.not_applicable,
               evidence_note = excluded.evidence_note, attachments = excluded.attachments",
        submission,
        &changed as &[&str],
        &new_values as &[Option<i16>],
        &not_applicable,
        &notes,
        &attachments
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, submission_id, action, field, previous, current)
         SELECT $1, $2, 'value_set', t.field, t.previous, t.current
         FROM UNNEST($3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS t(field, previous, current, n)
         ORDER BY t.n",
        actor_id,
        submission,
        &changed as &[&str],
        &before as &[Option<serde_json::Value>],
        &after
    )
    .execute(&mut **tx)
    .await?;
    Ok(changed.len())
}

/// Inserts a draft submission of `unit_id` in cycle `y` with its `created` audit entry and its
/// values, inside the caller's transaction. Returns its id and version, or `None` when the unit
/// already has a submission in that cycle (the transaction is then aborted: the caller answers
/// with its own problem).
pub(crate) async fn insert_draft(
    tx: &mut Transaction<'_, Postgres>,
    actor_id: i64,
    y: i64,
    unit_id: i64,
    values: &[ValueInput],
) -> ApiResult<Option<(i64, i32)>> {
    let inserted = sqlx::query!(
        "INSERT INTO submissions (cycle_id, unit_id, created_by) VALUES ($1, $2, $3) RETURNING id, version",
        y,
        unit_id,
        actor_id
    )
    .fetch_one(&mut **tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("submissions_one_per_unit") => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    audit(tx, actor_id, row.id, "created", None, None, None).await?;
    write_values(tx, actor_id, row.id, values).await?;
    Ok(Some((row.id, row.version)))
}
