//! `handle`: the one entry of every edge, and the dispatch of a [`Route`] to its handler.
//!
//! The local server and the Lambda adapter both turn their input into an
//! `http::Request<Bytes>` and call [`handle`] (or [`handle_route`] with the route they
//! already parsed to decide the body limit), which always returns a response: every error
//! becomes its JSON body here, and is logged once, here.

use crate::config::MetricsFormat;
use crate::error::Result;
use crate::metrics;
use crate::respond::{self, Trace};
use crate::route::Route;
use crate::routes;
use bytes::Bytes;
use http::{Request, Response};
use std::time::Instant;

pub use crate::respond::error_response;
pub use crate::route::MAX_REQUEST_BODY;
pub use crate::state::AppState;

/// Answer one request. Never fails: errors become JSON responses.
pub async fn handle(state: &AppState, req: Request<Bytes>) -> Response<Bytes> {
    let route = Route::of(state, &req);
    handle_route(state, route, req).await
}

/// Answer one request whose route the edge has already parsed (`Route::of`).
pub async fn handle_route(
    state: &AppState,
    route: Result<Route>,
    req: Request<Bytes>,
) -> Response<Bytes> {
    let started = Instant::now();
    let mut trace = Trace::default();
    let route_name = route_name(&route);
    let emf = state.config.metrics == MetricsFormat::Emf;
    // The admission wait is carried back in a task-local only when it is reported: the scope
    // cost the local server a third of its warm-cache throughput (BENCHMARKS.md, W8).
    let (result, admission_wait) = if emf {
        metrics::measure(dispatch(state, route, &req, &mut trace)).await
    } else {
        (dispatch(state, route, &req, &mut trace).await, None)
    };
    let (response, error) = match result {
        Ok(r) => (r, None),
        Err(e) => (error_response(&e), Some(e)),
    };
    let response = respond::finish(&req, response, &trace, started);
    if emf {
        metrics::emit(&metrics::Sample {
            route: route_name,
            status: response.status().as_u16(),
            bytes: response.body().len(),
            total: started.elapsed(),
            trace: &trace,
            admission_wait,
            error: error.as_ref(),
        });
    }
    response
}

async fn dispatch(
    state: &AppState,
    route: Result<Route>,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    match route? {
        Route::Image { key } => routes::image::get(state, req, &key, trace).await,
        Route::CreateUpload => routes::uploads::create_upload(state, req, trace).await,
        Route::UploadCheck => routes::uploads::check(state, req),
        Route::LocalUpload { raw_key } => {
            routes::uploads::local_upload(state, req, &raw_key, trace).await
        }
        Route::PartUrl { id, n } => routes::multipart::part_url(state, req, &id, n, trace).await,
        Route::LocalPart { id, n } => {
            routes::multipart::local_part(state, req, &id, n, trace).await
        }
        Route::UploadStatus { id } => routes::multipart::status(state, req, &id, trace).await,
        Route::CompleteUpload { id } => routes::multipart::complete(state, req, &id, trace).await,
        Route::AbortUpload { id } => routes::multipart::abort(state, req, &id, trace).await,
        Route::GalleryPage => Ok(routes::gallery::page()),
        Route::GalleryScript => Ok(routes::gallery::script()),
        Route::GalleryListing => routes::gallery::listing(state, req).await,
    }
}

/// The dimension value of a route (`invalid` for a request that named none).
fn route_name(route: &Result<Route>) -> &'static str {
    match route {
        Ok(Route::Image { .. }) => "image",
        Ok(
            Route::CreateUpload
            | Route::UploadCheck
            | Route::LocalUpload { .. }
            | Route::PartUrl { .. }
            | Route::LocalPart { .. }
            | Route::UploadStatus { .. }
            | Route::CompleteUpload { .. }
            | Route::AbortUpload { .. },
        ) => "uploads",
        Ok(Route::GalleryPage | Route::GalleryScript) => "gallery",
        Ok(Route::GalleryListing) => "gallery_listing",
        Err(_) => "invalid",
    }
}
