//! The command line: what a command prints for its caller is all that reaches standard output,
//! so `TOKEN=$(kepatuhan-api token create …)` captures the token and nothing else, whatever
//! `RUST_LOG` says (logs go to standard error).

mod common;

use std::process::Command;

use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn token_create_prints_only_the_token_on_stdout(pool: PgPool) {
    let db = pool
        .connect_options()
        .get_database()
        .expect("a test database")
        .to_owned();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let url = format!(
        "{}/{db}",
        base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
    );
    let api = env!("CARGO_BIN_EXE_kepatuhan-api");
    let run = |args: &[&str]| {
        let out = Command::new(api)
            .args(args)
            .env("KEPATUHAN_DATABASE_URL", &url)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let migrated = run(&["migrate"]);
    assert!(
        migrated.stdout.is_empty(),
        "migrate printed {}",
        String::from_utf8_lossy(&migrated.stdout)
    );
    let created = run(&["token", "create", "--role", "admin", "--name", "HQ"]);
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.trim_end_matches('\n');
    assert!(
        token.starts_with("kpt_") && !token.contains(char::is_whitespace),
        "standard output is not just the token: {stdout:?}"
    );
    assert!(
        !created.stderr.is_empty(),
        "the notice and the logs go to standard error"
    );
    // It is the token stored (as its hash) for the new actor.
    let stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE token_hash = $1)")
            .bind(Sha256::digest(token.as_bytes()).to_vec())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(stored, "no token with that hash");

    // A government's token belongs to an entity that exists; without `--entity`, or with an
    // unknown one, nothing is created.
    sqlx::raw_sql(
        "INSERT INTO provinces (code, name) VALUES ('19', 'Kepulauan Bangka Belitung');
         INSERT INTO entities (code, kind, name, province_code)
             VALUES ('19.04', 'regency', 'Pemerintah Kabupaten Bangka Tengah', '19');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let refused = |args: &[&str]| {
        let out = Command::new(api)
            .args(args)
            .env("KEPATUHAN_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(
        refused(&["token", "create", "--role", "government", "--name", "Bapak"])
            .contains("--entity")
    );
    assert!(
        refused(&[
            "token",
            "create",
            "--role",
            "government",
            "--entity",
            "99.99",
            "--name",
            "Bapak"
        ])
        .contains("99.99")
    );
    let created = run(&[
        "token",
        "create",
        "--role",
        "government",
        "--entity",
        "19.04",
        "--name",
        "Bagian Organisasi",
    ]);
    let token = String::from_utf8(created.stdout).unwrap();
    let entity: String = sqlx::query_scalar(
        "SELECT e.code FROM api_tokens t JOIN actors a ON a.id = t.actor_id JOIN entities e ON e.id = a.entity_id
         WHERE t.token_hash = $1 AND a.role = 'government'",
    )
    .bind(Sha256::digest(token.trim_end().as_bytes()).to_vec())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(entity, "19.04");
}

/// `kepatuhan-api healthcheck`, the container's healthcheck, asks the api on
/// `KEPATUHAN_HTTP_ADDR` whether it is ready: 0 when it is, 1 when nothing answers.
#[sqlx::test(migrations = "../../migrations")]
async fn the_healthcheck_asks_the_running_api(pool: PgPool) {
    let app = common::TestApp::spawn(pool).await;
    let check = |addr: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kepatuhan-api"))
            .arg("healthcheck")
            .env("KEPATUHAN_HTTP_ADDR", addr)
            .output()
            .await
            .unwrap()
    };
    let ready = check(app.addr.to_string()).await;
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    // Listening on every address, it asks over loopback.
    let everywhere = check(format!("0.0.0.0:{}", app.addr.port())).await;
    assert!(everywhere.status.success());
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = check(nobody.to_string()).await;
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("/health/ready"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
