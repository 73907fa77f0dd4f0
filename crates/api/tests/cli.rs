//! The command line: what a command prints for its caller is all that reaches standard output,
//! so `TOKEN=$(kepatuhan-api token create …)` captures the token and nothing else, whatever
//! `RUST_LOG` says (logs go to standard error).

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
}
