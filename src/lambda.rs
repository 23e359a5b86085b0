//! The Lambda edge: Function URL events through the very same `app::handle`.
//!
//! With `RESPONSE_STREAM` (the default), bodies leave as raw bytes after a metadata prelude:
//! no base64, no binary-media-type settings, whatever the caller's `Accept` header. With
//! `BUFFERED`, lambda_http base64-encodes binary bodies and sets `isBase64Encoded`.
//!
//! Before each event the secrets are re-read if their TTL has passed (`secrets.rs`), and a
//! body's `x-amz-content-sha256` is checked as Lambda checks it behind CloudFront's origin
//! access control (there, IAM refuses a wrong one before imgfn runs; here the emulator and a
//! public URL get the same answer from imgfn itself).

use crate::app::{self, AppState};
use crate::config::InvokeMode;
use crate::error::Error;
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
    state.secrets.refresh_if_stale().await;
    let req = into_request(req);
    if let Err(e) = check_payload_hash(&req) {
        return app::error_response(&e);
    }
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

/// `x-amz-content-sha256`, when sent, must be the hex SHA-256 of the body: SigV4's payload
/// hash, which CloudFront's origin access control passes on and Lambda verifies (it takes no
/// unsigned payloads).
fn check_payload_hash(req: &http::Request<Bytes>) -> crate::Result<()> {
    use sha2::{Digest, Sha256};
    let Some(given) = req.headers().get("x-amz-content-sha256") else {
        return Ok(());
    };
    let actual = Sha256::digest(req.body());
    let matches = given.len() == 64
        && given
            .as_bytes()
            .chunks(2)
            .zip(actual.iter())
            .all(|(hex, byte)| {
                std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    == Some(*byte)
            });
    if matches {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "x-amz-content-sha256 is not the SHA-256 of the body (hex)".into(),
        ))
    }
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
