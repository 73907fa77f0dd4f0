//! Logs and traces, set up once per process.
//!
//! - Logs, on standard error: human-readable lines by default, JSON lines (one object per event,
//!   with the request id of the request span) when `KEPATUHAN_LOG_FORMAT=json`. `RUST_LOG`
//!   filters (default `info`, with the database's notices at `warn`). Standard output carries
//!   only what a command prints for its caller (a token, a document).
//! - Traces: exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or its alias
//!   `KEPATUHAN_OTLP_ENDPOINT`) is set, named by `OTEL_SERVICE_NAME` when set (e.g.
//!   `http://jaeger:4317`). A request's trace context is stored with the jobs it enqueues
//!   ([`current_traceparent`], W3C `traceparent`) and continued by the worker
//!   ([`continue_trace`]), so one trace shows request → job → recompute or rendering.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, Settings};

/// Keeps the trace exporter alive; flushes it when dropped.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: logs in the configured format and, when an OTLP endpoint is
/// configured, traces. `RUST_LOG` filters, as everywhere in Rust. Returns the guard to keep until
/// exit, and the problem if the trace exporter could not be built (logging still works then, so
/// the caller can report it).
pub fn init(service: &'static str, settings: &Settings) -> (Telemetry, Option<String>) {
    init_filtered(service, settings, "info,sqlx::postgres::notice=warn")
}

/// [`init`] with another default filter than `info` (`RUST_LOG` still wins): a command whose
/// output is for its caller logs less.
pub fn init_filtered(
    service: &'static str,
    settings: &Settings,
    default_filter: &str,
) -> (Telemetry, Option<String>) {
    let mut problem = None;
    let service = settings
        .otel_service_name
        .clone()
        .unwrap_or_else(|| service.to_owned());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match settings.otlp_endpoint.as_deref() {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            match opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
            {
                Ok(exporter) => Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(
                            opentelemetry_sdk::Resource::builder()
                                .with_service_name(service.clone())
                                .build(),
                        )
                        .build(),
                ),
                Err(e) => {
                    problem = Some(format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"));
                    None
                }
            }
        }
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.clone())));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    (Telemetry { provider }, problem)
}

/// The current span's trace context as a W3C `traceparent`, if it is being traced.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace named by `traceparent` (from a request or a job payload).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
        let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
    }
}

/// Names a span's trace span after the fact (a request span once its route is known): the
/// OpenTelemetry span is renamed directly, as a recorded `otel.name` no longer reaches a span
/// whose trace context already exists.
pub fn rename(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt as _;
    span.context().span().update_name(name);
}
