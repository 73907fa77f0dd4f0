//! `seed-demo`: a small, realistic dataset so a newcomer sees a living system within a minute.
//!
//! Two provinces (Kepulauan Bangka Belitung, Nusa Tenggara Barat) with their offices and local
//! governments, Indonesian unit names, the 2024 cycle imported as published scores, and an open
//! 2025 cycle with submissions in every state (draft, submitted, returned, verified) and survey
//! responses. `seed-demo` adds a 2023 cycle assessed in the field and published
//! ([`publish_showcase`]), whose certificates the worker issues. Everything goes through the real
//! HTTP routes in-process, so the demo data passes the same validation as users' data. Loading
//! twice changes nothing.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;

use crate::build;

/// Tokens created for the demo (shown once).
#[derive(Debug)]
pub struct DemoTokens {
    /// HQ administrator.
    pub admin: String,
    /// Ombudsman RI Perwakilan Kepulauan Bangka Belitung.
    pub office: String,
    /// An assessor of that office.
    pub assessor: String,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ENTITIES: [(&str, &str, &str, &str); 7] = [
    (
        "19",
        "province",
        "Pemerintah Provinsi Kepulauan Bangka Belitung",
        "19",
    ),
    ("19.01", "regency", "Pemerintah Kabupaten Bangka", "19"),
    ("19.02", "regency", "Pemerintah Kabupaten Belitung", "19"),
    ("19.71", "city", "Pemerintah Kota Pangkalpinang", "19"),
    (
        "52",
        "province",
        "Pemerintah Provinsi Nusa Tenggara Barat",
        "52",
    ),
    (
        "52.01",
        "regency",
        "Pemerintah Kabupaten Lombok Barat",
        "52",
    ),
    ("52.71", "city", "Pemerintah Kota Mataram", "52"),
];

const UNITS: [(&str, &str); 5] = [
    ("Dinas Kependudukan dan Pencatatan Sipil", "dukcapil"),
    (
        "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu",
        "dpmptsp",
    ),
    ("Dinas Kesehatan", "kesehatan"),
    ("Dinas Pendidikan dan Kebudayaan", "pendidikan"),
    ("Dinas Sosial", "sosial"),
];

struct Client {
    app: Router,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> DemoResult<(u16, Value, Option<String>)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(tag) = if_match {
            req = req.header(header::IF_MATCH, tag);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&b)?))?,
            None => req.body(Body::empty())?,
        };
        let response = self.app.clone().oneshot(req).await?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = to_bytes(response.into_body(), usize::MAX).await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 400 {
            return Err(format!("{method} {path} answered {status}: {value}").into());
        }
        Ok((status, value, etag))
    }
}

/// Loads the demo dataset unless the 2025 cycle already exists. Returns the tokens it created.
pub async fn seed_demo(app: &App, settings: &Settings) -> DemoResult<Option<DemoTokens>> {
    let exists =
        sqlx::query_scalar!("SELECT year FROM cycles WHERE kind = 'official' AND year = 2025")
            .fetch_optional(&app.pool)
            .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let (_, admin) =
        auth::create_actor_with_token(&app.pool, "Demo HQ administrator", "admin", None).await?;
    let api = Client {
        app: build(app.clone(), settings),
        token: admin.secret.clone(),
    };
    load_reference(&api).await?;
    import_2024(&api).await?;
    let (_, office) =
        auth::create_actor_with_token(&app.pool, "Demo Perwakilan Babel", "office", Some("babel"))
            .await?;
    let (assessor_id, assessor) =
        auth::create_actor_with_token(&app.pool, "Demo asisten Babel", "assessor", Some("babel"))
            .await?;
    let babel_units = open_cycle(&api, 2025, 3, assessor_id).await?;
    let m = app
        .methodology("ori-2025")
        .ok_or("ori-2025 is not shipped")?;
    let field = Client {
        app: api.app.clone(),
        token: assessor.secret.clone(),
    };
    let reviewer = Client {
        app: api.app.clone(),
        token: office.secret.clone(),
    };
    fill_submissions(m, &field, &reviewer, &babel_units).await?;
    kepatuhan_app::recompute::recompute_cycle(
        app,
        kepatuhan_core::CycleYear::new(2025)
            .map_err(|e| e.to_string())?
            .into(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Some(DemoTokens {
        admin: admin.secret,
        office: office.secret,
        assessor: assessor.secret,
    }))
}

/// Provinces, offices, entities and units.
async fn load_reference(api: &Client) -> DemoResult<()> {
    api.call(
        "POST",
        "/api/v1/provinces/bulk",
        Some(json!([
            { "code": "19", "name": "Kepulauan Bangka Belitung" },
            { "code": "52", "name": "Nusa Tenggara Barat" },
        ])),
        None,
    )
    .await?;
    api.call("POST", "/api/v1/offices/bulk", Some(json!([
        { "code": "babel", "name": "Ombudsman RI Perwakilan Kepulauan Bangka Belitung", "provinces": ["19"] },
        { "code": "ntb", "name": "Ombudsman RI Perwakilan Nusa Tenggara Barat", "provinces": ["52"] },
    ])), None).await?;
    let entities: Vec<Value> = ENTITIES
        .iter()
        .map(|(c, k, n, p)| json!({ "code": c, "kind": k, "name": n, "province_code": p }))
        .collect();
    api.call(
        "POST",
        "/api/v1/entities/bulk",
        Some(Value::Array(entities)),
        None,
    )
    .await?;
    let units: Vec<Value> = ENTITIES
        .iter()
        .flat_map(|(c, ..)| {
            UNITS
                .iter()
                .map(move |(n, k)| json!({ "entity_code": c, "name": n, "kind": k }))
        })
        .collect();
    api.call(
        "POST",
        "/api/v1/units/bulk",
        Some(Value::Array(units)),
        None,
    )
    .await?;

    Ok(())
}

/// The 2024 cycle as imported published scores.
async fn import_2024(api: &Client) -> DemoResult<()> {
    // 2024: published scores, imported.
    let mut rows = Vec::new();
    for (i, (code, kind, name, province)) in ENTITIES.iter().enumerate() {
        for (j, (unit, _)) in UNITS.iter().enumerate() {
            let score = 48 + (i * 7 + j * 11) % 50;
            rows.push(json!({ "entity_code": code, "entity_kind": kind, "entity_name": name, "province_code": province, "unit_name": unit, "score": format!("{score}.{:02}", (i * 13 + j * 29) % 100) }));
        }
    }
    api.call(
        "POST",
        "/api/v1/cycles/2024/import",
        Some(Value::Array(rows)),
        None,
    )
    .await?;

    Ok(())
}

/// A cycle, sampled (`per_entity` units of each entity), its Babel units assigned to the
/// assessor, and collecting; returns the Babel units.
async fn open_cycle(
    api: &Client,
    year: u16,
    per_entity: usize,
    assessor_id: i64,
) -> DemoResult<Vec<i64>> {
    api.call(
        "POST",
        "/api/v1/cycles",
        Some(json!({ "year": year, "opens_on": format!("{year}-06-02"), "closes_on": format!("{year}-10-31") })),
        None,
    )
    .await?;
    let sample: Vec<Value> = ENTITIES
        .iter()
        .flat_map(|(c, ..)| {
            UNITS
                .iter()
                .take(per_entity)
                .map(move |(n, _)| json!({ "entity_code": c, "unit_name": n }))
        })
        .collect();
    api.call(
        "POST",
        &format!("/api/v1/cycles/{year}/sample/bulk"),
        Some(Value::Array(sample)),
        None,
    )
    .await?;
    let (_, sampled, _) = api
        .call("GET", &format!("/api/v1/cycles/{year}/sample"), None, None)
        .await?;
    let babel_units: Vec<i64> = sampled
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["province_code"] == "19")
        .filter_map(|u| u["unit_id"].as_i64())
        .collect();
    let assignments: Vec<Value> = babel_units
        .iter()
        .map(|u| json!({ "unit_id": u, "assessor_id": assessor_id }))
        .collect();
    api.call(
        "POST",
        &format!("/api/v1/cycles/{year}/assignments/bulk"),
        Some(Value::Array(assignments)),
        None,
    )
    .await?;
    api.call(
        "POST",
        &format!("/api/v1/cycles/{year}/transitions"),
        Some(json!({ "to": "collecting" })),
        None,
    )
    .await?;

    Ok(babel_units)
}

/// Submissions in every state, with survey responses.
async fn fill_submissions(
    m: &kepatuhan_core::Methodology,
    field: &Client,
    reviewer: &Client,
    babel_units: &[i64],
) -> DemoResult<()> {
    for (k, unit) in babel_units.iter().enumerate() {
        // Units in turn: verified, verified, returned, submitted, draft…; a few have no submission.
        let step = k % 6;
        if step == 5 {
            continue;
        }
        let values: Vec<Value> = m
            .indicator_ids()
            .map(|id| {
                let ind = m.indicator(id);
                let level = u8::try_from((k + id.index()) % 4).unwrap_or(3).max(1).min(ind.scale.max());
                json!({ "indicator": ind.code, "value": level, "evidence_note": "Observasi lapangan dan wawancara petugas" })
            })
            .collect();
        let surveys: Vec<(&str, Vec<Value>)> = ["maladministration_perception", "public_trust"]
            .into_iter()
            .map(|survey| {
                let answers = (0..30).map(|r| {
                    if survey == "public_trust" {
                        json!({ "trust_fair_service": 2 + (r + k) % 3, "trust_no_fees": 3, "trust_on_time": 2 + r % 3, "trust_complaints_heard": 1 + (r * k) % 4 })
                    } else {
                        json!({ "undue_delay": (r + k) % 9 == 0, "unofficial_fees": (r * 7 + k) % 23 == 0 })
                    }
                });
                (survey, answers.collect())
            })
            .collect();
        let (id, tag) = enter_sheet(field, 2025, *unit, values, surveys).await?;
        if step == 4 {
            continue; // draft
        }
        let (_, _, tag) = field
            .call(
                "POST",
                &format!("/api/v1/submissions/{id}/submit"),
                None,
                tag.as_deref(),
            )
            .await?;
        match step {
            0 | 1 => {
                reviewer
                    .call(
                        "POST",
                        &format!("/api/v1/submissions/{id}/verify"),
                        None,
                        tag.as_deref(),
                    )
                    .await?;
            }
            2 => {
                reviewer
                    .call("POST", &format!("/api/v1/submissions/{id}/return"), Some(json!({
                        "note": "Mohon lengkapi bukti dokumen SOP pengaduan",
                        "comments": [{ "indicator": "complaint_procedure", "comment": "SOP belum ditandatangani pimpinan" }]
                    })), tag.as_deref())
                    .await?;
            }
            _ => {} // submitted, awaiting review
        }
    }
    Ok(())
}

/// What [`publish_showcase`] did: the published cycle, and how to follow its certificates.
#[derive(Debug)]
pub struct Showcase {
    /// The year published.
    pub year: u16,
    /// The job issuing its certificates (the worker renders them).
    pub certificates_job: String,
}

/// Adds to the demo a cycle assessed in the field and published, 2023, so that a newcomer sees
/// every output: results with grades and ranks, and certificates with their public verification
/// page once the worker has rendered them (`just run` prints a link). The Bangka Belitung units
/// are assessed by the demo's assessor and verified by the office; the other province's are left
/// out of the sample. Does nothing when 2023 exists; needs [`seed_demo`] first.
pub async fn publish_showcase(app: &App, settings: &Settings) -> DemoResult<Option<Showcase>> {
    let exists =
        sqlx::query_scalar!("SELECT year FROM cycles WHERE kind = 'official' AND year = 2023")
            .fetch_optional(&app.pool)
            .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let client = |secret: String| Client {
        app: build(app.clone(), settings),
        token: secret,
    };
    let (_, admin) =
        auth::create_actor_with_token(&app.pool, "Demo HQ publisher", "admin", None).await?;
    let (_, office) =
        auth::create_actor_with_token(&app.pool, "Demo penelaah Babel", "office", Some("babel"))
            .await?;
    let (assessor_id, assessor) = auth::create_actor_with_token(
        &app.pool,
        "Demo asisten Babel 2023",
        "assessor",
        Some("babel"),
    )
    .await?;
    let (api, field, reviewer) = (
        client(admin.secret),
        client(assessor.secret),
        client(office.secret),
    );
    let m = app
        .methodology("ori-2022")
        .ok_or("ori-2022 is not shipped")?;
    let units = open_cycle(&api, 2023, 2, assessor_id).await?;
    // Only the assessed units stay in the sample: the other province's leave it, with a reason.
    let (_, sampled, _) = api
        .call("GET", "/api/v1/cycles/2023/sample", None, None)
        .await?;
    for other in sampled
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["province_code"] != "19")
        .filter_map(|u| u["unit_id"].as_i64())
    {
        api.call(
            "POST",
            &format!("/api/v1/cycles/2023/sample/{other}/exclusion"),
            Some(json!({ "reason": "Di luar cakupan data demo" })),
            None,
        )
        .await?;
    }
    assess_2023(m, &field, &reviewer, &units).await?;
    api.call(
        "POST",
        "/api/v1/cycles/2023/transitions",
        Some(json!({ "to": "verifying" })),
        None,
    )
    .await?;
    let (_, published, _) = api
        .call(
            "POST",
            "/api/v1/cycles/2023/transitions",
            Some(json!({ "to": "published" })),
            None,
        )
        .await?;
    Ok(Some(Showcase {
        year: 2023,
        certificates_job: published["job_id"].as_str().unwrap_or_default().to_owned(),
    }))
}

/// The 2023 field work: each unit's sheet (mostly the top of each scale, a step lower here and
/// there: grades A to C), its survey, submitted by the assessor and verified by the office.
async fn assess_2023(
    m: &kepatuhan_core::Methodology,
    field: &Client,
    reviewer: &Client,
    units: &[i64],
) -> DemoResult<()> {
    for (k, unit) in units.iter().enumerate() {
        let values: Vec<Value> = m
            .indicator_ids()
            .map(|id| {
                let ind = m.indicator(id);
                let lower = u8::from((k * 3 + id.index()) % (k % 4 + 2) == 0);
                json!({ "indicator": ind.code, "value": ind.scale.max().saturating_sub(lower), "evidence_note": "Observasi lapangan dan dokumen" })
            })
            .collect();
        let answers = (0..30)
            .map(|r| json!({ "undue_delay": (r + k) % 11 == 0, "unofficial_fees": false }))
            .collect();
        let (id, tag) = enter_sheet(
            field,
            2023,
            *unit,
            values,
            vec![("maladministration_perception", answers)],
        )
        .await?;
        let (_, _, tag) = field
            .call(
                "POST",
                &format!("/api/v1/submissions/{id}/submit"),
                None,
                tag.as_deref(),
            )
            .await?;
        reviewer
            .call(
                "POST",
                &format!("/api/v1/submissions/{id}/verify"),
                None,
                tag.as_deref(),
            )
            .await?;
    }
    Ok(())
}

/// An assessor's sheet for a unit: its values as a new draft submission, then each survey's
/// answers (respondents `R-000`, `R-001`…). Returns the submission's id and `ETag`.
async fn enter_sheet(
    field: &Client,
    year: u16,
    unit: i64,
    values: Vec<Value>,
    surveys: Vec<(&str, Vec<Value>)>,
) -> DemoResult<(i64, Option<String>)> {
    let (_, created, tag) = field
        .call(
            "POST",
            &format!("/api/v1/cycles/{year}/submissions"),
            Some(json!({ "unit_id": unit, "values": values })),
            None,
        )
        .await?;
    let id = created["id"].as_i64().ok_or("no id")?;
    for (survey, answers) in surveys {
        let responses: Vec<Value> = answers
            .into_iter()
            .enumerate()
            .map(|(r, answers)| json!({ "respondent": format!("R-{r:03}"), "answers": answers }))
            .collect();
        field
            .call(
                "POST",
                &format!("/api/v1/cycles/{year}/units/{unit}/survey-responses"),
                Some(json!({ "survey": survey, "responses": responses })),
                None,
            )
            .await?;
    }
    Ok((id, tag))
}
