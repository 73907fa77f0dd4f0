//! Anonymous callers are rate-limited per client (`governor`, a keyed GCRA limiter): the public
//! results and verification pages stay up when someone hammers them. Callers with a token are
//! not limited here: they are known and accountable.
//!
//! The client is the peer address, or, behind `KEPATUHAN_TRUSTED_PROXY_HOPS` proxies, the
//! address that many hops from the right of `X-Forwarded-For` (the one the outermost trusted
//! proxy saw); a header a client sends itself is never trusted beyond that. Over the limit, a
//! `429 rate-limited` problem says when to come back (`Retry-After`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::problem::Problem;

/// The limiter and how to find the client.
#[derive(Clone)]
pub struct AnonymousLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_hops: usize,
}

impl std::fmt::Debug for AnonymousLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnonymousLimit")
            .field("trusted_hops", &self.trusted_hops)
            .finish_non_exhaustive()
    }
}

impl AnonymousLimit {
    /// `per_second` requests a second per client with bursts of `burst`; `None` when
    /// `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32, trusted_hops: usize) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let limiter = Arc::new(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ));
        // Forget clients that went quiet, so the table does not grow without end.
        let weak = Arc::downgrade(&limiter);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_mins(1));
                loop {
                    every.tick().await;
                    let Some(limiter) = weak.upgrade() else {
                        return;
                    };
                    limiter.retain_recent();
                }
            });
        }
        Some(Self {
            limiter,
            trusted_hops,
        })
    }

    /// The client of a request: the peer, or the address `trusted_hops` from the right of
    /// `X-Forwarded-For`.
    fn client(&self, req: &Request) -> IpAddr {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if self.trusted_hops == 0 {
            return peer;
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .len()
            .checked_sub(self.trusted_hops)
            .and_then(|i| forwarded.get(i).copied())
            .unwrap_or(peer)
    }
}

/// Middleware: limits requests without credentials.
pub async fn limit_anonymous(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limit) = state
        .anonymous_limit
        .as_ref()
        .filter(|_| !req.headers().contains_key(header::AUTHORIZATION))
    else {
        return next.run(req).await;
    };
    match limit.limiter.check_key(&limit.client(&req)) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "too many requests without a token from your address; try again in {seconds} s"
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}
