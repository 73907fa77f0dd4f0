//! Schemathesis (a property-based API fuzzer this project did not write) reads the OpenAPI
//! document and throws generated requests at the running api with the demo data, as an admin,
//! as a regional office and anonymously: no response may be a server error.
//!
//! Bounded in time: `KEPATUHAN_SCHEMATHESIS_SECONDS` per caller (default 40; `just fuzz-api`
//! runs longer). `just tools` installs Schemathesis into `/var/tmp/kepatuhan-venv` (the test
//! command does it first); `KEPATUHAN_SCHEMATHESIS` names another `st` binary.

mod common;

use std::path::PathBuf;

use common::TestApp;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use sqlx::PgPool;

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("KEPATUHAN_SCHEMATHESIS").map_or_else(
        || PathBuf::from("/var/tmp/kepatuhan-venv/bin/st"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "Schemathesis is not installed at {}: run `just tools` (the test command does)",
        path.display()
    );
    path
}

#[sqlx::test(migrations = "../../migrations")]
async fn generated_requests_never_meet_a_server_error(pool: PgPool) {
    let st = schemathesis();
    let seconds: u32 = std::env::var("KEPATUHAN_SCHEMATHESIS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let app = TestApp::spawn(pool.clone()).await;
    let settings = Settings::from_lookup(|_| None).unwrap();
    let tokens = kepatuhan_api::demo::seed_demo(&App::new(pool).unwrap(), &settings)
        .await
        .unwrap()
        .expect("a fresh database gets the demo");
    let base = app.url("");
    for (caller, token) in [
        ("admin", Some(&tokens.admin)),
        ("office", Some(&tokens.office)),
        ("anonymous", None),
    ] {
        let mut command = tokio::process::Command::new(&st);
        command
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--url", &base])
            .args(["--checks", "not_a_server_error"])
            // Stateful testing follows links it infers from our answers; the phases below send
            // every operation its examples, boundary values and generated data.
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-time", &seconds.to_string()])
            // One worker: Hypothesis, underneath, is not thread-safe (two workers once crashed
            // in its cache with every generated case passing).
            .args(["--workers", "1"])
            .args(["--request-timeout", "10"])
            .arg("--no-color")
            // Workbook uploads: bytes and small real workbooks (tools/schemathesis_hooks.py).
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env(
                "PYTHONPATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools"),
            )
            .kill_on_drop(true);
        if let Some(token) = token {
            command.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        if let Ok(seed) = std::env::var("KEPATUHAN_SCHEMATHESIS_SEED") {
            command.args(["--seed", &seed]);
        }
        let out = command.output().await.expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: String = stdout
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n");
        println!("{caller}: {summary}");
        assert!(
            out.status.success(),
            "{caller}: schemathesis found a problem\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("passed"),
            "{caller}: no test case ran\n{stdout}"
        );
    }
}
