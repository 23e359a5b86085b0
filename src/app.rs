//! `AppState` and `handle`: the only HTTP-aware part of the core.
//!
//! The local server and the Lambda adapter both turn their input into an
//! `http::Request<Bytes>` and call [`handle`], which always returns a response: every error
//! becomes its JSON body here, and is logged once, here.

use crate::cache::{
    etag_of, Cache, CacheKey, CacheValue, FormatChoice, RenditionEntry, SourceEntry,
};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::params::{Accepted, FormatParam, OutputFormat, Params};
use crate::pipeline::{self, Settings, SourceFormat, StageTimings};
use crate::policy::Policy;
use crate::signing;
use crate::source::{s3::S3Source, Key, Source};
use bytes::Bytes;
use fast_image_resize::Resizer;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Everything built once at start-up and borrowed by every request.
pub struct AppState {
    pub config: Config,
    source: Source,
    cache: Cache,
    settings: Settings,
    /// Bounds CPU-heavy renders to the number of workers; the rest wait their turn.
    cpu: Semaphore,
    /// Resizers keep their scratch buffers between requests.
    resizers: Mutex<Vec<Resizer>>,
    /// Bodies above this many bytes are redirected to a presigned S3 GET (S3 source only).
    response_budget: Option<u64>,
    /// Allow-lists applied to every parsed request.
    policy: Policy,
    /// Megapixels that may be decoded at once; requests beyond it queue, then get a 503.
    pixels: Semaphore,
    pixel_budget_mp: u32,
}

impl AppState {
    pub fn new(config: Config, source: Source) -> AppState {
        AppState {
            cache: Cache::new(config.cache_mib.saturating_mul(1 << 20)),
            settings: config.settings(),
            cpu: Semaphore::new(config.workers()),
            resizers: Mutex::new(Vec::new()),
            response_budget: config.max_response_bytes,
            policy: config.policy(),
            pixels: Semaphore::new(megapixels(config.pixel_budget) as usize),
            pixel_budget_mp: megapixels(config.pixel_budget),
            source,
            config,
        }
    }

    /// The S3 backend when `len` bytes are too many to answer directly.
    fn offload_target(&self, len: u64) -> Option<&S3Source> {
        let budget = self.response_budget?;
        (len > budget).then(|| self.source.as_s3()).flatten()
    }

    fn take_resizer(&self) -> Resizer {
        self.resizers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    fn return_resizer(&self, r: Resizer) {
        if let Ok(mut pool) = self.resizers.lock() {
            pool.push(r);
        }
    }
}

/// Pixels in whole megapixels, rounded up (the unit of the decode budget).
fn megapixels(pixels: u64) -> u32 {
    u32::try_from(pixels.div_ceil(1_000_000).max(1)).unwrap_or(u32::MAX)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a request did, for its one log line and its `Server-Timing` header.
#[derive(Debug, Default)]
struct Trace {
    key: Option<String>,
    params: Option<String>,
    cache_hit: Option<bool>,
    fetch: Option<Duration>,
    stages: Option<StageTimings>,
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
            if let Some(s) = self.stages {
                parts.push(format!("decode;dur={}", ms(s.decode)));
                parts.push(format!("resize;dur={}", ms(s.resize)));
                parts.push(format!("encode;dur={}", ms(s.encode)));
            }
        }
        parts.push(format!("total;dur={}", ms(total)));
        parts.join(", ")
    }
}

/// Answer one request. Never fails: errors become JSON responses.
pub async fn handle(state: &AppState, req: Request<Bytes>) -> Response<Bytes> {
    let started = Instant::now();
    let mut trace = Trace::default();
    let is_head = req.method() == Method::HEAD;
    let mut response = match route(state, &req, &mut trace).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let total = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&trace.server_timing(total)) {
        response.headers_mut().insert("server-timing", v);
    }
    log_request(&req, &response, &trace, total);
    if is_head {
        // Same headers as GET (Content-Length included), no body.
        *response.body_mut() = Bytes::new();
    }
    response
}

fn log_request(req: &Request<Bytes>, resp: &Response<Bytes>, trace: &Trace, total: Duration) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let stages = trace.stages.unwrap_or_default();
    let has_stages = trace.stages.is_some();
    tracing::info!(
        target: "imgfn::request",
        method = %req.method(),
        key = trace.key.as_deref().unwrap_or(""),
        params = trace.params.as_deref().unwrap_or(""),
        status = resp.status().as_u16(),
        cache = match trace.cache_hit { Some(true) => "hit", Some(false) => "miss", None => "-" },
        fetch_ms = ms(trace.fetch),
        decode_ms = ms(has_stages.then_some(stages.decode)),
        resize_ms = ms(has_stages.then_some(stages.resize)),
        encode_ms = ms(has_stages.then_some(stages.encode)),
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
    if matches!(e, Error::MethodNotAllowed) {
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
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

async fn route(
    state: &AppState,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let key = Key::from_uri_path(req.uri().path())?;
    trace.key = Some(key.to_string());
    // Signatures first: an unsigned request costs no I/O at all.
    if let Some(keys) = &state.config.signing_keys {
        keys.verify(req.uri().path(), req.uri().query(), unix_now())?;
    }
    let query = signing::transformation_query(req.uri().query());
    let params = state.policy.apply(Params::parse(query.as_deref())?)?;
    trace.params = Some(params.to_string());

    let stat = state.source.stat(&key).await?;
    if stat.size > state.config.max_source_bytes {
        return Err(crate::source::too_large(
            stat.size,
            state.config.max_source_bytes,
        ));
    }

    if params.is_empty() {
        if let Some(s3) = state.offload_target(stat.size) {
            return Ok(redirect(&Box::pin(s3.presign_original(&key, None)).await?));
        }
        let (source, fetch) = fetch_source(state, &key, &stat.version).await?;
        trace.fetch = Some(fetch);
        let format = SourceFormat::detect(&source.bytes)?;
        return Ok(image_response(
            req.headers(),
            source.bytes.clone(),
            format.content_type(),
            &source.etag,
            &state.config.cache_control,
            false,
        ));
    }

    let choice = match params.format {
        None => FormatChoice::Source,
        Some(FormatParam::Exact(f)) => FormatChoice::Exact(f),
        Some(FormatParam::Auto) => FormatChoice::Auto(Accepted::from_header(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )),
        Some(FormatParam::Json) => {
            let (source, fetch) = fetch_source(state, &key, &stat.version).await?;
            trace.fetch = Some(fetch);
            let info = pipeline::probe(&source.bytes)?;
            let body = pipeline::metadata_json(&info, source.bytes.len()).to_string();
            let etag = etag_of(body.as_bytes());
            return Ok(image_response(
                req.headers(),
                Bytes::from(body),
                "application/json",
                &etag,
                &state.config.cache_control,
                false,
            ));
        }
    };
    let cache_key = CacheKey::Rendition {
        key: key.to_string(),
        version: stat.version.clone(),
        params: params.clone(),
        format: choice,
    };
    let (value, hit) = state
        .cache
        .get_or_try(
            cache_key,
            render_rendition(state, &key, &stat.version, &params, choice),
        )
        .await?;
    let CacheValue::Rendition(r) = value else {
        return Err(Error::Internal(
            "cache held a source under a rendition key".into(),
        ));
    };
    trace.cache_hit = Some(hit);
    trace.fetch = Some(r.fetch);
    trace.stages = Some(r.timings);
    if let Some(s3) = state.offload_target(r.bytes.len() as u64) {
        // Named by content hash: written once, whoever asks again gets the same object.
        let name = format!("{}.{}", r.etag.trim_matches('"'), r.format.name());
        let url = Box::pin(s3.offload(&name, r.bytes.clone(), r.format.content_type())).await?;
        return Ok(redirect(&url));
    }
    Ok(image_response(
        req.headers(),
        r.bytes.clone(),
        r.format.content_type(),
        &r.etag,
        &state.config.cache_control,
        matches!(choice, FormatChoice::Auto(_)),
    ))
}

/// The original bytes, from the warm cache or the source (once for concurrent callers).
async fn fetch_source(
    state: &AppState,
    key: &Key,
    version: &str,
) -> Result<(Arc<SourceEntry>, Duration)> {
    let started = Instant::now();
    let cache_key = CacheKey::Source {
        key: key.to_string(),
        version: version.to_string(),
    };
    let (value, _) = state
        .cache
        .get_or_try(cache_key, async {
            let bytes = state
                .source
                .fetch(key, state.config.max_source_bytes)
                .await?;
            let etag = etag_of(&bytes);
            Ok(CacheValue::Source(Arc::new(SourceEntry { bytes, etag })))
        })
        .await?;
    match value {
        CacheValue::Source(s) => Ok((s, started.elapsed())),
        CacheValue::Rendition(_) => Err(Error::Internal(
            "cache held a rendition under a source key".into(),
        )),
    }
}

/// The output format for `choice`, once the source header is known.
fn resolve_format(choice: FormatChoice, info: &pipeline::SourceInfo) -> OutputFormat {
    match choice {
        FormatChoice::Source => info.format.output(),
        FormatChoice::Exact(f) => f,
        FormatChoice::Auto(accepted) => accepted.choose(info.has_alpha),
    }
}

async fn render_rendition(
    state: &AppState,
    key: &Key,
    version: &str,
    params: &Params,
    choice: FormatChoice,
) -> Result<CacheValue> {
    let (source, fetch) = fetch_source(state, key, version).await?;
    // Header only: what the decode will cost, before admitting it.
    let info = pipeline::probe(&source.bytes)?;
    state.settings.limits.check_source(&info)?;
    let weight = megapixels(info.stored_pixels()).min(state.pixel_budget_mp);
    let timeout = Duration::from_millis(state.config.queue_timeout_ms);
    let _pixels = tokio::time::timeout(timeout, state.pixels.acquire_many(weight))
        .await
        .map_err(|_| {
            Error::Overloaded(format!(
                "too many large images are being processed; waited {} ms",
                state.config.queue_timeout_ms
            ))
        })?
        .map_err(|_| Error::Internal("pixel budget closed".into()))?;
    let _cpu = state
        .cpu
        .acquire()
        .await
        .map_err(|_| Error::Internal("worker pool closed".into()))?;
    let mut resizer = state.take_resizer();
    let settings = state.settings;
    let params = params.clone();
    let bytes = source.bytes.clone();
    let (rendered, resizer) = tokio::task::spawn_blocking(move || {
        let format = resolve_format(choice, &info);
        let result = pipeline::render(&bytes, &info, &params, format, &settings, &mut resizer);
        (result, resizer)
    })
    .await
    .map_err(|e| Error::Internal(format!("render task failed: {e}")))?;
    state.return_resizer(resizer);
    let rendered = rendered?;
    let bytes = Bytes::from(rendered.bytes);
    Ok(CacheValue::Rendition(Arc::new(RenditionEntry {
        etag: etag_of(&bytes),
        bytes,
        format: rendered.format,
        width: rendered.width,
        height: rendered.height,
        timings: rendered.timings,
        fetch,
    })))
}

/// A 302 to a presigned URL; shared caches must not keep it past the URL's expiry.
fn redirect(location: &str) -> Response<Bytes> {
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

fn image_response(
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
            stages: Some(StageTimings::default()),
            ..Trace::default()
        };
        let miss = t.server_timing(Duration::from_millis(9));
        for part in [
            "cache;desc=\"miss\"",
            "fetch;dur=3.0",
            "decode;dur=",
            "resize;dur=",
            "encode;dur=",
            "total;dur=9.0",
        ] {
            assert!(miss.contains(part), "{miss}");
        }
        t.cache_hit = Some(true);
        let hit = t.server_timing(Duration::from_millis(1));
        assert!(
            hit.contains("cache;desc=\"hit\"") && !hit.contains("decode"),
            "{hit}"
        );
    }
}
