//! The real processes: a fresh database, `kepatuhan-api` and `kepatuhan-worker` started as
//! operators start them (configured by `KEPATUHAN_*` variables), their peak memory, and a
//! description of the machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};

use crate::BenchResult;

/// Creates (or re-creates) database `name` on the server of `url`; returns a pool on the server's
/// maintenance database and the new database's URL.
pub async fn fresh_database(url: &str, name: &str) -> BenchResult<(PgPool, String)> {
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("`{name}` is not a plain database name").into());
    }
    let admin = PgPool::connect(url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Ok((admin, format!("{base}/{name}")))
}

/// Drops the smoke run's database (the national one is kept for inspection).
pub async fn drop_database(admin: &PgPool, name: &str, smoke: bool) -> BenchResult<()> {
    if smoke {
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(admin)
        .await?;
    }
    Ok(())
}

/// The environment both processes get, and where their logs go.
pub struct Env {
    vars: Vec<(&'static str, String)>,
    logs: PathBuf,
}

impl Env {
    /// Processes over `database_url` storing certificates in `store`; their logs (JSON lines,
    /// `warn` and above and the recompute's summaries unless `KEPATUHAN_BENCH_LOG` names
    /// another filter, e.g. `info`) are written to `api.log` and `worker.log` in `logs`.
    pub fn new(database_url: &str, store: &Path, logs: &Path) -> Self {
        // The recompute's summary lines (info) give the flags' share of a full recompute.
        let filter = std::env::var("KEPATUHAN_BENCH_LOG")
            .unwrap_or_else(|_| "warn,kepatuhan_app::recompute=info".to_owned());
        Self {
            vars: vec![
                ("KEPATUHAN_DATABASE_URL", database_url.to_owned()),
                ("KEPATUHAN_CERTIFICATE_STORE", store.display().to_string()),
                ("KEPATUHAN_LOG_FORMAT", "json".to_owned()),
                // The load runs are anonymous and come from one address: no rate limit.
                ("KEPATUHAN_ANONYMOUS_RATE", "0".to_owned()),
                ("RUST_LOG", filter),
            ],
            logs: logs.to_path_buf(),
        }
    }

    /// A log file for the process `name`.
    fn log(&self, name: &str) -> BenchResult<Stdio> {
        Ok(std::fs::File::create(self.logs.join(format!("{name}.log")))?.into())
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        // Only what an operator sets: nothing inherited from a developer's shell.
        for (k, _) in std::env::vars() {
            if k.starts_with("KEPATUHAN_") || k == "DATABASE_URL" {
                c.env_remove(k);
            }
        }
        c.envs(self.vars.iter().map(|(k, v)| (*k, v)));
        c
    }
}

fn binary(dir: &Path, name: &str) -> BenchResult<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found (build it first, e.g. `just build`)",
            path.display()
        )
        .into())
    }
}

/// `kepatuhan-api migrate`.
pub fn migrate(bin: &Path, env: &Env) -> BenchResult<()> {
    let out = env
        .command(binary(bin, "kepatuhan-api")?)
        .arg("migrate")
        .output()?;
    if !out.status.success() {
        return Err(format!("migrate failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// `kepatuhan-api token create --role admin --name NAME`: an HQ token of its own.
pub fn admin_token(bin: &Path, env: &Env, name: &str) -> BenchResult<String> {
    token(bin, env, "admin", name, None)
}

/// `kepatuhan-api token create --role ROLE --name NAME [--office OFFICE]`, as an operator
/// creates one.
pub fn token(
    bin: &Path,
    env: &Env,
    role: &str,
    name: &str,
    office: Option<&str>,
) -> BenchResult<String> {
    let mut command = env.command(binary(bin, "kepatuhan-api")?);
    command.args(["token", "create", "--role", role, "--name", name]);
    if let Some(office) = office {
        command.args(["--office", office]);
    }
    let out = command.output()?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || token.is_empty() {
        return Err(format!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(token)
}

/// A running process of ours.
pub struct Service {
    child: Child,
    pub base_url: String,
}

fn free_port() -> BenchResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_http(url: &str, limit: Duration) -> BenchResult<()> {
    let deadline = Instant::now() + limit;
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not answer within {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Service {
    /// `kepatuhan-api serve` on a free port, once `/health/ready` answers.
    pub async fn start_api(bin: &Path, env: &Env) -> BenchResult<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = env
            .command(binary(bin, "kepatuhan-api")?)
            .arg("serve")
            .env("KEPATUHAN_HTTP_ADDR", &addr)
            .env("KEPATUHAN_PUBLIC_BASE_URL", format!("http://{addr}"))
            .stdout(Stdio::null())
            .stderr(env.log("api")?)
            .spawn()?;
        let base_url = format!("http://{addr}");
        let service = Self { child, base_url };
        wait_http(
            &format!("{}/health/ready", service.base_url),
            Duration::from_secs(30),
        )
        .await?;
        Ok(service)
    }

    /// `kepatuhan-worker`, once its metrics endpoint answers.
    pub async fn start_worker(bin: &Path, env: &Env) -> BenchResult<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = env
            .command(binary(bin, "kepatuhan-worker")?)
            .env("KEPATUHAN_WORKER_METRICS_ADDR", &addr)
            .stdout(Stdio::null())
            .stderr(env.log("worker")?)
            .spawn()?;
        let base_url = format!("http://{addr}");
        let service = Self { child, base_url };
        wait_http(
            &format!("{}/metrics", service.base_url),
            Duration::from_secs(30),
        )
        .await?;
        Ok(service)
    }

    /// Peak resident set size so far (`VmHWM`), in MiB.
    pub fn peak_rss_mb(&self) -> BenchResult<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmHWM in /proc/<pid>/status")?;
        Ok(kb / 1024.0)
    }

    /// SIGTERM, then wait (the processes shut down gracefully).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // On an error path: do not leave processes behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until no job is pending or running.
pub async fn wait_for_idle_queue(pool: &PgPool, limit: Duration) -> BenchResult<()> {
    let deadline = Instant::now() + limit;
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running')",
        )
        .fetch_one(pool)
        .await?;
        if busy == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{busy} jobs still busy after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU, cores, memory, kernel, Rust and Postgres versions.
pub async fn machine(pool: &PgPool) -> BenchResult<Value> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 / 1024.0).round());
    let output = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let postgres: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(pool)
        .await?;
    Ok(json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "memory_gib": mem_gib,
        "kernel": output("uname", &["-r"]),
        "rustc": output("rustc", &["-V"]),
        "postgres": postgres,
    }))
}
