//! The worker's `/metrics` and `/health`, served by the Prometheus exporter's own listener.

use std::time::{Duration, Instant};

#[tokio::test]
async fn the_worker_serves_its_metrics_and_health_without_a_web_framework() {
    // A free port: bound, read, released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener = tokio::spawn(kepatuhan_worker::metrics_listener(addr).unwrap());
    kepatuhan_app::metrics::record_job("recompute", true, Instant::now());
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            // The listener starts in the background: try for a moment.
            for _ in 0..50 {
                if let Ok(r) = client.get(format!("http://{addr}{path}")).send().await {
                    return (r.status().as_u16(), r.text().await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("nothing listens on {addr}");
        }
    };
    assert_eq!(get("/health").await, (200, "OK".to_owned()));
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"kepatuhan_jobs_processed_total{queue="recompute",outcome="ok"} 1"#),
        "{body}"
    );
    listener.abort();
}
