//! `run`: the national suite through the real processes, figure by figure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::client::{
    Api, in_parallel, median, percentile, read_jsonl, results_computed_at, round, verify,
};
use crate::procs::Service;
use crate::{
    BenchResult, INCREMENTAL, INGEST_BATCH, LOAD_CONCURRENCY, Options, WORKBOOK_UNITS, YEARS,
    baselines, generate, methodology, planted, procs,
};

#[allow(clippy::too_many_lines)]
pub(crate) async fn run(mut o: Options) -> BenchResult<()> {
    let total = Instant::now();
    let m = methodology()?;
    let (data, truth) = generate(&mut o)?;
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
    let token = procs::admin_token(&o.bin_dir, &env, "kepatuhan-bench")?;
    // Separation of duties: submissions are verified by someone who did not submit them.
    let reviewer_token = procs::admin_token(&o.bin_dir, &env, "kepatuhan-bench reviewer")?;
    let api_service = Service::start_api(&o.bin_dir, &env).await?;
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(LOAD_CONCURRENCY * 2)
            .build()?,
        base: api_service.base_url.clone(),
        token,
    };
    let reviewer = Api {
        token: reviewer_token,
        ..api.clone()
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

    // The assessors (each an actor with a token, made as an operator makes them) and their
    // assignments.
    let assessors = assessor_tokens(&o, &env, &dir.join("assessors.json"), &pool).await?;
    let submissions = read_jsonl(&dir.join(format!("submissions-{year}.jsonl")))?;
    let mut assignments = Vec::with_capacity(submissions.len());
    for s in &submissions {
        let name = s["assessor"].as_str().unwrap_or_default();
        let (id, _) = assessors
            .get(name)
            .ok_or_else(|| format!("no assessor `{name}`"))?;
        assignments.push(json!({ "unit_id": unit_of(s)?, "assessor_id": id }));
    }
    let a = api.clone();
    in_parallel(
        assignments
            .chunks(500)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
        move |chunk| {
            let a = a.clone();
            async move {
                Ok(
                    a.post_json(&format!("/api/v1/cycles/{year}/assignments/bulk"), &chunk)
                        .await?
                        .0,
                )
            }
        },
    )
    .await?;

    // 1. Ingest: every unit's indicator values through the bulk API (validation and audit
    // included), each assessor uploading their units with their own token, INGEST_BATCH units
    // at most at a time.
    let mut by_assessor: HashMap<&str, Vec<Value>> = HashMap::new();
    let mut values = 0usize;
    for s in &submissions {
        values += s["values"].as_array().map_or(0, Vec::len);
        by_assessor
            .entry(s["assessor"].as_str().unwrap_or_default())
            .or_default()
            .push(json!({ "unit_id": unit_of(s)?, "values": s["values"] }));
    }
    let mut batches = Vec::new();
    for (name, bodies) in by_assessor {
        let token = assessors[name].1.clone();
        for chunk in bodies.chunks(INGEST_BATCH) {
            batches.push((token.clone(), Value::Array(chunk.to_vec())));
        }
    }
    let started = Instant::now();
    let a = api.clone();
    let uploaded = in_parallel(batches, move |(token, batch)| {
        let a = Api { token, ..a.clone() };
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

    // The same through a spreadsheet: a 50-unit assessment workbook (the server's template)
    // uploaded with every value changed, then put back.
    let workbook_units: Vec<i64> = created
        .iter()
        .filter_map(|d| d["unit_id"].as_i64())
        .take(WORKBOOK_UNITS)
        .collect();
    let (written, import_s, versions) =
        crate::workbooks::import_values(&api, &m, year, &workbook_units).await?;
    // Those drafts moved on twice: submit them with their new ETags.
    let created: Vec<Value> = created
        .into_iter()
        .map(|mut d| {
            if let Some(v) = d["unit_id"].as_i64().and_then(|u| versions.get(&u)) {
                d["etag"] = json!(format!("\"v{v}\""));
            }
            d
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let import_rate = written as f64 / import_s;
    eprintln!(
        "workbook: {written} values of {} units in {import_s:.3} s = {import_rate:.0} values/s",
        workbook_units.len()
    );
    results.insert("import_xlsx_values_per_s".into(), round(import_rate, 0));
    results.insert("import_xlsx_values".into(), json!(written));

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
    let a = reviewer.clone();
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
    // What the flags add to each: the worker's own account of the three.
    let flags_ms = recompute_flags_ms(&dir.join("worker.log"))?;
    if flags_ms.len() >= 3 {
        let overhead = median(flags_ms[flags_ms.len() - 3..].to_vec()) / 1000.0;
        eprintln!("flags: {overhead:.3} s of each full recompute");
        results.insert("flags_overhead_s".into(), round(overhead, 3));
    }

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
        verify(&reviewer, s).await?;
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

    // The flags against the planted anomalies, once every unit is verified: a last full
    // recompute (untimed) refreshes the cycle's flags.
    procs::wait_for_idle_queue(&pool, Duration::from_mins(10)).await?;
    let (v, _) = api
        .post_json(&format!("/api/v1/cycles/{year}/recompute"), &json!({}))
        .await?;
    if let Some(id) = v["job_id"].as_str().or_else(|| v["id"].as_str()) {
        api.wait_job(id, Duration::from_mins(5)).await?;
    }
    let found = current_flags(&pool, year, &unit_ids, &assessors).await?;
    flag_figures(&truth, &found, &mut results);

    // 5. Publish: one certificate per award-earning entity and each of its units, rendered and
    //    stored by the worker.
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
    let eligible: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision
                 WHERE c.kind = 'official' AND c.year = $1 AND r.award_eligible)
              + (SELECT count(*) FROM unit_results ur JOIN units u ON u.id = ur.unit_id
                 JOIN cycles c ON c.id = ur.cycle_id AND c.results_revision = ur.revision
                 JOIN entity_results r ON r.entity_id = u.entity_id AND r.cycle_id = ur.cycle_id AND r.revision = ur.revision
                 WHERE c.kind = 'official' AND c.year = $1 AND r.award_eligible)",
    )
    .bind(i32::from(year))
    .fetch_one(&pool)
    .await?;
    if issued != eligible {
        return Err(format!(
            "{issued} certificates issued for {eligible} award-earning recipients"
        )
        .into());
    }
    results.insert("certificates".into(), json!(issued));
    results.insert("certificates_eligible".into(), json!(eligible));
    results.insert("certificates_per_s".into(), round(certificates_per_s, 1));
    results.insert("certificate_kb_median".into(), round(size_kb, 1));

    // The national rankings as a workbook.
    let export_ms = crate::workbooks::export_rankings_ms(&api, year).await?;
    eprintln!("rankings workbook: {export_ms:.1} ms");
    results.insert("export_rankings_xlsx_ms".into(), round(export_ms, 1));

    // 6. Published rankings under a loopback load generator.
    let rankings = format!(
        "{}/api/v1/cycles/{year}/results/entities?kind=regency",
        api.base
    );
    // The external baselines do not change with the number of units: a scaled run skips them.
    let skip_external = o.smoke || o.scale > 1;
    match baselines::load_test(&rankings, skip_external)? {
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
    match baselines::libreoffice(&o.out, &data, skip_external)? {
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
        "planted": truth.len(),
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
    // A scaled run's figures go beside the 1× run's, as `scaleN_…`.
    let report = if o.scale > 1 {
        scaled_report(o.results.as_deref(), o.scale, &report)?
    } else {
        keep_scaled(o.results.as_deref(), report)?
    };
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

/// Creates each assessor of `assessors.json` with `kepatuhan-api token create` (eight at a
/// time); their actor ids and tokens by name.
async fn assessor_tokens(
    o: &Options,
    env: &procs::Env,
    file: &Path,
    pool: &PgPool,
) -> BenchResult<HashMap<String, (i64, String)>> {
    let listed: Vec<Value> = serde_json::from_slice(&std::fs::read(file)?)?;
    let mut tokens = HashMap::new();
    for chunk in listed.chunks(LOAD_CONCURRENCY) {
        let made: Vec<BenchResult<(String, String)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|a| {
                    scope.spawn(move || {
                        let name = a["name"].as_str().unwrap_or_default().to_owned();
                        let token =
                            procs::token(&o.bin_dir, env, "assessor", &name, a["office"].as_str())?;
                        Ok((name, token))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a token thread panicked".into()))
                })
                .collect()
        });
        for m in made {
            let (name, token) = m?;
            tokens.insert(name, token);
        }
    }
    let ids: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM actors WHERE role = 'assessor'")
            .fetch_all(pool)
            .await?;
    ids.into_iter()
        .map(|(id, name)| {
            let token = tokens
                .remove(&name)
                .ok_or_else(|| format!("assessor `{name}` has no token"))?;
            Ok((name, (id, token)))
        })
        .collect()
}

/// The `flags_ms` of each full recompute the worker logged ("cycle recomputed"), in order.
fn recompute_flags_ms(log: &Path) -> BenchResult<Vec<f64>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "cycle recomputed")
        .filter_map(|v| {
            // Milliseconds are logged as text (they are u128).
            let ms = &v["fields"]["flags_ms"];
            ms.as_f64().or_else(|| ms.as_str()?.parse().ok())
        })
        .collect())
}

/// The cycle's current flags, named as the dataset names things.
async fn current_flags(
    pool: &PgPool,
    year: u16,
    unit_ids: &HashMap<(String, String), i64>,
    assessors: &HashMap<String, (i64, String)>,
) -> BenchResult<Vec<planted::Found>> {
    let units: HashMap<i64, (String, String)> =
        unit_ids.iter().map(|(k, v)| (*v, k.clone())).collect();
    let names: HashMap<i64, String> = assessors
        .iter()
        .map(|(name, (id, _))| (*id, name.clone()))
        .collect();
    let entities: HashMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT id, code FROM entities")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let offices: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT office_code, province_code FROM office_provinces",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let rows: Vec<(String, Value, Value, Value)> = sqlx::query_as(
        "SELECT f.kind, f.subject, f.evidence, f.context FROM flags f JOIN cycles c ON c.id = f.cycle_id
         WHERE c.kind = 'official' AND c.year = $1 AND f.current",
    )
    .bind(i32::from(year))
    .fetch_all(pool)
    .await?;
    let unit = |v: &Value| v.as_i64().and_then(|id| units.get(&id).cloned());
    Ok(rows
        .into_iter()
        .filter_map(|(kind, subject, evidence, context)| {
            let kind = kepatuhan_core::flags::FlagKind::from_code(&kind)?;
            let text = |key: &str| subject[key].as_str().map(str::to_owned);
            Some(planted::Found {
                kind,
                units: [unit(&subject["unit"]), unit(&subject["other"])]
                    .into_iter()
                    .flatten()
                    .collect(),
                entity: subject["entity"]
                    .as_i64()
                    .and_then(|e| entities.get(&e).cloned()),
                assessor: subject["assessor"]
                    .as_i64()
                    .and_then(|a| names.get(&a).cloned()),
                province: text("province")
                    .or_else(|| text("office").and_then(|o| offices.get(&o).cloned())),
                detail: json!({ "evidence": evidence, "context": context }),
            })
        })
        .collect())
}

/// Each planted kind's precision and recall (`flags_<kind>_precision`, `…_recall`) and the
/// lowest of each (`flags_precision_min`, `flags_recall_min`).
fn flag_figures(
    truth: &[planted::Planted],
    found: &[planted::Found],
    results: &mut serde_json::Map<String, Value>,
) {
    let figures = planted::evaluate(truth, found);
    let mut lowest = (f64::INFINITY, f64::INFINITY);
    for k in &figures {
        let (p, r) = (k.precision(), k.recall());
        eprintln!(
            "flags {}: {} planted, {} raised, {} true, {} found",
            k.kind, k.planted, k.flags, k.true_flags, k.found
        );
        lowest.0 = lowest.0.min(p.unwrap_or(f64::INFINITY));
        lowest.1 = lowest.1.min(r.unwrap_or(f64::INFINITY));
        results.insert(
            format!("flags_{}_precision", k.kind),
            p.map_or(Value::Null, |p| round(p, 2)),
        );
        results.insert(
            format!("flags_{}_recall", k.kind),
            r.map_or(Value::Null, |r| round(r, 2)),
        );
    }
    for (key, value) in [
        ("flags_precision_min", lowest.0),
        ("flags_recall_min", lowest.1),
    ] {
        results.insert(
            key.into(),
            if value.is_finite() {
                round(value, 2)
            } else {
                Value::Null
            },
        );
    }
}

/// The report of a run at `scale` × the units merged into the 1× report in `results` (when there
/// is one): its figures as `scale{N}_{key}`, its dataset as `dataset_scale{N}`, its date, seed and
/// duration as `scale{N}_run`.
fn scaled_report(results: Option<&Path>, scale: u64, run: &Value) -> BenchResult<Value> {
    let mut base: Value = match results.filter(|p| p.exists()) {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p)?)?,
        None => json!({ "results": {} }),
    };
    let prefix = format!("scale{scale}_");
    let Some(figures) = base["results"].as_object_mut() else {
        return Err("the results file has no `results` object".into());
    };
    figures.retain(|k, _| !k.starts_with(&prefix));
    for (key, value) in run["results"].as_object().into_iter().flatten() {
        if !value.is_null() {
            figures.insert(format!("{prefix}{key}"), value.clone());
        }
    }
    base[format!("dataset_scale{scale}")] = run["dataset"].clone();
    base[format!("scale{scale}_run")] = json!({ "date": run["date"], "seed": run["seed"], "mode": run["mode"], "run_s": run["run_s"] });
    Ok(base)
}

/// A 1× report with the scaled runs' figures of the earlier report in `results` kept (they are
/// measured by their own runs).
fn keep_scaled(results: Option<&Path>, mut run: Value) -> BenchResult<Value> {
    let Some(path) = results.filter(|p| p.exists()) else {
        return Ok(run);
    };
    let earlier: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let is_scaled = |k: &str| {
        k.strip_prefix("scale")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    for (key, value) in earlier["results"].as_object().into_iter().flatten() {
        if is_scaled(key) {
            run["results"][key] = value.clone();
        }
    }
    for (key, value) in earlier.as_object().into_iter().flatten() {
        if is_scaled(key) || key.starts_with("dataset_scale") {
            run[key] = value.clone();
        }
    }
    Ok(run)
}

/// A new directory for this run's certificates (removed after the run), on tmpfs (`/dev/shm`)
/// where the machine has one. On this machine's ext4, creating ≈ 4,400 files a few minutes after
/// ≈ 4,400 were deleted nearby took 0.5 ms of kernel time per file instead of 0.06: the inode
/// allocator passes over recently freed inodes one by one (`perf`: `find_inode_bit` and
/// `recently_deleted` at an eighth of the worker's CPU). Every earlier run's cleanup caused that;
/// production never deletes certificates by the thousand, so the bench keeps it out of the
/// figure.
pub(crate) fn fresh_store(db: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    base.join(format!("{db}-certificates-{stamp}-{}", std::process::id()))
}
