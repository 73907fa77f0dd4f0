//! One typed configuration for the API and the worker, in layers: defaults, then an optional TOML
//! file (`KEPATUHAN_CONFIG_FILE`; keys are the variable names without `KEPATUHAN_`, in lower case:
//! `database_url = "…"`, `worker_concurrency = 4`), then `KEPATUHAN_*` environment variables.
//! Validated at start, with every problem named at once.

use std::net::SocketAddr;
use std::time::Duration;

use crate::egress::EgressPolicy;

/// Settings of the API process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres connection URL (`KEPATUHAN_DATABASE_URL`, or `DATABASE_URL`).
    pub database_url: String,
    /// Listen address (`KEPATUHAN_HTTP_ADDR`, default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// Where the api serves `/metrics` instead of its public address (`KEPATUHAN_METRICS_ADDR`,
    /// e.g. `0.0.0.0:9090` on an internal network; default: none, `/metrics` beside the api).
    pub metrics_addr: Option<SocketAddr>,
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
    /// How long anonymous answers about published results are served from memory
    /// (`KEPATUHAN_PUBLIC_CACHE_MS`, default 1000; 0 turns the cache off).
    pub public_cache: Duration,
    /// Options of an `s3://` certificate store, from the `AWS_*` variables of
    /// [`STORE_VARIABLES`] (credentials, region, endpoint). Never logged.
    pub store_options: StoreOptions,
    /// Log lines as text or JSON (`KEPATUHAN_LOG_FORMAT`: `pretty`, the default, or `json`).
    pub log_format: LogFormat,
    /// The service name traces carry (`OTEL_SERVICE_NAME`; default: the process's own,
    /// `kepatuhan-api` or `kepatuhan-worker`).
    pub otel_service_name: Option<String>,
    /// Where traces are exported over OTLP/gRPC (the standard `OTEL_EXPORTER_OTLP_ENDPOINT`, or
    /// its alias `KEPATUHAN_OTLP_ENDPOINT`, e.g.
    /// `http://jaeger:4317`); none when unset.
    pub otlp_endpoint: Option<String>,
    /// Networks webhooks may be delivered to although they are not public
    /// (`KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS`, comma-separated CIDR, default none): for a
    /// receiver on the same machine in development and tests. See [`crate::egress`].
    pub webhook_allowed_networks: EgressPolicy,
    /// The thresholds of the integrity flags (`KEPATUHAN_FLAG_SETTINGS`: a JSON object naming
    /// the ones to change, e.g. `{"jump_min_points": "12"}`; the defaults are documented in
    /// `docs/integrity-flags.md`).
    pub flag_settings: kepatuhan_core::flags::FlagSettings,
    /// Requests a second each anonymous client may make (`KEPATUHAN_ANONYMOUS_RATE`, default 50;
    /// 0 turns the limit off, as the benchmark's load runs do).
    pub anonymous_rate: u32,
    /// The burst above that rate (`KEPATUHAN_ANONYMOUS_BURST`, default 200).
    pub anonymous_burst: u32,
    /// Proxies in front of the api whose `X-Forwarded-For` entry is trusted to name the client
    /// (`KEPATUHAN_TRUSTED_PROXY_HOPS`, default 0: the peer address is the client).
    pub trusted_proxy_hops: usize,
    /// Whether the api and the worker apply pending migrations when they start
    /// (`KEPATUHAN_MIGRATE_ON_START`, default `true`). In deployment it is `false`: they connect
    /// as the service role, which may not create or alter anything, and only check that the
    /// schema is current; `kepatuhan-api migrate` runs as the owner role. See [`crate::db`].
    pub migrate_on_start: bool,
    /// The role the api and the worker connect as in deployment (`KEPATUHAN_SERVICE_ROLE`, a
    /// plain identifier): `migrate` grants it exactly what the services need
    /// ([`crate::db::grant_service_role`]). None: no grants are made.
    pub service_role: Option<String>,
    /// Settings only the worker uses.
    pub worker: WorkerSettings,
}

/// The `AWS_*` variables passed to an S3-compatible certificate store.
pub const STORE_VARIABLES: [&str; 9] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
];

/// Object store options as `object_store` names them (`aws_access_key_id`…). Their values are
/// secrets: `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct StoreOptions(pub Vec<(String, String)>);

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Settings of the worker process.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs run at once per queue (`KEPATUHAN_WORKER_CONCURRENCY`, default 4).
    pub concurrency: usize,
    /// First retry delay in seconds (`KEPATUHAN_WORKER_BACKOFF_SECS`, default 5).
    pub backoff_secs: u64,
    /// Where the worker serves `/metrics` (`KEPATUHAN_WORKER_METRICS_ADDR`, default `127.0.0.1:9091`).
    pub metrics_addr: SocketAddr,
    /// Seconds without a heartbeat (one a second) after which a worker counts as crashed and its
    /// running jobs are taken up again by the others (`KEPATUHAN_WORKER_ORPHAN_AFTER_SECS`,
    /// default 30; at least 3).
    pub orphan_after_secs: u32,
    /// Place printed on certificates (`KEPATUHAN_CERTIFICATE_PLACE`, default `Jakarta`).
    pub place: String,
    /// Signatory's name (`KEPATUHAN_CERTIFICATE_SIGNATORY`).
    pub signatory_name: String,
    /// Signatory's title (`KEPATUHAN_CERTIFICATE_SIGNATORY_TITLE`).
    pub signatory_title: String,
}

impl Default for WorkerSettings {
    /// The defaults, as documented on each field.
    fn default() -> Self {
        worker_settings(&|_: &str| None, &mut Vec::new()).expect("the worker defaults are valid")
    }
}

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (development).
    Pretty,
    /// JSON lines (production).
    Json,
}

impl LogFormat {
    /// Reads a `KEPATUHAN_LOG_FORMAT` value (`pretty` or `json`; unset is `pretty`); anything
    /// else is an error.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("" | "pretty") => Ok(LogFormat::Pretty),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "KEPATUHAN_LOG_FORMAT: `{other}` is not `pretty` or `json`"
            )),
        }
    }
}

/// Default database URL for local development and tests (trust auth on the local cluster).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/kepatuhan";

impl Settings {
    /// Reads the environment, over the optional file named by `KEPATUHAN_CONFIG_FILE`. Returns
    /// every problem found, one line each.
    pub fn from_env() -> Result<Self, Vec<String>> {
        let file = match std::env::var("KEPATUHAN_CONFIG_FILE") {
            Ok(path) => match read_file(&path) {
                Ok(values) => values,
                Err(problem) => return Err(vec![problem]),
            },
            Err(_) => std::collections::HashMap::new(),
        };
        Self::from_lookup(|k| std::env::var(k).ok().or_else(|| file.get(k).cloned()))
    }

    /// Reads the configuration for a process; on problems, prints them all and returns `None`.
    pub fn load_or_report() -> Option<Self> {
        match Self::from_env() {
            Ok(s) => Some(s),
            Err(problems) => {
                eprintln!("invalid configuration:");
                for p in problems {
                    eprintln!("  {p}");
                }
                None
            }
        }
    }

    /// Reads settings through `lookup` (testable without touching the process environment).
    // One flat list of every setting, read and checked in one place, reads best as it is.
    #[allow(clippy::too_many_lines)]
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
        let metrics_addr = optional_addr(&lookup, "KEPATUHAN_METRICS_ADDR", &mut problems);
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
        let public_cache_ms: Option<u64> = parse(
            &lookup,
            "KEPATUHAN_PUBLIC_CACHE_MS",
            Some(1000),
            &mut problems,
        );
        let (store_options, log_format, otlp_endpoint) = outside(&lookup, &mut problems);
        let webhook_allowed_networks =
            EgressPolicy::parse(&lookup("KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS").unwrap_or_default())
                .unwrap_or_else(|e| {
                    problems.push(format!("KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS: {e}"));
                    EgressPolicy::default()
                });
        let worker = worker_settings(&lookup, &mut problems);
        let (migrate_on_start, service_role) = roles(&lookup, &mut problems);
        let anonymous_rate = parse(&lookup, "KEPATUHAN_ANONYMOUS_RATE", Some(50), &mut problems);
        let anonymous_burst = parse(
            &lookup,
            "KEPATUHAN_ANONYMOUS_BURST",
            Some(200),
            &mut problems,
        );
        let trusted_proxy_hops = parse(
            &lookup,
            "KEPATUHAN_TRUSTED_PROXY_HOPS",
            Some(0),
            &mut problems,
        );
        let flag_settings = lookup("KEPATUHAN_FLAG_SETTINGS")
            .map_or_else(
                || Ok(kepatuhan_core::flags::FlagSettings::default()),
                |text| serde_json::from_str(&text),
            )
            .unwrap_or_else(|e| {
                problems.push(format!("KEPATUHAN_FLAG_SETTINGS: {e}"));
                kepatuhan_core::flags::FlagSettings::default()
            });
        match (
            http_addr,
            max_body_bytes,
            timeout,
            db_max_connections,
            worker,
            public_cache_ms,
        ) {
            (
                Some(http_addr),
                Some(max_body_bytes),
                Some(t),
                Some(db_max_connections),
                Some(worker),
                Some(cache_ms),
            ) if problems.is_empty() => Ok(Self {
                public_cache: Duration::from_millis(cache_ms),
                database_url,
                http_addr,
                metrics_addr,
                max_body_bytes,
                request_timeout: Duration::from_secs(t),
                db_max_connections,
                public_base_url,
                certificate_store,
                store_options,
                log_format,
                otlp_endpoint,
                otel_service_name: lookup("OTEL_SERVICE_NAME")
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                webhook_allowed_networks,
                flag_settings,
                anonymous_rate: anonymous_rate.unwrap_or_default(),
                anonymous_burst: anonymous_burst.unwrap_or_default(),
                trusted_proxy_hops: trusted_proxy_hops.unwrap_or_default(),
                migrate_on_start,
                service_role,
                worker,
            }),
            _ => Err(problems),
        }
    }
}

/// Whether to migrate at start, and the service role to grant to.
fn roles(
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> (bool, Option<String>) {
    let migrate_on_start =
        parse(lookup, "KEPATUHAN_MIGRATE_ON_START", Some(true), problems).unwrap_or(true);
    let service_role = lookup("KEPATUHAN_SERVICE_ROLE")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(role) = &service_role
        && !crate::db::is_plain_identifier(role)
    {
        problems.push(format!(
            "KEPATUHAN_SERVICE_ROLE: `{role}` is not a plain role name (lower-case letters, digits and `_`, at most 63)"
        ));
    }
    (migrate_on_start, service_role)
}

/// The store's options and the telemetry settings.
fn outside(
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> (StoreOptions, LogFormat, Option<String>) {
    let store_options = StoreOptions(
        STORE_VARIABLES
            .iter()
            .filter_map(|k| lookup(k).map(|v| (k.to_ascii_lowercase(), v)))
            .collect(),
    );
    let log_format = match LogFormat::parse(lookup("KEPATUHAN_LOG_FORMAT").as_deref()) {
        Ok(f) => f,
        Err(e) => {
            problems.push(e);
            LogFormat::Pretty
        }
    };
    let otlp_endpoint = lookup("OTEL_EXPORTER_OTLP_ENDPOINT")
        .or_else(|| lookup("KEPATUHAN_OTLP_ENDPOINT"))
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    (store_options, log_format, otlp_endpoint)
}

fn worker_settings(
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<WorkerSettings> {
    let concurrency = parse(
        lookup,
        "KEPATUHAN_WORKER_CONCURRENCY",
        Some(4usize),
        problems,
    );
    if concurrency == Some(0) {
        problems.push("KEPATUHAN_WORKER_CONCURRENCY: must be at least 1".to_owned());
    }
    let backoff_secs = parse(
        lookup,
        "KEPATUHAN_WORKER_BACKOFF_SECS",
        Some(5u64),
        problems,
    );
    let metrics_addr = parse(
        lookup,
        "KEPATUHAN_WORKER_METRICS_ADDR",
        Some(SocketAddr::from(([127, 0, 0, 1], 9091))),
        problems,
    );
    let orphan_after_secs = parse(
        lookup,
        "KEPATUHAN_WORKER_ORPHAN_AFTER_SECS",
        Some(30u32),
        problems,
    );
    if orphan_after_secs.is_some_and(|s| s < 3) {
        problems.push(
            "KEPATUHAN_WORKER_ORPHAN_AFTER_SECS: at least 3 (a busy worker must not look crashed)"
                .to_owned(),
        );
    }
    let text = |key: &str, default: &str| lookup(key).unwrap_or_else(|| default.to_owned());
    Some(WorkerSettings {
        concurrency: concurrency?,
        backoff_secs: backoff_secs?,
        metrics_addr: metrics_addr?,
        orphan_after_secs: orphan_after_secs?,
        place: text("KEPATUHAN_CERTIFICATE_PLACE", "Jakarta"),
        signatory_name: text("KEPATUHAN_CERTIFICATE_SIGNATORY", "Mokhammad Najih"),
        signatory_title: text(
            "KEPATUHAN_CERTIFICATE_SIGNATORY_TITLE",
            "Ketua Ombudsman Republik Indonesia",
        ),
    })
}

/// Reads a TOML configuration file into `KEPATUHAN_*` names and text values.
fn read_file(path: &str) -> Result<std::collections::HashMap<String, String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("KEPATUHAN_CONFIG_FILE: {path}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("KEPATUHAN_CONFIG_FILE: {path}: {e}"))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("KEPATUHAN_CONFIG_FILE: {path}: `{key}` must be a string, integer or boolean, got {}", other.type_str())),
            };
            Ok((format!("KEPATUHAN_{}", key.to_ascii_uppercase()), text))
        })
        .collect()
}

/// An optional address: none when unset or empty, a problem when unreadable.
fn optional_addr(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<SocketAddr> {
    lookup(key).filter(|a| !a.trim().is_empty())?;
    parse(lookup, key, None, problems)
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
    fn a_file_layer_under_the_environment() {
        let dir = std::env::temp_dir().join(format!("kepatuhan-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kepatuhan.toml");
        std::fs::write(
            &path,
            "http_addr = \"0.0.0.0:9000\"\nworker_concurrency = 4\n",
        )
        .unwrap();
        let file = read_file(path.to_str().unwrap()).unwrap();
        assert_eq!(file["KEPATUHAN_WORKER_CONCURRENCY"], "4");
        let env = |k: &str| (k == "KEPATUHAN_HTTP_ADDR").then(|| "127.0.0.1:9100".to_owned());
        let s = Settings::from_lookup(|k| env(k).or_else(|| file.get(k).cloned())).unwrap();
        assert_eq!(
            s.http_addr.to_string(),
            "127.0.0.1:9100",
            "the environment wins over the file"
        );
        assert_eq!(s.worker.concurrency, 4, "the file wins over the default");
        std::fs::write(&path, "worker_concurrency = [1]\n").unwrap();
        assert!(
            read_file(path.to_str().unwrap())
                .unwrap_err()
                .contains("worker_concurrency")
        );
    }

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
            "KEPATUHAN_SERVICE_ROLE" => Some("svc; DROP TABLE audit_log".to_owned()),
            "KEPATUHAN_MIGRATE_ON_START" => Some("sometimes".to_owned()),
            _ => None,
        };
        let problems = Settings::from_lookup(bad).unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(s.migrate_on_start && s.service_role.is_none());
        assert!(problems[1].starts_with("KEPATUHAN_HTTP_ADDR"));
    }
}
