//! Faults, with nothing lost and nothing doubled: the real `kepatuhan-api` and `kepatuhan-worker`
//! processes over one database, killed, doubled, delivering to a receiver that is down, and
//! serving while their database crashes and restarts.
//!
//! The binaries are the ones `cargo test --workspace` builds beside this test. CI runs the
//! fan-outs over 100 extra regencies (300+ recipients); `just faults` over 1,000.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_tests::until;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The directory holding this build's `kepatuhan-api` and `kepatuhan-worker`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    for bin in ["kepatuhan-api", "kepatuhan-worker"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} is not built in {}: run `cargo build -p kepatuhan-api -p kepatuhan-worker` \
             first, or `cargo test --workspace`",
            dir.display()
        );
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process of ours, killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Process {
    /// SIGKILL, as a machine losing power would: no shutdown, no cleanup.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        format!(
            "--- {} log ---\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One deployment's shared parts: the database and the certificate store directory.
struct Deployment {
    database_url: String,
    store: PathBuf,
    bins: PathBuf,
    dir: PathBuf,
    spawned: usize,
}

impl Deployment {
    fn new(pool: &PgPool, name: &str) -> Self {
        let options = pool.connect_options();
        Self::new_at(
            &format!(
                "postgres://{}@{}:{}/{}",
                options.get_username(),
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap()
            ),
            name,
        )
    }

    fn new_at(database_url: &str, name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kepatuhan-faults-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("certificates")).unwrap();
        Self {
            database_url: database_url.to_owned(),
            store: dir.join("certificates"),
            bins: bin_dir(),
            dir,
            spawned: 0,
        }
    }

    fn command(&mut self, bin: &str, name: &str) -> (Command, PathBuf) {
        self.spawned += 1;
        let log = self.dir.join(format!("{}-{name}.log", self.spawned));
        let mut command = Command::new(self.bins.join(bin));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KEPATUHAN_DATABASE_URL", &self.database_url)
            .env("KEPATUHAN_CERTIFICATE_STORE", &self.store)
            .env("KEPATUHAN_ANONYMOUS_RATE", "0")
            .env("KEPATUHAN_PUBLIC_CACHE_MS", "0")
            .env("KEPATUHAN_WORKER_BACKOFF_SECS", "1")
            .env("KEPATUHAN_WORKER_ORPHAN_AFTER_SECS", "3")
            .env("KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env(
                "KEPATUHAN_WORKER_METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("RUST_LOG", "warn,kepatuhan=info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
        (command, log)
    }

    /// Starts an api process and waits until it is ready; returns it and its base URL.
    async fn api(&mut self, name: &str) -> (Process, String) {
        let port = free_port();
        let (mut command, log) = self.command("kepatuhan-api", name);
        let child = command
            .arg("serve")
            .env("KEPATUHAN_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .spawn()
            .unwrap();
        let process = Process {
            child,
            name: name.to_owned(),
            log,
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/health/ready")).await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the api did not become ready\n{}",
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (process, base)
    }

    /// Starts a worker process.
    fn worker(&mut self, name: &str) -> Process {
        let (mut command, log) = self.command("kepatuhan-worker", name);
        Process {
            child: command.spawn().unwrap(),
            name: name.to_owned(),
            log,
        }
    }
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {path}: {status} {value}");
    value
}

/// How many regencies (two units each) the fan-out tests add: 100 in CI, more with
/// `KEPATUHAN_FAULT_REGENCIES` (`just faults`).
fn regencies(default: i32) -> i32 {
    std::env::var("KEPATUHAN_FAULT_REGENCIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The demo, with `extra` regencies (two units each) in Bangka Belitung, 2025 made publishable;
/// returns an admin token.
async fn publishable(pool: &PgPool, extra: i32) -> String {
    kepatuhan_app::db::migrate(pool).await.unwrap();
    let settings = Settings::from_lookup(|_| None).unwrap();
    kepatuhan_api::demo::seed_demo(&App::new(pool.clone()).unwrap(), &settings)
        .await
        .unwrap();
    kepatuhan_tests::add_regencies(pool, extra).await;
    kepatuhan_tests::make_2025_publishable(pool).await;
    kepatuhan_api::auth::create_actor_with_token(pool, "HQ", "admin", None)
        .await
        .unwrap()
        .1
        .secret
}

async fn publish(base: &str, admin: &str) {
    for to in ["verifying", "published"] {
        post(
            base,
            admin,
            "/api/v1/cycles/2025/transitions",
            json!({ "to": to }),
        )
        .await;
    }
}

/// Recipients that earn an award in 2025's current revision.
const EARNING: &str = "(SELECT count(*) FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision
      WHERE r.cycle_id = official_cycle(2025) AND r.award_eligible)
  + (SELECT count(*) FROM unit_results ur JOIN units u ON u.id = ur.unit_id
      JOIN cycles c ON c.id = ur.cycle_id AND c.results_revision = ur.revision
      JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_id = ur.cycle_id AND r.revision = ur.revision
      WHERE ur.cycle_id = official_cycle(2025) AND r.award_eligible)";

const QUEUES_IDLE: &str =
    "NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running'))";

/// Every award-earning recipient holds exactly one valid certificate, and nobody else one.
async fn one_valid_certificate_each(pool: &PgPool) {
    let (valid, earning, doubled): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM certificates WHERE cycle_id = official_cycle(2025) AND status = 'valid'), {EARNING},
                (SELECT count(*) FROM (SELECT 1 FROM certificates WHERE cycle_id = official_cycle(2025)
                 GROUP BY entity_id, unit_id, revision HAVING count(*) > 1) d)"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(valid, earning, "one valid certificate per recipient");
    assert_eq!(doubled, 0, "no recipient was issued twice for one revision");
}

/// Every PDF in the store is recorded (after the sweep removed those that are not).
async fn every_pdf_recorded_or_swept(pool: &PgPool, store: &Path) {
    let store = object_store::local::LocalFileSystem::new_with_prefix(store).unwrap();
    let swept = kepatuhan_app::storage::sweep_orphan_pdfs(&store, pool, Duration::ZERO)
        .await
        .unwrap();
    println!("orphan PDFs swept: {swept}");
    let keys: Vec<String> = object_store::ObjectStore::list(
        &store,
        Some(&object_store::path::Path::from("certificates")),
    )
    .map_ok(|o| o.location.to_string())
    .try_collect()
    .await
    .unwrap();
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM certificates WHERE object_key = ANY($1)")
            .bind(&keys)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        usize::try_from(recorded).unwrap(),
        keys.len(),
        "every stored PDF has its record"
    );
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        i64::try_from(keys.len()).unwrap(),
        total,
        "every record has its PDF"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_worker_killed_mid_fan_out_loses_and_doubles_nothing(pool: PgPool) {
    let admin = publishable(&pool, regencies(100)).await;
    let mut deployment = Deployment::new(&pool, "kill9");
    let (_api, base) = deployment.api("api").await;
    publish(&base, &admin).await;
    let mut first = deployment.worker("worker-1");
    until(
        &pool,
        "SELECT count(*) >= 20 FROM certificates",
        Duration::from_mins(1),
        || first.log(),
    )
    .await;
    first.kill9();
    let (at_kill, earning): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM certificates), {EARNING}"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(earning > 300, "a few hundred recipients: {earning}");
    assert!(
        at_kill < earning,
        "the worker was killed in the middle of the fan-out ({at_kill} of {earning} issued)"
    );
    let second = deployment.worker("worker-2");
    until(
        &pool,
        &format!(
            "SELECT {QUEUES_IDLE} AND (SELECT count(*) FROM certificates WHERE status = 'valid') >= {EARNING}"
        ),
        Duration::from_mins(2),
        || second.log(),
    )
    .await;
    one_valid_certificate_each(&pool).await;
    every_pdf_recorded_or_swept(&pool, &deployment.store).await;
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status <> 'Done'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "no job died\n{}", second.log());
}

/// What a receiver got: per endpoint path, every call's event id and whether it was accepted.
#[derive(Default)]
struct Inbox {
    calls: Vec<(String, String, bool)>,
}

impl Inbox {
    /// The accepted event ids of `path`, in the order they arrived.
    fn accepted(&self, path: &str) -> Vec<String> {
        self.calls
            .iter()
            .filter(|(p, _, ok)| p == path && *ok)
            .map(|(_, id, _)| id.clone())
            .collect()
    }
}

/// A receiver on this machine for `/hook/{name}`, answering 503 until `down_until`.
async fn receiver(inbox: Arc<Mutex<Inbox>>, down_until: tokio::time::Instant) -> String {
    let app = axum::Router::new().route(
        "/hook/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap| {
                let inbox = inbox.clone();
                async move {
                    let id = headers
                        .get("kepatuhan-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let up = tokio::time::Instant::now() >= down_until;
                    inbox.lock().unwrap().calls.push((name, id, up));
                    if up {
                        axum::http::StatusCode::NO_CONTENT
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// Registers, through `base`, an endpoint of the Bangka Belitung office and one of Bangka
/// (19.01); returns their ids by name (`office`, `bangka`).
async fn subscribe(pool: &PgPool, base: &str, hooks: &str) -> Vec<(&'static str, i64)> {
    let (_, office) =
        kepatuhan_api::auth::create_actor_with_token(pool, "Babel", "office", Some("babel"))
            .await
            .unwrap();
    let mut ids = Vec::new();
    for (name, owner) in [
        ("office", json!({ "office": "babel" })),
        ("bangka", json!({ "entity_code": "19.01" })),
    ] {
        let mut body = owner;
        body["url"] = json!(format!("{hooks}/{name}"));
        let created = post(base, &office.secret, "/api/v1/webhooks", body).await;
        ids.push((name, created["id"].as_i64().unwrap()));
    }
    ids
}

/// Each endpoint got each of its events exactly once, in the order they were written.
async fn delivered_once_in_order(pool: &PgPool, inbox: &Mutex<Inbox>, endpoints: &[(&str, i64)]) {
    for (name, id) in endpoints {
        let written: Vec<String> = sqlx::query_scalar(
            "SELECT event_id FROM webhook_outbox WHERE endpoint_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(!written.is_empty(), "{name} has events");
        let accepted = inbox.lock().unwrap().accepted(name);
        assert_eq!(accepted, written, "{name}: every event once, in order");
    }
}

const ALL_DELIVERED: &str = "NOT EXISTS (SELECT 1 FROM webhook_outbox WHERE delivered_at IS NULL)";

#[sqlx::test(migrations = "../../migrations")]
async fn two_apis_and_two_workers_issue_and_deliver_everything_once(pool: PgPool) {
    let admin = publishable(&pool, regencies(100)).await;
    let mut deployment = Deployment::new(&pool, "two-by-two");
    let (_a, base_a) = deployment.api("api-a").await;
    let (_b, base_b) = deployment.api("api-b").await;
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let hooks = receiver(inbox.clone(), tokio::time::Instant::now()).await;
    let endpoints = subscribe(&pool, &base_a, &hooks).await;
    let workers = [deployment.worker("worker-1"), deployment.worker("worker-2")];
    // The office publishes through the other api.
    publish(&base_b, &admin).await;
    until(
        &pool,
        &format!(
            "SELECT {QUEUES_IDLE} AND {ALL_DELIVERED} AND (SELECT count(*) FROM certificates WHERE status = 'valid') >= {EARNING}"
        ),
        Duration::from_mins(2),
        || workers.iter().map(Process::log).collect::<String>(),
    )
    .await;
    one_valid_certificate_each(&pool).await;
    delivered_once_in_order(&pool, &inbox, &endpoints).await;
    // Both workers took part.
    let busy: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT split_part(lock_by, '-certificate-render', 1)) FROM apalis.jobs WHERE job_type = 'certificate-render'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(busy, 2, "both workers rendered");
    every_pdf_recorded_or_swept(&pool, &deployment.store).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_once_back(pool: PgPool) {
    let admin = publishable(&pool, 20).await;
    let mut deployment = Deployment::new(&pool, "receiver-down");
    let (_api, base) = deployment.api("api").await;
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let hooks = receiver(
        inbox.clone(),
        tokio::time::Instant::now() + Duration::from_secs(4),
    )
    .await;
    let endpoints = subscribe(&pool, &base, &hooks).await;
    let worker = deployment.worker("worker");
    publish(&base, &admin).await;
    until(
        &pool,
        &format!("SELECT {QUEUES_IDLE} AND {ALL_DELIVERED}"),
        Duration::from_mins(1),
        || worker.log(),
    )
    .await;
    let refused = inbox.lock().unwrap().calls.iter().filter(|c| !c.2).count();
    assert!(refused > 0, "the receiver was down for a while");
    delivered_once_in_order(&pool, &inbox, &endpoints).await;
}

/// A `PostgreSQL` cluster of this test's own (`initdb` on a free port, in a temporary directory),
/// never the shared one the other tests use: it is crashed and restarted. Stopped and removed
/// when dropped.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Whether this test runs as root: `initdb` and `postgres` refuse to, so they run as
    /// `postgres` then.
    as_postgres: bool,
}

impl Cluster {
    /// A command running `program` of the server's binaries (as `postgres` when needed).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn init() -> Self {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("kepatuhan-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let cluster = Self {
            bin: PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")),
            port: free_port(),
            dir,
            as_postgres: Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"0\n")),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server the hard way (`immediate`: no checkpoint, recovery at the next start).
    fn crash(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One survey upload: its respondents, and how it was answered (`None`: no answer at all) with
/// the problem's type when it failed.
struct Upload {
    respondents: Vec<String>,
    status: Option<u16>,
    problem: String,
}

/// Survey uploads in a loop (five new respondents each, to the units in turn) until `stop`.
async fn upload_until(
    base: String,
    token: String,
    units: Vec<i64>,
    template: (String, Value),
    task: usize,
    stop: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
) -> Vec<Upload> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut uploads = Vec::new();
    let mut n = 0;
    // Until the deadline, set once the database is back (however long its restart took).
    while stop
        .borrow()
        .is_none_or(|deadline| tokio::time::Instant::now() < deadline)
    {
        n += 1;
        let unit = units[n % units.len()];
        let respondents: Vec<String> = (0..5).map(|k| format!("F{task}-{n}-{k}")).collect();
        let responses: Vec<Value> = respondents
            .iter()
            .map(|r| json!({ "respondent": r, "answers": template.1 }))
            .collect();
        let sent = client
            .post(format!(
                "{base}/api/v1/cycles/2025/units/{unit}/survey-responses"
            ))
            .bearer_auth(&token)
            .json(&json!({ "survey": template.0, "responses": responses }))
            .send()
            .await;
        let (status, problem) = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                (
                    Some(status),
                    body["type"].as_str().unwrap_or_default().to_owned(),
                )
            }
            Err(_) => (None, String::new()),
        };
        uploads.push(Upload {
            respondents,
            status,
            problem,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    uploads
}

/// The demo (and ten more regencies) in a `kepatuhan` database of `cluster`; returns an office
/// token of Bangka Belitung, its units open for survey uploads, and a valid survey answer.
async fn demo_on(cluster: &Cluster) -> (String, Vec<i64>, (String, Value)) {
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE kepatuhan")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&cluster.url("kepatuhan"))
        .await
        .unwrap();
    kepatuhan_app::db::migrate(&pool).await.unwrap();
    let settings = Settings::from_lookup(|_| None).unwrap();
    kepatuhan_api::demo::seed_demo(&App::new(pool.clone()).unwrap(), &settings)
        .await
        .unwrap();
    kepatuhan_tests::add_regencies(&pool, 10).await;
    let (_, office) =
        kepatuhan_api::auth::create_actor_with_token(&pool, "Babel", "office", Some("babel"))
            .await
            .unwrap();
    let units: Vec<i64> = sqlx::query_scalar(
        "SELECT s.unit_id FROM submissions s WHERE s.cycle_id = official_cycle(2025) AND s.state <> 'verified'
           AND EXISTS (SELECT 1 FROM cycle_units cu WHERE cu.cycle_id = official_cycle(2025) AND cu.unit_id = s.unit_id AND cu.office_code = 'babel')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let template: (String, Value) = sqlx::query_as(
        "SELECT survey_code, answers FROM survey_responses WHERE cycle_id = official_cycle(2025) LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    (office.secret, units, template)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_during_uploads_keeps_every_answered_upload_and_nothing_else() {
    let cluster = Cluster::init();
    let (office, units, template) = demo_on(&cluster).await;
    let mut deployment = Deployment::new_at(&cluster.url("kepatuhan"), "restart");
    let (api, base) = deployment.api("api").await;
    // Postgres stays down longer than a request waits for a connection, so uploads sent during
    // the outage are refused whatever the timing (a shorter outage is bridged by the pool's
    // retries, and then nothing meets it); the uploads go on for a while after it.
    let outage = kepatuhan_app::db::ACQUIRE_TIMEOUT + Duration::from_secs(1);
    // The uploads go on for 5 s after Postgres is back, however long its restart takes on a
    // busy machine.
    let (set_stop, stop) = tokio::sync::watch::channel(None);
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            tokio::spawn(upload_until(
                base.clone(),
                office.clone(),
                units.clone(),
                template.clone(),
                task,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.crash();
    tokio::time::sleep(outage).await;
    cluster.start();
    set_stop
        .send(Some(tokio::time::Instant::now() + Duration::from_secs(5)))
        .unwrap();
    let mut uploads = Vec::new();
    for task in tasks {
        uploads.extend(task.await.unwrap());
    }

    let pool = sqlx::PgPool::connect(&cluster.url("kepatuhan"))
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT respondent FROM survey_responses WHERE respondent LIKE 'F%'")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let (mut answered, mut refused) = (0, 0);
    for upload in &uploads {
        let present = upload
            .respondents
            .iter()
            .filter(|r| stored.contains(*r))
            .count();
        match upload.status {
            Some(200) => {
                answered += 1;
                assert_eq!(present, 5, "an upload answered 200 is durable");
            }
            status => {
                refused += 1;
                assert_eq!(
                    status,
                    Some(503),
                    "an unreachable database is a 503 to retry, never a 500\n{}",
                    api.log()
                );
                if upload.problem.ends_with("/commit-outcome-unknown") {
                    // Cut off during its commit: applied whole or not at all, and said so.
                    assert!(present == 0 || present == 5, "{present} of 5 written");
                } else {
                    assert!(
                        upload.problem.ends_with("/database-unavailable"),
                        "{}",
                        upload.problem
                    );
                    assert_eq!(present, 0, "a failed upload wrote nothing");
                }
            }
        }
    }
    assert!(refused > 0, "some uploads met the restart");
    // The api recovered by itself: the last uploads of every task went through.
    assert!(
        uploads.iter().rev().take(4).all(|u| u.status == Some(200)),
        "uploads succeed again after the restart\n{}",
        api.log()
    );
    println!("{answered} uploads kept, {refused} refused during the restart");
}
