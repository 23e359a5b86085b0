//! Building responses, each kind in one place: JSON errors and bodies, static pages, images
//! with `ETag`/304, redirects, downloads; and the request's `Trace`, which becomes its
//! `Server-Timing` header and its one log line.

use crate::error::Error;
use crate::key::{content_disposition, Key};
use crate::params::OutputFormat;
use crate::pipeline::timings::{Timings, DECODE, ENCODE};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::time::{Duration, Instant};

/// What a request did, for its one log line and its `Server-Timing` header.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub key: Option<String>,
    pub params: Option<String>,
    pub cache_hit: Option<bool>,
    pub fetch: Option<Duration>,
    /// The render's timings: decode, each step by name, encode.
    pub stages: Option<Timings>,
}

impl Trace {
    fn server_timing(&self, total: Duration) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let mut parts = Vec::new();
        if let Some(hit) = self.cache_hit {
            parts.push(format!(
                "cache;desc=\"{}\"",
                if hit { "hit" } else { "miss" }
            ));
        }
        if self.cache_hit != Some(true) {
            if let Some(f) = self.fetch {
                parts.push(format!("fetch;dur={}", ms(f)));
            }
            if let Some(s) = &self.stages {
                for (name, d) in s.iter() {
                    parts.push(format!("{name};dur={}", ms(d)));
                }
            }
        }
        parts.push(format!("total;dur={}", ms(total)));
        parts.join(", ")
    }
}

/// What every answer gets on its way out: `nosniff`, `Server-Timing`, the log line, and no
/// body for `HEAD` (same headers as GET, `Content-Length` included).
pub(crate) fn finish(
    req: &Request<Bytes>,
    mut response: Response<Bytes>,
    trace: &Trace,
    started: Instant,
) -> Response<Bytes> {
    // Never let a browser guess a type: an original with HTML appended stays an image.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let total = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&trace.server_timing(total)) {
        response.headers_mut().insert("server-timing", v);
    }
    log_request(req, &response, trace, total);
    if req.method() == Method::HEAD {
        *response.body_mut() = Bytes::new();
    }
    response
}

fn log_request(req: &Request<Bytes>, resp: &Response<Bytes>, trace: &Trace, total: Duration) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let stages = trace.stages.as_ref();
    let stage = |names: &[&str]| stages.map(|s| s.total_of(names));
    // `resize_ms` is every step between decode and encode (what one "resize" stage timed
    // before renders were steps); `steps` breaks it down, e.g. "resize=1.2 orient=0.1".
    let steps = stages.map(|s| {
        s.steps()
            .map(|(name, d)| format!("{name}={:.1}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    });
    tracing::info!(
        target: "imgfn::request",
        method = %req.method(),
        key = trace.key.as_deref().unwrap_or(""),
        params = trace.params.as_deref().unwrap_or(""),
        status = resp.status().as_u16(),
        cache = match trace.cache_hit { Some(true) => "hit", Some(false) => "miss", None => "-" },
        fetch_ms = ms(trace.fetch),
        decode_ms = ms(stage(&[DECODE])),
        resize_ms = ms(stages.map(Timings::steps_total)),
        encode_ms = ms(stage(&[ENCODE])),
        steps = steps.as_deref(),
        total_ms = total.as_secs_f64() * 1000.0,
        bytes = resp.body().len(),
        "request"
    );
}

/// The JSON error response; the detailed cause is logged, never sent.
pub fn error_response(e: &Error) -> Response<Bytes> {
    if e.is_server_fault() {
        tracing::error!(error = %e, detail = ?e, "request failed");
    } else {
        tracing::debug!(error = %e, detail = ?e, "request refused");
    }
    let body = Bytes::from(e.to_json().to_string());
    let mut resp = Response::new(body);
    *resp.status_mut() = e.status();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Error::MethodNotAllowed(allow) = e {
        h.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if matches!(e, Error::Unauthorized(_)) {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if matches!(e, Error::Overloaded(_)) {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    set_content_length(&mut resp);
    resp
}

fn set_content_length(resp: &mut Response<Bytes>) {
    let len = resp.body().len();
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

/// A JSON body that no cache keeps.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_content_length(&mut resp);
    resp
}

/// A page or script compiled into the binary, revalidated on every use, under `csp`.
pub(crate) fn static_response(
    body: &'static str,
    content_type: &'static str,
    csp: &'static str,
) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(body.as_bytes()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    // `X-Content-Type-Options: nosniff` is added by `finish`, to every response.
    set_content_length(&mut resp);
    resp
}

/// A 302 to a presigned URL; shared caches must not keep it past the URL's expiry.
pub(crate) fn redirect(location: &str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::FOUND;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    set_content_length(&mut resp);
    resp
}

/// Does `If-None-Match` list `etag` (weak comparison, as RFC 9110 asks for this header)?
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// An image (or its metadata) with its validator: a 304 without a body when the client
/// already holds `etag`.
pub(crate) fn image_response(
    req_headers: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    etag: &str,
    cache_control: &str,
    vary_accept: bool,
) -> Response<Bytes> {
    let not_modified = not_modified(req_headers, etag);
    let mut resp = Response::new(if not_modified { Bytes::new() } else { body });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if vary_accept {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set_content_length(&mut resp);
    resp
}

/// The file name of a download: the key's last segment, with the output's extension when
/// the image was transformed.
pub(crate) fn download_name(key: &Key, format: Option<OutputFormat>) -> String {
    let base = key.as_str().rsplit('/').next().unwrap_or(key.as_str());
    match format {
        None => base.to_string(),
        Some(f) => {
            let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
            format!("{stem}.{}", f.extension())
        }
    }
}

/// Add `Content-Disposition: attachment` to a successful response when a download was asked.
pub(crate) fn attach(mut resp: Response<Bytes>, filename: Option<String>) -> Response<Bytes> {
    if let Some(name) = filename {
        if resp.status() == StatusCode::OK {
            if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
        }
    }
    resp
}

/// A request header as text, if it is present and visible ASCII.
pub(crate) fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"abc\"";
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, etag));
        for v in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            assert!(not_modified(&h, etag), "{v}");
        }
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abcd\""));
        assert!(!not_modified(&h, etag));
    }

    #[test]
    fn server_timing_lists_stages_on_a_miss_only() {
        let mut t = Trace {
            cache_hit: Some(false),
            fetch: Some(Duration::from_millis(3)),
            stages: Some(Timings::default()),
            ..Trace::default()
        };
        let stages = t.stages.as_mut().unwrap();
        stages.push(DECODE, Duration::from_millis(4));
        stages.push("resize", Duration::from_micros(1300));
        stages.push("orient", Duration::from_micros(100));
        stages.push(ENCODE, Duration::from_millis(2));
        let miss = t.server_timing(Duration::from_millis(9));
        // Each stage by name, in the order it ran.
        assert_eq!(
            miss,
            "cache;desc=\"miss\", fetch;dur=3.0, decode;dur=4.0, resize;dur=1.3, \
             orient;dur=0.1, encode;dur=2.0, total;dur=9.0"
        );
        t.cache_hit = Some(true);
        let hit = t.server_timing(Duration::from_millis(1));
        assert!(
            hit.contains("cache;desc=\"hit\"") && !hit.contains("decode"),
            "{hit}"
        );
    }
}
