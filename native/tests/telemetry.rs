//! Traces and metrics in OpenTelemetry's names, against the chaos server: a CLIENT span per
//! attempt under the call's span with the engine's decisions in it, the duration histogram and
//! the resilience counters, through `tracing` for the client, the middleware and the tower
//! service alike; and with the `opentelemetry` feature, the same through the SDK's in-memory
//! exporters, with `traceparent` only under a caller's trace.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{chaos, fast_policy};
use resile::Client;
use resile_chaos::ChaosServer;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{global, KeyValue, Value};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::OnceLock;

#[cfg(feature = "opentelemetry")]
// README: begin
async fn traced_call(client: &resile::Client, url: &str) -> Result<u16, resile::Error> {
    use opentelemetry::context::FutureExt;
    use opentelemetry::trace::{TraceContextExt, Tracer};

    // Spans and metrics go to the global providers; under the caller's span, every attempt is
    // a CLIENT span of its own and carries its `traceparent`.
    let checkout = opentelemetry::global::tracer("my-service").start("checkout");
    let cx = opentelemetry::Context::current_with_span(checkout);
    let response = client.get(url).send().with_context(cx).await?;
    Ok(response.status().as_u16())
}
// README: end

#[test]
fn the_readme_shows_this_code() {
    resile_chaos::readme::assert_snippet_is_code(
        include_str!("../../README.md"),
        "## OpenTelemetry",
        include_str!("telemetry.rs"),
        "native/tests/telemetry.rs",
    );
}

/// A span or an event as the capture saw it: its name (an event's: its target), its fields as
/// text, and its parent span's name.
#[derive(Clone, Debug, Default)]
struct Seen {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<String>,
    id: u64,
    thread: Option<std::thread::ThreadId>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Every span and event, in order.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<Seen>>>,
    events: Arc<Mutex<Vec<Seen>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_string(),
            id: id.into_u64(),
            thread: Some(std::thread::current().id()),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_string()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.spans.lock().unwrap().push(seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        let thread = Some(std::thread::current().id());
        if let Some(seen) = spans
            .iter_mut()
            .rev()
            .find(|s| s.id == id.into_u64() && s.thread == thread)
        {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: event.metadata().target().to_string(),
            thread: Some(std::thread::current().id()),
            parent: ctx.event_span(event).map(|s| s.name().to_string()),
            ..Seen::default()
        };
        event.record(&mut Fields(&mut seen.fields));
        self.events.lock().unwrap().push(seen);
    }
}

impl Capture {
    /// This thread's spans named `name`.
    fn spans(&self, name: &str) -> Vec<Seen> {
        let thread = Some(std::thread::current().id());
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.name == name && s.thread == thread)
            .cloned()
            .collect()
    }

    /// This thread's events of `target`.
    fn events(&self, target: &str) -> Vec<Seen> {
        let thread = Some(std::thread::current().id());
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.name == target && e.thread == thread)
            .cloned()
            .collect()
    }
}

/// The test binary's subscriber: every test reads what happened on its own thread (a tracing
/// dispatcher per test would race on the callsites' cached interest).
fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let sdk = sdk();
        let capture = Capture::default();
        // tracing-opentelemetry's layers, as a user of `tracing` has them.
        let bridge = tracing_opentelemetry::layer().with_tracer(sdk.tracer.tracer("tracing"));
        let metrics = tracing_opentelemetry::MetricsLayer::new(sdk.meter.clone());
        let subscriber = tracing_subscriber::registry()
            .with(capture.clone())
            .with(bridge)
            .with(metrics);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        capture
    })
}

fn script(server: &ChaosServer, id: &str) -> String {
    server
        .state()
        .set_script(
            id,
            serde_json::from_value(
                json!({"replies": [{"status": 503}, {"status": 503}, {"status": 200}]}),
            )
            .unwrap(),
        )
        .unwrap();
    format!("{}/s/{id}?api_key=s3cret", server.url())
}

/// Three attempts (503, 503, 200) of one call seen through `tracing`: CLIENT spans in the
/// semantic conventions' names under the call's span `call_span`, the decisions in the call's
/// span, and the metric events.
fn assert_conventions(capture: &Capture, server: &ChaosServer, call_span: &str) {
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let attempts = capture.spans("resile.attempt");
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a.parent.as_deref(), Some(call_span), "{a:?}");
        assert_eq!(a.field("otel.name"), Some("GET"));
        assert_eq!(a.field("otel.kind"), Some("client"));
        assert_eq!(a.field("http.request.method"), Some("GET"));
        assert_eq!(a.field("server.address"), Some("127.0.0.1"));
        assert_eq!(a.field("server.port"), Some(port.as_str()));
        let url = a.field("url.full").unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.contains("s3cret"),
            "{url}"
        );
        let resend = (i > 0).then(|| i.to_string());
        assert_eq!(
            a.field("http.request.resend_count"),
            resend.as_deref(),
            "{a:?}"
        );
    }
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| a.field("http.response.status_code"))
        .collect();
    assert_eq!(statuses, [Some("503"), Some("503"), Some("200")]);
    let errors: Vec<_> = attempts.iter().map(|a| a.field("error.type")).collect();
    assert_eq!(errors, [Some("503"), Some("503"), None]);
    assert_eq!(attempts[0].field("otel.status_code"), Some("error"));

    // The decisions: inside the call's span, each with the engine's reason.
    let decisions = capture.events("resile::engine");
    let retries: Vec<_> = decisions
        .iter()
        .filter(|e| e.field("message").is_some_and(|m| m.contains(" retry ")))
        .collect();
    assert_eq!(retries.len(), 2, "{decisions:#?}");
    for e in &decisions {
        assert_eq!(e.parent.as_deref(), Some(call_span), "{e:?}");
    }
    assert!(
        retries.iter().all(|e| e.field("why").is_some()),
        "{retries:#?}"
    );

    // The metrics: one duration per attempt, two retries counted with their reason.
    let metrics = capture.events("resile::metrics");
    let durations: Vec<_> = metrics
        .iter()
        .filter(|e| {
            e.fields
                .contains_key("histogram.http.client.request.duration")
        })
        .collect();
    assert_eq!(durations.len(), 3, "{metrics:#?}");
    assert_eq!(durations[0].field("error.type"), Some("503"));
    assert_eq!(durations[2].field("http.response.status_code"), Some("200"));
    let counted: Vec<_> = metrics
        .iter()
        .filter(|e| e.field("resile.event") == Some("retry_scheduled"))
        .collect();
    assert_eq!(counted.len(), 2, "{metrics:#?}");
    assert!(counted
        .iter()
        .all(|e| e.field("resile.reason") == Some("backoff")
            && e.field("monotonic_counter.resile.events") == Some("1")));
}

/// Runs `call` on a current-thread runtime, so that the engine's timer, and with it every span
/// and event of the call, runs on this thread.
fn captured<T, F: std::future::Future<Output = T>>(call: F) -> T {
    capture();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call)
}

fn client() -> Client {
    Client::builder()
        .engine(fast_policy())
        .seed(7)
        .build()
        .unwrap()
}

#[test]
fn the_client_traces_each_attempt_in_the_conventions_names() {
    captured(async {
        let server = chaos().await;
        let response = client()
            .get(script(&server, "otel-client"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_conventions(capture(), &server, "resile.call");
    });
}

#[cfg(feature = "tower")]
#[test]
fn the_tower_service_traces_the_same() {
    use http_body_util::Full;
    use resile::tower::{ResileBody, ResileLayer};
    use tower::{Layer, Service, ServiceExt};

    captured(async {
        let server = chaos().await;
        let hyper =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<ResileBody<Full<bytes::Bytes>>>();
        let mut service = ResileLayer::new(&client()).layer(hyper);
        let request = http::Request::get(script(&server, "otel-tower"))
            .body(Full::default())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_conventions(capture(), &server, "resile.tower");
    });
}

#[cfg(feature = "reqwest-middleware")]
#[test]
fn the_middleware_traces_the_same() {
    use resile::middleware::ResileMiddleware;

    captured(async {
        let server = chaos().await;
        let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(ResileMiddleware::new(&client()))
            .build();
        let response = http.get(script(&server, "otel-mw")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_conventions(capture(), &server, "resile.middleware");
    });
}

/// The SDK's in-memory exporters, installed as the global providers once for this binary
/// (resile's instruments are made on the providers of the first call).
struct Sdk {
    spans: InMemorySpanExporter,
    tracer: SdkTracerProvider,
    metrics: InMemoryMetricExporter,
    meter: SdkMeterProvider,
}

fn sdk() -> &'static Sdk {
    static SDK: OnceLock<Sdk> = OnceLock::new();
    SDK.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let tracer = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        global::set_tracer_provider(tracer.clone());
        let metrics = InMemoryMetricExporter::default();
        let meter = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        global::set_meter_provider(meter.clone());
        Sdk {
            spans,
            tracer,
            metrics,
            meter,
        }
    })
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn on_port(s: &SpanData, port: u16) -> bool {
    attr(&s.attributes, "server.port") == Some(&Value::I64(i64::from(port)))
}

/// A server that answers 503 to its first request and 200 to the others.
async fn flaky_once() -> common::MiniServer {
    let answered = Arc::new(std::sync::atomic::AtomicU32::new(0));
    common::mini_server(move |_| {
        let n = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            match n {
                0 => common::MiniResponse::status(503),
                _ => common::MiniResponse::status(200).body("ok"),
            }
        }
    })
    .await
}

/// The points of `metric` (any scope but resile's own) that carry `server.port = port`.
fn bridged_points(name: &str, port: u16) -> Vec<(Vec<KeyValue>, f64)> {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    let sdk = sdk();
    sdk.meter.force_flush().unwrap();
    let exported = sdk.metrics.get_finished_metrics().unwrap();
    let metric = exported
        .iter()
        .flat_map(|r| r.scope_metrics())
        .filter(|s| s.scope().name() != "resile")
        .flat_map(|s| s.metrics())
        .filter(|m| m.name() == name)
        .last()
        .unwrap_or_else(|| panic!("no {name}"));
    let points: Vec<(Vec<KeyValue>, f64)> = match metric.data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => h
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.count() as f64))
            .collect(),
        AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.value() as f64))
            .collect(),
        other => panic!("{name}: {other:?}"),
    };
    let port = Value::I64(i64::from(port));
    points
        .into_iter()
        .filter(|(attrs, _)| attr(attrs, "server.port").is_none_or(|p| *p == port))
        .collect()
}

#[test]
fn tracing_opentelemetry_turns_them_into_client_spans_and_instruments() {
    let port = captured(async {
        let server = flaky_once().await;
        let response = client()
            .get(format!("{}/b?api_key=s3cret", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        server.addr.port()
    });
    let sdk = sdk();
    sdk.tracer.force_flush().unwrap();
    let spans = sdk.spans.get_finished_spans().unwrap();
    let bridged: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.instrumentation_scope.name() == "tracing" && on_port(s, port))
        .collect();
    assert_eq!(bridged.len(), 2, "{spans:#?}");
    let call = spans
        .iter()
        .find(|s| s.span_context.span_id() == bridged[0].parent_span_id)
        .expect("the attempt's parent");
    assert_eq!(call.name, "resile.call");
    for a in &bridged {
        assert_eq!(a.name, "GET");
        assert_eq!(a.span_kind, opentelemetry::trace::SpanKind::Client);
        assert_eq!(a.parent_span_id, call.span_context.span_id());
        let url = attr(&a.attributes, "url.full")
            .unwrap()
            .as_str()
            .to_string();
        assert!(!url.contains("s3cret"), "{url}");
    }
    assert!(matches!(
        bridged[0].status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        attr(&bridged[0].attributes, "error.type")
            .map(Value::as_str)
            .as_deref(),
        Some("503")
    );
    // The decisions are the call span's events, each with the engine's reason.
    let retry = call
        .events
        .events
        .iter()
        .find(|e| e.name.contains(" retry "))
        .unwrap_or_else(|| panic!("{:#?}", call.events));
    assert!(attr(&retry.attributes, "why").is_some(), "{retry:?}");

    // MetricsLayer: the per-attempt histogram and the retry counted.
    let durations = bridged_points("http.client.request.duration", port);
    let attempts: f64 = durations
        .iter()
        .filter(|(attrs, _)| attr(attrs, "server.port").is_some())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(attempts, 2.0, "{durations:#?}");
    let events = bridged_points("resile.events", port);
    assert!(
        events.iter().any(|(attrs, n)| {
            *n >= 1.0
                && attr(attrs, "resile.event").map(Value::as_str).as_deref()
                    == Some("retry_scheduled")
        }),
        "{events:#?}"
    );
}

#[cfg(feature = "opentelemetry")]
mod otel {
    //! The `opentelemetry` feature, on the SDK's in-memory exporters installed as the global
    //! providers (once for this test binary).

    use opentelemetry::context::FutureExt;
    use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
    use opentelemetry::{global, Context, Value};
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::trace::SpanData;

    use super::{attr, client, on_port, sdk};
    use crate::common::{mini_server, MiniResponse};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_metrics_and_traceparent_through_the_sdk() {
        let sdk = sdk();
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = answered.clone();
        let server = mini_server(move |_| {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match n {
                    0 => MiniResponse::status(503),
                    _ => MiniResponse::status(200).body("ok"),
                }
            }
        })
        .await;
        let port = server.addr.port();
        let client = client();

        // Under the caller's span: the attempts carry their own span's traceparent.
        let caller = global::tracer("test").start("caller");
        let trace_id = caller.span_context().trace_id();
        let cx = Context::current_with_span(caller);
        let response = client
            .get(format!("{}/x?token=s3cret", server.url()))
            .send()
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        cx.span().end();
        sdk.tracer.force_flush().unwrap();

        let spans: Vec<SpanData> = sdk.spans.get_finished_spans().unwrap();
        let attempts: Vec<&SpanData> = spans
            .iter()
            .filter(|s| {
                s.instrumentation_scope.name() == "resile"
                    && s.span_kind == SpanKind::Client
                    && on_port(s, port)
            })
            .collect();
        assert_eq!(attempts.len(), 2, "{spans:#?}");
        let call = spans
            .iter()
            .find(|s| {
                s.instrumentation_scope.name() == "resile"
                    && s.name == "resile.call"
                    && s.span_context.trace_id() == trace_id
            })
            .expect("the call's span, in the caller's trace");
        for (i, a) in attempts.iter().enumerate() {
            assert_eq!(a.name, "GET");
            assert_eq!(a.parent_span_id, call.span_context.span_id());
            assert_eq!(
                attr(&a.attributes, "http.request.method")
                    .map(Value::as_str)
                    .as_deref(),
                Some("GET")
            );
            assert_eq!(
                attr(&a.attributes, "server.address")
                    .map(Value::as_str)
                    .as_deref(),
                Some("127.0.0.1")
            );
            let url = attr(&a.attributes, "url.full")
                .unwrap()
                .as_str()
                .to_string();
            assert!(!url.contains("s3cret"), "{url}");
            let resend = attr(&a.attributes, "http.request.resend_count");
            assert_eq!(resend, (i > 0).then_some(&Value::I64(1)), "{a:?}");
        }
        assert_eq!(
            attr(&attempts[0].attributes, "http.response.status_code"),
            Some(&Value::I64(503))
        );
        assert_eq!(
            attr(&attempts[0].attributes, "error.type")
                .map(Value::as_str)
                .as_deref(),
            Some("503")
        );
        assert_eq!(
            attr(&attempts[1].attributes, "http.response.status_code"),
            Some(&Value::I64(200))
        );
        assert_eq!(attr(&attempts[1].attributes, "error.type"), None);
        // The decisions are the call span's events, with the engine's reason.
        let retry = call
            .events
            .events
            .iter()
            .find(|e| e.name == "retry_scheduled")
            .unwrap_or_else(|| panic!("{:#?}", call.events));
        assert_eq!(
            attr(&retry.attributes, "resile.reason")
                .map(Value::as_str)
                .as_deref(),
            Some("backoff")
        );
        // Each attempt's traceparent names its own span in the caller's trace.
        let sent: Vec<String> = server
            .requests()
            .iter()
            .map(|r| r.header("traceparent").expect("a traceparent").to_string())
            .collect();
        let expected: Vec<String> = attempts
            .iter()
            .map(|a| {
                format!(
                    "00-{:032x}-{:016x}-01",
                    a.span_context.trace_id(),
                    a.span_context.span_id()
                )
            })
            .collect();
        assert_eq!(sent, expected);

        // Without a caller's trace: spans still, but nothing invented on the wire.
        let before = server.requests().len();
        let response = client
            .get(format!("{}/y", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let later = &server.requests()[before..];
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].header("traceparent"), None);

        // The metrics: an attempt duration each, in the conventions' buckets, and the retry.
        sdk.meter.force_flush().unwrap();
        let exported = sdk.metrics.get_finished_metrics().unwrap();
        let metrics: Vec<_> = exported
            .iter()
            .flat_map(|r| r.scope_metrics())
            .filter(|s| s.scope().name() == "resile")
            .flat_map(|s| s.metrics())
            .collect();
        let duration = metrics
            .iter()
            .rev()
            .find(|m| m.name() == "http.client.request.duration")
            .expect("the duration histogram");
        assert_eq!(duration.unit(), "s");
        let AggregatedMetrics::F64(MetricData::Histogram(h)) = duration.data() else {
            panic!("a histogram: {duration:?}");
        };
        let ours: Vec<_> = h
            .data_points()
            .filter(|p| {
                p.attributes().any(|kv| {
                    kv.key.as_str() == "server.port" && kv.value == Value::I64(i64::from(port))
                })
            })
            .collect();
        assert_eq!(ours.iter().map(|p| p.count()).sum::<u64>(), 3, "{ours:#?}");
        let bounds: Vec<f64> = ours[0].bounds().collect();
        assert_eq!(bounds.first(), Some(&0.005));
        assert_eq!(bounds.last(), Some(&10.0));
        let events = metrics
            .iter()
            .rev()
            .find(|m| m.name() == "resile.events")
            .expect("the events counter");
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = events.data() else {
            panic!("a sum: {events:?}");
        };
        let retries: u64 = sum
            .data_points()
            .filter(|p| {
                p.attributes().any(|kv| {
                    kv.key.as_str() == "resile.event" && kv.value.as_str() == "retry_scheduled"
                })
            })
            .map(|p| p.value())
            .sum();
        assert!(retries >= 1, "{sum:#?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_readme_example_runs() {
        sdk();
        let server = mini_server(|_| async { MiniResponse::status(200) }).await;
        let status = super::traced_call(&client(), &format!("{}/z", server.url()))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let sent = server.requests();
        let traceparent = sent[0].header("traceparent").expect("a traceparent");
        assert!(
            traceparent.starts_with("00-") && traceparent.len() == 55,
            "{traceparent}"
        );
    }
}
