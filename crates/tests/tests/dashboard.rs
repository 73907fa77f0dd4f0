//! The Grafana dashboard ops open (`deploy/grafana/dashboards/kepatuhan.json`) queries only
//! metrics the api and the worker export: a publication runs through both, and every metric a
//! panel names is in what `/metrics` renders. Prometheus scrapes the addresses compose gives them.

use axum::body::Body;
use axum::http::Request;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_worker::{WorkerConfig, run};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The metric names a `PromQL` expression selects: identifiers followed by `{` or `[`.
fn selected_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut start = None;
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || *c == '_' || *c == ':' {
            start.get_or_insert(i);
        } else if let Some(s) = start.take()
            && (*c == '{' || *c == '[')
        {
            let name: String = chars[s..i].iter().collect();
            if !name.chars().next().is_some_and(|f| f.is_ascii_digit()) {
                names.push(name);
            }
        }
    }
    names
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_metric_the_dashboard_queries_is_exported(pool: PgPool) {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/grafana/dashboards/kepatuhan.json"))
            .unwrap(),
    )
    .unwrap();
    let mut wanted: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .flat_map(|t| selected_metrics(t["expr"].as_str().unwrap_or_default()))
        .collect();
    wanted.sort();
    wanted.dedup();
    assert!(wanted.len() >= 5, "{wanted:?}");

    // A publication through the api and the worker: requests, jobs, certificates.
    kepatuhan_app::db::migrate(&pool).await.unwrap();
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    let app = App {
        store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        ..App::new(pool.clone()).unwrap()
    };
    kepatuhan_api::demo::seed_demo(&app, &settings)
        .await
        .unwrap();
    kepatuhan_api::demo::publish_showcase(&app, &settings)
        .await
        .unwrap();
    let (_, admin) = kepatuhan_api::auth::create_actor_with_token(&pool, "HQ", "admin", None)
        .await
        .unwrap();
    let router = kepatuhan_api::build(app.clone(), &settings);
    for (method, path) in [
        ("GET", "/api/v1/cycles"),
        ("POST", "/api/v1/cycles/2025/recompute"),
    ] {
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {}", admin.secret))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(response.status().is_success(), "{method} {path}");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(app.clone(), WorkerConfig::default(), async move {
        let _ = stopped.await;
    }));
    kepatuhan_tests::until_jobs_done(&pool, false).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    kepatuhan_worker::schedule::refresh_gauges(&app)
        .await
        .unwrap();

    let exported = kepatuhan_app::metrics::handle().render();
    for name in &wanted {
        assert!(
            exported.contains(&format!("{name}{{")) || exported.contains(&format!("{name} ")),
            "the dashboard queries {name}, which /metrics does not export:\n{exported}"
        );
    }

    // Prometheus scrapes the addresses compose gives the api's and the worker's /metrics.
    let prometheus =
        std::fs::read_to_string(format!("{ROOT}/deploy/prometheus/prometheus.yml")).unwrap();
    let compose = std::fs::read_to_string(format!("{ROOT}/deploy/compose.yaml")).unwrap();
    for (target, setting) in [
        ("api:9090", "KEPATUHAN_METRICS_ADDR: 0.0.0.0:9090"),
        ("worker:9091", "KEPATUHAN_WORKER_METRICS_ADDR: 0.0.0.0:9091"),
    ] {
        assert!(prometheus.contains(target), "{target}");
        assert!(compose.contains(setting), "{setting}");
    }
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards"));
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        selected_metrics(
            "histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))"
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        selected_metrics(r#"sum by (queue) (kepatuhan_jobs{status=~"Failed|Killed"})"#),
        ["kepatuhan_jobs"]
    );
}
