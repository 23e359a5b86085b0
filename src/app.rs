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
use crate::gallery::{self, Dims, GalleryQuery};
use crate::params::{Accepted, FormatParam, OutputFormat, Params};
use crate::pipeline::{self, Settings, SourceFormat, StageTimings};
use crate::policy::Policy;
use crate::signing;
use crate::source::{s3::S3Source, Key, Listed, Source};
use crate::uploads::{self, LocalGrant, UploadRequest};
use bytes::Bytes;
use fast_image_resize::Resizer;
use futures_util::StreamExt;
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
    /// Bounds CPU-heavy renders to the number of workers; the rest wait their turn. Its
    /// permits move into the blocking render and are released when the render ends.
    cpu: Arc<Semaphore>,
    /// Resizers keep their scratch buffers between requests.
    resizers: Mutex<Vec<Resizer>>,
    /// Bodies above this many bytes are redirected to a presigned S3 GET (S3 source only).
    response_budget: Option<u64>,
    /// Allow-lists applied to every parsed request.
    policy: Policy,
    /// MiB that renders may hold at once, each weighed before it starts (`pipeline::prepare`);
    /// requests beyond it queue, then get a 503. Owned by the render, like `cpu`.
    memory: Arc<Semaphore>,
    /// Gallery dimensions by key and version (header reads, never pixels).
    dims: gallery::DimsCache,
    /// What gallery thumbnail URLs may ask for under the allow-lists.
    thumbs: gallery::ThumbPolicy,
    /// The local server's bound address (port 0 resolved), for URLs back to ourselves when
    /// `IMGFN_PUBLIC_URL` is not set.
    bound: std::sync::OnceLock<std::net::SocketAddr>,
}

impl AppState {
    pub fn new(config: Config, source: Source) -> AppState {
        let policy = config.policy();
        AppState {
            cache: Cache::new(config.cache_mib.saturating_mul(1 << 20)),
            settings: config.settings(),
            cpu: Arc::new(Semaphore::new(config.workers())),
            resizers: Mutex::new(Vec::new()),
            response_budget: config.max_response_bytes,
            thumbs: gallery::ThumbPolicy::from_policy(&policy),
            policy,
            memory: Arc::new(Semaphore::new(
                usize::try_from(config.memory_budget_mib).unwrap_or(usize::MAX),
            )),
            dims: gallery::dims_cache(),
            bound: std::sync::OnceLock::new(),
            source,
            config,
        }
    }

    /// Record the address the local server bound (once).
    pub fn set_bound_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// The origin of URLs this service hands out: `IMGFN_PUBLIC_URL`, else the address the
    /// local server listens on. Never a request's `Host` or `X-Forwarded-*` headers, which
    /// the client chooses.
    pub fn public_origin(&self) -> String {
        match (&self.config.public_url, self.bound.get()) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => format!("http://{}", self.config.addr),
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

/// Bytes in whole MiB, rounded up (the unit of the memory budget).
fn mebibytes(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX)
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
    // Never let a browser guess a type: an original with HTML appended stays an image.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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

async fn route(
    state: &AppState,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    if let Some(builtin) = req.uri().path().strip_prefix("/_/") {
        return route_builtin(state, req, builtin, trace).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(Error::MethodNotAllowed("GET, HEAD"));
    }
    let key = Key::from_uri_path(req.uri().path())?;
    trace.key = Some(key.to_string());
    // Signatures first: an unsigned request costs no I/O at all.
    let now = unix_now();
    let expires = match &state.config.signing_keys {
        Some(keys) => keys.verify(req.uri().path(), req.uri().query(), now)?,
        None => None,
    };
    // A response to an expiring URL is cached no longer than the URL lives.
    let cache_control = match expires {
        Some(exp) => signing::cache_control_until(&state.config.cache_control, exp, now),
        None => state.config.cache_control.clone(),
    };
    let query = signing::transformation_query(req.uri().query());
    let (params, download) = Params::parse(query.as_deref())?.without_download();
    let params = state.policy.apply(params)?;
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
            // The key exists (stat above): only now is a URL signed for it.
            let name = download.then(|| download_name(&key, None));
            return Ok(redirect(
                &Box::pin(s3.presign_original(&key, name.as_deref())).await?,
            ));
        }
        let (source, fetch) = fetch_source(state, &key, &stat.version).await?;
        trace.fetch = Some(fetch);
        let format = SourceFormat::detect(&source.bytes)?;
        let mut resp = image_response(
            req.headers(),
            source.bytes.clone(),
            format.content_type(),
            &source.etag,
            &cache_control,
            false,
        );
        // Served as stored: whatever else the file holds can never run as a page.
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
        return Ok(attach(resp, download.then(|| download_name(&key, None))));
    }

    let choice = match params.format {
        None => FormatChoice::Source,
        Some(FormatParam::Exact(f)) => FormatChoice::Exact(f),
        // Formats the allow-list does not name are never negotiated.
        Some(FormatParam::Auto) => FormatChoice::Auto(
            state.policy.mask(Accepted::from_header(
                req.headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            )),
        ),
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
                &cache_control,
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
        let filename = download.then(|| download_name(&key, Some(r.format)));
        let url = Box::pin(s3.offload(
            &name,
            r.bytes.clone(),
            r.format.content_type(),
            filename.as_deref(),
        ))
        .await?;
        return Ok(redirect(&url));
    }
    let resp = image_response(
        req.headers(),
        r.bytes.clone(),
        r.format.content_type(),
        &r.etag,
        &cache_control,
        matches!(choice, FormatChoice::Auto(_)),
    );
    Ok(attach(
        resp,
        download.then(|| download_name(&key, Some(r.format))),
    ))
}

/// The file name of a download: the key's last segment, with the output's extension when
/// the image was transformed.
fn download_name(key: &Key, format: Option<OutputFormat>) -> String {
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
fn attach(mut resp: Response<Bytes>, filename: Option<String>) -> Response<Bytes> {
    if let Some(name) = filename {
        if resp.status() == StatusCode::OK {
            if let Ok(v) = HeaderValue::from_str(&crate::source::content_disposition(&name)) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
        }
    }
    resp
}

/// Request bodies of the image API and `POST /_/uploads` are small; anything larger is
/// refused unread. Local uploads (`PUT /_/uploads/<key>`) may carry up to the upload limit.
pub const MAX_REQUEST_BODY: u64 = 1 << 20;

/// What an edge must know before it reads a request body: the largest body it may read.
/// A local upload's URL is checked here, so a forged or expired one is refused before a
/// byte of its body is read.
pub fn body_limit(state: &AppState, req: &Request<()>) -> Result<u64> {
    if req.method() == Method::PUT && req.uri().path().starts_with("/_/uploads/") {
        local_grant(state, req)?;
        return Ok(state.config.max_upload_bytes);
    }
    Ok(MAX_REQUEST_BODY)
}

/// The routes under `/_/` (keys under `_/` are reserved for them).
async fn route_builtin(
    state: &AppState,
    req: &Request<Bytes>,
    path: &str,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "uploads" if method == Method::POST => create_upload(state, req, trace).await,
        "uploads" => Err(Error::MethodNotAllowed("POST")),
        p if p.starts_with("uploads/") => {
            if method != Method::PUT {
                return Err(Error::MethodNotAllowed("PUT"));
            }
            local_upload(state, req, trace).await
        }
        "gallery" | "gallery.js" | "gallery.json" if !state.config.gallery_enabled() => {
            Err(Error::NotFound)
        }
        "gallery" | "gallery.js" | "gallery.json" if !read => {
            Err(Error::MethodNotAllowed("GET, HEAD"))
        }
        "gallery" => Ok(static_response(
            gallery::PAGE_HTML,
            "text/html; charset=utf-8",
        )),
        "gallery.js" => Ok(static_response(
            gallery::PAGE_JS,
            "text/javascript; charset=utf-8",
        )),
        "gallery.json" => gallery_json(state, req).await,
        _ => Err(Error::NotFound),
    }
}

fn static_response(body: &'static str, content_type: &'static str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(body.as_bytes()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(gallery::PAGE_CSP),
    );
    // `X-Content-Type-Options: nosniff` is added by `handle`, to every response.
    set_content_length(&mut resp);
    resp
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Bytes> {
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

fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn upload_token(state: &AppState) -> Result<&uploads::UploadToken> {
    state.config.upload_token.as_ref().ok_or_else(|| {
        Error::Forbidden("uploads are not enabled on this server (IMGFN_UPLOAD_TOKEN)".into())
    })
}

/// `POST /_/uploads`: check the token, the type and the size, choose the key, sign a PUT.
async fn create_upload(
    state: &AppState,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let token = upload_token(state)?;
    token.check(header_str(req, header::AUTHORIZATION))?;
    let upload = UploadRequest::parse(req.body(), state.config.max_upload_bytes)?;
    let now = unix_now();
    let key = uploads::new_key(&state.config.upload_prefix, now, upload.content_type)?;
    trace.key = Some(key.to_string());
    let expires = now + state.config.upload_expiry_secs;
    let content_type = upload.content_type.content_type();
    let (url, headers) = match state.source.as_s3() {
        Some(s3) => {
            let expiry = Duration::from_secs(state.config.upload_expiry_secs);
            Box::pin(s3.presign_put(&key, content_type, upload.bytes, expiry)).await?
        }
        None => {
            let grant = LocalGrant {
                key: key.clone(),
                content_type: upload.content_type,
                bytes: upload.bytes,
                expires,
            };
            let url = format!(
                "{}{}",
                state.public_origin(),
                token.local_signer().sign(&grant)
            );
            (url, Vec::new())
        }
    };
    // The client must send exactly these (S3 also lists what it signed).
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-type".into(), content_type.into());
    header_map.insert("content-length".into(), upload.bytes.to_string().into());
    for (name, value) in headers {
        if name != "host" {
            header_map.insert(name, value.into());
        }
    }
    tracing::info!(key = %key, filename = %upload.filename, bytes = upload.bytes, "upload URL issued");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "key": key.as_str(),
            "upload_url": url,
            "method": "PUT",
            "headers": header_map,
            "expires_at": uploads::rfc3339(expires),
        }),
    ))
}

/// The grant of a `PUT /_/uploads/<key>` request (local folder only), from its URL and
/// headers.
fn local_grant<B>(state: &AppState, req: &Request<B>) -> Result<LocalGrant> {
    if state.source.as_fs().is_none() {
        // With S3, uploads go to S3's presigned URL, never through imgfn.
        return Err(Error::NotFound);
    }
    let token = upload_token(state)?;
    let raw_key = req
        .uri()
        .path()
        .strip_prefix("/_/uploads")
        .ok_or(Error::NotFound)?;
    let key = Key::from_uri_path(raw_key)?;
    let content_length = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    token.local_signer().verify(
        key,
        req.uri().query(),
        header_str(req, header::CONTENT_TYPE),
        content_length,
        unix_now(),
    )
}

/// `PUT /_/uploads/<key>`: the local folder's stand-in for a presigned S3 PUT.
async fn local_upload(
    state: &AppState,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let grant = local_grant(state, req)?;
    trace.key = Some(grant.key.to_string());
    if req.body().len() as u64 != grant.bytes {
        return Err(Error::Forbidden(format!(
            "this upload URL is for exactly {} bytes",
            grant.bytes
        )));
    }
    let fs = state.source.as_fs().ok_or(Error::NotFound)?;
    fs.write_new(&grant.key, req.body().clone()).await?;
    let mut resp = json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "key": grant.key.as_str(), "bytes": grant.bytes }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/{}", uploads::encode_key(&grant.key))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /_/gallery.json`: one page of originals with dimensions and thumbnail URLs.
async fn gallery_json(state: &AppState, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    // A listing hands out (signed) URLs to everything: with a token configured, it needs it.
    if let Some(token) = &state.config.upload_token {
        token.check(header_str(req, header::AUTHORIZATION))?;
    }
    let q = GalleryQuery::parse(req.uri().query())?;
    let listing = state
        .source
        .list(&q.prefix, q.cursor.as_deref(), q.limit)
        .await?;
    // Thumbnail signatures expire; `exp` is rounded so listings within half the lifetime
    // hand out the same URLs and browser and CDN caches keep hitting.
    let exp = gallery::link_expiry(unix_now(), state.config.gallery_link_secs);
    let link = |path: String| match &state.config.signing_keys {
        Some(keys) => keys.sign(&path, Some(exp)),
        None => path,
    };
    // Boxed: the futures borrow the entries, and an unboxed closure-made future trips the
    // compiler's higher-ranked lifetime check once the handler must be `Send`.
    type DimsFuture<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Dims>> + Send + 'a>>;
    // Only images are listed (by name; what they really are is read below).
    let entries: Vec<&Listed> = listing
        .entries
        .iter()
        .filter(|e| gallery::looks_like_image(&e.key))
        .collect();
    let reads: Vec<DimsFuture<'_>> = entries
        .iter()
        .copied()
        .map(|entry| Box::pin(dims_of(state, entry)) as DimsFuture<'_>)
        .collect();
    let dims: Vec<Result<Dims>> = futures_util::stream::iter(reads)
        .buffered(8)
        .collect()
        .await;
    let items: Vec<serde_json::Value> = entries
        .iter()
        .copied()
        .zip(&dims)
        .map(|(entry, dims)| gallery::item_json(entry, dims, &state.thumbs, link))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "items": items,
            "next_cursor": listing.next_cursor.as_deref().map(gallery::encode_cursor),
        }),
    ))
}

/// Dimensions of a listed original from its header, cached by version. What the image is
/// (corrupt, unsupported) is remembered; a failure to read it (store down) is not.
async fn dims_of(state: &AppState, entry: &Listed) -> Result<Dims> {
    let cache_key = (entry.key.clone(), entry.version.clone());
    let read = async {
        let head = state
            .source
            .head_bytes(&entry.key, gallery::HEADER_BYTES)
            .await?;
        let complete = head.len() as u64 >= entry.size;
        match Dims::probe(&head, complete) {
            Ok(Some(d)) => return Ok(Ok(d)),
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
        // A header longer than the first read (large EXIF preview or ICC profile).
        let max = state.config.max_source_bytes;
        if entry.size > max {
            return Ok(Err(crate::source::too_large(entry.size, max)));
        }
        let full = state.source.fetch(&entry.key, max).await?;
        Ok(Dims::probe(&full, true)
            .and_then(|d| d.ok_or_else(|| Error::corrupt("no image header"))))
    };
    state
        .dims
        .try_get_with(cache_key, read)
        .await
        .map_err(|e: Arc<Error>| (*e).clone())?
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
    // Header only: what the whole render will cost, before admitting it.
    let info = pipeline::probe(&source.bytes)?;
    let format = resolve_format(choice, &info);
    state.policy.check_output(format)?;
    let job = pipeline::prepare(&info, params, format, &state.settings.limits)?;
    let timeout = Duration::from_millis(state.config.queue_timeout_ms);
    // Owned permits: they move into the blocking task and are released when the render
    // ends, not when this future is dropped (a client that hangs up frees nothing early).
    let memory = tokio::time::timeout(
        timeout,
        state
            .memory
            .clone()
            .acquire_many_owned(mebibytes(job.memory)),
    )
    .await
    .map_err(|_| {
        Error::Overloaded(format!(
            "too many large images are being processed; waited {} ms",
            state.config.queue_timeout_ms
        ))
    })?
    .map_err(|_| Error::Internal("memory budget closed".into()))?;
    let cpu = state
        .cpu
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::Internal("worker pool closed".into()))?;
    let mut resizer = state.take_resizer();
    let settings = state.settings;
    let params = params.clone();
    let bytes = source.bytes.clone();
    let (rendered, resizer) = tokio::task::spawn_blocking(move || {
        let result = pipeline::guard("render", || {
            pipeline::render_job(
                &bytes,
                &info,
                &job,
                &params,
                format,
                &settings,
                &mut resizer,
            )
        });
        drop((cpu, memory));
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
