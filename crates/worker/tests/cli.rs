//! `kepatuhan-worker healthcheck`, the container's healthcheck: it asks `/health` of the worker's
//! metrics listener on `KEPATUHAN_WORKER_METRICS_ADDR`.

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKER: &str = env!("CARGO_BIN_EXE_kepatuhan-worker");

fn check(addr: &str) -> std::process::Output {
    Command::new(WORKER)
        .arg("healthcheck")
        .env("KEPATUHAN_WORKER_METRICS_ADDR", addr)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_healthcheck_asks_the_metrics_listener() {
    let help = Command::new(WORKER).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("healthcheck"));
    assert!(
        !Command::new(WORKER)
            .arg("nonsense")
            .status()
            .unwrap()
            .success()
    );

    // A listener answering as the exporter's does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0; 256];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /health ");
            let answer: &[u8] = if ok {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK"
            } else {
                b"HTTP/1.1 404 Not Found\r\n\r\n"
            };
            let _ = s.write_all(answer).await;
        }
    });
    let healthy = tokio::task::spawn_blocking(move || check(&addr.to_string()))
        .await
        .unwrap();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let down = tokio::task::spawn_blocking(move || check(&nobody))
        .await
        .unwrap();
    assert!(!down.status.success());
}
