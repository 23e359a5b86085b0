//! README claims about the edges, each reached the way a client reaches it: request bodies
//! over their limit (413) and bodies that are not the JSON asked for (`bad_request`), through
//! real HTTP; signatures checked before any I/O (a recording proxy in front of the real S3
//! server sees nothing of a refused request); an S3 stall in the middle of a body (504 within
//! the configured timeout); and the Lambda invoke modes with their default response budgets,
//! through `cargo lambda watch` started here with the real binary.

use crate::support::{required_env, tempdir, testdata, Reply, S3Env, TestApp};
use imgfn::config::{Config, BUFFERED_RESPONSE_BUDGET, STREAM_RESPONSE_BUDGET};
use imgfn::signing::SigningKeys;
use imgfn::source::Source;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "claims-upload-token-0123456789";

fn local_uploads_config() -> Config {
    let root = tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("small.jpg")).unwrap();
    let mut config = Config::with_root(&root);
    config.upload_token = Some(TOKEN.parse().unwrap());
    config.body_timeout_ms = 5000;
    config
}

/// Send `head` (and then `body`, written concurrently) on a raw connection; return the
/// status line's code and the whole answer, or panic when none comes within `wait`.
async fn raw_exchange(
    addr: SocketAddr,
    head: String,
    body: Vec<u8>,
    wait: Duration,
) -> (u16, String) {
    let sock = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        // The server may answer and close before it has read everything: ignore write errors.
        if wr.write_all(head.as_bytes()).await.is_ok() && !body.is_empty() {
            let _ = wr.write_all(&body).await;
        }
        wr
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 4096];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let text = String::from_utf8_lossy(&buf);
            // One whole response (this server always sends Content-Length).
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(read.is_ok(), "no whole answer within {wait:?}: {text:?}");
    writer.abort();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn request_bodies_over_the_limit_get_413() {
    let app = TestApp::spawn_with(local_uploads_config()).await;
    let limit = imgfn::app::MAX_REQUEST_BODY as usize;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");

    // A declared length over the limit: refused on the head alone, at once (the server would
    // otherwise wait for the body, and answer 408 after the 5 s body timeout).
    for (method, path) in [("POST", "/_/uploads"), ("GET", "/small.jpg?w=10")] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            limit + 1
        );
        let started = Instant::now();
        let (status, text) = raw_exchange(app.addr, head, Vec::new(), Duration::from_secs(3)).await;
        assert_eq!(status, 413, "{method} {path}: {text}");
        assert!(text.contains("\"payload_too_large\""), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    // No declared length (chunked): the body is read up to the limit, then refused.
    let mut chunked = format!("{:x}\r\n", limit).into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', limit));
    chunked.extend_from_slice(b"\r\n1\r\n \r\n0\r\n\r\n");
    let head = format!(
        "POST /_/uploads HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let (status, text) = raw_exchange(app.addr, head, chunked, Duration::from_secs(10)).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"payload_too_large\""), "{text}");

    // Exactly at the limit the body is read and handled: a request that is not JSON.
    let at_limit = Reply::send(
        app.client
            .post(app.url("/_/uploads"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(vec![b'x'; limit]),
    )
    .await;
    at_limit.assert_error(400, "bad_request");
}

#[tokio::test]
async fn bodies_that_are_not_the_json_asked_for_are_bad_requests() {
    let app = TestApp::spawn_with(local_uploads_config()).await;
    let post = |body: &'static str| {
        Reply::send(
            app.client
                .post(app.url("/_/uploads"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .body(body),
        )
    };
    for body in [
        "",
        "not json",
        "{\"filename\": \"a.jpg\", ",
        "[\"a.jpg\", \"image/jpeg\", 10]",
        "\"a.jpg\"",
        "10",
    ] {
        let r = post(body).await;
        let json = r.assert_error(400, "bad_request");
        assert!(json["error"].get("param").is_none(), "{body:?}: {json}");
    }
    // The same route with the JSON it asks for is granted: the refusals above are the body's.
    let ok = post(r#"{"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 10}"#).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert!(ok.json()["upload_url"].is_string());
    // A bad field of a well-formed body is an invalid_parameter, not a bad_request.
    post(r#"{"filename": "a.jpg", "content_type": "image/jpeg", "bytes": -1}"#)
        .await
        .assert_error(400, "invalid_parameter");
}

// ---------------------------------------------------------------------------------------
// A TCP proxy in front of the real S3 server (Garage): it counts connections and, when told,
// lets a GET response's head and first bytes through and then goes silent.

/// Bytes of a GET body let through before a stall.
const STALL_AFTER: usize = 64 * 1024;

#[derive(Default)]
struct ProxyState {
    connections: AtomicUsize,
    stall_bodies: AtomicBool,
    /// GET responses whose head and first `STALL_AFTER` body bytes went out before the stall.
    stalled: AtomicUsize,
}

struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl Proxy {
    async fn before_garage() -> Proxy {
        let endpoint = required_env("AWS_ENDPOINT_URL_S3");
        let upstream: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL_S3={endpoint}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(client, upstream, shared.clone()));
            }
        });
        Proxy { addr, state }
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn stall_bodies(&self, on: bool) {
        self.state.stall_bodies.store(on, Ordering::SeqCst);
    }

    fn stalled(&self) -> usize {
        self.state.stalled.load(Ordering::SeqCst)
    }

    /// A source reading `s3`'s prefix through this proxy, with the production call policy,
    /// revalidating every request and remembering no missing key.
    fn source(&self, s3: &S3Env, timeout_ms: u64) -> Source {
        let mut config = s3.config();
        config.revalidate_secs = 0;
        config.not_found_ttl_secs = 0;
        crate::probe::s3_source_via(&format!("http://{}", self.addr), s3, &config, timeout_ms)
    }
}

/// Read one message head (through the blank line); what was read past it stays in `buf`.
async fn read_head(
    from: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(buf.drain(..end + 4).collect()));
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Forward exactly `n` bytes, starting with what is already in `buf`.
async fn forward_exact(
    from: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    to: &mut (impl AsyncWrite + Unpin),
    mut n: usize,
) -> std::io::Result<()> {
    loop {
        let take = n.min(buf.len());
        to.write_all(&buf[..take]).await?;
        buf.drain(..take);
        n -= take;
        if n == 0 {
            return to.flush().await;
        }
        let mut chunk = [0u8; 64 * 1024];
        let got = from.read(&mut chunk).await?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// One client connection: request by request (HTTP/1.1 keep-alive), head, body, answer.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<ProxyState>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let (mut cbuf, mut sbuf) = (Vec::new(), Vec::new());
    loop {
        let Some(request) = read_head(&mut client, &mut cbuf).await? else {
            return Ok(());
        };
        server.write_all(&request).await?;
        let sent = content_length(&request).unwrap_or(0);
        forward_exact(&mut client, &mut cbuf, &mut server, sent).await?;
        let Some(response) = read_head(&mut server, &mut sbuf).await? else {
            return Ok(());
        };
        client.write_all(&response).await?;
        let status = String::from_utf8_lossy(&response)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let body = if request.starts_with(b"HEAD ") || status == 204 || status == 304 {
            0
        } else if let Some(n) = content_length(&response) {
            n
        } else {
            // Chunked or close-delimited: pass the rest of the connection through as it is.
            client.write_all(&sbuf).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            return Ok(());
        };
        if request.starts_with(b"GET ")
            && state.stall_bodies.load(Ordering::SeqCst)
            && body > STALL_AFTER
        {
            forward_exact(&mut server, &mut sbuf, &mut client, STALL_AFTER).await?;
            state.stalled.fetch_add(1, Ordering::SeqCst);
            // Silent from here on, both connections held open, until the client gives up.
            let mut byte = [0u8; 1];
            let _ = client.read(&mut byte).await;
            return Ok(());
        }
        forward_exact(&mut server, &mut sbuf, &mut client, body).await?;
    }
}

/// A client that gives up after `secs`, so a hang fails the test instead of blocking it.
fn patient_client(secs: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(secs))
        .build()
        .unwrap()
}

#[tokio::test]
async fn signatures_are_checked_before_any_io() {
    crate::needs!(Garage);
    let s3 = S3Env::new("sig-before-io").await;
    s3.put_fixture("small.jpg").await;
    let proxy = Proxy::before_garage().await;
    let keys: SigningKeys = "k1:claims-signing-secret-2026".parse().unwrap();
    let mut config = s3.config();
    config.signing_keys = Some(keys.clone());
    let app = TestApp::spawn_source(config.clone(), proxy.source(&s3, 2000)).await;
    let good = keys.sign("/small.jpg?w=50", None);
    let other: SigningKeys = "k1:not-the-configured-secret".parse().unwrap();
    let refused = [
        "/small.jpg?w=50".to_string(),
        "/small.jpg".to_string(),
        "/missing.jpg?w=50".to_string(),
        "/small.jpg?w=0".to_string(),
        "/small.jpg?w=50&sig=k1.AAAA".to_string(),
        other.sign("/small.jpg?w=50", None),
        good.replace("w=50", "w=51"),
        keys.sign("/small.jpg?w=50", Some(1)),
    ];
    for url in &refused {
        let started = Instant::now();
        app.get(url).await.assert_error(403, "forbidden");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{url}: {:?}",
            started.elapsed()
        );
        let head = app.request(reqwest::Method::HEAD, url).await;
        assert_eq!(head.status, 403, "HEAD {url}");
    }
    assert_eq!(
        proxy.connections(),
        0,
        "a refused request reached the store"
    );
    // Positive control: the proxy is on the path, and a signed request goes through it.
    assert_eq!(app.get(&good).await.image().width(), 50);
    assert!(proxy.connections() > 0);

    // A store that would fail every call (a dead port): still 403 for the unsigned, fast;
    // the signed request shows the store was really dead (502).
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = S3Env::source_at(&format!("http://{dead_port}"), &s3.bucket, 2000).await;
    let app = TestApp::spawn_source(config, dead).await;
    for url in &refused {
        app.get(url).await.assert_error(403, "forbidden");
    }
    app.get(&good).await.assert_error(502, "upstream_error");
}

#[tokio::test]
async fn an_s3_stall_mid_body_gives_504_within_the_timeout() {
    crate::needs!(Garage);
    let s3 = S3Env::new("stall-mid-body").await;
    s3.put_fixture("large.jpg").await; // 4.4 MB: the proxy lets the head and 64 KiB through
    let proxy = Proxy::before_garage().await;
    proxy.stall_bodies(true);
    let timeout_ms = 1000;
    let mut config = s3.config();
    config.s3_timeout_ms = timeout_ms;
    let app = TestApp::spawn_source(config, proxy.source(&s3, timeout_ms)).await;
    let client = patient_client(20);
    for (n, path) in ["/large.jpg?w=100&fmt=png", "/large.jpg"]
        .iter()
        .enumerate()
    {
        let started = Instant::now();
        let r = Reply::send(client.get(app.url(path))).await;
        let took = started.elapsed();
        r.assert_error(504, "upstream_timeout");
        assert_eq!(
            proxy.stalled(),
            n + 1,
            "{path}: the body started, then stalled"
        );
        assert!(
            took >= Duration::from_millis(timeout_ms)
                && took < Duration::from_millis(timeout_ms + 1500),
            "{path}: answered after {took:?}, the S3 timeout is {timeout_ms} ms"
        );
    }
    // The store flows again: the same app serves the image (no error was kept).
    proxy.stall_bodies(false);
    let r = Reply::send(client.get(app.url("/large.jpg?w=100&fmt=png"))).await;
    assert_eq!(r.image().width(), 100);
    let r = Reply::send(client.get(app.url("/large.jpg"))).await;
    assert!(r.body == std::fs::read(testdata().join("large.jpg")).unwrap());
}

// ---------------------------------------------------------------------------------------
// The Lambda invoke modes through the real runtime path: `cargo lambda watch` emulates the
// Runtime API and the Function URL in front of the binary, started here with the environment
// under test.

pub(crate) struct Watch {
    /// cargo-lambda's emulator, the leader of a process group of its own.
    emulator: std::process::Child,
    /// The function, in the emulator's process group.
    function: std::process::Child,
    pub(crate) base: String,
    pub(crate) log: std::path::PathBuf,
}

impl Watch {
    /// `cargo lambda watch` on a free port, and the function serving `s3`'s prefix with `env`
    /// on top.
    ///
    /// The emulator runs with `--only-lambda-apis` and the function is this test build's own
    /// `imgfn` binary (`CARGO_BIN_EXE_imgfn`), polling the Runtime API at `.rt/imgfn`, which
    /// is what `/lambda-url/imgfn/...` invokes. Left to start the function itself, cargo
    /// lambda would build it with `cargo build`, whose features (without the
    /// dev-dependencies') differ from this build's: most of the tree compiled again.
    pub(crate) async fn start(name: &str, s3: &S3Env, env: &[(&str, &str)]) -> Watch {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let log = root.join(format!("target/lambda-watch-claims-{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let emulator = std::process::Command::new("cargo")
            .current_dir(root)
            .args(["lambda", "watch", "--only-lambda-apis"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out.try_clone().unwrap())
            // Its own process group, which the function joins: they end together.
            .process_group(0)
            .spawn()
            .expect("cargo lambda watch (pip install cargo-lambda)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut cmd = s3.lambda_function(&format!("http://127.0.0.1:{port}/.rt/imgfn"), env);
        let function = cmd
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(i32::try_from(emulator.id()).unwrap())
            .spawn()
            .expect("the imgfn binary");
        let mut watch = Watch {
            emulator,
            function,
            base: format!("http://127.0.0.1:{port}/lambda-url/imgfn"),
            log,
        };
        // Ready, and the one started here, when it serves an object of this test's prefix.
        s3.put_fixture("tiny.png").await;
        let client = patient_client(60);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client
                .get(format!("{}/tiny.png?fmt=json", watch.base))
                .send()
                .await
            {
                if r.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = watch.emulator.try_wait() {
                panic!("cargo lambda watch exited ({status}): {}", watch.log_tail());
            }
            if let Ok(Some(status)) = watch.function.try_wait() {
                panic!("the function exited ({status}): {}", watch.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "the function did not serve through cargo lambda watch: {}",
                watch.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        watch
    }

    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// One GET through the emulator, retried (twice at most, loudly) only when the emulator
    /// itself failed: no answer in 30 s (every request here takes milliseconds), or its own
    /// problem+json 500 (`httpstatuses.com`; imgfn's errors are `{"error": ...}`). In
    /// BUFFERED mode `cargo lambda watch` does both, about one run in four, after the function
    /// has logged its 200 (not understood yet; see the issue 15 note). Any answer from the
    /// function, right or wrong, is what the test judges.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        for attempt in 1.. {
            let why = match patient_client(30).get(&url).send().await {
                Ok(resp) => {
                    let reply = Reply::send_done(resp).await;
                    let emulator_failed = reply.status == 500
                        && String::from_utf8_lossy(&reply.body).contains("httpstatuses.com");
                    if !emulator_failed || attempt == 3 {
                        return reply;
                    }
                    String::from_utf8_lossy(&reply.body).into_owned()
                }
                Err(e) if e.is_timeout() && attempt < 3 => "no answer in 30 s".to_string(),
                Err(e) => panic!("{path}: {e}"),
            };
            eprintln!(
                "WARNING: cargo lambda watch failed {path} ({why}); retrying. {}",
                self.log_tail()
            );
        }
        unreachable!()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The whole group: the emulator and the function.
        let _ = std::process::Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.emulator.id()))
            .status();
        let _ = self.emulator.wait();
        let _ = self.function.wait();
    }
}

/// An original of exactly `len` bytes: a real JPEG followed by zeros (served as stored).
pub(crate) fn jpeg_of_len(len: u64) -> Vec<u8> {
    let mut bytes = std::fs::read(testdata().join("small.jpg")).unwrap();
    bytes.resize(usize::try_from(len).unwrap(), 0);
    bytes
}

/// A 302 to a presigned GET that downloads exactly `expected`.
async fn assert_redirects_to(r: &Reply, expected: &[u8]) {
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").expect("Location").to_string();
    let fetched = Reply::send(patient_client(60).get(&location)).await;
    assert_eq!(fetched.status, 200, "{location}");
    assert!(
        fetched.body == expected,
        "the presigned GET downloads the original"
    );
}

// Run by hand: `cargo test --features nasm --test api -- --ignored claims::buffered`.
// `cargo lambda watch` 1.9.2 in BUFFERED mode loses responses the function has logged and
// posted (no answer, or its own problem+json 500), most runs at least once, so in CI it
// would fail on the emulator, not on imgfn. runtime_api.rs tests BUFFERED in CI against a
// Runtime API peer of its own; RESPONSE_STREAM, the default, is tested here always.
#[tokio::test]
#[ignore = "cargo lambda watch loses BUFFERED responses intermittently; run by hand"]
async fn buffered_invoke_mode_sends_binary_bodies_within_its_default_budget() {
    crate::needs!(Garage, CargoLambda);
    let _turn = crate::support::turn("lambda-claims").await;
    let s3 = S3Env::new("lambda-buffered").await;
    for f in ["small.jpg", "alpha-small.png"] {
        s3.put_fixture(f).await;
    }
    let at = jpeg_of_len(BUFFERED_RESPONSE_BUDGET);
    let over = jpeg_of_len(BUFFERED_RESPONSE_BUDGET + 1);
    s3.put("at-budget.jpg", &at).await;
    s3.put("over-budget.jpg", &over).await;
    // IMGFN_MAX_RESPONSE_BYTES unset: the budget is the invoke mode's default.
    let lambda = Watch::start("buffered", &s3, &[("IMGFN_INVOKE_MODE", "buffered")]).await;
    let local = TestApp::spawn_with(s3.config()).await;

    // Binary bodies (base64 inside the buffered response) arrive byte for byte.
    for (path, content_type) in [
        ("/small.jpg?w=120&fmt=jpeg", "image/jpeg"),
        ("/alpha-small.png?w=120&fmt=png", "image/png"),
        ("/small.jpg?w=120&fmt=webp", "image/webp"),
        ("/small.jpg?w=120&fmt=avif", "image/avif"),
        ("/small.jpg", "image/jpeg"),
    ] {
        let r = lambda.get(path).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.content_type(), content_type, "{path}");
        assert!(
            r.body == local.get(path).await.body,
            "{path}: the buffered Lambda's bytes differ from the local server's"
        );
    }
    // Text stays text: a JSON error keeps its status and body.
    lambda
        .get("/nope.jpg?w=10")
        .await
        .assert_error(404, "not_found");
    let json = lambda.get("/small.jpg?fmt=json").await;
    assert_eq!(json.json()["width"], 640);

    // The default budget of BUFFERED is 4.4 MB: at it, sent; one byte over, a redirect.
    let r = lambda.get("/at-budget.jpg").await;
    assert_eq!(r.status, 200);
    assert!(r.body == at, "{} bytes at the budget", r.body.len());
    assert_redirects_to(&lambda.get("/over-budget.jpg").await, &over).await;

    // Under Lambda the request log is JSON by default, one line per request.
    let log = std::fs::read_to_string(&lambda.log).unwrap();
    let logged = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "imgfn::request" && v["key"] == "over-budget.jpg")
        .unwrap_or_else(|| panic!("no JSON request line: {}", lambda.log_tail()));
    assert_eq!(logged["status"], 302, "{logged}");
}

#[tokio::test]
async fn response_stream_mode_has_a_20_mib_default_budget() {
    crate::needs!(Garage, CargoLambda);
    let _turn = crate::support::turn("lambda-claims").await;
    let s3 = S3Env::new("lambda-stream").await;
    let at = jpeg_of_len(STREAM_RESPONSE_BUDGET);
    let over = jpeg_of_len(STREAM_RESPONSE_BUDGET + 1);
    let buffered_over = jpeg_of_len(BUFFERED_RESPONSE_BUDGET + 1);
    s3.put("at-budget.jpg", &at).await;
    s3.put("over-budget.jpg", &over).await;
    s3.put("over-buffered.jpg", &buffered_over).await;
    // No IMGFN_INVOKE_MODE and no IMGFN_MAX_RESPONSE_BYTES: the defaults.
    let lambda = Watch::start("stream", &s3, &[]).await;
    // What BUFFERED must redirect, a stream sends.
    let r = lambda.get("/over-buffered.jpg").await;
    assert_eq!(r.status, 200);
    assert!(r.body == buffered_over);
    let r = lambda.get("/at-budget.jpg").await;
    assert_eq!(r.status, 200);
    assert!(r.body == at, "{} bytes at the budget", r.body.len());
    assert_redirects_to(&lambda.get("/over-budget.jpg").await, &over).await;
}

#[test]
fn the_documented_budgets_are_the_configured_ones() {
    // README, Configuration: "under Lambda 20 MiB (stream) or 4.4 MB (buffered)".
    assert_eq!(STREAM_RESPONSE_BUDGET, 20 << 20);
    assert_eq!(BUFFERED_RESPONSE_BUDGET, 4_400_000);
    let readme = std::fs::read_to_string(testdata().join("../README.md")).unwrap();
    assert!(readme.contains("under Lambda 20 MiB (stream) or 4.4 MB (buffered)"));
    // 4.4 MB in base64 plus the JSON envelope fits Lambda's 6 MB buffered payload.
    assert!(BUFFERED_RESPONSE_BUDGET.div_ceil(3) * 4 + 64 * 1024 < 6 * 1024 * 1024);
}

/// The `[a, b]` list of `field:` inside the bucket's `CorsConfiguration` in template.yaml.
fn template_bucket_cors(field: &str) -> Vec<String> {
    let template =
        std::fs::read_to_string(testdata().join("../template.yaml")).expect("template.yaml");
    let cors = template
        .split("CorsConfiguration:")
        .nth(1)
        .expect("the bucket has a CorsConfiguration");
    let line = cors
        .lines()
        .take_while(|l| !l.trim_start().starts_with("LifecycleConfiguration:"))
        .find_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix(&format!("{field}:"))
        })
        .unwrap_or_else(|| panic!("{field} in the bucket's CorsConfiguration"));
    line.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

#[tokio::test]
async fn the_template_cors_rule_allows_what_an_upload_grant_asks_browsers_to_send() {
    crate::needs!(Garage);
    let s3 = S3Env::new("cors-grant").await;
    let mut config = s3.config();
    config.upload_token = Some(TOKEN.parse().unwrap());
    let app = TestApp::spawn_with(config).await;
    let grant = Reply::send(
        app.client
            .post(app.url("/_/uploads"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(r#"{"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 10}"#),
    )
    .await
    .json();
    let methods = template_bucket_cors("AllowedMethods");
    assert!(
        methods.contains(&grant["method"].as_str().unwrap().to_ascii_lowercase()),
        "{methods:?} {grant}"
    );
    let allowed = template_bucket_cors("AllowedHeaders");
    let headers = grant["headers"].as_object().expect("headers");
    assert!(headers.contains_key("if-none-match"), "{grant}");
    for name in headers.keys() {
        // Set by the browser itself, never preflighted (forbidden request headers).
        if name == "content-length" || name == "host" {
            continue;
        }
        assert!(
            allowed.contains(&name.to_ascii_lowercase()),
            "a browser PUT with `{name}` would fail the template's CORS preflight ({allowed:?})"
        );
    }
}
