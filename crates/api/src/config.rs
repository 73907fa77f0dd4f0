//! Typed configuration from `KEPATUHAN_*` environment variables, validated at start with every
//! problem named at once.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the API process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres connection URL (`KEPATUHAN_DATABASE_URL`, or `DATABASE_URL`).
    pub database_url: String,
    /// Listen address (`KEPATUHAN_HTTP_ADDR`, default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// Largest accepted request body in bytes (`KEPATUHAN_MAX_BODY_BYTES`, default 16 MiB).
    pub max_body_bytes: usize,
    /// Request time limit (`KEPATUHAN_REQUEST_TIMEOUT_SECS`, default 30).
    pub request_timeout: Duration,
    /// Largest database pool (`KEPATUHAN_DB_MAX_CONNECTIONS`, default 10).
    pub db_max_connections: u32,
    /// Base URL of the public verification pages, printed in certificates' QR codes
    /// (`KEPATUHAN_PUBLIC_BASE_URL`, default `http://127.0.0.1:8080`).
    pub public_base_url: String,
    /// Where certificate PDFs are stored (`KEPATUHAN_CERTIFICATE_STORE`): a directory path or
    /// `file:///…` URL (default `var/certificates`), `s3://bucket/prefix` for any S3-compatible
    /// store (credentials and endpoint from the usual `AWS_*` variables), or `memory:`.
    pub certificate_store: String,
}

/// Default database URL for local development and tests (trust auth on the local cluster).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/kepatuhan";

impl Settings {
    /// Reads the environment. Returns every problem found, one line each.
    pub fn from_env() -> Result<Self, Vec<String>> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (testable without touching the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let database_url = lookup("KEPATUHAN_DATABASE_URL")
            .or_else(|| lookup("DATABASE_URL"))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            problems.push("KEPATUHAN_DATABASE_URL: must be a postgres:// URL".to_owned());
        }
        let http_addr = parse(
            &lookup,
            "KEPATUHAN_HTTP_ADDR",
            "127.0.0.1:8080".parse().ok(),
            &mut problems,
        );
        let max_body_bytes = parse(
            &lookup,
            "KEPATUHAN_MAX_BODY_BYTES",
            Some(16 * 1024 * 1024),
            &mut problems,
        );
        let timeout: Option<u64> = parse(
            &lookup,
            "KEPATUHAN_REQUEST_TIMEOUT_SECS",
            Some(30),
            &mut problems,
        );
        let db_max_connections = parse(
            &lookup,
            "KEPATUHAN_DB_MAX_CONNECTIONS",
            Some(10),
            &mut problems,
        );
        let public_base_url = lookup("KEPATUHAN_PUBLIC_BASE_URL")
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
            .trim_end_matches('/')
            .to_owned();
        let valid_url = (public_base_url.starts_with("https://")
            || public_base_url.starts_with("http://"))
            && public_base_url
                .split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains(' '));
        if !valid_url {
            problems.push(format!(
                "KEPATUHAN_PUBLIC_BASE_URL: `{public_base_url}` is not an http(s) URL"
            ));
        }
        let certificate_store =
            lookup("KEPATUHAN_CERTIFICATE_STORE").unwrap_or_else(|| "var/certificates".to_owned());
        match (http_addr, max_body_bytes, timeout, db_max_connections) {
            (Some(http_addr), Some(max_body_bytes), Some(t), Some(db_max_connections))
                if problems.is_empty() =>
            {
                Ok(Self {
                    database_url,
                    http_addr,
                    max_body_bytes,
                    request_timeout: Duration::from_secs(t),
                    db_max_connections,
                    public_base_url,
                    certificate_store,
                })
            }
            _ => Err(problems),
        }
    }
}

fn parse<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: Option<T>,
    problems: &mut Vec<String>,
) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    match lookup(key) {
        None => default,
        Some(raw) => match raw.trim().parse() {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("{key}: `{raw}` is invalid: {e}"));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem_at_once() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        let bad = |k: &str| match k {
            "KEPATUHAN_DATABASE_URL" => Some("mysql://x".to_owned()),
            "KEPATUHAN_HTTP_ADDR" => Some("localhost".to_owned()),
            "KEPATUHAN_REQUEST_TIMEOUT_SECS" => Some("soon".to_owned()),
            "KEPATUHAN_PUBLIC_BASE_URL" => Some("kepatuhan.example".to_owned()),
            _ => None,
        };
        let problems = Settings::from_lookup(bad).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[1].starts_with("KEPATUHAN_HTTP_ADDR"));
    }
}
