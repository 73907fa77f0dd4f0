//! A client generated from `docs/openapi.json` by a standard generator (openapi-python-client,
//! which this project did not write) calls the running api and worker as an integrator would:
//! `tests/client/smoke.py`.

use std::path::Path;
use std::time::Duration;

use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_worker::{WorkerConfig, run};
use sqlx::PgPool;

const VENV: &str = "/var/tmp/kepatuhan-venv/bin";

#[sqlx::test(migrations = "../../migrations")]
async fn a_generated_python_client_reads_publishes_and_downloads(pool: PgPool) {
    let generator = Path::new(VENV).join("openapi-python-client");
    assert!(
        generator.exists(),
        "openapi-python-client is not installed: run `just tools` (the test command does)"
    );
    let dir = std::env::temp_dir().join(format!("kepatuhan-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let generated = tokio::process::Command::new(&generator)
        .args(["generate", "--meta", "none", "--path"])
        .arg(format!("{root}/docs/openapi.json"))
        .arg("--output-path")
        .arg(dir.join("kepatuhan_client"))
        .output()
        .await
        .unwrap();
    assert!(
        generated.status.success(),
        "the generator refused the document:\n{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );

    // The demo with 2025 ready to publish, the api on a port, a worker.
    kepatuhan_app::db::migrate(&pool).await.unwrap();
    let settings = Settings::from_lookup(|k| match k {
        "KEPATUHAN_PUBLIC_CACHE_MS" | "KEPATUHAN_ANONYMOUS_RATE" => Some("0".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = App {
        store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        ..App::new(pool.clone()).unwrap()
    };
    kepatuhan_api::demo::seed_demo(&app, &settings)
        .await
        .unwrap();
    kepatuhan_tests::make_2025_publishable(&pool).await;
    let (_, admin) = kepatuhan_api::auth::create_actor_with_token(&pool, "HQ", "admin", None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = kepatuhan_api::build(app.clone(), &settings);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(
        app,
        WorkerConfig {
            backoff_base: Duration::ZERO,
            ..WorkerConfig::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/client/smoke.py");
    let out = tokio::process::Command::new(Path::new(VENV).join("python"))
        .arg(script)
        .env("CLIENT_PARENT", &dir)
        .env("BASE_URL", format!("http://{addr}"))
        .env("ADMIN_TOKEN", &admin.secret)
        .output()
        .await
        .unwrap();
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the generated client's script failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
