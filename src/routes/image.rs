//! The image route, `GET|HEAD /<key>?<transformation>`: verify the signature, parse and
//! police the parameters, stat the original, then answer it as stored, its metadata, or a
//! rendition from the cache (rendered on a miss, admitted against the budget first);
//! oversized answers are redirected to S3.

use crate::cache::{etag_of, CacheKey, CacheValue, FormatChoice, RenditionEntry, SourceEntry};
use crate::error::{Error, Result};
use crate::params::{Accepted, FormatParam, OutputFormat, Params};
use crate::pipeline::{self, SourceFormat};
use crate::respond::{attach, download_name, image_response, redirect, Trace};
use crate::signing;
use crate::source::Key;
use crate::state::{unix_now, AppState};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `GET|HEAD /<key>?<transformation>`.
pub(crate) async fn get(
    state: &AppState,
    req: &Request<Bytes>,
    key: &Key,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
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

    let stat = state.source.stat(key).await?;
    if stat.size > state.config.max_source_bytes {
        return Err(crate::source::too_large(
            stat.size,
            state.config.max_source_bytes,
        ));
    }

    if params.is_empty() {
        if let Some(s3) = state.offload_target(stat.size) {
            // The key exists (stat above): only now is a URL signed for it.
            let name = download.then(|| download_name(key, None));
            return Ok(redirect(
                &Box::pin(s3.presign_original(key, name.as_deref())).await?,
            ));
        }
        let (source, fetch) = fetch_source(state, key, &stat.version).await?;
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
        return Ok(attach(resp, download.then(|| download_name(key, None))));
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
            let (source, fetch) = fetch_source(state, key, &stat.version).await?;
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
            render_rendition(state, key, &stat.version, &params, choice),
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
        let filename = download.then(|| download_name(key, Some(r.format)));
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
        download.then(|| download_name(key, Some(r.format))),
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
    // Header only: what the whole render will cost, before admitting it.
    let info = pipeline::probe(&source.bytes)?;
    let format = resolve_format(choice, &info);
    state.policy.check_output(format)?;
    let job = pipeline::prepare(&info, params, format, &state.settings.limits)?;
    let admission = state.admit(job.memory).await?;
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
        // The permits end with the render, not with the request that asked for it.
        drop(admission);
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
