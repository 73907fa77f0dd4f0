//! The OpenAPI document: served, documented for every route, and committed up to date.

mod common;

use common::TestApp;
use sqlx::PgPool;

#[test]
fn committed_openapi_document_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap_or_default();
    let generated = kepatuhan_api::openapi::document_json();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run `just openapi` and commit the result"
    );
}

#[test]
fn every_operation_states_its_callers_and_problem_responses() {
    let doc: serde_json::Value =
        serde_json::from_str(&kepatuhan_api::openapi::document_json()).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{} paths", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("Who may call:"),
                "{method} {path} does not say who may call it"
            );
            assert!(
                op["responses"]["4XX"].is_object(),
                "{method} {path} documents no problem response"
            );
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_document_and_the_reference_ui_are_served(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = app.get("/openapi.json", None).await;
    doc.assert_ok();
    assert_eq!(doc.body["info"]["title"], "kepatuhan API");
    let ui = app.get("/docs", None).await;
    ui.assert_ok();
    assert!(
        ui.text.contains("swagger-ui-bundle.js") && !ui.text.contains("https://"),
        "the reference loads its script from the api, not a CDN: {}",
        &ui.text[..200.min(ui.text.len())]
    );
    let script = app.get("/docs/swagger-ui-bundle.js", None).await;
    script.assert_ok();
    assert!(script.text.len() > 100_000);
}

/// The venv `just tools` fills (the test command runs it first).
fn tool(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new("/var/tmp/kepatuhan-venv/bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed: run `just tools` (the test command does)"
    );
    path
}

#[test]
fn a_standard_validator_accepts_the_document() {
    let out = std::process::Command::new(tool("openapi-spec-validator"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects docs/openapi.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_operation_has_its_own_id_and_every_grade_filter_value_exists() {
    let doc: serde_json::Value =
        serde_json::from_str(&kepatuhan_api::openapi::document_json()).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        }
    }
    // The `grade` filter lists every band code of every shipped methodology.
    let grade = doc["paths"]["/api/v1/cycles/{year}/results/entities"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "grade")
        .unwrap()
        .to_string();
    for m in kepatuhan_core::methodology::builtin::all().unwrap() {
        for band in m.bands().bands() {
            assert!(
                grade.contains(&format!("\"{}\"", band.code)),
                "{}: band {} is not in the grade filter's enum",
                m.code(),
                band.code
            );
        }
    }
}

/// A real browser (Debian's Chromium, headless, on a machine without internet access) opens
/// `/docs`: the reference renders the operations from assets served by the api itself.
#[sqlx::test(migrations = "../../migrations")]
async fn the_reference_renders_in_a_browser_without_internet(pool: PgPool) {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "Chromium is not installed: run `just tools` (the test command does)"
    );
    let app = TestApp::spawn(pool).await;
    let profile = std::env::temp_dir().join(format!("kepatuhan-chromium-{}", std::process::id()));
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(app.url("/docs"))
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "kepatuhan API",
        "/api/v1/cycles/{year}/results/entities",
        "/verify/{code}",
    ] {
        assert!(
            dom.contains(shown),
            "the rendered reference does not show {shown}:\n{}",
            &dom[..dom.len().min(2000)]
        );
    }
    assert!(dom.contains("opblock"), "no operation block rendered");
}
