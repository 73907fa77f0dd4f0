//! The suite's HTTP client of the api, parallel requests, and the statistics it reports.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::{BenchResult, LOAD_CONCURRENCY};

/// A client of the real API.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Api {
    pub(crate) async fn send(
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

    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &Value,
    ) -> BenchResult<(Value, Option<String>)> {
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

    pub(crate) async fn post_file(
        &self,
        path: &str,
        file: &Path,
        content_type: &str,
    ) -> BenchResult<Value> {
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

    /// The raw bytes of a GET (a file download), refusing an error status.
    pub(crate) async fn download(&self, path: &str) -> BenchResult<Vec<u8>> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?.to_vec();
        if status >= 400 {
            return Err(format!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
            .into());
        }
        Ok(bytes)
    }

    pub(crate) async fn get(&self, path: &str) -> BenchResult<Value> {
        Ok(self.send(reqwest::Method::GET, path, None, None).await?.1)
    }

    /// Polls a job until it is done (or fails).
    pub(crate) async fn wait_job(&self, id: &str, limit: Duration) -> BenchResult<Value> {
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
pub(crate) async fn in_parallel<T, F, Fut>(items: Vec<T>, f: F) -> BenchResult<Vec<Value>>
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

pub(crate) fn read_jsonl(path: &Path) -> BenchResult<Vec<Value>> {
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(Into::into))
        .collect()
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The nearest-rank percentile `p` (0–100) of `xs`.
pub(crate) fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
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

pub(crate) fn round(x: f64, places: i32) -> Value {
    let f = 10f64.powi(places);
    json!((x * f).round() / f)
}

/// When the cycle's current results were last written.
pub(crate) async fn results_computed_at(
    pool: &PgPool,
    year: u16,
) -> BenchResult<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT max(r.computed_at) FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision WHERE c.kind = 'official' AND c.year = $1",
    )
    .bind(i32::from(year))
    .fetch_one(pool)
    .await?)
}

/// Verifies a submitted submission (with its ETag).
pub(crate) async fn verify(api: &Api, s: &Value) -> BenchResult<()> {
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
