//! Certificates (*piagam penghargaan*): listing, downloading, revoking, reissuing, and the
//! public verification page.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /api/v1/cycles/{year}/certificates` | admin, office (its provinces), government (its entity) |
//! | `GET /api/v1/certificates/{code}`, `GET /api/v1/certificates/{code}/pdf` | admin, office (its provinces), government (its entity) |
//! | `POST /api/v1/certificates/{code}/revoke`, `POST /api/v1/certificates/{code}/reissue` | admin |
//! | `GET /verify/{code}` | anyone: JSON, or an HTML page in Bahasa Indonesia for a browser |
//!
//! Certificates are never deleted: a revoked or superseded one still answers its verification
//! link, with its status and the replacement's code.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::Problem;
use crate::routes::cycles;
use kepatuhan_app::jobs::{self, Recipient, RenderCertificates};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(pdf))
        .routes(routes!(revoke))
        .routes(routes!(reissue))
}

/// The public verification route (outside `/api/v1`).
pub fn verify_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

/// A certificate's PDF, as bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PdfFile(pub Vec<u8>);

/// A certificate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Certificate {
    /// Verification code, printed on the certificate.
    pub code: String,
    /// Cycle year.
    pub year: i32,
    /// Results revision it states.
    pub revision: i32,
    /// Recipient: an entity, or a unit.
    pub recipient: String,
    /// For a unit, its entity.
    pub recipient_detail: Option<String>,
    /// Entity code.
    pub entity_code: String,
    /// Unit id, for a unit's certificate.
    pub unit_id: Option<i64>,
    /// Score as printed (Indonesian format), e.g. `93,71`.
    pub score: String,
    /// Grade code.
    pub grade: String,
    /// Grade label.
    pub grade_label: String,
    /// Zone.
    pub zone: Option<String>,
    /// `valid`; `superseded` (by a newer certificate of a changed result); `withdrawn` (its
    /// recipient no longer earns an award in the current results: see `revoke_reason`); or
    /// `revoked` (by an admin, with `revoke_reason`).
    pub status: String,
    /// The replacement's code, when superseded (or revoked and reissued).
    pub replaced_by: Option<String>,
    /// Why it was revoked or withdrawn.
    pub revoke_reason: Option<String>,
    /// SHA-256 of the PDF, hex.
    pub sha256: String,
    /// When it was issued.
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Public verification URL.
    pub verify_url: String,
}

struct Row {
    code: String,
    cycle_year: i32,
    revision: i32,
    recipient: String,
    recipient_detail: Option<String>,
    entity_code: String,
    province_code: Option<String>,
    unit_id: Option<i64>,
    score: Decimal,
    grade_code: String,
    grade_label: String,
    zone: Option<String>,
    status: String,
    replaced_by: Option<String>,
    revoke_reason: Option<String>,
    sha256: Vec<u8>,
    object_key: String,
    issued_at: chrono::DateTime<chrono::Utc>,
}

impl Row {
    fn view(self, base: &str) -> Certificate {
        Certificate {
            verify_url: format!("{base}/verify/{}", self.code),
            code: self.code,
            year: self.cycle_year,
            revision: self.revision,
            recipient: self.recipient,
            recipient_detail: self.recipient_detail,
            entity_code: self.entity_code,
            unit_id: self.unit_id,
            score: self.score.to_string().replace('.', ","),
            grade: self.grade_code,
            grade_label: self.grade_label,
            zone: self.zone,
            status: self.status,
            replaced_by: self.replaced_by,
            revoke_reason: self.revoke_reason,
            sha256: hex::encode(self.sha256),
            issued_at: self.issued_at,
        }
    }
}

async fn fetch(state: &AppState, code: &str) -> ApiResult<Row> {
    sqlx::query_as!(
        Row,
        r#"SELECT c.code, cy.year AS cycle_year, c.revision, c.recipient, c.recipient_detail, e.code AS entity_code, e.province_code,
                  c.unit_id, c.score, c.grade_code, c.grade_label, c.zone, c.status, r.code AS "replaced_by?",
                  c.revoke_reason, c.sha256, c.object_key, c.issued_at
           FROM certificates c JOIN cycles cy ON cy.id = c.cycle_id
           JOIN entities e ON e.id = c.entity_id LEFT JOIN certificates r ON r.id = c.replaced_by
           WHERE c.code = $1"#,
        code.trim().to_ascii_uppercase()
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no certificate with code `{code}`")))
}

/// A certificate the caller may see (admin: all; office: its provinces; government: its
/// entity's), or 404.
async fn visible(state: &AppState, actor: &Actor, code: &str) -> ApiResult<Row> {
    let own = match actor {
        Actor::Government { entity, .. } => Some(entity.as_str()),
        _ => {
            actor.require_staff()?;
            None
        }
    };
    let row = fetch(state, code).await?;
    let covered = match own {
        Some(entity) => row.entity_code == entity,
        None => actor.covers_province(row.province_code.as_deref()),
    };
    if covered {
        Ok(row)
    } else {
        Err(ApiError::NotFound(format!(
            "no certificate with code `{code}`"
        )))
    }
}

/// List a cycle's certificates.
///
/// Who may call: admin, office (its provinces), government (its entity's).
#[utoipa::path(get, path = "/cycles/{year}/certificates", operation_id = "list_certificates", tag = "certificates", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Vec<Certificate>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Vec<Certificate>>> {
    let (provinces, entity) = match &actor {
        Actor::Government { entity_id, .. } => (None, Some(*entity_id)),
        _ => {
            actor.require_staff()?;
            (actor.scope()?.provinces, None)
        }
    };
    let year = cycles::year(raw)?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT c.code, cy.year AS cycle_year, c.revision, c.recipient, c.recipient_detail, e.code AS entity_code, e.province_code,
                  c.unit_id, c.score, c.grade_code, c.grade_label, c.zone, c.status, r.code AS "replaced_by?",
                  c.revoke_reason, c.sha256, c.object_key, c.issued_at
           FROM certificates c JOIN cycles cy ON cy.id = c.cycle_id
           JOIN entities e ON e.id = c.entity_id LEFT JOIN certificates r ON r.id = c.replaced_by
           WHERE cy.kind = 'official' AND cy.year = $1 AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR c.entity_id = $3)
           ORDER BY e.code, c.unit_id NULLS FIRST, c.id"#,
        i32::from(year.get()),
        provinces.as_deref(),
        entity
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| r.view(&state.public_base_url))
            .collect(),
    ))
}

/// A certificate's details.
///
/// Who may call: admin, office (its provinces), government (its entity's).
#[utoipa::path(get, path = "/certificates/{code}", operation_id = "get_certificate", tag = "certificates", params(("code" = String, Path, description = "Verification code")), responses((status = 200, description = "Success", body = Certificate), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<Certificate>> {
    Ok(Json(
        visible(&state, &actor, &code)
            .await?
            .view(&state.public_base_url),
    ))
}

/// Download a certificate's PDF.
///
/// Who may call: admin, office (its provinces), government (its entity's).
#[utoipa::path(get, path = "/certificates/{code}/pdf", operation_id = "get_certificate_pdf", tag = "certificates", params(("code" = String, Path, description = "Verification code")), responses((status = 200, description = "The PDF", content_type = "application/pdf", body = PdfFile), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn pdf(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let row = visible(&state, &actor, &code).await?;
    // The record exists, so a missing or unreadable file is the store's fault, not the caller's:
    // 503 with the reason in the logs (an operator restores the file or reissues the certificate).
    let unavailable = |e: object_store::Error| {
        tracing::error!(certificate = %row.code, key = %row.object_key, error = %e, "certificate PDF unavailable");
        ApiError::Unavailable {
            slug: "certificate-pdf-unavailable",
            detail: format!(
                "the PDF of certificate {} cannot be read from the certificate store now; its record and verification page are unaffected",
                row.code
            ),
        }
    };
    let object = state
        .store
        .get(&object_store::path::Path::from(row.object_key.as_str()))
        .await
        .map_err(unavailable)?;
    let bytes = object.bytes().await.map_err(unavailable)?;
    let filename = format!("piagam-{}-{}.pdf", row.cycle_year, row.code);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Body of a revocation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Why the certificate is revoked (shown on the verification page).
    pub reason: String,
}

/// Revoke a certificate. It keeps answering its verification link, as revoked.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/certificates/{code}/revoke", operation_id = "revoke_certificate", tag = "certificates", params(("code" = String, Path, description = "Verification code")), request_body(content = Revocation, content_type = "application/json"), responses((status = 200, description = "Success", body = Certificate), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
    Json(body): Json<Revocation>,
) -> ApiResult<Json<Certificate>> {
    actor.require_admin()?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::field(
            "reason",
            "say why the certificate is revoked",
        ));
    }
    let row = fetch(&state, &code).await?;
    let mut tx = state.pool.begin().await?;
    let updated = sqlx::query_scalar!(
        "UPDATE certificates SET status = 'revoked', revoke_reason = $2, status_changed_at = now()
         WHERE code = $1 AND status = 'valid' RETURNING entity_id",
        row.code,
        body.reason.trim()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(entity_id) = updated else {
        return Err(ApiError::conflict(
            "certificate-not-valid",
            format!("certificate {} is already {}", row.code, row.status),
        ));
    };
    let data = serde_json::json!({ "code": row.code, "year": row.cycle_year, "recipient": row.recipient, "reason": body.reason.trim() });
    kepatuhan_app::events::emit(&mut tx, "certificate.revoked", Some(entity_id), data).await?;
    let province = crate::routes::audit::entity_province(&mut tx, entity_id).await?;
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("certificate", row.code.clone()),
        province.as_deref(),
        "revoked",
        serde_json::json!({ "reason": body.reason.trim() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    tracing::info!(code = %row.code, "certificate revoked");
    Ok(Json(
        fetch(&state, &row.code).await?.view(&state.public_base_url),
    ))
}

/// Answer of a reissue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reissue {
    /// The render job; the new certificate supersedes this one when it is done.
    pub job_id: String,
}

/// Reissue a certificate from the current results: a new certificate is rendered and supersedes
/// this one (which keeps answering, with the replacement's code). The one way back for a
/// revoked certificate; refused when the recipient earns no award in the current results.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/certificates/{code}/reissue", operation_id = "reissue_certificate", tag = "certificates", params(("code" = String, Path, description = "Verification code")), responses((status = 202, description = "Enqueued", body = Reissue), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn reissue(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<(StatusCode, Json<Reissue>)> {
    actor.require_admin()?;
    let row = fetch(&state, &code).await?;
    let cycle = sqlx::query!(
        r#"SELECT c.id AS cycle_id, c.results_revision, cert.entity_id,
                  COALESCE(er.award_eligible, false) AND (cert.unit_id IS NULL OR ur.unit_id IS NOT NULL) AS "eligible!"
           FROM certificates cert JOIN cycles c ON c.id = cert.cycle_id
           LEFT JOIN entity_results er ON er.cycle_id = c.id AND er.revision = c.results_revision AND er.entity_id = cert.entity_id
           LEFT JOIN unit_results ur ON ur.cycle_id = c.id AND ur.revision = c.results_revision AND ur.unit_id = cert.unit_id
           WHERE cert.code = $1"#,
        row.code
    )
    .fetch_one(&state.pool)
    .await?;
    if !cycle.eligible {
        return Err(ApiError::conflict(
            "recipient-not-eligible",
            format!(
                "the recipient of certificate {} earns no award in the current results of {}: nothing to reissue",
                row.code, row.cycle_year
            ),
        ));
    }
    let job = RenderCertificates {
        cycle_id: kepatuhan_app::cycles::CycleId(cycle.cycle_id),
        revision: cycle.results_revision,
        recipients: vec![Recipient {
            entity_id: cycle.entity_id,
            unit_id: row.unit_id,
        }],
        parent: None,
        force: true,
    };
    let mut tx = state.pool.begin().await?;
    let job_id = jobs::enqueue(&mut tx, &job, None).await?;
    let province = crate::routes::audit::entity_province(&mut tx, cycle.entity_id).await?;
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("certificate", row.code.clone()),
        province.as_deref(),
        "reissue-requested",
        serde_json::json!({ "job_id": job_id }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(Reissue { job_id })))
}

/// Verify a certificate: its recipient, cycle, score, grade, status and hash. Browsers get a
/// page in Bahasa Indonesia.
///
/// Who may call: anyone.
#[utoipa::path(get, path = "/verify/{code}", operation_id = "verify_certificate", tag = "certificates", params(("code" = String, Path, description = "Verification code")), responses((status = 200, description = "The certificate's record: JSON, or a page in Bahasa Indonesia for a browser (`Accept: text/html`)", content((Certificate = "application/json"), (String = "text/html"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(()))]
async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let cert = fetch(&state, &code).await?.view(&state.public_base_url);
    if wants_html {
        Ok(Html(verification_page(&cert)).into_response())
    } else {
        Ok(Json(cert).into_response())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The public verification page, in Bahasa Indonesia.
fn verification_page(c: &Certificate) -> String {
    let (badge, colour, note) = match c.status.as_str() {
        "valid" => (
            "SAH",
            "#1f7a3a",
            "Piagam ini sah dan tercatat di sistem Ombudsman Republik Indonesia.".to_owned(),
        ),
        "superseded" => (
            "DIGANTIKAN",
            "#b58900",
            format!(
                "Piagam ini telah digantikan oleh piagam dengan kode {}.",
                c.replaced_by.as_deref().unwrap_or("-")
            ),
        ),
        "withdrawn" => (
            "DITARIK",
            "#6b6b6b",
            format!(
                "Piagam ini telah ditarik karena hasil penilaian diperbarui{}.",
                c.revoke_reason
                    .as_deref()
                    .map(|r| format!(": {}", escape(r)))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            "DICABUT",
            "#b3261e",
            format!(
                "Piagam ini telah dicabut{}.{}",
                c.revoke_reason
                    .as_deref()
                    .map(|r| format!(" dengan alasan: {}", escape(r)))
                    .unwrap_or_default(),
                c.replaced_by
                    .as_deref()
                    .map(|r| format!(" Penggantinya: {r}."))
                    .unwrap_or_default()
            ),
        ),
    };
    let detail = c
        .recipient_detail
        .as_deref()
        .map(|d| format!("<p class=\"detail\">{}</p>", escape(d)))
        .unwrap_or_default();
    let zone = c
        .zone
        .as_deref()
        .map(|z| match z {
            "green" => " · Zona Hijau",
            "yellow" => " · Zona Kuning",
            "red" => " · Zona Merah",
            _ => "",
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="id"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Verifikasi Piagam {code}</title>
<style>
body {{ font-family: Georgia, serif; color: #12305a; background: #f6f3ea; margin: 0; padding: 2rem 1rem; }}
main {{ max-width: 40rem; margin: auto; background: white; border: 2px solid #b08d2e; padding: 2rem; }}
h1 {{ font-size: 1.2rem; letter-spacing: .1em; margin: 0 0 1rem; }}
.badge {{ display: inline-block; color: white; background: {colour}; padding: .2rem .7rem; border-radius: .3rem; font-weight: bold; }}
.recipient {{ font-size: 1.5rem; font-weight: bold; margin: 1rem 0 .2rem; }}
.detail {{ margin: 0 0 1rem; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }}
dt {{ font-weight: bold; }}
code {{ word-break: break-all; font-size: .8rem; }}
</style></head>
<body><main>
<h1>VERIFIKASI PIAGAM PENGHARGAAN</h1>
<span class="badge">{badge}</span>
<p>{note}</p>
<p class="recipient">{recipient}</p>{detail}
<dl>
<dt>Penilaian</dt><dd>Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik Tahun {year}</dd>
<dt>Nilai</dt><dd>{score}</dd>
<dt>Opini</dt><dd>{grade} — {label}{zone}</dd>
<dt>Kode</dt><dd>{code}</dd>
<dt>Diterbitkan</dt><dd>{issued}</dd>
<dt>SHA-256 berkas</dt><dd><code>{hash}</code></dd>
</dl>
</main></body></html>"#,
        code = escape(&c.code),
        recipient = escape(&c.recipient),
        year = c.year,
        score = escape(&c.score),
        grade = escape(&c.grade),
        label = escape(&c.grade_label),
        issued = c.issued_at.format("%d-%m-%Y"),
        hash = c.sha256,
    )
}
