//! The gallery routes: the page and its script (compiled in), and `GET /_/gallery.json`,
//! one page of originals with their dimensions (header reads), placeholders (smallest decodes,
//! admitted like renders) and thumbnail URLs.

use crate::error::{Error, Result};
use crate::gallery::{self, Dims, GalleryQuery};
use crate::placeholder::Placeholder;
use crate::respond::{json_response, static_response};
use crate::source::Listed;
use crate::state::{unix_now, AppState};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use std::sync::Arc;

/// `GET /_/gallery`: the page.
pub(crate) fn page() -> Response<Bytes> {
    static_response(
        gallery::PAGE_HTML,
        "text/html; charset=utf-8",
        gallery::PAGE_CSP,
    )
}

/// The page's script, then the upload client (its own file, owned apart from the page's).
const SCRIPT: &str = concat!(
    include_str!("../gallery/gallery.js"),
    "\n",
    include_str!("../gallery/upload.js")
);

/// `GET /_/gallery.js`: the page's script and the upload client.
pub(crate) fn script() -> Response<Bytes> {
    static_response(SCRIPT, "text/javascript; charset=utf-8", gallery::PAGE_CSP)
}

/// `GET /_/gallery.json`: one page of originals with dimensions and thumbnail URLs.
pub(crate) async fn listing(state: &AppState, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    // Who may see is the gallery's mode, not whether uploads are on: a public gallery lists
    // for anyone; a private one for the viewer or the upload token.
    let secrets = state.secrets.current();
    gallery::may_list(
        state.config.gallery_mode(),
        secrets.gallery_token.as_ref(),
        secrets.upload_token.as_ref(),
        super::uploads::bearer(req),
    )?;
    let q = GalleryQuery::parse(req.uri().query())?;
    let listing = state
        .source
        .list(&q.prefix, q.cursor.as_deref(), q.limit)
        .await?;
    // Thumbnail signatures expire; `exp` is rounded so listings within half the lifetime
    // hand out the same URLs and browser and CDN caches keep hitting.
    let exp = gallery::link_expiry(unix_now(), state.config.gallery_link_secs);
    let link = |path: String| match &secrets.signing_keys {
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
    // Placeholders of the images whose header reads: each a cache hit, or a fetch and a
    // smallest decode under the render admission (a few at a time; the CPU work is bounded by
    // the workers as renders are).
    type PlaceholderFuture<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Option<Placeholder>> + Send + 'a>>;
    let hashes: Vec<PlaceholderFuture<'_>> = entries
        .iter()
        .copied()
        .zip(&dims)
        .map(|(entry, dims)| match dims {
            Ok(_) if q.placeholders && entry.size <= state.config.max_source_bytes => {
                Box::pin(placeholder_of(state, entry)) as PlaceholderFuture<'_>
            }
            _ => Box::pin(std::future::ready(None)) as PlaceholderFuture<'_>,
        })
        .collect();
    let hashes: Vec<Option<Placeholder>> = futures_util::stream::iter(hashes)
        .buffered(PLACEHOLDERS_AT_ONCE)
        .collect()
        .await;
    let items: Vec<serde_json::Value> = entries
        .iter()
        .copied()
        .zip(&dims)
        .zip(&hashes)
        .map(|((entry, dims), hash)| {
            gallery::item_json(entry, dims, hash.as_ref(), &state.thumbs, link)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "items": items,
            "next_cursor": listing.next_cursor.as_deref().map(gallery::encode_cursor),
        }),
    ))
}

/// Placeholders a listing computes at once (each holds its original's bytes while it waits for
/// a worker).
const PLACEHOLDERS_AT_ONCE: usize = 4;

/// The placeholder of a listed original, cached by version; `None` when the image has none
/// (it does not decode) or it cannot be had now (the store, the queue): a listing never fails
/// for one image.
async fn placeholder_of(state: &AppState, entry: &Listed) -> Option<Placeholder> {
    match super::image::placeholder_of(state, &entry.key, &entry.version, None).await {
        Ok((p, _)) => p.placeholder.as_ref().ok().cloned(),
        Err(e) => {
            tracing::warn!(key = %entry.key, error = %e, "gallery: no placeholder for now");
            None
        }
    }
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
