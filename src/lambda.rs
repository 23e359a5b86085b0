//! The Lambda edge: Function URL events through the very same `app::handle`.
//!
//! With `RESPONSE_STREAM` (the default), bodies leave as raw bytes after a metadata prelude:
//! no base64, no binary-media-type settings, whatever the caller's `Accept` header. With
//! `BUFFERED`, lambda_http base64-encodes binary bodies and sets `isBase64Encoded`.

use crate::app::{self, AppState};
use crate::config::InvokeMode;
use crate::route::{self, Route};
use bytes::Bytes;
use http_body_util::Full;
use lambda_http::{service_fn, Body};
use std::convert::Infallible;
use std::sync::Arc;

/// Turn a Function URL request into the handler's request type.
fn into_request(req: lambda_http::Request) -> http::Request<Bytes> {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Text(s) => Bytes::from(s),
        Body::Binary(v) => Bytes::from(v),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

/// Answer one event: the same body limit as the local server's (Lambda has read the body
/// already, but the decision is one), then the same handler.
async fn answer(state: &AppState, req: lambda_http::Request) -> http::Response<Bytes> {
    let req = into_request(req);
    let parsed = Route::of(state, &req);
    let limit = match route::body_limit(&parsed, state, &req) {
        Ok(limit) => limit,
        Err(e) => return app::error_response(&e),
    };
    if req.body().len() as u64 > limit {
        return app::error_response(&route::too_large(limit));
    }
    app::handle_route(state, parsed, req).await
}

/// How many times in a row the runtime loop may fail to reach the runtime API before the
/// process exits (and Lambda replaces the execution environment).
const MAX_RUNTIME_RESTARTS: u32 = 3;

/// Serve Function URL events until the runtime stops us. A failure to talk to the runtime
/// API (a dropped connection while posting a response) costs that one invocation, not the
/// warm instance and its cache; repeated failures end the process.
pub async fn run(state: Arc<AppState>, mode: InvokeMode) -> Result<(), lambda_http::Error> {
    let mut failures = 0;
    loop {
        let started = std::time::Instant::now();
        match run_once(state.clone(), mode).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                // A loop that ran for a while before failing starts a fresh count.
                if started.elapsed() > std::time::Duration::from_secs(10) {
                    failures = 0;
                }
                failures += 1;
                tracing::error!(error = %e, failures, "lambda runtime loop failed");
                if failures >= MAX_RUNTIME_RESTARTS {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn run_once(state: Arc<AppState>, mode: InvokeMode) -> Result<(), lambda_http::Error> {
    match mode {
        InvokeMode::ResponseStream => {
            lambda_http::run_with_streaming_response(service_fn(move |req| {
                let state = state.clone();
                async move {
                    let resp = answer(&state, req).await;
                    Ok::<_, Infallible>(resp.map(Full::new))
                }
            }))
            .await
        }
        InvokeMode::Buffered => {
            lambda_http::run(service_fn(move |req| {
                let state = state.clone();
                async move {
                    let resp = answer(&state, req).await;
                    let is_json = resp
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
                    // Text stays text; everything else is binary, which lambda_http sends
                    // base64-encoded with isBase64Encoded: true.
                    Ok::<_, Infallible>(resp.map(|b| {
                        if b.is_empty() {
                            Body::Empty
                        } else if is_json {
                            Body::Text(String::from_utf8_lossy(&b).into_owned())
                        } else {
                            Body::Binary(b.to_vec())
                        }
                    }))
                }
            }))
            .await
        }
    }
}
