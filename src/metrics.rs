//! CloudWatch Embedded Metric Format: one JSON line per request on stdout (`IMGFN_METRICS=emf`,
//! the default under Lambda), which CloudWatch Logs turns into metrics with no agent and no
//! API call. Namespace `imgfn`, one dimension `Route` (image, uploads, gallery, ...).
//!
//! Per request: `Latency` and its steps (`FetchLatency`, `DecodeLatency`, `ResizeLatency`,
//! `EncodeLatency`, milliseconds), `CacheHit`/`CacheMiss`, `ResponseBytes`, `ServerErrors` and
//! `ClientErrors` (5xx, 4xx), `AdmissionWait` (time spent waiting for the render budget) and
//! `AdmissionRejected` (a 503: the budget stayed full past `IMGFN_QUEUE_TIMEOUT_MS`). A metric
//! is declared only in the lines that carry its value. `Status` and `Key` ride along as
//! properties, searchable in Logs Insights but not dimensions (which would multiply the
//! metrics billed).
//!
//! The admission wait is measured where the render is admitted (`AppState::admit`), deep
//! inside the cache's single computation; a task-local of the request, set up by
//! [`measure`], carries it back up without threading it through every signature.

use crate::error::Error;
use crate::pipeline::timings::{DECODE, ENCODE};
use crate::respond::Trace;
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "imgfn";

tokio::task_local! {
    /// The request's time spent waiting for admission, summed over its renders.
    static ADMISSION_WAIT: Cell<Option<Duration>>;
}

/// Note `waited` against the request being answered (if any is being measured).
pub(crate) fn note_admission_wait(waited: Duration) {
    let _ = ADMISSION_WAIT.try_with(|c| c.set(Some(c.get().unwrap_or_default() + waited)));
}

/// Run a request's handling, and return what it waited for admission.
pub(crate) async fn measure<F: Future>(work: F) -> (F::Output, Option<Duration>) {
    ADMISSION_WAIT
        .scope(Cell::new(None), async {
            let out = work.await;
            (out, ADMISSION_WAIT.with(Cell::get))
        })
        .await
}

/// What one request did, as the metrics see it.
pub(crate) struct Sample<'a> {
    pub route: &'static str,
    pub status: u16,
    pub bytes: usize,
    pub total: Duration,
    pub trace: &'a Trace,
    pub admission_wait: Option<Duration>,
    /// The error the request ended with, if any.
    pub error: Option<&'a Error>,
}

/// The EMF document of one request, stamped `timestamp_ms` (Unix milliseconds).
pub(crate) fn document(s: &Sample<'_>, timestamp_ms: u64) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut values: Vec<(&str, &str, Value)> = vec![
        ("Latency", "Milliseconds", json!(ms(s.total))),
        ("ResponseBytes", "Bytes", json!(s.bytes)),
        ("ServerErrors", "Count", json!(u8::from(s.status >= 500))),
        (
            "ClientErrors",
            "Count",
            json!(u8::from((400..500).contains(&s.status))),
        ),
    ];
    if let Some(hit) = s.trace.cache_hit {
        values.push(("CacheHit", "Count", json!(u8::from(hit))));
        values.push(("CacheMiss", "Count", json!(u8::from(!hit))));
    }
    // Step latencies only when this request did the work (a cache hit reuses it).
    if s.trace.cache_hit != Some(true) {
        if let Some(fetch) = s.trace.fetch {
            values.push(("FetchLatency", "Milliseconds", json!(ms(fetch))));
        }
        if let Some(t) = &s.trace.stages {
            values.push((
                "DecodeLatency",
                "Milliseconds",
                json!(ms(t.total_of(&[DECODE]))),
            ));
            values.push(("ResizeLatency", "Milliseconds", json!(ms(t.steps_total()))));
            values.push((
                "EncodeLatency",
                "Milliseconds",
                json!(ms(t.total_of(&[ENCODE]))),
            ));
        }
    }
    if let Some(waited) = s.admission_wait {
        values.push(("AdmissionWait", "Milliseconds", json!(ms(waited))));
    }
    let rejected = matches!(s.error, Some(Error::Overloaded(_)));
    if rejected || s.admission_wait.is_some() {
        values.push(("AdmissionRejected", "Count", json!(u8::from(rejected))));
    }
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Route"]],
                "Metrics": values.iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Route".into(), json!(s.route));
    for (name, _, value) in values {
        doc.insert(name.into(), value);
    }
    doc.insert("Status".into(), json!(s.status));
    if let Some(key) = &s.trace.key {
        doc.insert("Key".into(), json!(key));
    }
    Value::Object(doc)
}

/// Write the request's EMF line to stdout (one `write` of one line: lines of concurrent
/// requests never interleave).
pub(crate) fn emit(s: &Sample<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut line = document(s, now).to_string();
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Timings;

    fn metric_names(doc: &Value) -> Vec<&str> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn every_declared_metric_has_its_value() {
        let mut stages = Timings::default();
        stages.push(DECODE, Duration::from_millis(4));
        stages.push(ENCODE, Duration::from_millis(2));
        let trace = Trace {
            key: Some("cat.jpg".into()),
            cache_hit: Some(false),
            fetch: Some(Duration::from_millis(3)),
            stages: Some(stages),
            ..Trace::default()
        };
        let doc = document(
            &Sample {
                route: "image",
                status: 200,
                bytes: 1234,
                total: Duration::from_millis(10),
                trace: &trace,
                admission_wait: Some(Duration::from_millis(1)),
                error: None,
            },
            1_800_000_000_000,
        );
        for name in metric_names(&doc) {
            assert!(doc[name].is_number(), "{name} declared without a value");
        }
        assert_eq!(doc["CacheMiss"], 1);
        assert_eq!(doc["DecodeLatency"], 4.0);
        assert_eq!(doc["AdmissionRejected"], 0);
        // A hit carries no step latencies (they were another request's).
        let hit = Trace {
            cache_hit: Some(true),
            ..trace
        };
        let overloaded = Error::Overloaded("full".into());
        let doc = document(
            &Sample {
                route: "image",
                status: 503,
                bytes: 0,
                total: Duration::from_millis(1),
                trace: &hit,
                admission_wait: None,
                error: Some(&overloaded),
            },
            0,
        );
        let names = metric_names(&doc);
        assert!(!names.contains(&"DecodeLatency") && names.contains(&"CacheHit"));
        assert_eq!(
            (
                doc["AdmissionRejected"].as_u64(),
                doc["ServerErrors"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }
}
