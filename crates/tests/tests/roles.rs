//! The service role of a deployment: the api and the worker do their whole work connected as a
//! role that owns nothing, and that role cannot rewrite history (drop or disable the audit
//! triggers, truncate, delete certificates, change the schema).

use axum::body::Body;
use axum::http::Request;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::{grant_service_role, migrate, prepare};
use kepatuhan_worker::{WorkerConfig, run};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

/// A login role of its own for this test (roles are shared by the whole cluster), dropped at the
/// end.
struct Role {
    name: String,
    owner: PgPool,
}

impl Role {
    async fn create(owner: &PgPool) -> Self {
        let name = format!(
            "kepatuhan_svc_{}",
            hex::encode(std::process::id().to_be_bytes())
                + &hex::encode(chrono::Utc::now().timestamp_subsec_nanos().to_be_bytes())
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {name} LOGIN")))
            .execute(owner)
            .await
            .unwrap();
        Self {
            name,
            owner: owner.clone(),
        }
    }

    async fn drop(self) {
        for statement in [
            format!("DROP OWNED BY {}", self.name),
            format!("DROP ROLE {}", self.name),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&self.owner)
                .await
                .unwrap();
        }
    }
}

#[sqlx::test(migrations = false)]
async fn the_service_role_does_the_work_and_cannot_rewrite_history(owner: PgPool) {
    migrate(&owner).await.unwrap();
    let role = Role::create(&owner).await;
    grant_service_role(&owner, &role.name).await.unwrap();
    grant_service_role(&owner, &role.name).await.unwrap(); // idempotent
    let options = (*owner.connect_options()).clone().username(&role.name);
    let service = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .unwrap();
    let whoami: String = sqlx::query_scalar("SELECT current_user")
        .fetch_one(&service)
        .await
        .unwrap();
    assert_eq!(whoami, role.name);

    // Starting as a deployed service does: the schema is checked, not changed.
    let settings = Settings::from_lookup(|k| match k {
        "KEPATUHAN_MIGRATE_ON_START" => Some("false".to_owned()),
        "KEPATUHAN_PUBLIC_CACHE_MS" => Some("0".to_owned()),
        _ => None,
    })
    .unwrap();
    prepare(&service, &settings).await.unwrap();

    // The whole demo (reference data, two cycles, a publication and its certificates), through
    // the api and the worker, as the service role.
    let app = App {
        store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        ..App::new(service.clone()).unwrap()
    };
    let tokens = kepatuhan_api::demo::seed_demo(&app, &settings)
        .await
        .unwrap()
        .unwrap();
    kepatuhan_tests::make_2025_publishable(&owner).await;
    let api = kepatuhan_api::build(app.clone(), &settings);
    for to in ["verifying", "published"] {
        let response = api
            .clone()
            .oneshot(
                Request::post("/api/v1/cycles/2025/transitions")
                    .header("authorization", format!("Bearer {}", tokens.admin))
                    .header("content-type", "application/json")
                    .body(Body::from(format!(r#"{{"to":"{to}"}}"#)))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{to}");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(app.clone(), WorkerConfig::default(), async move {
        let _ = stopped.await;
    }));
    kepatuhan_tests::until_jobs_done(&owner, true).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let (certificates, results, dead): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM entity_results WHERE cycle_id = official_cycle(2025)),
                (SELECT count(*) FROM apalis.jobs WHERE status <> 'Done')",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert!(certificates > 0 && results > 0, "{certificates} {results}");
    assert_eq!(dead, 0);

    // History stays as written.
    for statement in [
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_no_update ON audit_log",
        "DROP TABLE audit_log",
        "TRUNCATE audit_log",
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "DELETE FROM certificates",
        "ALTER TABLE certificates DISABLE TRIGGER ALL",
        "TRUNCATE certificates",
        "DELETE FROM _sqlx_migrations",
        "CREATE TABLE shadow (id int)",
        "ALTER TABLE submissions ADD COLUMN shadow int",
        "CREATE SCHEMA shadow",
    ] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&service)
            .await;
        let message = refused.expect_err(statement).to_string();
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{statement}: {message}"
        );
    }
    service.close().await;
    role.drop().await;
}
