//! Test harness: the real app on a random port over a fresh, migrated database.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use kepatuhan_api::{auth, build};
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A running app and the tokens of a few actors.
pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub admin: String,
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `type` of a problem body, without the base URI.
    pub fn problem_type(&self) -> &str {
        self.body["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a problem+json error with this status and type.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.problem_type(), kind, "{}", self.text);
        assert!(
            !self.body["detail"].as_str().unwrap_or_default().is_empty(),
            "a problem has a detail"
        );
        assert!(
            self.body["request_id"].is_string(),
            "a problem carries the request id"
        );
        self
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.status.is_success(), "{} {}", self.status, self.text);
        self
    }

    /// The field paths of a validation problem.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Starts the app over `pool` (fresh and migrated by `#[sqlx::test]`), with an admin token.
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with_clock(pool, std::sync::Arc::new(kepatuhan_app::clock::SystemClock)).await
    }

    /// [`TestApp::spawn`] with the clock the app stamps submissions and reviews with.
    pub async fn spawn_with_clock(
        pool: PgPool,
        clock: std::sync::Arc<dyn kepatuhan_app::clock::Clock>,
    ) -> Self {
        let settings = Settings {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            max_body_bytes: 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(10),
            db_max_connections: 5,
            certificate_store: "memory:".to_owned(),
            // Every request sees the database (the cache has its own test), and no anonymous
            // request is refused for its rate (the limit has its own test).
            public_cache: std::time::Duration::ZERO,
            anonymous_rate: 0,
            ..Settings::from_lookup(|_| None).unwrap()
        };
        // Ours are applied by #[sqlx::test]; this adds the job queue's schema.
        kepatuhan_app::db::migrate(&pool).await.unwrap();
        let app = App {
            clock,
            ..App::new(pool.clone()).unwrap()
        };
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = build(app, &settings);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let (_, admin) = auth::create_actor_with_token(&pool, "HQ admin", "admin", None)
            .await
            .unwrap();
        Self {
            addr,
            pool,
            client: reqwest::Client::new(),
            admin: admin.secret,
        }
    }

    /// Creates a token for a new actor.
    pub async fn token(&self, role: &str, office: Option<&str>) -> String {
        auth::create_actor_with_token(&self.pool, &format!("{role} {office:?}"), role, office)
            .await
            .unwrap()
            .1
            .secret
    }

    /// A token of a government liaison of the entity with this code.
    pub async fn government_token(&self, entity: &str) -> String {
        auth::create_government_with_token(
            &self.pool,
            &format!("government {entity}"),
            entity,
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .1
        .secret
    }

    /// The actor id behind a token.
    pub async fn actor_id(&self, token: &str) -> i64 {
        auth::actor_for_token(&self.pool, token)
            .await
            .unwrap()
            .id()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with an optional token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PUT, path, token, Some(body), &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    /// Posts raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    /// Loads two provinces (Bangka Belitung, DKI Jakarta), their offices and a few entities and
    /// units. Returns nothing; codes are fixed: provinces `19`, `31`; offices `babel`, `jakarta`;
    /// entities `19`, `19.01`, `19.71`, `31`, `31.71`, `KEMENKES`.
    pub async fn seed_reference(&self) {
        let admin = Some(self.admin.as_str());
        self.post(
            "/api/v1/provinces/bulk",
            admin,
            json!([
                { "code": "19", "name": "Kepulauan Bangka Belitung" },
                { "code": "31", "name": "DKI Jakarta" },
            ]),
        )
        .await
        .assert_ok();
        self.post("/api/v1/offices/bulk", admin, json!([
            { "code": "babel", "name": "Ombudsman RI Perwakilan Kepulauan Bangka Belitung", "provinces": ["19"] },
            { "code": "jakarta", "name": "Ombudsman RI Perwakilan Jakarta Raya", "provinces": ["31"] },
        ])).await.assert_ok();
        self.post("/api/v1/entities/bulk", admin, json!([
            { "code": "19", "kind": "province", "name": "Pemerintah Provinsi Kepulauan Bangka Belitung", "province_code": "19" },
            { "code": "19.01", "kind": "regency", "name": "Pemerintah Kabupaten Bangka", "province_code": "19" },
            { "code": "19.71", "kind": "city", "name": "Pemerintah Kota Pangkalpinang", "province_code": "19" },
            { "code": "31", "kind": "province", "name": "Pemerintah Provinsi DKI Jakarta", "province_code": "31" },
            { "code": "31.71", "kind": "city", "name": "Pemerintah Kota Administrasi Jakarta Selatan", "province_code": "31" },
            { "code": "KEMENKES", "kind": "ministry", "name": "Kementerian Kesehatan" },
        ])).await.assert_ok();
        let mut units = Vec::new();
        for entity in ["19", "19.01", "19.71", "31", "31.71"] {
            units.push(json!({ "entity_code": entity, "name": "Dinas Kependudukan dan Pencatatan Sipil", "kind": "dukcapil" }));
            units.push(json!({ "entity_code": entity, "name": "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu", "kind": "dpmptsp" }));
        }
        units.push(json!({ "entity_code": "KEMENKES", "name": "Direktorat Jenderal Pelayanan Kesehatan", "kind": "direktorat" }));
        self.post("/api/v1/units/bulk", admin, Value::Array(units))
            .await
            .assert_ok();
    }
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// The unit id of `entity`'s sampled unit in a `GET /cycles/{year}/sample` answer.
/// The demo dataset (2025 collecting, 2024 imported), with its published 2023 cycle when
/// `published` is set, loaded through the real routes with the public cache off. Returns the
/// application state the loaders used and the demo's tokens.
pub async fn demo(pool: &PgPool, published: bool) -> (App, kepatuhan_api::demo::DemoTokens) {
    demo_with_clock(
        pool,
        published,
        std::sync::Arc::new(kepatuhan_app::clock::SystemClock),
    )
    .await
}

/// [`demo`] loaded with `clock` stamping its submissions and reviews.
pub async fn demo_with_clock(
    pool: &PgPool,
    published: bool,
    clock: std::sync::Arc<dyn kepatuhan_app::clock::Clock>,
) -> (App, kepatuhan_api::demo::DemoTokens) {
    let state = App {
        clock,
        ..App::new(pool.clone()).unwrap()
    };
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    let tokens = kepatuhan_api::demo::seed_demo(&state, &settings)
        .await
        .unwrap()
        .expect("a fresh database gets the demo");
    if published {
        kepatuhan_api::demo::publish_showcase(&state, &settings)
            .await
            .unwrap()
            .expect("2023 is published once");
    }
    (state, tokens)
}

pub fn sampled_unit(sample: &Value, entity: &str) -> i64 {
    sample
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["entity_code"] == entity)
        .unwrap_or_else(|| panic!("no sampled unit of {entity} in {sample}"))["unit_id"]
        .as_i64()
        .unwrap()
}
