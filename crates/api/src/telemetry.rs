//! Logging, set up once per process: human-readable lines by default, JSON lines (one object per
//! event, with the request id of the request span) when `KEPATUHAN_LOG_FORMAT=json`. `RUST_LOG`
//! filters (default `info`).

use tracing_subscriber::EnvFilter;

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (development).
    Pretty,
    /// JSON lines (production).
    Json,
}

impl LogFormat {
    /// Reads `KEPATUHAN_LOG_FORMAT` (`pretty` or `json`); anything else is an error.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("KEPATUHAN_LOG_FORMAT")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            None | Some("" | "pretty") => Ok(LogFormat::Pretty),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "KEPATUHAN_LOG_FORMAT: `{other}` is not `pretty` or `json`"
            )),
        }
    }
}

/// Installs the global subscriber. Returns a problem with the configuration, if any (logging
/// then falls back to pretty lines so the problem can be reported).
pub fn init() -> Option<String> {
    let (format, problem) = match LogFormat::from_env() {
        Ok(f) => (f, None),
        Err(e) => (LogFormat::Pretty, Some(e)),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    problem
}
