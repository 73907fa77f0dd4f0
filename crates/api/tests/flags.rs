//! Integrity flags end to end: a recompute raises them, HQ reviews them in its queue, a dismissal
//! holds until the evidence changes, and publication records how many were left open.

mod common;

use common::TestApp;
use kepatuhan_app::clock::ManualClock;
use kepatuhan_app::recompute::recompute_cycle;
use kepatuhan_core::CycleYear;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn hq_reviews_the_flags_a_recompute_raises(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (state, tokens) = common::demo(&pool, false).await;
    let y2025 = CycleYear::new(2025).unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let admin = Some(app.admin.as_str());

    // The demo's office verifies each submission the moment it is submitted: every verified
    // unit is flagged for review speed.
    let queue = app.get("/api/v1/cycles/2025/flags", admin).await;
    queue.assert_ok();
    let verified: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM submissions s JOIN cycle_units cu ON cu.cycle_id = s.cycle_id AND cu.unit_id = s.unit_id AND cu.excluded_at IS NULL
         WHERE s.cycle_id = official_cycle(2025) AND s.state = 'verified'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(verified > 0);
    let fast = app
        .get("/api/v1/cycles/2025/flags?kind=fast_review", admin)
        .await;
    fast.assert_ok();
    assert_eq!(fast.body["total"], json!(verified), "{}", fast.text);
    let flags = fast.body["items"].as_array().unwrap().clone();
    let first = &flags[0];
    assert_eq!(first["status"], "open");
    assert_eq!(first["subject"]["type"], "unit");
    assert!(first["evidence"]["seconds_to_verify"].as_i64().unwrap() < 300);
    // Pages follow the API's cursors.
    let one = app
        .get("/api/v1/cycles/2025/flags?kind=fast_review&limit=1", admin)
        .await;
    assert_eq!(one.body["items"].as_array().unwrap().len(), 1);
    let cursor = one.body["next_cursor"].as_str().unwrap().to_owned();
    let next = app
        .get(
            &format!("/api/v1/cycles/2025/flags?kind=fast_review&limit=1&cursor={cursor}"),
            admin,
        )
        .await;
    next.assert_ok();
    assert_ne!(next.body["items"][0]["id"], one.body["items"][0]["id"]);
    let open_before = queue.body["open"].as_i64().unwrap();
    assert!(open_before >= verified);

    // Filters are checked; callers are checked.
    app.get("/api/v1/cycles/2025/flags?kind=nope&severity=urgent", admin)
        .await
        .assert_problem(422, "validation-error");
    app.get("/api/v1/cycles/2025/flags", None)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/cycles/2025/flags", Some(&tokens.assessor))
        .await
        .assert_problem(403, "forbidden");
    let government = app.government_token("19.01").await;
    app.get("/api/v1/cycles/2025/flags", Some(&government))
        .await
        .assert_problem(403, "forbidden");
    // The office sees the flags of its provinces only.
    let office = app
        .get("/api/v1/cycles/2025/flags", Some(&tokens.office))
        .await;
    office.assert_ok();
    let provinces: Vec<String> = sqlx::query_scalar(
        "SELECT op.province_code FROM office_provinces op JOIN actors a ON a.office_code = op.office_code
         JOIN api_tokens t ON t.actor_id = a.id WHERE t.prefix = $1",
    )
    .bind(&tokens.office[..12])
    .fetch_all(&pool)
    .await
    .unwrap();
    for f in office.body["items"].as_array().unwrap() {
        assert!(
            f["province"]
                .as_str()
                .is_some_and(|p| provinces.iter().any(|x| x == p)),
            "{f}"
        );
    }

    // Dismissal: admin only, with a reason, once.
    let id = first["id"].as_i64().unwrap();
    let dismiss = format!("/api/v1/flags/{id}/dismiss");
    app.post(&dismiss, Some(&tokens.office), json!({ "note": "x" }))
        .await
        .assert_problem(403, "forbidden");
    let empty = app.post(&dismiss, admin, json!({ "note": "  " })).await;
    empty.assert_problem(422, "validation-error");
    assert_eq!(empty.fields(), ["note"]);
    let dismissed = app
        .post(
            &dismiss,
            admin,
            json!({ "note": "Verifikasi di lokasi bersama asesor" }),
        )
        .await;
    dismissed.assert_ok();
    assert_eq!(dismissed.body["status"], "dismissed");
    app.post(&dismiss, admin, json!({ "note": "again" }))
        .await
        .assert_problem(409, "flag-decided");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE object_type = 'flag' AND object_id = $1 AND action = 'dismissed'",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // A recompute finds the same evidence: the dismissal holds.
    let status = |pool: PgPool| async move {
        sqlx::query_scalar::<_, String>("SELECT status FROM flags WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    sqlx::query(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE id = official_cycle(2025)",
    )
    .execute(&pool)
    .await
    .unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    assert_eq!(status(pool.clone()).await, "dismissed");
    let after = app.get("/api/v1/cycles/2025/flags", admin).await;
    assert_eq!(after.body["open"].as_i64().unwrap(), open_before - 1);

    // New evidence (a different review time) reopens it.
    let unit = first["unit_id"].as_i64().unwrap();
    sqlx::query(
        "UPDATE submissions SET verified_at = verified_at + interval '7 seconds' WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(unit)
    .execute(&pool)
    .await
    .unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    assert_eq!(status(pool.clone()).await, "open");

    // Escalation is a decision too, recorded with its comment.
    let escalated = app
        .post(
            &format!("/api/v1/flags/{id}/escalate"),
            admin,
            json!({ "note": "Mohon periksa ulang waktu verifikasi" }),
        )
        .await;
    escalated.assert_ok();
    assert_eq!(escalated.body["flag"]["status"], "escalated");
    assert_eq!(
        escalated.body["flag"]["decision_note"],
        "Mohon periksa ulang waktu verifikasi"
    );
    // The escalation sent the unit back to its office; the office verifies it again.
    sqlx::query(
        "UPDATE submissions SET state = 'verified' WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(unit)
    .execute(&pool)
    .await
    .unwrap();

    // A unit whose score last year (2024, imported) was far lower is a year-on-year jump.
    let jumper: i64 = sqlx::query_scalar(
        "SELECT p.unit_id FROM unit_results p JOIN unit_results r ON r.unit_id = p.unit_id
         WHERE p.cycle_id = official_cycle(2024) AND r.cycle_id = official_cycle(2025)
           AND r.unit_id IN (SELECT unit_id FROM submissions WHERE cycle_id = official_cycle(2025) AND state = 'verified')
         ORDER BY p.unit_id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE unit_results SET score = 5 WHERE cycle_id = official_cycle(2024) AND unit_id = $1",
    )
    .bind(jumper)
    .execute(&pool)
    .await
    .unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let jumps = app
        .get("/api/v1/cycles/2025/flags?kind=year_on_year_jump", admin)
        .await;
    jumps.assert_ok();
    let jump = jumps.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["unit_id"] == json!(jumper))
        .unwrap_or_else(|| panic!("no jump for unit {jumper}: {}", jumps.text));
    assert_eq!(jump["evidence"]["previous"], "5");
}

#[sqlx::test(migrations = "../../migrations")]
async fn publication_records_the_flags_left_open(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // The demo publishes 2023 through the API, its submissions verified the moment they were
    // submitted: publication refreshes the flags, is not blocked by them, and records how many
    // were open.
    common::demo(&pool, true).await;
    let (recorded, open): (Option<i32>, i64) = sqlx::query_as(
        "SELECT c.open_flags_at_publication, (SELECT count(*) FROM flags f WHERE f.cycle_id = c.id AND f.current AND f.status = 'open')
         FROM cycles c WHERE c.kind = 'official' AND c.year = 2023",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(open > 0);
    assert_eq!(recorded.map(i64::from), Some(open));
    let queue = app
        .get("/api/v1/cycles/2023/flags?severity=high", Some(&app.admin))
        .await;
    queue.assert_ok();
    assert!(
        queue.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "high")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn review_speed_is_what_the_clock_said_at_submission_and_at_verification(pool: PgPool) {
    // One clock for the api and the demo's loaders; it moves only when the test moves it.
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::spawn_with_clock(pool.clone(), clock.clone()).await;
    let (state, tokens) = common::demo_with_clock(&pool, false, clock.clone()).await;
    // Two of the demo's submissions await review, submitted at the clock's time.
    let waiting: Vec<(i64, i64, i32)> = sqlx::query_as(
        "SELECT id, unit_id, version FROM submissions
         WHERE cycle_id = official_cycle(2025) AND state = 'submitted' ORDER BY id LIMIT 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        waiting.len(),
        2,
        "the demo leaves submissions awaiting review"
    );
    let verify = |(id, _, version): (i64, i64, i32)| {
        let (app, office) = (&app, tokens.office.clone());
        async move {
            app.send(
                reqwest::Method::POST,
                &format!("/api/v1/submissions/{id}/verify"),
                Some(&office),
                None,
                &[("if-match", &format!("\"v{version}\""))],
            )
            .await
            .assert_ok();
        }
    };
    // Three minutes after submission: quick. Two hours after: not.
    clock.advance(chrono::Duration::minutes(3));
    verify(waiting[0]).await;
    clock.advance(chrono::Duration::hours(2));
    verify(waiting[1]).await;
    recompute_cycle(&state, CycleYear::new(2025).unwrap().into())
        .await
        .unwrap();
    let fast: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT unit_id, severity, evidence FROM flags
         WHERE cycle_id = official_cycle(2025) AND kind = 'fast_review' AND current ORDER BY unit_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let of = |unit: i64| fast.iter().find(|f| f.0 == unit);
    let quick = of(waiting[0].1).expect("the three-minute review is flagged");
    assert_eq!(quick.1, "medium");
    assert_eq!(quick.2, json!({ "seconds_to_verify": 180 }));
    assert!(
        of(waiting[1].1).is_none(),
        "a two-hour review is not flagged"
    );
    // The demo verified the others the moment they were submitted (the clock stood still).
    assert!(
        fast.iter()
            .filter(|f| f.0 != waiting[0].1)
            .all(|f| f.1 == "high" && f.2 == json!({ "seconds_to_verify": 0 })),
        "{fast:?}"
    );
    assert!(fast.len() > 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_entitys_refresh_touches_only_its_own_flags(pool: PgPool) {
    // The api (which adds the job queue's schema) seeds the demo through its endpoints.
    let _app = TestApp::spawn(pool.clone()).await;
    let (state, _) = common::demo(&pool, false).await;
    let y2025 = CycleYear::new(2025).unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let flags = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64, i64, bool, String)>(
            "SELECT f.unit_id, f.entity_id, f.current, f.evidence::text FROM flags f
             WHERE f.cycle_id = official_cycle(2025) AND f.kind = 'fast_review' ORDER BY f.unit_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = flags(pool.clone()).await;
    let (unit, entity) = (before[0].0, before[0].1);
    assert!(
        before.iter().any(|f| f.1 != entity),
        "flags of other entities"
    );
    // The unit's verification now took an hour: refreshing its entity retires its flag and
    // leaves every other entity's flags as they were, even those whose review time changed too.
    sqlx::query(
        "UPDATE submissions SET verified_at = submitted_at + interval '1 hour' WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(unit)
    .execute(&pool)
    .await
    .unwrap();
    let other = before.iter().find(|f| f.1 != entity).unwrap().0;
    sqlx::query(
        "UPDATE submissions SET verified_at = submitted_at + interval '2 hours' WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(other)
    .execute(&pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let cycle = kepatuhan_app::cycles::lock(&mut tx, y2025).await.unwrap();
    let m = state.require_methodology(&cycle.methodology_code).unwrap();
    let counts = kepatuhan_app::flags::refresh(
        &mut tx,
        m,
        &state.flag_settings,
        &cycle,
        kepatuhan_app::flags::Scope::Entity(entity),
    )
    .await
    .unwrap();
    assert_eq!(counts, None, "an entity's refresh does not count the cycle");
    tx.commit().await.unwrap();
    let after = flags(pool.clone()).await;
    for (b, a) in before.iter().zip(&after) {
        if b.0 == unit {
            assert!(!a.2, "the unit's flag no longer fires");
        } else {
            assert_eq!(a, b, "untouched");
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn escalation_returns_the_data_before_publication_and_awaits_a_correction_after(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    // 2023 is published through the API; 2025 is being verified.
    let (state, tokens) = common::demo(&pool, true).await;
    let y2025 = CycleYear::new(2025).unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let admin = Some(app.admin.as_str());
    // The first open review-speed flag the office sees (of its provinces).
    let first_flag = |year: u16| {
        let (app, office) = (&app, tokens.office.clone());
        async move {
            let queue = app
                .get(
                    &format!("/api/v1/cycles/{year}/flags?kind=fast_review&status=open&limit=1"),
                    Some(office.as_str()),
                )
                .await;
            queue.assert_ok();
            queue.body["items"][0].clone()
        }
    };

    // Before publication: the flagged unit's verified submission goes back to its office.
    let flag = first_flag(2025).await;
    let (id, unit) = (
        flag["id"].as_i64().unwrap(),
        flag["unit_id"].as_i64().unwrap(),
    );
    let revision = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT input_revision FROM cycles WHERE id = official_cycle(2025)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = revision(pool.clone()).await;
    let escalate = format!("/api/v1/flags/{id}/escalate");
    app.post(&escalate, Some(&tokens.office), json!({ "note": "x" }))
        .await
        .assert_problem(403, "forbidden");
    let escalated = app
        .post(
            &escalate,
            admin,
            json!({ "note": "Diverifikasi 1 menit setelah dikirim: periksa ulang" }),
        )
        .await;
    escalated.assert_ok();
    assert_eq!(escalated.body["outcome"], "returned", "{}", escalated.text);
    assert_eq!(escalated.body["flag"]["status"], "escalated");
    assert_eq!(escalated.body["flag"]["current"], false);
    assert!(escalated.body["recompute_job"].is_string());
    let returned = escalated.body["returned_submissions"].as_array().unwrap();
    assert_eq!(returned.len(), 1);
    let submission = returned[0].as_i64().unwrap();
    let (state_now, unit_of, note): (String, i64, Option<String>) =
        sqlx::query_as("SELECT state, unit_id, review_note FROM submissions WHERE id = $1")
            .bind(submission)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state_now.as_str(), unit_of), ("returned", unit));
    assert!(note.unwrap().contains("periksa ulang"));
    assert_eq!(
        revision(pool.clone()).await,
        before + 1,
        "the inputs changed"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE submission_id = $1 AND action = 'escalated'",
    )
    .bind(submission)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // The office sees it in its own list of the submission, as returned.
    let seen = app
        .get(
            &format!("/api/v1/submissions/{submission}"),
            Some(&tokens.office),
        )
        .await;
    seen.assert_ok();
    assert_eq!(seen.body["state"], "returned");
    // Decided once; the results leave the unit out until it is verified again.
    app.post(&escalate, admin, json!({ "note": "again" }))
        .await
        .assert_problem(409, "flag-decided");
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let scored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unit_results r JOIN cycles c ON c.id = r.cycle_id AND r.revision = c.results_revision
         WHERE c.id = official_cycle(2025) AND r.unit_id = $1",
    )
    .bind(unit)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(scored, 0);
    // Verified again as it was: the flag fires again and is open for HQ to decide again.
    sqlx::query("UPDATE submissions SET state = 'verified' WHERE id = $1")
        .bind(submission)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE id = official_cycle(2025)",
    )
    .execute(&pool)
    .await
    .unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let (status, current): (String, bool) =
        sqlx::query_as("SELECT status, current FROM flags WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), current), ("open", true));

    // After publication: the flag waits for a correction that names it.
    let flag = first_flag(2023).await;
    let (id, unit) = (
        flag["id"].as_i64().unwrap(),
        flag["unit_id"].as_i64().unwrap(),
    );
    let escalated = app
        .post(
            &format!("/api/v1/flags/{id}/escalate"),
            admin,
            json!({ "note": "Periksa ulang setelah publikasi" }),
        )
        .await;
    escalated.assert_ok();
    assert_eq!(escalated.body["outcome"], "correction");
    assert_eq!(escalated.body["returned_submissions"], json!([]));
    assert_eq!(escalated.body["flag"]["current"], true);
    let (code, value): (String, Option<i16>) = sqlx::query_as(
        "SELECT v.indicator_code, v.value FROM submission_values v JOIN submissions s ON s.id = v.submission_id
         WHERE s.cycle_id = official_cycle(2023) AND s.unit_id = $1 AND v.value > 0 ORDER BY v.indicator_code LIMIT 1",
    )
    .bind(unit)
    .fetch_one(&pool)
    .await
    .unwrap();
    let correction = |unit: i64| {
        json!({
            "unit_id": unit, "reason": "Pemeriksaan ulang atas temuan HQ", "flag_id": id,
            "values": [{ "indicator": code, "value": value.unwrap() - 1, "evidence_note": "Diperiksa ulang" }],
        })
    };
    let other_unit: i64 = sqlx::query_scalar(
        "SELECT unit_id FROM submissions WHERE cycle_id = official_cycle(2023) AND state = 'verified' AND unit_id <> $1 LIMIT 1",
    )
    .bind(unit)
    .fetch_one(&pool)
    .await
    .unwrap();
    let wrong = app
        .post(
            "/api/v1/cycles/2023/corrections",
            admin,
            correction(other_unit),
        )
        .await;
    wrong.assert_problem(422, "validation-error");
    assert_eq!(wrong.fields(), ["flag_id"]);
    let corrected = app
        .post("/api/v1/cycles/2023/corrections", admin, correction(unit))
        .await;
    corrected.assert_ok();
    let status: String = sqlx::query_scalar("SELECT status FROM flags WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "corrected");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE object_type = 'flag' AND object_id = $1 AND action IN ('escalated', 'corrected')",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_office_that_never_returns_is_flagged_when_others_do(pool: PgPool) {
    let _app = TestApp::spawn(pool.clone()).await;
    let (state, _) = common::demo(&pool, false).await;
    let y2025 = CycleYear::new(2025).unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    // The demo's office of Bangka Belitung reviewed every 2025 submission. A verified unit that
    // was never returned moves to a regency of Nusa Tenggara Barat: its office has verified one
    // and returned none.
    let (moved, unit): (i64, i64) = sqlx::query_as(
        "SELECT s.id, s.unit_id FROM submissions s
         WHERE s.cycle_id = official_cycle(2025) AND s.state = 'verified'
           AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.submission_id = s.id AND a.action = 'returned')
         ORDER BY 1 LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let returned: i64 = sqlx::query_scalar(
        "SELECT id FROM submissions WHERE cycle_id = official_cycle(2025) AND state = 'verified' AND id <> $1 LIMIT 1",
    )
    .bind(moved)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "WITH e AS (INSERT INTO entities (code, kind, name, province_code) VALUES ('52.99', 'regency', 'Kabupaten Uji', '52') RETURNING id)
         UPDATE units SET entity_id = (SELECT id FROM e) WHERE id = $1",
    )
    .bind(unit)
    .execute(&pool)
    .await
    .unwrap();
    // Babel once returned a submission (as the review endpoint records it); NTB never did.
    sqlx::query(
        "INSERT INTO audit_log (actor_id, submission_id, action, field) VALUES (NULL, $1, 'returned', 'state')",
    )
    .bind(returned)
    .execute(&pool)
    .await
    .unwrap();
    let settings = kepatuhan_core::flags::FlagSettings {
        never_returned_min_verified: 1,
        never_returned_others_share: rust_decimal::Decimal::new(1, 3),
        ..Default::default()
    };
    let mut tx = pool.begin().await.unwrap();
    let cycle = kepatuhan_app::cycles::lock(&mut tx, y2025).await.unwrap();
    let m = state.require_methodology(&cycle.methodology_code).unwrap();
    kepatuhan_app::flags::refresh(
        &mut tx,
        m,
        &settings,
        &cycle,
        kepatuhan_app::flags::Scope::Cycle,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let flagged: Vec<String> = sqlx::query_scalar(
        "SELECT office_code FROM flags WHERE cycle_id = official_cycle(2025) AND kind = 'never_returned' AND current ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(flagged, ["ntb"], "Babel returned one and is not flagged");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_flag_follows_its_entity_to_another_province(pool: PgPool) {
    let _app = TestApp::spawn(pool.clone()).await;
    let (state, _) = common::demo(&pool, false).await;
    let y2025 = CycleYear::new(2025).unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let entity: i64 = sqlx::query_scalar(
        "SELECT entity_id FROM flags WHERE cycle_id = official_cycle(2025) AND kind = 'fast_review' ORDER BY id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // Same evidence, another province: the office that sees the flag changes with it.
    sqlx::query("UPDATE entities SET province_code = '52' WHERE id = $1")
        .bind(entity)
        .execute(&pool)
        .await
        .unwrap();
    recompute_cycle(&state, y2025.into()).await.unwrap();
    let places: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT province_code, office_code FROM flags WHERE cycle_id = official_cycle(2025) AND kind = 'fast_review' AND entity_id = $1",
    )
    .bind(entity)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!places.is_empty());
    for place in places {
        assert_eq!(place, (Some("52".to_owned()), Some("ntb".to_owned())));
    }
}
