//! Publishing a cycle issues certificates through the worker: one per eligible entity and unit,
//! with progress, stored PDFs that read back, public verification, idempotent re-issue, revoke
//! and reissue.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use kepatuhan_api::{auth, build, demo};
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::migrate;
use kepatuhan_worker::{WorkerConfig, run};
use serde_json::{Value, json};
use sha2::Digest;
use sqlx::PgPool;
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        accept: &str,
    ) -> (u16, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", accept);
        let req = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                req.body(Body::from(serde_json::to_vec(&b).unwrap()))
                    .unwrap()
            }
            None => req.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        (
            status,
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec(),
        )
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, bytes) = self.call(method, path, body, "application/json").await;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    }
}

/// Runs two workers side by side (as several processes would) until `done` (SQL boolean) holds
/// or 60 s pass, then stops them gracefully.
async fn work_until(state: &App, done: &str) {
    let mut stops = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let config = WorkerConfig {
            backoff_base: Duration::ZERO,
            ..WorkerConfig::default()
        };
        workers.push(tokio::spawn(run(state.clone(), config, async move {
            let _ = rx.await;
        })));
        stops.push(tx);
    }
    kepatuhan_tests::until(&state.pool, done, Duration::from_mins(1), String::new).await;
    for stop in stops {
        let _ = stop.send(());
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

const ALL_RENDERED: &str = "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type IN ('certificates', 'certificate-render') AND status IN ('Pending', 'Queued'))
    AND EXISTS (SELECT 1 FROM job_progress WHERE done = total AND total > 0)";

/// The demo data with 2025 made publishable (every sampled unit verified, every answer at the
/// top of its scale) and published: the app, an admin client, and the fan-out job's id.
async fn publish_2025(pool: &PgPool) -> (App, Api, String) {
    migrate(pool).await.unwrap();
    let state = App::new(pool.clone()).unwrap();
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    demo::seed_demo(&state, &settings).await.unwrap();
    kepatuhan_tests::make_2025_publishable(pool).await;
    let (_, admin) = auth::create_actor_with_token(pool, "HQ", "admin", None)
        .await
        .unwrap();
    let api = Api {
        app: build(state.clone(), &settings),
        token: admin.secret,
    };
    api.json(
        "POST",
        "/api/v1/cycles/2025/transitions",
        Some(json!({ "to": "verifying" })),
    )
    .await;
    let published = api
        .json(
            "POST",
            "/api/v1/cycles/2025/transitions",
            Some(json!({ "to": "published" })),
        )
        .await;
    let fan_out = published["job_id"].as_str().unwrap().to_owned();
    (state, api, fan_out)
}

#[sqlx::test(migrations = "../../migrations")]
async fn publishing_issues_verifiable_certificates(pool: PgPool) {
    let (state, api, fan_out) = publish_2025(&pool).await;

    work_until(&state, ALL_RENDERED).await;

    let expected: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM entity_results WHERE cycle_id = official_cycle(2025) AND award_eligible)
              + (SELECT count(*) FROM unit_results ur JOIN units u ON u.id = ur.unit_id JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_id = official_cycle(2025) WHERE ur.cycle_id = official_cycle(2025) AND r.award_eligible)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(expected >= 6, "{expected}");
    let job = api
        .json("GET", &format!("/api/v1/jobs/{fan_out}"), None)
        .await;
    assert_eq!(
        job["progress"],
        json!({ "done": expected, "total": expected })
    );
    let certificates = api
        .json("GET", "/api/v1/cycles/2025/certificates", None)
        .await;
    let list = certificates.as_array().unwrap();
    assert_eq!(i64::try_from(list.len()).unwrap(), expected);
    assert!(list.iter().all(|c| c["status"] == "valid"));

    // A unit's certificate: the PDF reads back with the unit, its entity, the score and the code.
    let cert = list
        .iter()
        .find(|c| c["unit_id"].is_number())
        .unwrap()
        .clone();
    let code = cert["code"].as_str().unwrap().to_owned();
    let (status, pdf) = api
        .call(
            "GET",
            &format!("/api/v1/certificates/{code}/pdf"),
            None,
            "application/pdf",
        )
        .await;
    assert_eq!(status, 200);
    let text = pdf_extract::extract_text_from_mem(&pdf)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected_text in [
        cert["recipient"].as_str().unwrap(),
        cert["recipient_detail"].as_str().unwrap(),
        cert["score"].as_str().unwrap(),
        code.as_str(),
    ] {
        assert!(
            text.contains(expected_text),
            "{expected_text:?} not in {text:?}"
        );
    }
    assert!(
        cert["score"].as_str().unwrap().contains(','),
        "Indonesian number format"
    );
    let sha: Vec<u8> = sqlx::query_scalar("SELECT sha256 FROM certificates WHERE code = $1")
        .bind(&code)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        sha,
        sha2::Sha256::digest(&pdf).to_vec(),
        "the stored hash is the file's"
    );

    // Public verification: JSON and a page in Bahasa Indonesia.
    let public = Api {
        app: api.app.clone(),
        token: String::new(),
    };
    let (status, body) = public
        .call("GET", &format!("/verify/{code}"), None, "application/json")
        .await;
    let verified: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, verified["status"].as_str()), (200, Some("valid")));
    assert_eq!(verified["sha256"].as_str().unwrap(), hex::encode(&sha));
    let (_, page) = public
        .call(
            "GET",
            &format!("/verify/{}", code.to_lowercase()),
            None,
            "text/html",
        )
        .await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("SAH")
            && page.contains("Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik Tahun 2025"),
        "{page}"
    );
    let (status, _) = public
        .call("GET", "/verify/NOPE-NOPE", None, "application/json")
        .await;
    assert_eq!(status, 404);

    // Issuing again changes nothing: never two valid certificates for one recipient.
    let mut tx = pool.begin().await.unwrap();
    kepatuhan_app::jobs::enqueue(
        &mut tx,
        &kepatuhan_app::jobs::IssueCertificates {
            cycle_id: kepatuhan_tests::official_cycle(&pool, 2025).await,
            revision: 1,
            traceparent: None,
        },
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    work_until(&state, "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type IN ('certificates', 'certificate-render') AND status IN ('Pending', 'Queued'))").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, expected);

    // Revoke, then reissue: the old code keeps answering, pointing to the new one.
    let revoked = api
        .json(
            "POST",
            &format!("/api/v1/certificates/{code}/revoke"),
            Some(json!({ "reason": "Data lokus dikoreksi" })),
        )
        .await;
    assert_eq!(revoked["status"], "revoked");
    let (_, page) = public
        .call("GET", &format!("/verify/{code}"), None, "text/html")
        .await;
    assert!(String::from_utf8(page).unwrap().contains("DICABUT"));
    api.json(
        "POST",
        &format!("/api/v1/certificates/{code}/reissue"),
        None,
    )
    .await;
    work_until(&state, "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = 'certificate-render' AND status IN ('Pending', 'Queued')) AND EXISTS (SELECT 1 FROM certificates WHERE status = 'revoked' AND replaced_by IS NOT NULL)").await;
    let old = api
        .json("GET", &format!("/api/v1/certificates/{code}"), None)
        .await;
    let new_code = old["replaced_by"]
        .as_str()
        .expect("the revoked certificate names its replacement")
        .to_owned();
    let new = api
        .json("GET", &format!("/api/v1/certificates/{new_code}"), None)
        .await;
    assert_eq!(
        (new["status"].as_str(), new["recipient"].as_str()),
        (Some("valid"), cert["recipient"].as_str())
    );
    // Reissuing a valid certificate supersedes it.
    api.json(
        "POST",
        &format!("/api/v1/certificates/{new_code}/reissue"),
        None,
    )
    .await;
    work_until(
        &state,
        &format!("SELECT status = 'superseded' FROM certificates WHERE code = '{new_code}'"),
    )
    .await;
    let superseded = api
        .json("GET", &format!("/api/v1/certificates/{new_code}"), None)
        .await;
    assert!(superseded["replaced_by"].is_string());
    let valid: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates WHERE status = 'valid'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(valid, expected, "still one valid certificate per recipient");
    assert!(
        sqlx::query("DELETE FROM certificates")
            .execute(&pool)
            .await
            .is_err(),
        "certificates are never deleted"
    );

    // A PDF stored without a record (a render whose recording failed) is swept; recorded ones
    // stay.
    state
        .store
        .put(
            &object_store::path::Path::from("certificates/2025/ORPHAN.pdf"),
            b"%PDF-1.7".to_vec().into(),
        )
        .await
        .unwrap();
    let removed = kepatuhan_app::storage::sweep_orphan_pdfs(
        state.store.as_ref(),
        &state.pool,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(removed, 1);
    assert!(
        state
            .store
            .head(&object_store::path::Path::from(
                "certificates/2025/ORPHAN.pdf"
            ))
            .await
            .is_err()
    );
    let (status, _) = api
        .call(
            "GET",
            &format!("/api/v1/certificates/{code}/pdf"),
            None,
            "application/pdf",
        )
        .await;
    assert_eq!(status, 200, "a recorded PDF is never swept");

    // A PDF lost from the store is the store's fault: 503 with a problem, never a 500, and its
    // record and verification page stay.
    let key: String = sqlx::query_scalar("SELECT object_key FROM certificates WHERE code = $1")
        .bind(&code)
        .fetch_one(&pool)
        .await
        .unwrap();
    state
        .store
        .delete(&object_store::path::Path::from(key.as_str()))
        .await
        .unwrap();
    let (status, body) = api
        .call(
            "GET",
            &format!("/api/v1/certificates/{code}/pdf"),
            None,
            "application/pdf",
        )
        .await;
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/certificate-pdf-unavailable"),
        "{problem}"
    );
    let (status, _) = public
        .call("GET", &format!("/verify/{code}"), None, "application/json")
        .await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrations = "../../migrations")]
async fn certificates_follow_each_new_results_revision(pool: PgPool) {
    let (state, api, _) = publish_2025(&pool).await;
    work_until(&state, ALL_RENDERED).await;
    let valid_of = |code: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<i64>)>(
                "SELECT c.code, c.unit_id FROM certificates c JOIN entities e ON e.id = c.entity_id
                 WHERE e.code = $1 AND c.status = 'valid' ORDER BY c.unit_id NULLS FIRST",
            )
            .bind(code)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    // Bangka (19.01) will drop below the award; Belitung's (19.02) entity certificate is revoked
    // by an admin, which must stick through the new revision.
    let bangka = valid_of("19.01").await;
    assert!(bangka.len() >= 2, "the entity and its units: {bangka:?}");
    let (belitung_code, _) = valid_of("19.02").await[0].clone();
    let revoked = api
        .json(
            "POST",
            &format!("/api/v1/certificates/{belitung_code}/revoke"),
            Some(json!({ "reason": "Pemeriksaan ulang dokumen" })),
        )
        .await;
    assert_eq!(revoked["status"], "revoked");

    // A correction sets every answer of Bangka's units to the lowest level: its opinion falls
    // to E, and a new results revision is published.
    let m = kepatuhan_core::methodology::builtin::by_code("ori-2025").unwrap();
    let zeros: Vec<Value> = m
        .indicator_ids()
        .map(|id| json!({ "indicator": m.indicator(id).code, "value": 0 }))
        .collect();
    for (_, unit) in bangka.iter().filter(|(_, unit)| unit.is_some()) {
        let corrected = api
            .json(
                "POST",
                "/api/v1/cycles/2025/corrections",
                Some(json!({ "unit_id": unit, "reason": "Bukti tidak sah", "values": zeros })),
            )
            .await;
        assert!(corrected["revision"].is_number(), "{corrected}");
    }
    work_until(&state, "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type IN ('certificates', 'certificate-render') AND status IN ('Pending', 'Queued', 'Running'))").await;

    // Bangka's certificates are withdrawn, with the reason, and say so publicly.
    assert!(valid_of("19.01").await.is_empty());
    for (code, _) in &bangka {
        let c = api
            .json("GET", &format!("/api/v1/certificates/{code}"), None)
            .await;
        assert_eq!(c["status"], "withdrawn", "{c}");
        assert!(
            c["revoke_reason"]
                .as_str()
                .unwrap()
                .contains("tidak lagi memenuhi syarat penghargaan"),
            "{c}"
        );
    }
    let (_, page) = api
        .call(
            "GET",
            &format!("/verify/{}", bangka[0].0),
            None,
            "text/html",
        )
        .await;
    assert!(String::from_utf8(page).unwrap().contains("DITARIK"));
    // A reissue is refused: Bangka earns no award now.
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/certificates/{}/reissue", bangka[0].0),
            None,
            "application/json",
        )
        .await;
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/recipient-not-eligible")
    );
    // The revocation stuck: Belitung's entity has no valid certificate again.
    assert!(
        valid_of("19.02")
            .await
            .iter()
            .all(|(_, unit)| unit.is_some())
    );

    // Everyone else holds exactly what the current revision says: one valid certificate per
    // award-earning recipient (but the revoked one), none stating an older rank.
    let (valid, earning): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM certificates WHERE status = 'valid'),
                (SELECT count(*) FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision
                 WHERE r.cycle_id = official_cycle(2025) AND r.award_eligible)
              + (SELECT count(*) FROM unit_results ur JOIN units u ON u.id = ur.unit_id
                 JOIN cycles c ON c.id = ur.cycle_id AND c.results_revision = ur.revision
                 JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_id = ur.cycle_id AND r.revision = ur.revision
                 WHERE ur.cycle_id = official_cycle(2025) AND r.award_eligible)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(valid, earning - 1);
    let stale_ranks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM certificates c
         JOIN entity_results old ON old.cycle_id = official_cycle(2025) AND old.revision = c.revision AND old.entity_id = c.entity_id
         JOIN cycles y ON y.year = 2025
         JOIN entity_results now ON now.cycle_id = official_cycle(2025) AND now.revision = y.results_revision AND now.entity_id = c.entity_id
         WHERE c.status = 'valid' AND c.unit_id IS NULL
           AND (old.national_rank, old.national_of, old.provincial_rank, old.provincial_of)
               IS DISTINCT FROM (now.national_rank, now.national_of, now.provincial_rank, now.provincial_of)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stale_ranks, 0, "a changed rank is printed anew");
}

/// A database from before the award rule: Bangka's results say opinion E yet award-eligible, and
/// it holds valid certificates. The worker's schedule finds the cycle, recomputes it once into a
/// new revision, and Bangka's certificates are withdrawn with the reason; a second look finds
/// nothing to do.
#[sqlx::test(migrations = "../../migrations")]
async fn certificates_issued_before_the_award_rule_are_withdrawn(pool: PgPool) {
    let (state, _api, _) = publish_2025(&pool).await;
    work_until(&state, ALL_RENDERED).await;
    assert!(
        kepatuhan_app::recompute::outdated_award_eligibility(&state)
            .await
            .unwrap()
            .is_empty()
    );
    // Bangka's inputs at the bottom of every scale, scored E, and (as before the rule) eligible.
    let m = kepatuhan_core::methodology::builtin::by_code("ori-2025").unwrap();
    for id in m.indicator_ids() {
        let indicator = m.indicator(id);
        let bottom = indicator
            .scale
            .levels
            .iter()
            .map(|l| l.value)
            .min()
            .unwrap();
        sqlx::query(
            "UPDATE submission_values v SET value = $1 FROM submissions s JOIN units u ON u.id = s.unit_id
             JOIN entities e ON e.id = u.entity_id
             WHERE v.submission_id = s.id AND v.indicator_code = $2 AND s.cycle_id = official_cycle(2025) AND e.code = '19.01'",
        )
        .bind(i16::from(bottom))
        .bind(&indicator.code)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE entity_results r SET grade_code = 'E', award_eligible = true FROM entities e, cycles c
         WHERE e.id = r.entity_id AND e.code = '19.01' AND c.year = 2025 AND r.cycle_id = official_cycle(2025) AND r.revision = c.results_revision",
    )
    .execute(&pool)
    .await
    .unwrap();
    let revision: i32 = sqlx::query_scalar("SELECT results_revision FROM cycles WHERE year = 2025")
        .fetch_one(&pool)
        .await
        .unwrap();
    let outdated = kepatuhan_app::recompute::outdated_award_eligibility(&state)
        .await
        .unwrap();
    assert_eq!(outdated.len(), 1);
    assert_eq!(
        (outdated[0].year.get(), outdated[0].revision),
        (2025, revision)
    );
    // Once per revision, whichever worker looks first.
    let first = kepatuhan_worker::schedule::enqueue_award_rule_recomputes(&state)
        .await
        .unwrap();
    let again = kepatuhan_worker::schedule::enqueue_award_rule_recomputes(&state)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first, again);
    work_until(&state, "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running'))").await;

    let bangka: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.code, c.status, c.revoke_reason FROM certificates c JOIN entities e ON e.id = c.entity_id
         WHERE e.code = '19.01' AND c.revision = $1",
    )
    .bind(revision)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!bangka.is_empty());
    for (code, status, reason) in &bangka {
        assert_eq!(status, "withdrawn", "{code}");
        assert!(
            reason
                .as_deref()
                .unwrap_or_default()
                .contains("tidak lagi memenuhi syarat penghargaan"),
            "{code}: {reason:?}"
        );
    }
    let now: i32 = sqlx::query_scalar("SELECT results_revision FROM cycles WHERE year = 2025")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(now, revision + 1, "one new revision");
    assert!(
        kepatuhan_app::recompute::outdated_award_eligibility(&state)
            .await
            .unwrap()
            .is_empty()
    );
    // Everyone else keeps the valid certificate they had.
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.status FROM certificates c JOIN entities e ON e.id = c.entity_id WHERE e.code <> '19.01'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(others, ["valid"]);
}
