//! The public answers cache: anonymous answers about published results, served from memory for a
//! moment (`KEPATUHAN_PUBLIC_CACHE_MS`).

use axum::extract::State;

use crate::AppState;

/// Anonymous answers about published results, kept in memory by URI for a short time.
///
/// Published results are the same for every caller and change only through a new results
/// revision (a correction), so the public rankings, which every local government refreshes on
/// publication day, are answered from memory: a correction shows within the time to live.
/// Only requests without credentials are served from or stored in the cache, so a caller with a
/// token is always authenticated and sees the database.
///
/// Nobody waits for an expiry under steady traffic: once an answer is older than half its time
/// to live, the next request still gets it and starts one refresh in the background, so a busy
/// answer is replaced before it expires. When an answer has expired (a quiet key), concurrent
/// requests for it wait for one computation instead of all asking the database at once.
#[derive(Clone)]
pub struct PublicCache {
    /// Behind an `Arc`: the state is cloned several times per request, and cloning a moka
    /// cache itself (its handles and channels) took a quarter of the api's CPU under load.
    answers: std::sync::Arc<moka::future::Cache<String, Cached>>,
    /// Age after which a served answer is refreshed in the background.
    refresh_after: std::time::Duration,
}

/// A kept answer, with when it was computed and whether a refresh is under way.
#[derive(Clone, Debug)]
struct Cached {
    answer: Buffered,
    at: std::time::Instant,
    refreshing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Cached {
    fn new(answer: Buffered) -> Self {
        Self {
            answer,
            at: std::time::Instant::now(),
            refreshing: std::sync::Arc::default(),
        }
    }
}

impl std::fmt::Debug for PublicCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicCache").finish_non_exhaustive()
    }
}

impl PublicCache {
    /// A cache whose answers live `ttl` (`None` when `ttl` is zero: no cache).
    pub fn new(ttl: std::time::Duration) -> Option<Self> {
        (!ttl.is_zero()).then(|| Self {
            answers: std::sync::Arc::new(
                moka::future::Cache::builder()
                    .max_capacity(2_000)
                    .time_to_live(ttl)
                    .build(),
            ),
            refresh_after: ttl / 2,
        })
    }
}

/// An answer read into memory.
#[derive(Clone, Debug)]
pub struct Buffered {
    status: axum::http::StatusCode,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
}

impl Buffered {
    /// Reads an answer's body into memory.
    async fn read(response: axum::response::Response) -> Self {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, PUBLIC_CACHE_MAX_BYTES).await {
            Ok(body) => Self {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            Err(_) => Self {
                status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                headers: axum::http::HeaderMap::new(),
                body: axum::body::Bytes::new(),
            },
        }
    }
}

impl axum::response::IntoResponse for Buffered {
    fn into_response(self) -> axum::response::Response {
        (self.status, self.headers, self.body).into_response()
    }
}

/// The cache key of a request: its path and its query parameters in a canonical order, so the
/// same question asked with its parameters in another order shares one entry. (Unknown
/// parameters are refused by the handlers, and refusals are never kept, so they cannot crowd the
/// cache out.)
///
/// The format an `Accept` header chooses (CSV or a workbook, [`crate::export::Format`]) is part
/// of the key too: one address answers JSON, CSV or XLSX, and a caller never gets another
/// format than the one they asked for.
fn cache_key(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> String {
    let key = match uri.query().filter(|q| !q.is_empty()) {
        None => uri.path().to_owned(),
        Some(query) => {
            let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            pairs.sort_unstable();
            format!("{}?{}", uri.path(), pairs.join("&"))
        }
    };
    match crate::export::Format::from_accept(headers) {
        crate::export::Format::Json => key,
        crate::export::Format::Csv => format!("{key} accept:csv"),
        crate::export::Format::Xlsx => format!("{key} accept:xlsx"),
    }
}

/// Largest answer read into memory (a page of results is far smaller).
const PUBLIC_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Middleware: serves anonymous `GET`s of results (`…/results/…`) from [`PublicCache`] and keeps
/// their successful answers. Anonymous callers only ever see published results, so a `200` for
/// one is a `200` for all; other answers are shared with requests waiting at the same moment but
/// not kept.
pub async fn public_cache(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let cacheable = req.method() == axum::http::Method::GET
        && !req
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
        && req.uri().path().contains("/results/");
    let Some(cache) = state.public_cache.as_ref().filter(|_| cacheable) else {
        return next.run(req).await;
    };
    let key = cache_key(req.uri(), req.headers());
    if let Some(kept) = cache.answers.get(&key).await {
        if kept.at.elapsed() >= cache.refresh_after && !kept.refreshing.swap(true, Ordering::AcqRel)
        {
            // This request answers from memory and refreshes the answer for the next ones.
            let answers = cache.answers.clone();
            tokio::spawn(async move {
                let fresh = Buffered::read(next.run(req).await).await;
                if fresh.status == axum::http::StatusCode::OK {
                    answers.insert(key, Cached::new(fresh)).await;
                } else {
                    // No longer public (or failing): let the next request compute it afresh.
                    answers.invalidate(&key).await;
                }
            });
        }
        return kept.answer.into_response();
    }
    let answer = cache
        .answers
        .try_get_with(key, async move {
            let buffered = Buffered::read(next.run(req).await).await;
            if buffered.status == axum::http::StatusCode::OK {
                Ok(Cached::new(buffered))
            } else {
                Err(buffered)
            }
        })
        .await;
    match answer {
        Ok(hit) => hit.answer.into_response(),
        Err(other) => (*other).clone().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::cache_key;

    #[test]
    fn one_question_one_key() {
        let none = axum::http::HeaderMap::new();
        let key = |uri: &str| cache_key(&uri.parse().unwrap(), &none);
        assert_eq!(
            key("/api/v1/cycles/2024/results/entities?sort=score&province=19"),
            key("/api/v1/cycles/2024/results/entities?province=19&sort=score")
        );
        assert_eq!(
            key("/api/v1/cycles/2024/results/entities?"),
            "/api/v1/cycles/2024/results/entities"
        );
        assert_ne!(
            key("/api/v1/cycles/2024/results/entities?province=19"),
            key("/api/v1/cycles/2024/results/entities?province=52")
        );
        // One address, three formats: each its own entry.
        let uri: axum::http::Uri = "/api/v1/cycles/2024/results/entities".parse().unwrap();
        let accept = |value: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::ACCEPT, value.parse().unwrap());
            cache_key(&uri, &h)
        };
        let json = accept("application/json");
        let csv = accept("text/csv");
        let xlsx = accept(crate::export::XLSX);
        assert_eq!(json, key("/api/v1/cycles/2024/results/entities"));
        assert_ne!(json, csv);
        assert_ne!(csv, xlsx);
        assert_ne!(json, xlsx);
        assert_eq!(accept("text/csv;q=0.9, application/json;q=0.5"), csv);
    }
}
