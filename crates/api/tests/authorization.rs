//! Who may call what: every role against the endpoints, including the forbidden cases. Objects
//! outside a caller's scope answer 404, so nothing can be enumerated.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

struct Roles {
    admin: String,
    babel: String,
    jakarta: String,
    assessor: String,
    stranger: String,
    /// The government of Kabupaten Bangka (19.01).
    bangka: String,
}

/// Cycle 2025 collecting, one sampled unit in Bangka (assigned to `assessor`) and one in Jakarta,
/// each with a draft submission. Returns the roles and the two submission ids.
async fn setup(app: &TestApp) -> (Roles, i64, i64) {
    app.seed_reference().await;
    let roles = Roles {
        admin: app.admin.clone(),
        babel: app.token("office", Some("babel")).await,
        jakarta: app.token("office", Some("jakarta")).await,
        assessor: app.token("assessor", Some("babel")).await,
        stranger: app.token("assessor", Some("babel")).await,
        bangka: app.government_token("19.01").await,
    };
    let admin = Some(roles.admin.as_str());
    app.post("/api/v1/cycles", admin, json!({ "year": 2025 }))
        .await
        .assert_ok();
    app.post(
        "/api/v1/cycles/2025/sample/bulk",
        admin,
        json!([
            { "entity_code": "19.01", "unit_name": "Dinas Kependudukan dan Pencatatan Sipil" },
            { "entity_code": "31.71", "unit_name": "Dinas Kependudukan dan Pencatatan Sipil" },
        ]),
    )
    .await
    .assert_ok();
    let sample = app.get("/api/v1/cycles/2025/sample", admin).await.body;
    let unit = |entity: &str| common::sampled_unit(&sample, entity);
    let (bangka, jaksel) = (unit("19.01"), unit("31.71"));
    let assessor_id = app.actor_id(&roles.assessor).await;
    app.post(
        "/api/v1/cycles/2025/assignments/bulk",
        admin,
        json!([{ "unit_id": bangka, "assessor_id": assessor_id }]),
    )
    .await
    .assert_ok();
    app.post(
        "/api/v1/cycles/2025/transitions",
        admin,
        json!({ "to": "collecting" }),
    )
    .await
    .assert_ok();
    let s1 = app
        .post(
            "/api/v1/cycles/2025/submissions",
            Some(&roles.assessor),
            json!({ "unit_id": bangka }),
        )
        .await;
    let s2 = app
        .post(
            "/api/v1/cycles/2025/submissions",
            Some(&roles.jakarta),
            json!({ "unit_id": jaksel }),
        )
        .await;
    (
        roles,
        s1.body["id"].as_i64().unwrap(),
        s2.body["id"].as_i64().unwrap(),
    )
}

/// A fingerprint of everything a request may write, but the audit trail itself, idempotency
/// reservations and the tokens' last use: every table of the schema and the job queue.
async fn fingerprint(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_type = 'BASE TABLE' AND (table_schema = 'public' OR (table_schema, table_name) = ('apalis', 'jobs'))
           AND table_name NOT IN ('audit_log', '_sqlx_migrations', 'idempotency_keys')
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT '{t}: ' || md5(coalesce(string_agg(x, '|' ORDER BY x), '')) AS f
                 FROM (SELECT (to_jsonb(r) - 'last_used_at')::text AS x FROM {t} r) s"
            )
        })
        .collect();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT string_agg(f, E'\\n') FROM ({}) all_tables",
        parts.join(" UNION ALL ")
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn audit_entries(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_role_on_each_endpoint(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (r, bangka_sub, jaksel_sub) = setup(&app).await;
    let bangka_unit = app
        .get(&format!("/api/v1/submissions/{bangka_sub}"), Some(&r.admin))
        .await
        .body["unit_id"]
        .as_i64()
        .unwrap();
    // A pre-evaluation of Kabupaten Bangka by HQ.
    let sa = app
        .post(
            "/api/v1/self-assessments",
            Some(&r.admin),
            json!({ "entity_code": "19.01", "year": 2025, "name": "Pra-evaluasi HQ" }),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let who: [(&str, Option<&str>); 7] = [
        ("public", None),
        ("admin", Some(&r.admin)),
        ("babel", Some(&r.babel)),
        ("jakarta", Some(&r.jakarta)),
        ("assessor", Some(&r.assessor)),
        ("stranger", Some(&r.stranger)),
        ("bangka", Some(&r.bangka)),
    ];
    // (method, path, body, expected status for public, admin, babel, jakarta, assessor, stranger,
    // bangka's government)
    let matrix: Vec<(Method, String, Option<Value>, [u16; 7])> = vec![
        (
            Method::GET,
            "/api/v1/provinces".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/methodologies".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/offices".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/assessors".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/entities/19.01".into(),
            None,
            [401, 200, 200, 404, 200, 404, 200],
        ),
        (
            Method::GET,
            "/api/v1/entities/31.71".into(),
            None,
            [401, 200, 404, 200, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/entities/KEMENKES".into(),
            None,
            [401, 200, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025".into(),
            None,
            [404, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/submissions/{bangka_sub}"),
            None,
            [401, 200, 200, 404, 200, 404, 403],
        ),
        (
            Method::GET,
            format!("/api/v1/submissions/{jaksel_sub}"),
            None,
            [401, 200, 404, 200, 404, 404, 403],
        ),
        (
            Method::GET,
            format!("/api/v1/submissions/{bangka_sub}/audit"),
            None,
            [401, 200, 200, 404, 200, 404, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/results/entities".into(),
            None,
            [404, 200, 200, 200, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            None,
            [401, 404, 404, 404, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/provinces/bulk".into(),
            Some(json!([{ "code": "99", "name": "Provinsi Uji" }])),
            [401, 200, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/offices/bulk".into(),
            Some(
                json!([{ "code": "uji", "name": "Ombudsman RI Perwakilan Uji", "provinces": ["99"] }]),
            ),
            [401, 200, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/entities/bulk".into(),
            Some(
                json!([{ "code": "19.02", "kind": "regency", "name": "Pemerintah Kabupaten Belitung", "province_code": "19" }]),
            ),
            [401, 200, 200, 422, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/transitions".into(),
            Some(json!({ "to": "planning" })),
            [401, 409, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2019/import".into(),
            Some(json!([])),
            [401, 422, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/submissions/{bangka_sub}/verify"),
            None,
            [401, 428, 428, 404, 403, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/submissions/{bangka_sub}/return"),
            Some(json!({ "note": "x" })),
            [401, 428, 428, 404, 403, 403, 403],
        ),
        (
            Method::PATCH,
            format!("/api/v1/submissions/{bangka_sub}"),
            Some(json!({ "values": [] })),
            [401, 428, 428, 404, 428, 404, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles".into(),
            Some(json!({ "year": 2030 })),
            [401, 201, 403, 403, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/webhooks".into(),
            None,
            [401, 200, 200, 200, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(json!({ "url": "https://hooks.example.org/kepatuhan", "entity_code": "19.01" })),
            [401, 201, 201, 422, 403, 403, 201],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/certificates".into(),
            None,
            [401, 200, 200, 200, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/v1/certificates/NOPE-NOPE".into(),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::GET,
            "/verify/NOPE-NOPE".into(),
            None,
            [404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            format!("/api/v1/cycles/2025/units/{bangka_unit}/survey-responses"),
            None,
            [401, 200, 200, 404, 200, 404, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/results/units".into(),
            None,
            [404, 200, 200, 200, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/recompute".into(),
            Some(json!({})),
            [401, 202, 403, 403, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/audit".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/certificates/NOPE-NOPE/pdf".into(),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::POST,
            "/api/v1/certificates/NOPE-NOPE/reissue".into(),
            Some(json!({})),
            [401, 404, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/certificates/NOPE-NOPE/revoke".into(),
            Some(json!({ "reason": "x" })),
            [401, 404, 403, 403, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/assignments/bulk".into(),
            Some(json!([])),
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/corrections".into(),
            Some(json!({ "unit_id": 1, "reason": "x", "values": [] })),
            [401, 422, 403, 403, 403, 403, 403],
        ),
        (
            Method::PUT,
            "/api/v1/cycles/2025/entities/19.01/follow-up".into(),
            Some(json!({ "findings": 1, "followed_up": 1 })),
            [401, 200, 200, 404, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/results/provinces".into(),
            None,
            [404, 200, 200, 200, 404, 404, 404],
        ),
        (
            Method::GET,
            format!("/api/v1/cycles/2025/results/units/{bangka_unit}"),
            None,
            [404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/sample".into(),
            None,
            [401, 200, 200, 200, 200, 200, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/sample/bulk".into(),
            Some(json!([])),
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/sample/999999/exclusion".into(),
            Some(json!({ "reason": "x" })),
            [401, 404, 404, 404, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/submissions".into(),
            None,
            [401, 200, 200, 200, 200, 200, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/submissions".into(),
            Some(json!({ "unit_id": 999_999 })),
            [401, 422, 422, 422, 422, 422, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/submissions/bulk".into(),
            Some(json!([])),
            [401, 422, 422, 422, 422, 422, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/units/999999/survey-responses".into(),
            Some(json!({ "survey": "maladministration_perception", "responses": [] })),
            [401, 404, 404, 404, 404, 404, 403],
        ),
        (
            Method::GET,
            "/api/v1/entities".into(),
            None,
            [401, 200, 200, 200, 200, 200, 403],
        ),
        (
            Method::GET,
            "/api/v1/entities/19.01/units".into(),
            None,
            [401, 200, 200, 404, 200, 404, 200],
        ),
        (
            Method::GET,
            "/api/v1/jobs".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry".into(),
            Some(json!({})),
            [401, 404, 403, 403, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/methodologies/ori-2025".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/results/entities/19.01/history".into(),
            None,
            [404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::POST,
            format!("/api/v1/submissions/{bangka_sub}/submit"),
            None,
            [401, 428, 428, 404, 428, 404, 403],
        ),
        (
            Method::POST,
            "/api/v1/units/bulk".into(),
            Some(json!([{ "entity_code": "19.01", "name": "Dinas Sosial", "kind": "dinsos" }])),
            [401, 200, 200, 422, 403, 403, 403],
        ),
        (
            Method::DELETE,
            "/api/v1/webhooks/999999".into(),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::GET,
            "/api/v1/webhooks/999999/deliveries".into(),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::POST,
            "/api/v1/webhooks/999999/rotate-secret".into(),
            Some(json!({})),
            [401, 404, 404, 404, 403, 403, 404],
        ),
        // The assessment workbook: whoever enters data, each with their own units (an assessor
        // without assignments has none to fill); its upload takes a workbook or CSV only.
        (
            Method::GET,
            "/api/v1/cycles/2025/templates/assessment.xlsx".into(),
            None,
            [401, 200, 200, 200, 200, 404, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/submissions/import".into(),
            Some(json!({})),
            [401, 415, 415, 415, 415, 415, 403],
        ),
        // The survey workbook: the same callers; its upload takes a workbook only.
        (
            Method::GET,
            "/api/v1/cycles/2025/templates/surveys.xlsx".into(),
            None,
            [401, 200, 200, 200, 200, 404, 403],
        ),
        (
            Method::POST,
            "/api/v1/cycles/2025/survey-responses/import".into(),
            Some(json!({})),
            [401, 415, 415, 415, 415, 415, 403],
        ),
        // The assessment as an XLSForm: the same callers as the workbooks.
        (
            Method::GET,
            "/api/v1/cycles/2025/forms/assessment.xlsx".into(),
            None,
            [401, 200, 200, 200, 200, 404, 403],
        ),
        // The import template: staff.
        (
            Method::GET,
            "/api/v1/cycles/2025/import/template".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        // Progress per office: HQ sees every office, an office its own.
        (
            Method::GET,
            "/api/v1/cycles/2025/progress".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/entities/19.01/progress".into(),
            None,
            [401, 200, 200, 404, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/entities/31.71/progress".into(),
            None,
            [401, 200, 404, 200, 403, 403, 404],
        ),
        // Plans are made over published results: 2025 is collecting.
        (
            Method::GET,
            format!("/api/v1/cycles/2025/results/units/{bangka_unit}/plan"),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/results/entities/19.01/plan?grade=A".into(),
            None,
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::POST,
            format!("/api/v1/cycles/2025/results/units/{bangka_unit}/simulate"),
            Some(json!({ "values": [{ "indicator": "complaint_channel_available", "value": 3 }] })),
            [401, 404, 404, 404, 403, 403, 404],
        ),
        // Self-assessments: the entity's government, its office and HQ; names are unique per
        // entity and year, so the second creation of the same name is a conflict.
        (
            Method::POST,
            "/api/v1/self-assessments".into(),
            Some(json!({ "entity_code": "19.01", "year": 2025, "name": "Penilaian mandiri" })),
            [401, 201, 409, 422, 403, 403, 409],
        ),
        (
            Method::GET,
            "/api/v1/self-assessments".into(),
            None,
            [401, 200, 200, 200, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/self-assessments/{sa}"),
            None,
            [401, 200, 200, 404, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/self-assessments/{sa}/calibration"),
            None,
            [401, 409, 409, 404, 403, 403, 409],
        ),
        (
            Method::POST,
            "/api/v1/self-assessments/999999/units".into(),
            Some(json!({ "unit_id": 1 })),
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::PUT,
            "/api/v1/self-assessments/999999/units/1/values".into(),
            Some(json!([])),
            [401, 404, 404, 404, 403, 403, 404],
        ),
        (
            Method::POST,
            "/api/v1/self-assessments/999999/units/1/survey-responses".into(),
            Some(json!({ "survey": "maladministration_perception", "responses": [] })),
            [401, 404, 404, 404, 403, 403, 404],
        ),
        // The findings register: HQ and the office record and review, the government follows
        // up. Finding 2 is HQ's (1 stands for the counts recorded above): followed up, accepted,
        // then sent back.
        (
            Method::POST,
            "/api/v1/cycles/2025/entities/19.01/findings".into(),
            Some(json!({ "description": "Standar pelayanan tidak dipublikasikan" })),
            [401, 201, 201, 404, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/cycles/2025/entities/19.01/findings".into(),
            None,
            [401, 200, 200, 404, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/findings/2/follow-up".into(),
            Some(json!({ "note": "Sudah dipasang", "evidence": ["foto-1.jpg"] })),
            [401, 200, 403, 403, 403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/findings/2/accept".into(),
            None,
            [401, 200, 409, 404, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/findings/2/return".into(),
            Some(json!({ "note": "Bukti belum cukup" })),
            [401, 200, 409, 404, 403, 403, 403],
        ),
        // Integrity flags: HQ's queue, which an office reads for its provinces; only HQ decides.
        // Nothing is verified here, so no flag exists to decide on.
        (
            Method::GET,
            "/api/v1/cycles/2025/flags".into(),
            None,
            [401, 200, 200, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/flags/1/dismiss".into(),
            Some(json!({ "note": "Sudah diperiksa" })),
            [401, 404, 403, 403, 403, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/flags/1/escalate".into(),
            Some(json!({ "note": "Periksa ulang" })),
            [401, 404, 403, 403, 403, 403, 403],
        ),
    ];
    // Every operation of the OpenAPI document has a row: a new endpoint cannot be forgotten.
    let document: Value = serde_json::from_str(&kepatuhan_api::openapi::document_json()).unwrap();
    let mut missing = Vec::new();
    for (template, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let covered = matrix.iter().any(|(m, path, ..)| {
                m.as_str().eq_ignore_ascii_case(method)
                    && matches_template(template, path.split('?').next().unwrap_or_default())
            });
            if !covered {
                missing.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without a row in the matrix:\n{}",
        missing.join("\n")
    );
    // Each call is checked for its status, and for what it left behind: a read or a refusal
    // writes nothing; a write that changed anything left an audit entry.
    let mut failures = Vec::new();
    let mut audited_writes = 0;
    for (method, path, body, expected) in &matrix {
        for ((role, token), want) in who.iter().zip(expected) {
            let (before, entries) = (fingerprint(&pool).await, audit_entries(&pool).await);
            let got = app
                .send(method.clone(), path, *token, body.clone(), &[])
                .await;
            let changed = fingerprint(&pool).await != before;
            let recorded = audit_entries(&pool).await > entries;
            let read_or_refused = !got.status.is_success() || *method == Method::GET;
            if changed && read_or_refused {
                failures.push(format!(
                    "{role:>8} {method} {path}: answered {} yet changed the database",
                    got.status.as_u16()
                ));
            } else if changed && !recorded {
                failures.push(format!(
                    "{role:>8} {method} {path}: changed the database without an audit entry"
                ));
            } else if changed {
                audited_writes += 1;
            }
            if got.status.as_u16() != *want {
                failures.push(format!(
                    "{role:>8} {method} {path}: expected {want}, got {} {}",
                    got.status.as_u16(),
                    got.text
                ));
            } else if *want >= 400 {
                assert_eq!(
                    got.content_type(),
                    "application/problem+json",
                    "{role} {method} {path}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(audited_writes >= 8, "{audited_writes} writes exercised");

    // Lists are filtered by scope rather than refused.
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    assert_eq!(
        count(
            &app.get("/api/v1/cycles/2025/sample", Some(&r.babel))
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(
            &app.get("/api/v1/cycles/2025/sample", Some(&r.assessor))
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(
            &app.get("/api/v1/cycles/2025/sample", Some(&r.stranger))
                .await
                .body
        ),
        0
    );
    assert_eq!(
        count(
            &app.get("/api/v1/cycles/2025/submissions", Some(&r.jakarta))
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(
            &app.get("/api/v1/cycles/2025/submissions", Some(&r.stranger))
                .await
                .body
        ),
        0
    );
    // An assessor cannot open a submission for a unit not assigned to it.
    let r2 = app
        .post(
            "/api/v1/cycles/2025/submissions",
            Some(&r.stranger),
            json!({ "unit_id": 1 }),
        )
        .await;
    r2.assert_problem(422, "validation-error");
}

#[sqlx::test(migrations = "../../migrations")]
async fn assessors_lose_access_when_collection_closes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (r, bangka_sub, _) = setup(&app).await;
    app.get(
        &format!("/api/v1/submissions/{bangka_sub}"),
        Some(&r.assessor),
    )
    .await
    .assert_ok();
    app.post(
        "/api/v1/cycles/2025/transitions",
        Some(&r.admin),
        json!({ "to": "verifying" }),
    )
    .await
    .assert_ok();
    app.get(
        &format!("/api/v1/submissions/{bangka_sub}"),
        Some(&r.assessor),
    )
    .await
    .assert_problem(404, "not-found");
    app.get(&format!("/api/v1/submissions/{bangka_sub}"), Some(&r.babel))
        .await
        .assert_ok();
    let entities = app.get("/api/v1/entities", Some(&r.assessor)).await;
    assert_eq!(entities.body["items"], json!([]));
}

#[sqlx::test(migrations = "../../migrations")]
async fn offices_see_only_the_jobs_of_their_provinces(pool: PgPool) {
    use kepatuhan_app::jobs::{self, Recipient, Recompute, RenderCertificates};
    let app = TestApp::spawn(pool.clone()).await;
    let (roles, _, _) = setup(&app).await;
    let ids = |code: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT e.id, u.id FROM units u JOIN entities e ON e.id = u.entity_id WHERE e.code = $1",
            )
            .bind(code)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let ((_, bangka_unit), (jaksel_entity, jaksel_unit)) = (ids("19.01").await, ids("31.71").await);
    let year: kepatuhan_core::CycleId = sqlx::query_scalar("SELECT official_cycle(2025)")
        .fetch_one(&pool)
        .await
        .map(kepatuhan_core::CycleId)
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let own = jobs::enqueue(&mut tx, &Recompute::unit(year, bangka_unit), None)
        .await
        .unwrap();
    let cycle_wide = jobs::enqueue(&mut tx, &Recompute::full(year), None)
        .await
        .unwrap();
    let foreign = jobs::enqueue(&mut tx, &Recompute::unit(year, jaksel_unit), None)
        .await
        .unwrap();
    let render = RenderCertificates {
        cycle_id: year,
        revision: 1,
        recipients: vec![Recipient {
            entity_id: jaksel_entity,
            unit_id: None,
        }],
        parent: None,
        force: false,
    };
    let foreign_render = jobs::enqueue(&mut tx, &render, None).await.unwrap();
    tx.commit().await.unwrap();

    let listed = |token: String| {
        let app = &app;
        async move {
            let mut ids: Vec<String> = app
                .get("/api/v1/jobs", Some(&token))
                .await
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut mine = vec![own.clone(), cycle_wide.clone()];
    mine.sort();
    assert_eq!(listed(roles.babel.clone()).await, mine);
    assert_eq!(listed(roles.admin.clone()).await.len(), 4);
    for job in [&foreign, &foreign_render] {
        app.get(&format!("/api/v1/jobs/{job}"), Some(&roles.babel))
            .await
            .assert_problem(404, "not-found");
        app.get(&format!("/api/v1/jobs/{job}"), Some(&roles.jakarta))
            .await
            .assert_ok();
    }
    app.get(&format!("/api/v1/jobs/{own}"), Some(&roles.babel))
        .await
        .assert_ok();
    app.get(&format!("/api/v1/jobs/{own}"), Some(&roles.jakarta))
        .await
        .assert_problem(404, "not-found");
}

/// Whether a concrete path is an instance of an OpenAPI path template (`{name}` matches one
/// segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}
