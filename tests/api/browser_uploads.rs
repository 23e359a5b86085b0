//! Large uploads through the gallery page in headless Chromium, over the real S3 server
//! (Garage) and over a folder: a 40 MiB image goes in parts (counted on the wire by a proxy
//! in front of whoever receives them), lands byte-identical and appears in the grid; an upload
//! cut off after some parts resumes when the same file is chosen again and sends only the
//! parts that are missing.

use crate::browser::{wait_for, Driver};
use crate::multipart::{padded_jpeg, Store};
use crate::support::{tempdir, S3Env, TestApp};
use crate::uploads::TOKEN;
use fantoccini::{Client, Locator};
use imgfn::config::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1 << 20;

/// A proxy that reads each request head on its way to the server: it counts the part PUTs
/// (imgfn's `PUT /_/uploads/<id>/parts/<n>`, or S3's `PUT ...?partNumber=<n>&uploadId=...`),
/// and once `open` of them have passed, holds every later one (never forwarded, even if the
/// gate opens again: its connection is dropped when the client gives up).
struct Gate {
    addr: SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    /// Part numbers of the part PUTs forwarded, in order.
    forwarded: Mutex<Vec<u32>>,
    /// How many part PUTs may pass in all.
    open: AtomicUsize,
    /// Part PUTs held.
    held: AtomicUsize,
    /// The next PUT of this part number is cut off (its connection closed, unanswered).
    fail_part: AtomicUsize,
    /// Part PUTs cut off.
    failed: Mutex<Vec<u32>>,
}

impl Gate {
    /// Bound now (so its address can be handed out), started with `run`.
    async fn bind() -> Arc<Gate> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Arc::new(Gate {
            addr: listener.local_addr().unwrap(),
            listener: Mutex::new(Some(listener)),
            forwarded: Mutex::new(Vec::new()),
            open: AtomicUsize::new(usize::MAX),
            held: AtomicUsize::new(0),
            fail_part: AtomicUsize::new(0),
            failed: Mutex::new(Vec::new()),
        })
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn run(self: &Arc<Gate>, upstream: SocketAddr) {
        let listener = self.listener.lock().unwrap().take().unwrap();
        let gate = self.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(gate.clone().forward(client, upstream));
            }
        });
    }

    fn parts(&self) -> Vec<u32> {
        self.forwarded.lock().unwrap().clone()
    }

    /// Let `n` more part PUTs pass from now on, counting afresh.
    fn reset(&self, open: usize) {
        self.forwarded.lock().unwrap().clear();
        self.open.store(open, Ordering::SeqCst);
    }

    async fn forward(self: Arc<Gate>, client: TcpStream, upstream: SocketAddr) {
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut cr, cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        // The client's write half is shared: the server's answers go through it, and so does
        // the gate's own 503 (requests on a connection come one after the other).
        let cw = Arc::new(tokio::sync::Mutex::new(cw));
        let down = cw.clone();
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n) = sr.read(&mut chunk).await {
                if n == 0 || down.lock().await.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
            }
            let _ = down.lock().await.shutdown().await;
        });
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // One request head.
            let end = loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                match cr.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut first = head.split(' ');
            let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if let Some(n) = part_number(method, target) {
                let fail = self
                    .fail_part
                    .compare_exchange(n as usize, 0, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if fail {
                    // The store fails this PUT (as S3's 503 SlowDown): its body is read and
                    // dropped, the answer is a 503 the page may read (CORS), then the
                    // connection closes. (A connection merely closed is retried by Chromium
                    // itself for an idempotent PUT: the page would never see it.)
                    self.failed.lock().unwrap().push(n);
                    let mut rest = length.saturating_sub(buf.len() - end);
                    while rest > 0 {
                        match cr.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(got) => rest = rest.saturating_sub(got),
                        }
                    }
                    let mut cw = cw.lock().await;
                    let _ = cw
                        .write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nAccess-Control-Allow-Origin: *\r\n\
                              Content-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = cw.shutdown().await;
                    return;
                }
                let hold = {
                    let mut forwarded = self.forwarded.lock().unwrap();
                    let hold = forwarded.len() >= self.open.load(Ordering::SeqCst);
                    if !hold {
                        forwarded.push(n);
                    }
                    hold
                };
                if hold {
                    self.held.fetch_add(1, Ordering::SeqCst);
                    // Held for good: read (and drop) until the client hangs up.
                    while matches!(cr.read(&mut chunk).await, Ok(n) if n > 0) {}
                    return;
                }
            }
            // The head and its body, as they come.
            let mut rest = length;
            let have = (buf.len() - end).min(rest);
            if sw.write_all(&buf[..end + have]).await.is_err() {
                return;
            }
            buf.drain(..end + have);
            rest -= have;
            while rest > 0 {
                let n = match cr.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let take = n.min(rest);
                if sw.write_all(&chunk[..take]).await.is_err() {
                    return;
                }
                buf.extend_from_slice(&chunk[take..n]);
                rest -= take;
            }
        }
    }
}

/// The part number of a part PUT (imgfn's or S3's), else `None`.
fn part_number(method: &str, target: &str) -> Option<u32> {
    if method != "PUT" {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(rest) = path.strip_prefix("/_/uploads/") {
        let (_, n) = rest.split_once("/parts/")?;
        return n.parse().ok();
    }
    query.contains("uploadId=").then_some(())?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("partNumber="))
        .and_then(|n| n.parse().ok())
}

/// The app under test and where its uploads land; part PUTs pass through `gate`. With S3,
/// imgfn's S3 client (so its presigned part URLs) points at the gate in front of Garage; with
/// the folder the page itself is opened through the gate (imgfn's public URL).
async fn spawn(
    s3: bool,
    test: &str,
    gate: &Arc<Gate>,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, Store, String) {
    if s3 {
        let env = S3Env::new(test).await;
        env.allow_browser_uploads().await;
        let mut config = env.config();
        config.upload_token = Some(TOKEN.parse().unwrap());
        config.gallery = Some(imgfn::config::GalleryMode::Public);
        tweak(&mut config);
        let endpoint = crate::support::required_env("AWS_ENDPOINT_URL_S3");
        let garage =
            tokio::net::lookup_host(endpoint.trim_start_matches("http://").trim_end_matches('/'))
                .await
                .unwrap()
                .next()
                .unwrap();
        gate.run(garage);
        let source = crate::probe::s3_source_via(&gate.origin(), &env, &config, 10_000);
        let app = TestApp::spawn_source(config, source).await;
        let page = app.url("/_/gallery");
        (app, Store::S3(env), page)
    } else {
        let root = tempdir();
        let mut config = Config::with_root(&root);
        config.upload_token = Some(TOKEN.parse().unwrap());
        config.gallery = Some(imgfn::config::GalleryMode::Public);
        config.public_url = Some(gate.origin());
        tweak(&mut config);
        let app = TestApp::spawn_with(config).await;
        gate.run(app.addr);
        let page = format!("{}/_/gallery", gate.origin());
        (app, Store::Folder(root), page)
    }
}

/// Open the page with the token, choose `file` in the upload section.
async fn choose(browser: &Client, page: &str, file: &std::path::Path) {
    browser
        .goto(&format!("{page}#token={TOKEN}"))
        .await
        .unwrap();
    wait_for(
        browser,
        "the upload section",
        "const i = document.getElementById('upload-files'); \
         return i && !document.getElementById('upload').hidden ? true : null;",
        vec![],
    )
    .await;
    browser
        .find(Locator::Css("#upload-files"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
}

/// Wait until the file's row is done (or failed); its state and text.
async fn finished(browser: &Client, name: &str) -> Value {
    wait_for(
        browser,
        "the upload to finish",
        "const li = [...document.querySelectorAll('#upload-list li')].find((l) => l.dataset.name === arguments[0]); \
         return li && ['done', 'error'].includes(li.dataset.state) \
           ? [li.dataset.state, li.querySelector('.state').textContent, li.querySelector('progress').value] : null;",
        vec![json!(name)],
    )
    .await
}

/// The new key, from the row's text (`Uploaded <key>`).
fn key_of(state: &Value) -> String {
    assert_eq!(state[0], "done", "the upload failed in the page: {state}");
    state[1]
        .as_str()
        .unwrap()
        .trim_start_matches("Uploaded ")
        .to_string()
}

/// Wait until the grid shows `key` with its thumbnail loaded.
async fn in_grid(browser: &Client, key: &str) {
    wait_for(
        browser,
        "the upload in the grid",
        "const f = [...document.querySelectorAll('#grid figure')].find((f) => f.dataset.key === arguments[0]); \
         const img = f && f.querySelector('img'); \
         return img && img.complete && img.naturalWidth > 0 ? true : null;",
        vec![json!(key)],
    )
    .await;
}

/// No resume state is left in the page's storage.
async fn no_resume_state(browser: &Client) {
    let left = browser
        .execute(
            "return Object.keys(localStorage).filter((k) => k.startsWith('imgfn-upload:'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(left, json!([]), "resume state left behind");
}

async fn forty_mib_in_parts(s3: bool) {
    let _one = crate::support::turn("browser").await;
    let gate = Gate::bind().await;
    // The defaults: parts above 16 MiB, 8 MiB each.
    let (_app, store, page) = spawn(s3, "browser-parts", &gate, |_| {}).await;
    let dir = tempdir();
    let file = dir.join("scan of the harbour.jpg");
    let bytes = padded_jpeg(40 * MIB);
    std::fs::write(&file, &bytes).unwrap();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    choose(&browser, &page, &file).await;
    let state = finished(&browser, "scan of the harbour.jpg").await;
    let key = key_of(&state);
    assert_eq!(
        state[2],
        json!(40 * MIB),
        "the progress bar ends full: {state}"
    );
    let mut parts = gate.parts();
    parts.sort();
    assert_eq!(
        parts,
        [1, 2, 3, 4, 5],
        "40 MiB in five parts of 8 MiB, each sent once"
    );
    assert!(
        store.object(&key).await.as_deref() == Some(bytes.as_slice()),
        "the stored object differs from the file"
    );
    assert_eq!(store.in_progress().await, 0);
    in_grid(&browser, &key).await;
    no_resume_state(&browser).await;
    browser.close().await.unwrap();
}

async fn resumes_sending_only_missing_parts(s3: bool) {
    let _one = crate::support::turn("browser").await;
    let gate = Gate::bind().await;
    // Five parts of 5 MiB (S3's smallest), to keep the test quick.
    let (app, store, page) = spawn(s3, "browser-resume", &gate, |c| {
        c.multipart_threshold_bytes = MIB as u64;
        c.multipart_part_bytes = 5 * MIB as u64;
    })
    .await;
    let dir = tempdir();
    let file = dir.join("long exposure.jpg");
    let size = 4 * 5 * MIB + 777_777;
    let bytes = padded_jpeg(size);
    std::fs::write(&file, &bytes).unwrap();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    // Two parts pass, then the connection to the store is cut for the others.
    gate.reset(2);
    choose(&browser, &page, &file).await;
    let id = wait_for(
        &browser,
        "two parts stored",
        "const k = Object.keys(localStorage).find((k) => k.startsWith('imgfn-upload:')); \
         return k ? JSON.parse(localStorage.getItem(k)).id : null;",
        vec![],
    )
    .await;
    let id = id.as_str().unwrap().to_string();
    let mut received = 0;
    for _ in 0..300 {
        let r = crate::multipart::call(
            &app,
            reqwest::Method::GET,
            &format!("/_/uploads/{id}"),
            None,
        )
        .await;
        received = r.json()["parts"].as_array().unwrap().len();
        if received == 2 && gate.held.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received, 2, "two parts should have reached the store");
    // Which two passed depends on which of the parallel PUTs came first.
    let held_before = gate.parts();
    assert_eq!(held_before.len(), 2);
    // The page goes away mid-upload (its part PUTs are cut off).
    browser.goto("about:blank").await.unwrap();

    // Back, the same file chosen again: only the three missing parts are sent.
    gate.reset(usize::MAX);
    choose(&browser, &page, &file).await;
    let state = finished(&browser, "long exposure.jpg").await;
    let key = key_of(&state);
    let mut parts = gate.parts();
    parts.sort();
    assert_eq!(
        parts.len(),
        3,
        "resumed: only the missing parts are sent, got {parts:?}"
    );
    let rest: Vec<u32> = (1..=5).filter(|n| !held_before.contains(n)).collect();
    assert_eq!(parts, rest, "the parts the store did not have, each once");
    assert!(
        store.object(&key).await.as_deref() == Some(bytes.as_slice()),
        "the stored object differs from the file"
    );
    assert_eq!(store.in_progress().await, 0);
    in_grid(&browser, &key).await;
    no_resume_state(&browser).await;
    // The upload section as it is after an upload (its list, bar and button) is accessible.
    if std::env::var_os("IMGFN_TEST_AXE").is_some() {
        crate::browser::assert_accessible_in(&browser, "'#upload'", "the upload section").await;
    }
    browser.close().await.unwrap();
}

/// A part whose connection is lost is sent again (with a fresh URL), and the upload completes.
async fn a_failed_part_is_sent_again(s3: bool) {
    let _one = crate::support::turn("browser").await;
    let gate = Gate::bind().await;
    let (_app, store, page) = spawn(s3, "browser-retry", &gate, |c| {
        c.multipart_threshold_bytes = MIB as u64;
        c.multipart_part_bytes = 5 * MIB as u64;
    })
    .await;
    let dir = tempdir();
    let file = dir.join("retried.jpg");
    let bytes = padded_jpeg(2 * 5 * MIB + 4321);
    std::fs::write(&file, &bytes).unwrap();
    gate.fail_part.store(2, Ordering::SeqCst);

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    choose(&browser, &page, &file).await;
    let state = finished(&browser, "retried.jpg").await;
    let key = key_of(&state);
    assert_eq!(
        *gate.failed.lock().unwrap(),
        [2],
        "part 2's first PUT was cut off"
    );
    let mut parts = gate.parts();
    parts.sort();
    assert_eq!(parts, [1, 2, 3], "part 2 sent again, the others once");
    assert!(
        store.object(&key).await.as_deref() == Some(bytes.as_slice()),
        "the stored object differs from the file"
    );
    assert_eq!(store.in_progress().await, 0);
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_part_is_sent_again_over_s3() {
    crate::needs!(Garage, Chromium);
    a_failed_part_is_sent_again(true).await;
}

#[tokio::test]
async fn a_failed_part_is_sent_again_over_a_folder() {
    crate::needs!(Chromium);
    a_failed_part_is_sent_again(false).await;
}

#[tokio::test]
async fn forty_mib_in_parts_over_s3() {
    crate::needs!(Garage, Chromium);
    forty_mib_in_parts(true).await;
}

#[tokio::test]
async fn forty_mib_in_parts_over_a_folder() {
    crate::needs!(Chromium);
    forty_mib_in_parts(false).await;
}

#[tokio::test]
async fn an_interrupted_upload_resumes_over_s3() {
    crate::needs!(Garage, Chromium);
    resumes_sending_only_missing_parts(true).await;
}

#[tokio::test]
async fn an_interrupted_upload_resumes_over_a_folder() {
    crate::needs!(Chromium);
    resumes_sending_only_missing_parts(false).await;
}
