//! The image route, `GET|HEAD /<key>?<transformation>`: verify the signature, parse and
//! police the parameters, stat the original, then answer it as stored, its metadata, its
//! placeholder, or a rendition from the cache (rendered on a miss, admitted against the budget
//! first); oversized answers are redirected to S3. Placeholders are cached by source version
//! and computed like renders: admitted, off the reactor, the permits owned by the work.

use crate::cache::{etag_of, PlaceholderEntry, RenditionEntry, SourceEntry};
use crate::error::{Error, Result};
use crate::params::{FormatChoice, ImageRequest, Mode, Transform};
use crate::pipeline::{self, SourceFormat, Timings};
use crate::placeholder;
use crate::respond::{attach, download_name, image_response, redirect, Trace};
use crate::signing;
use crate::source::Key;
use crate::state::{unix_now, AppState};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `GET|HEAD /<key>?<transformation>`: parse, police, stat, then answer by mode.
pub(crate) async fn get(
    state: &AppState,
    req: &Request<Bytes>,
    key: &Key,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    trace.key = Some(key.to_string());
    let (request, cache_control) = parse(state, req)?;
    trace.params = Some(request.to_string());
    let stat = state.source.stat(key).await?;
    if stat.size > state.config.max_source_bytes {
        return Err(crate::source::too_large(
            stat.size,
            state.config.max_source_bytes,
        ));
    }
    let answer = Answer {
        state,
        req,
        key,
        version: &stat.version,
        cache_control: &cache_control,
    };
    match request.mode {
        Mode::Metadata => answer.metadata(&request, trace).await,
        Mode::Placeholder => answer.placeholder(trace).await,
        Mode::Pixels if request.is_original() => {
            answer.original(stat.size, request.download, trace).await
        }
        Mode::Pixels => answer.rendition(&request, trace).await,
    }
}

/// The signature (first: an unsigned request costs no I/O at all), the query parsed into
/// an [`ImageRequest`] and the allow-lists applied; and the `Cache-Control` of the answer.
fn parse(state: &AppState, req: &Request<Bytes>) -> Result<(ImageRequest, String)> {
    let now = unix_now();
    let expires = match &state.secrets.current().signing_keys {
        Some(keys) => keys.verify(req.uri().path(), req.uri().query(), now)?,
        None => None,
    };
    // A response to an expiring URL is cached no longer than the URL lives.
    let cache_control = match expires {
        Some(exp) => signing::cache_control_until(&state.config.cache_control, exp, now),
        None => state.config.cache_control.clone(),
    };
    let query = signing::transformation_query(req.uri().query());
    let request = state.policy.apply(ImageRequest::parse(query.as_deref())?)?;
    Ok((request, cache_control))
}

/// What every answer about one stat'ed original needs.
struct Answer<'a> {
    state: &'a AppState,
    req: &'a Request<Bytes>,
    key: &'a Key,
    version: &'a str,
    cache_control: &'a str,
}

impl Answer<'_> {
    /// The original as stored (or a redirect to it when it is too large to answer).
    async fn original(
        &self,
        size: u64,
        download: bool,
        trace: &mut Trace,
    ) -> Result<Response<Bytes>> {
        let (state, key) = (self.state, self.key);
        if let Some(store) = state.offload_target(size) {
            // The key exists (stat above): only now is a URL signed for it.
            let name = download.then(|| download_name(key, None));
            return Ok(redirect(
                &Box::pin(store.presign_original(key, name.as_deref())).await?,
            ));
        }
        let (source, fetch) = fetch_source(state, key, self.version).await?;
        trace.fetch = Some(fetch);
        let format = SourceFormat::detect(&source.bytes)?;
        let mut resp = image_response(
            self.req.headers(),
            source.bytes.clone(),
            format.content_type(),
            &source.etag,
            self.cache_control,
            false,
        );
        // Served as stored: whatever else the file holds can never run as a page.
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
        Ok(attach(resp, download.then(|| download_name(key, None))))
    }

    /// `srcset=`'s `<img>` attributes, its URLs signed (when signing is on) to expire with
    /// the gallery's links: at the end of the next half-lifetime window, so that equal
    /// requests within a window answer equal documents.
    fn srcset(
        &self,
        info: &pipeline::SourceInfo,
        request: &ImageRequest,
    ) -> Result<Option<crate::srcset::Img>> {
        let state = self.state;
        let exp = crate::gallery::link_expiry(unix_now(), state.config.gallery_link_secs);
        let secrets = state.secrets.current();
        let link = |path_and_query: String| match &secrets.signing_keys {
            Some(keys) => keys.sign(&path_and_query, Some(exp)),
            None => path_and_query,
        };
        crate::srcset::img(
            info,
            request,
            self.req.uri().path(),
            &state.policy,
            &state.settings.limits,
            link,
        )
    }

    /// `fmt=json`: the original's metadata, from its header, and its placeholder (`null`
    /// when the header reads but the pixels do not decode: the header fields still answer).
    async fn metadata(&self, request: &ImageRequest, trace: &mut Trace) -> Result<Response<Bytes>> {
        let (source, fetch) = fetch_source(self.state, self.key, self.version).await?;
        trace.fetch = Some(fetch);
        let info = pipeline::probe(&source.bytes)?;
        let mut doc = pipeline::metadata_json(&info, source.bytes.len());
        if let Some(img) = self.srcset(&info, request)? {
            doc["img"] = serde_json::to_value(img).unwrap_or_default();
        }
        let (entry, hit) =
            placeholder_of(self.state, self.key, self.version, Some(source.clone())).await?;
        trace.cache_hit = Some(hit);
        trace.stages = Some(entry.timings);
        placeholder::add_fields(&mut doc, entry.placeholder.as_ref().ok());
        let body = doc.to_string();
        Ok(self.computed(body, "application/json"))
    }

    /// A body computed from the original (its metadata, its placeholder), answered with an
    /// ETag of the body itself and the original's `Cache-Control`.
    fn computed(&self, body: String, content_type: &'static str) -> Response<Bytes> {
        let etag = etag_of(body.as_bytes());
        image_response(
            self.req.headers(),
            Bytes::from(body),
            content_type,
            &etag,
            self.cache_control,
            false,
        )
    }

    /// `fmt=thumbhash`: the placeholder alone, as `text/plain` base64 (what ThumbHash's demo
    /// prints), validated by an ETag of the hash; an image that does not decode is its 4xx.
    async fn placeholder(&self, trace: &mut Trace) -> Result<Response<Bytes>> {
        let (entry, hit) = placeholder_of(self.state, self.key, self.version, None).await?;
        trace.cache_hit = Some(hit);
        trace.fetch = Some(entry.fetch);
        trace.stages = Some(entry.timings);
        let body = entry
            .placeholder
            .as_ref()
            .map_err(Clone::clone)?
            .thumbhash_base64();
        Ok(self.computed(body, "text/plain; charset=utf-8"))
    }

    /// A rendition, from the cache or rendered (or a redirect when too large to answer).
    async fn rendition(
        &self,
        request: &ImageRequest,
        trace: &mut Trace,
    ) -> Result<Response<Bytes>> {
        let (state, key) = (self.state, self.key);
        // Formats the allow-list does not name are never negotiated.
        let accept = self
            .req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let choice = request.format_choice(accept, |a| state.policy.mask(a));
        let transform = &request.transform;
        let (r, hit) = state
            .cache
            .rendition(
                key.as_str(),
                self.version,
                transform,
                choice,
                render_rendition(state, key, self.version, transform, choice),
            )
            .await?;
        trace.cache_hit = Some(hit);
        trace.fetch = Some(r.fetch);
        trace.stages = Some(r.timings);
        let download = request.download;
        if let Some(store) = state.offload_target(r.bytes.len() as u64) {
            // Named by content hash: written once, whoever asks again gets the same object.
            let name = format!("{}.{}", r.etag.trim_matches('"'), r.format.name());
            let filename = download.then(|| download_name(key, Some(r.format)));
            let url = Box::pin(store.offload(
                &name,
                r.bytes.clone(),
                r.format.content_type(),
                filename.as_deref(),
            ))
            .await?;
            return Ok(redirect(&url));
        }
        let resp = image_response(
            self.req.headers(),
            r.bytes.clone(),
            r.format.content_type(),
            &r.etag,
            self.cache_control,
            choice.varies_by_accept(),
        );
        Ok(attach(
            resp,
            download.then(|| download_name(key, Some(r.format))),
        ))
    }
}

/// The original bytes, from the warm cache or the source (once for concurrent callers).
async fn fetch_source(
    state: &AppState,
    key: &Key,
    version: &str,
) -> Result<(Arc<SourceEntry>, Duration)> {
    let started = Instant::now();
    let source = state
        .cache
        .source(key.as_str(), version, async {
            let bytes = state
                .source
                .fetch(key, state.config.max_source_bytes)
                .await?;
            Ok(SourceEntry {
                etag: etag_of(&bytes),
                bytes,
            })
        })
        .await?;
    Ok((source, started.elapsed()))
}

/// The placeholder of `key` at `version`: from the cache, or computed once for concurrent
/// callers (the gallery listing asks too). `source` saves a second cache lookup when the caller
/// already holds the bytes. The image's own failures (corrupt, unsupported, over a limit) come
/// back inside the entry and are cached with it; failing to get there (the store, the queue)
/// is an `Err`, never cached.
pub(crate) async fn placeholder_of(
    state: &AppState,
    key: &Key,
    version: &str,
    source: Option<Arc<SourceEntry>>,
) -> Result<(Arc<PlaceholderEntry>, bool)> {
    state
        .cache
        .placeholder(key.as_str(), version, async {
            let (source, fetch) = match source {
                Some(s) => (s, Duration::ZERO),
                None => fetch_source(state, key, version).await?,
            };
            let mut timings = Timings::default();
            let limits = state.settings.limits;
            // Header only: what the work will cost, before admitting it.
            let info = match pipeline::probe(&source.bytes)
                .and_then(|info| placeholder::check(&info, &limits).map(|()| info))
            {
                Ok(info) => info,
                Err(e) => {
                    return Ok(PlaceholderEntry {
                        placeholder: Err(e),
                        fetch,
                        timings,
                    })
                }
            };
            let admission = state.admit(placeholder::memory(&info)).await?;
            let bytes = source.bytes.clone();
            let (result, timings) = tokio::task::spawn_blocking(move || {
                let result = placeholder::placeholder_timed(&bytes, &info, &limits, &mut timings);
                // The permits end with the work, not with the request that asked for it.
                drop(admission);
                (result, timings)
            })
            .await
            .map_err(|e| Error::Internal(format!("placeholder task failed: {e}")))?;
            Ok(PlaceholderEntry {
                placeholder: result,
                fetch,
                timings,
            })
        })
        .await
}

async fn render_rendition(
    state: &AppState,
    key: &Key,
    version: &str,
    transform: &Transform,
    choice: FormatChoice,
) -> Result<RenditionEntry> {
    let (source, fetch) = fetch_source(state, key, version).await?;
    // Header only: what the whole render will cost, before admitting it.
    let info = pipeline::probe(&source.bytes)?;
    let format = choice.resolve(info.output(), info.has_alpha, info.animated(transform));
    state.policy.check_output(format)?;
    let job = pipeline::prepare(&info, transform, format, &state.settings.limits)?;
    let admission = state.admit(job.memory).await?;
    let mut resizer = state.take_resizer();
    let settings = state.settings;
    let params = transform.clone();
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
        // The permits end with the render, not with the request that asked for it.
        drop(admission);
        (result, resizer)
    })
    .await
    .map_err(|e| Error::Internal(format!("render task failed: {e}")))?;
    state.return_resizer(resizer);
    let rendered = rendered?;
    let bytes = Bytes::from(rendered.bytes);
    Ok(RenditionEntry {
        etag: etag_of(&bytes),
        bytes,
        format: rendered.format,
        width: rendered.width,
        height: rendered.height,
        timings: rendered.timings,
        fetch,
    })
}
