//! The local HTTP server: hyper around [`app::handle`], defending itself as a production
//! server must when it faces the internet directly:
//! - a request head must arrive within `IMGFN_HEADER_TIMEOUT_MS` (slowloris), and an idle
//!   keep-alive connection is closed after the same time (hyper starts the clock as soon as
//!   a connection waits for its next request);
//! - a body must arrive within `IMGFN_BODY_TIMEOUT_MS` (408);
//! - at most `IMGFN_MAX_CONNECTIONS` connections are open at once, lowered to fit the
//!   process's descriptor limit: past it, new clients wait in the kernel's listen backlog
//!   instead of the process running out of descriptors.

use crate::app::{self, AppState};
use crate::error::Error;
use crate::route::{self, Route};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Descriptors kept free for everything but client connections (originals being read,
/// the listener, logs, the S3 client's pool).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection cap: the configured one, lowered to fit the soft descriptor limit.
pub fn connection_cap(configured: u32) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    let fits = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.saturating_sub(RESERVED_DESCRIPTORS)
    } else {
        u64::MAX
    };
    let cap = u64::from(configured).min(fits).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Bind `addr` (port 0 picks a free port) and return the bound address with the serving
/// future, so callers (tests, `main`) know where it listens before it runs.
pub async fn bind(
    state: Arc<AppState>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    state.set_bound_addr(local);
    Ok((local, serve(listener, state)))
}

async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let cap = connection_cap(state.config.max_connections);
    if cap < state.config.max_connections as usize {
        tracing::info!(
            max_connections = cap,
            "connection cap lowered to fit the descriptor limit"
        );
    }
    let connections = Arc::new(Semaphore::new(cap));
    let header_timeout = Duration::from_millis(state.config.header_timeout_ms);
    loop {
        // At the cap, stop accepting: clients wait in the backlog, not in our descriptors.
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
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
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn respond(state: &AppState, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let head = http::Request::from_parts(parts, ());
    let parsed = Route::of(state, &head);
    // Decided from the head alone: nothing is read for a request that will be refused.
    let limit = match route::body_limit(&parsed, state, &head) {
        Ok(limit) => limit,
        Err(e) => return app::error_response(&e).map(Full::new),
    };
    let declared: Option<u64> = head
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let too_large = || app::error_response(&route::too_large(limit));
    if declared.is_some_and(|n| n > limit) {
        return too_large().map(Full::new);
    }
    let (parts, ()) = head.into_parts();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body_timeout = Duration::from_millis(state.config.body_timeout_ms);
    let response =
        match tokio::time::timeout(body_timeout, Limited::new(body, limit).collect()).await {
            Ok(Ok(collected)) => {
                let req = http::Request::from_parts(parts, collected.to_bytes());
                app::handle_route(state, parsed, req).await
            }
            Ok(Err(_)) => too_large(),
            Err(_) => app::error_response(&Error::RequestTimeout(format!(
                "the request body did not arrive within {} ms",
                state.config.body_timeout_ms
            ))),
        };
    response.map(Full::new)
}
