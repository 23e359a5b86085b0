//! The local HTTP server: hyper around [`app::handle`], nothing else.

use crate::app::{self, AppState};
use crate::error::Error;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Bind `addr` (port 0 picks a free port) and return the bound address with the serving
/// future, so callers (tests, `main`) know where it listens before it runs.
pub async fn bind(
    state: Arc<AppState>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, serve(listener, state)))
}

async fn serve(listener: TcpListener, state: Arc<AppState>) {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

async fn respond(state: &AppState, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let head = http::Request::from_parts(parts, ());
    // Decided from the head alone: nothing is read for a request that will be refused.
    let limit = match app::body_limit(state, &head) {
        Ok(limit) => limit,
        Err(e) => return app::error_response(&e).map(Full::new),
    };
    let declared: Option<u64> = head
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let too_large = || {
        app::error_response(&Error::PayloadTooLarge(format!(
            "request bodies are limited to {limit} bytes here"
        )))
    };
    if declared.is_some_and(|n| n > limit) {
        return too_large().map(Full::new);
    }
    let (parts, ()) = head.into_parts();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let response = match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let req = http::Request::from_parts(parts, collected.to_bytes());
            app::handle(state, req).await
        }
        Err(_) => too_large(),
    };
    response.map(Full::new)
}
