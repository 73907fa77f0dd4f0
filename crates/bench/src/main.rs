//! `kepatuhan-bench`: the national-scale data generator and the benchmark suite.
//!
//! ```text
//! kepatuhan-bench generate [--smoke] [--seed N] [--out DIR]
//! kepatuhan-bench run [--smoke] [--seed N] [--bin-dir DIR] [--results FILE] [--docs FILE]
//! kepatuhan-bench check-sql --database-url URL
//! kepatuhan-bench render [--count N]
//! ```
//!
//! `run` creates a fresh database, starts the real `kepatuhan-api` and `kepatuhan-worker`
//! processes from `--bin-dir`, loads the generated national cycle through the HTTP API, and
//! measures each figure of docs/benchmarks.md beside its baseline (a hand-written SQL statement,
//! `LibreOffice`, a load generator). Every figure comes from this run; nothing is typed by hand.
//! `--smoke` does the same on a tiny dataset in seconds and skips the external baselines: the
//! test suite runs it so the harness never rots. `render` times the certificate renderer alone,
//! in process on one thread (for profiling: no database, no queue).

mod baselines;
mod national;
mod procs;

/// The worker's allocator, so that `render` times what the worker does.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kepatuhan_core::Methodology;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::national::{Dataset, Shape};
use crate::procs::Service;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The live cycle and the two earlier published ones.
const YEARS: [u16; 3] = [2022, 2023, 2024];
/// Submissions verified one by one while the worker runs, to time incremental recomputes.
const INCREMENTAL: usize = 200;
/// Requests in flight while loading data (the API has two cores to use).
const LOAD_CONCURRENCY: usize = 8;
/// Units per bulk upload of drafts.
const INGEST_BATCH: usize = 50;

struct Options {
    smoke: bool,
    seed: u64,
    bin_dir: PathBuf,
    out: PathBuf,
    results: Option<PathBuf>,
    docs: Option<PathBuf>,
    database_url: String,
    count: usize,
}

fn parse(args: &[String]) -> BenchResult<(String, Options)> {
    let command = args.first().cloned().unwrap_or_default();
    let mut o = Options {
        smoke: false,
        seed: 2024,
        bin_dir: std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        out: std::env::temp_dir().join("kepatuhan-bench-data"),
        results: None,
        docs: None,
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        count: 400,
    };
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--smoke" => o.smoke = true,
            "--seed" => o.seed = value()?.parse()?,
            "--bin-dir" => o.bin_dir = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--results" => o.results = Some(value()?.into()),
            "--docs" => o.docs = Some(value()?.into()),
            "--database-url" => o.database_url = value()?,
            "--count" => o.count = value()?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    Ok((command, o))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match parse(&args) {
        Ok((c, o)) if c == "generate" => generate(&o).map(|_| ()),
        Ok((c, o)) if c == "run" => run(o).await,
        // Re-checks the SQL baseline against the results of an earlier run's database.
        Ok((c, o)) if c == "check-sql" => check_sql(&o).await,
        Ok((c, o)) if c == "render" => render(&o),
        Ok(_) => Err("usage: kepatuhan-bench generate|run|check-sql|render [--smoke] [--seed N] [--bin-dir DIR] [--out DIR] [--results FILE] [--docs FILE] [--count N]".into()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kepatuhan-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn methodology() -> BenchResult<Methodology> {
    kepatuhan_core::methodology::builtin::by_code("ori-2022")
        .ok_or_else(|| "the ori-2022 methodology is not shipped".into())
}

/// Generates the dataset and writes its files.
fn generate(o: &Options) -> BenchResult<Dataset> {
    let m = methodology()?;
    let shape = if o.smoke {
        Shape::SMOKE
    } else {
        Shape::NATIONAL
    };
    let started = Instant::now();
    let data = national::generate(&m, shape, o.seed);
    data.write_files(&o.out, o.seed, YEARS)?;
    eprintln!(
        "generated {} entities, {} units in {} ({:.1} s)",
        data.entities.len(),
        data.unit_count(),
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(data)
}

/// A client of the real API.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        if_match: Option<&str>,
    ) -> BenchResult<(u16, Value, Option<String>)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.bytes().await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 400 {
            return Err(format!("{method} {path} answered {status}: {value}").into());
        }
        Ok((status, value, etag))
    }

    async fn post_json(&self, path: &str, body: &Value) -> BenchResult<(Value, Option<String>)> {
        let (_, v, tag) = self
            .send(
                reqwest::Method::POST,
                path,
                Some(("application/json", serde_json::to_vec(body)?)),
                None,
            )
            .await?;
        Ok((v, tag))
    }

    async fn post_file(&self, path: &str, file: &Path, content_type: &str) -> BenchResult<Value> {
        let bytes = std::fs::read(file)?;
        Ok(self
            .send(
                reqwest::Method::POST,
                path,
                Some((content_type, bytes)),
                None,
            )
            .await?
            .1)
    }

    async fn get(&self, path: &str) -> BenchResult<Value> {
        Ok(self.send(reqwest::Method::GET, path, None, None).await?.1)
    }

    /// Polls a job until it is done (or fails).
    async fn wait_job(&self, id: &str, limit: Duration) -> BenchResult<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.get(&format!("/api/v1/jobs/{id}")).await?;
            match job["status"].as_str() {
                Some("Done") => return Ok(job),
                Some("Failed" | "Killed") if job["dead"] == true => {
                    return Err(format!("job {id} failed: {}", job["last_error"]).into());
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(format!("job {id} not done after {limit:?}: {job}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Runs `f` over `items` with `LOAD_CONCURRENCY` requests in flight.
async fn in_parallel<T, F, Fut>(items: Vec<T>, f: F) -> BenchResult<Vec<Value>>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = BenchResult<Value>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(LOAD_CONCURRENCY));
    let f = Arc::new(f);
    let mut tasks = Vec::with_capacity(items.len());
    for item in items {
        let permit = permits.clone().acquire_owned().await?;
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let out = f(item).await;
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

fn read_jsonl(path: &Path) -> BenchResult<Vec<Value>> {
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(Into::into))
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The nearest-rank percentile `p` (0–100) of `xs`.
fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

fn round(x: f64, places: i32) -> Value {
    let f = 10f64.powi(places);
    json!((x * f).round() / f)
}

#[allow(clippy::too_many_lines)]
async fn run(o: Options) -> BenchResult<()> {
    let total = Instant::now();
    let m = methodology()?;
    let data = generate(&o)?;
    let year = YEARS[2];
    let mut results = serde_json::Map::new();

    // A fresh database and the real processes.
    let db = if o.smoke {
        format!("kepatuhan_bench_smoke_{}", std::process::id())
    } else {
        "kepatuhan_bench".to_owned()
    };
    let (admin_pool, db_url) = procs::fresh_database(&o.database_url, &db).await?;
    let store = fresh_store(&db);
    let env = procs::Env::new(&db_url, &store, &o.out);
    procs::migrate(&o.bin_dir, &env)?;
    let token = procs::admin_token(&o.bin_dir, &env)?;
    let api_service = Service::start_api(&o.bin_dir, &env).await?;
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(LOAD_CONCURRENCY * 2)
            .build()?,
        base: api_service.base_url.clone(),
        token,
    };
    let pool = PgPool::connect(&db_url).await?;

    // Reference data and the two earlier cycles, from the generated files.
    let dir = &o.out;
    for (path, file) in [
        ("/api/v1/provinces/bulk", "provinces.json"),
        ("/api/v1/offices/bulk", "offices.json"),
        ("/api/v1/entities/bulk", "entities.json"),
        ("/api/v1/units/bulk", "units.json"),
    ] {
        api.post_file(path, &dir.join(file), "application/json")
            .await?;
    }
    for past in &YEARS[..2] {
        api.post_file(
            &format!("/api/v1/cycles/{past}/import"),
            &dir.join(format!("import-{past}.csv")),
            "text/csv",
        )
        .await?;
    }
    let today = chrono::Utc::now().date_naive();
    api.post_json(
        "/api/v1/cycles",
        &json!({ "year": year, "methodology": "ori-2022", "opens_on": today - chrono::Days::new(30), "closes_on": today + chrono::Days::new(30) }),
    )
    .await?;
    api.post_file(
        &format!("/api/v1/cycles/{year}/sample/bulk"),
        &dir.join("sample.json"),
        "application/json",
    )
    .await?;
    let sample = api.get(&format!("/api/v1/cycles/{year}/sample")).await?;
    let unit_ids: HashMap<(String, String), i64> = sample
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some((
                (
                    u["entity_code"].as_str()?.to_owned(),
                    u["unit_name"].as_str()?.to_owned(),
                ),
                u["unit_id"].as_i64()?,
            ))
        })
        .collect();
    api.post_json(
        &format!("/api/v1/cycles/{year}/transitions"),
        &json!({ "to": "collecting" }),
    )
    .await?;
    let unit_of = |v: &Value| -> BenchResult<i64> {
        let key = (
            v["entity_code"].as_str().unwrap_or_default().to_owned(),
            v["unit_name"].as_str().unwrap_or_default().to_owned(),
        );
        unit_ids
            .get(&key)
            .copied()
            .ok_or_else(|| format!("unit {key:?} is not in the sample").into())
    };

    // 1. Ingest: every unit's indicator values through the bulk API (validation and audit
    // included), in uploads of INGEST_BATCH units as an office sends them.
    let submissions = read_jsonl(&dir.join(format!("submissions-{year}.jsonl")))?;
    let mut bodies = Vec::with_capacity(submissions.len());
    let mut values = 0usize;
    for s in &submissions {
        values += s["values"].as_array().map_or(0, Vec::len);
        bodies.push(json!({ "unit_id": unit_of(s)?, "values": s["values"] }));
    }
    let batches: Vec<Value> = bodies
        .chunks(INGEST_BATCH)
        .map(|c| Value::Array(c.to_vec()))
        .collect();
    let started = Instant::now();
    let a = api.clone();
    let uploaded = in_parallel(batches, move |batch| {
        let a = a.clone();
        async move {
            let (v, _) = a
                .post_json(&format!("/api/v1/cycles/{year}/submissions/bulk"), &batch)
                .await?;
            Ok(v["submissions"].clone())
        }
    })
    .await?;
    let created: Vec<Value> = uploaded
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        .map(|d| json!({ "id": d["id"], "unit_id": d["unit_id"], "etag": format!("\"v{}\"", d["version"]) }))
        .collect();
    let ingest_s = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let ingest = values as f64 / ingest_s;
    eprintln!("ingest: {values} values in {ingest_s:.2} s = {ingest:.0} values/s");
    results.insert("ingest_values_per_s".into(), round(ingest, 0));
    results.insert("ingest_values".into(), json!(values));

    // Survey responses (≈ 100,000 nationally).
    let batches = read_jsonl(&dir.join(format!("survey-responses-{year}.jsonl")))?;
    let mut respondents = 0usize;
    let mut survey_bodies = Vec::new();
    for b in &batches {
        respondents += b["responses"].as_array().map_or(0, Vec::len);
        survey_bodies.push((
            unit_of(b)?,
            json!({ "survey": b["survey"], "responses": b["responses"] }),
        ));
    }
    let started = Instant::now();
    let a = api.clone();
    in_parallel(survey_bodies, move |(unit, body)| {
        let a = a.clone();
        async move {
            Ok(a.post_json(
                &format!("/api/v1/cycles/{year}/units/{unit}/survey-responses"),
                &body,
            )
            .await?
            .0)
        }
    })
    .await?;
    #[allow(clippy::cast_precision_loss)]
    let survey_rate = respondents as f64 / started.elapsed().as_secs_f64();
    results.insert("survey_responses".into(), json!(respondents));
    results.insert("survey_responses_per_s".into(), round(survey_rate, 0));

    // Submit everything; verify all but INCREMENTAL before the worker starts (their recompute
    // jobs queue up and collapse into one when it does).
    let a = api.clone();
    let submitted = in_parallel(created, move |s| {
        let a = a.clone();
        async move {
            let id = s["id"].as_i64().unwrap_or_default();
            let (_, _, tag) = a
                .send(
                    reqwest::Method::POST,
                    &format!("/api/v1/submissions/{id}/submit"),
                    None,
                    s["etag"].as_str(),
                )
                .await?;
            Ok(json!({ "id": id, "unit_id": s["unit_id"], "etag": tag }))
        }
    })
    .await?;
    let held = INCREMENTAL.min(submitted.len() / 4);
    let (later, now): (Vec<Value>, Vec<Value>) = {
        let mut later = Vec::new();
        let mut now = Vec::new();
        for (i, s) in submitted.into_iter().enumerate() {
            // Spread the held-back ones over the country.
            if later.len() < held && i % 4 == 1 {
                later.push(s);
            } else {
                now.push(s);
            }
        }
        (later, now)
    };
    let a = api.clone();
    in_parallel(now, move |s| {
        let a = a.clone();
        async move { verify(&a, &s).await.map(|()| Value::Null) }
    })
    .await?;

    let worker_service = Service::start_worker(&o.bin_dir, &env).await?;
    let drained = Instant::now();
    procs::wait_for_idle_queue(&pool, Duration::from_mins(10)).await?;
    eprintln!(
        "worker drained the verification burst in {:.2} s",
        drained.elapsed().as_secs_f64()
    );

    // 2. Full recompute through the worker, enqueue → results committed (median of 3).
    // "Committed" is read from the results themselves (their `computed_at` moves), not from the
    // job's status row, which apalis updates after the handler returns.
    let mut full = Vec::new();
    for _ in 0..3 {
        let before = results_computed_at(&pool, year).await?;
        let started = Instant::now();
        let (v, _) = api
            .post_json(&format!("/api/v1/cycles/{year}/recompute"), &json!({}))
            .await?;
        let id = v["job_id"]
            .as_str()
            .or_else(|| v["id"].as_str())
            .ok_or_else(|| format!("no job id in {v}"))?
            .to_owned();
        while results_computed_at(&pool, year).await? == before {
            if started.elapsed() > Duration::from_mins(5) {
                return Err(format!("recompute job {id} committed nothing in 300 s").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        full.push(started.elapsed().as_secs_f64());
        api.wait_job(&id, Duration::from_mins(1)).await?;
    }
    let recompute_full = median(full);
    eprintln!("full recompute: {recompute_full:.3} s");

    // 3. The same unit and entity scores by one hand-written SQL statement (median of 3).
    let (sql_s, mismatches) = baselines::sql_recompute(&pool, &m, year).await?;
    eprintln!("SQL baseline: {sql_s:.3} s ({mismatches} scores differ from the worker's)");
    if mismatches > 0 {
        return Err(
            format!("the SQL baseline disagrees with the worker on {mismatches} scores").into(),
        );
    }
    results.insert("recompute_full_s".into(), round(recompute_full, 3));
    results.insert("recompute_sql_baseline_s".into(), round(sql_s, 3));
    results.insert(
        "recompute_vs_sql_ratio".into(),
        round(recompute_full / sql_s, 2),
    );

    // 4. Incremental: verify one submission → its unit's result (and the new ranks, written in
    // the same transaction) readable.
    let mut latencies = Vec::new();
    let mut requests = Vec::new();
    for s in &later {
        let unit = s["unit_id"].as_i64().unwrap_or_default();
        let started = Instant::now();
        verify(&api, s).await?;
        requests.push(started.elapsed().as_secs_f64() * 1000.0);
        let path = format!("/api/v1/cycles/{year}/results/units/{unit}");
        loop {
            match api.send(reqwest::Method::GET, &path, None, None).await {
                Ok((200, ..)) => break,
                _ if started.elapsed() > Duration::from_mins(1) => {
                    return Err(format!("unit {unit} has no result 60 s after verification").into());
                }
                // Every 5 ms: polling faster makes the poller compete with the recompute it
                // waits for (two cores), and adds more than it resolves.
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let p99 = percentile(latencies.clone(), 99.0);
    eprintln!(
        "incremental: p50 {:.1} ms, p99 {p99:.1} ms over {} (the verify request alone: p50 {:.1} ms, p99 {:.1} ms)",
        percentile(latencies.clone(), 50.0),
        latencies.len(),
        percentile(requests.clone(), 50.0),
        percentile(requests, 99.0)
    );
    results.insert("recompute_incremental_p99_ms".into(), round(p99, 1));
    results.insert(
        "recompute_incremental_p50_ms".into(),
        round(percentile(latencies, 50.0), 1),
    );

    // 5. Publish: one certificate per entity and per unit, rendered and stored by the worker.
    api.post_json(
        &format!("/api/v1/cycles/{year}/transitions"),
        &json!({ "to": "verifying" }),
    )
    .await?;
    procs::wait_for_idle_queue(&pool, Duration::from_mins(10)).await?;
    let started = Instant::now();
    let (published, _) = api
        .post_json(
            &format!("/api/v1/cycles/{year}/transitions"),
            &json!({ "to": "published" }),
        )
        .await?;
    let fan_out = published["job_id"]
        .as_str()
        .ok_or_else(|| format!("publishing enqueued no job: {published}"))?
        .to_owned();
    let deadline = Instant::now() + Duration::from_mins(30);
    let issued = loop {
        let job = api.get(&format!("/api/v1/jobs/{fan_out}")).await?;
        let (done, of) = (
            job["progress"]["done"].as_i64(),
            job["progress"]["total"].as_i64(),
        );
        if let (Some(d), Some(t)) = (done, of)
            && t > 0
            && d >= t
        {
            break t;
        }
        if Instant::now() > deadline {
            return Err(format!("certificates not done: {job}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cert_s = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let certificates_per_s = issued as f64 / cert_s;
    let size_kb: f64 = sqlx::query_scalar(
        "SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY size_bytes) / 1024.0)::float8 FROM certificates",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!(
        "certificates: {issued} in {cert_s:.1} s = {certificates_per_s:.1}/s, median {size_kb:.1} KB"
    );
    results.insert("certificates".into(), json!(issued));
    results.insert("certificates_per_s".into(), round(certificates_per_s, 1));
    results.insert("certificate_kb_median".into(), round(size_kb, 1));

    // 6. Published rankings under a loopback load generator.
    let rankings = format!(
        "{}/api/v1/cycles/{year}/results/entities?kind=regency",
        api.base
    );
    match baselines::load_test(&rankings, o.smoke)? {
        Some((rps, p99)) => {
            eprintln!("rankings: {rps:.0} req/s, p99 {p99:.2} ms");
            results.insert("rankings_rps".into(), round(rps, 0));
            results.insert("rankings_p99_ms".into(), round(p99, 2));
        }
        None => {
            results.insert("rankings_rps".into(), Value::Null);
            results.insert("rankings_p99_ms".into(), Value::Null);
        }
    }

    // 7. The office's usual way: an ODT template filled and converted by LibreOffice.
    match baselines::libreoffice(&o.out, &data, o.smoke)? {
        Some(rate) => {
            eprintln!("libreoffice: {rate:.2} certificates/s");
            results.insert("libreoffice_certificates_per_s".into(), round(rate, 2));
            results.insert(
                "certificates_vs_libreoffice_ratio".into(),
                round(certificates_per_s / rate, 1),
            );
        }
        None => {
            results.insert("libreoffice_certificates_per_s".into(), Value::Null);
            results.insert("certificates_vs_libreoffice_ratio".into(), Value::Null);
        }
    }

    // 8. Peak resident memory of each process over the run.
    results.insert("api_rss_mb".into(), round(api_service.peak_rss_mb()?, 1));
    results.insert(
        "worker_rss_mb".into(),
        round(worker_service.peak_rss_mb()?, 1),
    );
    api_service.stop();
    worker_service.stop();
    pool.close().await;
    procs::drop_database(&admin_pool, &db, o.smoke).await?;
    let _ = std::fs::remove_dir_all(&store);

    let machine = procs::machine(&admin_pool).await?;
    let report = json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "mode": if o.smoke { "smoke" } else { "national" },
        "seed": o.seed,
        "machine": machine,
        "dataset": {
            "entities": data.entities.len(),
            "units": data.unit_count(),
            "indicator_values": values,
            "survey_responses": respondents,
            "earlier_cycles": YEARS[..2],
        },
        "results": results,
        "run_s": total.elapsed().as_secs_f64().round(),
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &o.results {
        std::fs::write(path, format!("{text}\n"))?;
    }
    if let Some(path) = &o.docs {
        baselines::write_docs(path, &report)?;
    }
    println!("{text}");
    Ok(())
}

/// A new directory for this run's certificates (removed after the run), on tmpfs (`/dev/shm`)
/// where the machine has one. On this machine's ext4, creating ≈ 4,400 files a few minutes after
/// ≈ 4,400 were deleted nearby took 0.5 ms of kernel time per file instead of 0.06: the inode
/// allocator passes over recently freed inodes one by one (`perf`: `find_inode_bit` and
/// `recently_deleted` at an eighth of the worker's CPU). Every earlier run's cleanup caused that;
/// production never deletes certificates by the thousand, so the bench keeps it out of the
/// figure.
fn fresh_store(db: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    base.join(format!("{db}-certificates-{stamp}-{}", std::process::id()))
}

async fn check_sql(o: &Options) -> BenchResult<()> {
    let pool = PgPool::connect(&o.database_url).await?;
    let (seconds, mismatches) = baselines::sql_recompute(&pool, &methodology()?, YEARS[2]).await?;
    println!("SQL baseline {seconds:.3} s, {mismatches} scores differ from the stored results");
    Ok(())
}

/// Renders `--count` distinct certificates on this thread, one by one and then in the worker's
/// batches, and prints the time per certificate, the mean size and this process's peak memory;
/// writes the first certificate to `--out` for a look.
fn render(o: &Options) -> BenchResult<()> {
    use kepatuhan_worker::render::{CertificateData, Renderer};
    let data = national::generate(&methodology()?, Shape::NATIONAL, o.seed);
    let rss = |key: &str| -> BenchResult<String> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        Ok(status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("?")
            .trim()
            .to_owned())
    };
    let before = rss("VmRSS:")?;
    let renderer = Renderer::new();
    let units: Vec<_> = data
        .entities
        .iter()
        .flat_map(|e| e.units.iter().map(move |u| (e, u)))
        .collect();
    let certificate = |i: usize| {
        let (entity, unit) = units[i % units.len()];
        CertificateData {
            code: format!("BNCH-{i:04}-0000-0000"),
            verify_url: format!("https://kepatuhan.ombudsman.go.id/verify/BNCH-{i:04}-0000-0000"),
            recipient: unit.name.clone(),
            recipient_detail: Some(entity.name.clone()),
            year: 2024,
            score: kepatuhan_core::PublishedScore::new(rust_decimal::Decimal::new(
                7_000 + i64::try_from(i % 3_000).unwrap_or(0),
                2,
            ))
            .unwrap_or_else(|_| unreachable!("70.00–99.99 is a score")),
            grade_code: "A".into(),
            grade_label: "Kualitas Tertinggi".into(),
            zone: Some(kepatuhan_core::methodology::Zone::Green),
            rank: Some(format!("Peringkat {} dari 415 kabupaten", i % 415 + 1)),
            place: "Jakarta".into(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 12, 10).unwrap_or_default(),
            signatory_name: "Mokhammad Najih".into(),
            signatory_title: "Ketua Ombudsman Republik Indonesia".into(),
        }
    };
    // One warm-up render (fonts, template), then the timed ones: alone, then in the worker's
    // batches.
    renderer.render(&certificate(o.count))?;
    let single = Instant::now();
    let mut bytes = 0usize;
    for i in 0..o.count {
        bytes += renderer.render(&certificate(i))?.len();
    }
    #[allow(clippy::cast_precision_loss)]
    let single_per = single.elapsed().as_secs_f64() * 1000.0 / o.count as f64;
    let batched = Instant::now();
    let all: Vec<CertificateData> = (0..o.count).map(certificate).collect();
    let mut first = None;
    for batch in all.chunks(kepatuhan_worker::queues::certificates::RENDER_BATCH) {
        let pdfs = renderer.render_many(batch)?;
        if first.is_none() {
            first = pdfs.into_iter().next();
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let per = batched.elapsed().as_secs_f64() * 1000.0 / o.count as f64;
    #[allow(clippy::cast_precision_loss)]
    let kb = bytes as f64 / 1024.0 / o.count as f64;
    println!(
        "{} certificates on one thread: {single_per:.2} ms each alone, {per:.2} ms each in batches of {} ({:.0}/s), {kb:.1} KB mean; RSS {before} before the renderer, {} after, peak {}",
        o.count,
        kepatuhan_worker::queues::certificates::RENDER_BATCH,
        1000.0 / per,
        rss("VmRSS:")?,
        rss("VmHWM:")?
    );
    if let Some(pdf) = first {
        std::fs::create_dir_all(&o.out)?;
        let path = o.out.join("certificate-sample.pdf");
        std::fs::write(&path, pdf)?;
        println!("the first certificate: {}", path.display());
    }
    Ok(())
}

/// When the cycle's current results were last written.
async fn results_computed_at(
    pool: &PgPool,
    year: u16,
) -> BenchResult<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT max(r.computed_at) FROM entity_results r JOIN cycles c ON c.year = r.cycle_year AND c.results_revision = r.revision WHERE r.cycle_year = $1",
    )
    .bind(i32::from(year))
    .fetch_one(pool)
    .await?)
}

/// Verifies a submitted submission (with its ETag).
async fn verify(api: &Api, s: &Value) -> BenchResult<()> {
    let id = s["id"].as_i64().unwrap_or_default();
    api.send(
        reqwest::Method::POST,
        &format!("/api/v1/submissions/{id}/verify"),
        None,
        s["etag"].as_str(),
    )
    .await?;
    Ok(())
}
