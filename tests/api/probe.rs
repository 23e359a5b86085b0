//! Instruments for tests that must see what happened on the wire, not only what came back:
//! a recording TCP proxy in front of the real S3 server (Garage) that can also stall, and a
//! source that reaches the bucket through it.

use crate::support::{required_env, s3_client, S3Env};
use imgfn::source::Source;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request head as the proxy saw it go to the server.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    /// Client-to-server bytes, one buffer per connection.
    upstream: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
    /// Server-to-client bytes, all connections.
    downstream: AtomicU64,
    /// New connections are held open and never forwarded (a stalled store).
    stall: AtomicBool,
}

/// A TCP proxy on a free loopback port, forwarding to `upstream` and recording every byte
/// sent to it. Runs until the test's runtime ends.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let accept = shared.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                if accept.stall.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let record = Arc::new(Mutex::new(Vec::new()));
                accept.upstream.lock().unwrap().push(record.clone());
                tokio::spawn(forward(client, upstream, record, accept.clone()));
            }
        });
        Proxy { addr, shared }
    }

    /// A proxy in front of the S3 server the tests use (`AWS_ENDPOINT_URL_S3`).
    pub async fn before_s3() -> Proxy {
        let endpoint = required_env("AWS_ENDPOINT_URL_S3");
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let upstream = tokio::net::lookup_host(host.as_str())
            .await
            .unwrap()
            .next()
            .unwrap_or_else(|| panic!("no address for {endpoint}"));
        Proxy::start(upstream).await
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, new connections stall (`true`) or are forwarded (`false`).
    pub fn stall(&self, on: bool) {
        self.shared.stall.store(on, Ordering::SeqCst);
    }

    /// Bytes the server sent back so far.
    pub fn bytes_down(&self) -> u64 {
        self.shared.downstream.load(Ordering::SeqCst)
    }

    /// How many connections clients opened through the proxy so far.
    pub fn connections(&self) -> usize {
        self.shared.upstream.lock().unwrap().len()
    }

    /// Every complete request head sent through the proxy so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        let conns = self.shared.upstream.lock().unwrap();
        let mut seen = Vec::new();
        for conn in conns.iter() {
            let bytes = conn.lock().unwrap().clone();
            parse_requests(&bytes, &mut seen);
        }
        seen
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    record: Arc<Mutex<Vec<u8>>>,
    shared: Arc<Shared>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            shared.downstream.fetch_add(n as u64, Ordering::SeqCst);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

/// HTTP/1.1 request heads in one connection's client-to-server bytes (bodies skipped by their
/// `Content-Length`; the S3 client sends no chunked bodies on the paths these tests drive).
fn parse_requests(mut bytes: &[u8], out: &mut Vec<SeenRequest>) {
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let req = SeenRequest {
            method,
            target,
            headers,
        };
        assert_ne!(
            req.header("transfer-encoding"),
            Some("chunked"),
            "the proxy's parser skips bodies by Content-Length only"
        );
        let body: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push(req);
        bytes = &bytes[(end + 4 + body).min(bytes.len())..];
    }
}

/// The test bucket's source for `s3`'s prefix, reached through `proxy`, built as
/// `support::open_source` opens it (revalidation and not-found TTL of `config`).
pub fn s3_source_via(
    endpoint: &str,
    s3: &S3Env,
    config: &imgfn::config::Config,
    timeout_ms: u64,
) -> Source {
    let client = s3_client(
        endpoint,
        &required_env("AWS_ACCESS_KEY_ID"),
        &required_env("AWS_SECRET_ACCESS_KEY"),
        timeout_ms,
    );
    let settings = imgfn::source::s3::S3Settings {
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        renditions_prefix: config.renditions_prefix.clone(),
        timeout: Duration::from_millis(timeout_ms),
    };
    Source::s3(
        imgfn::source::s3::S3Source::new(client, settings),
        Duration::from_secs(config.revalidate_secs),
    )
    .with_not_found_ttl(Duration::from_secs(config.not_found_ttl_secs))
}
