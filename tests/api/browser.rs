//! End to end in a real browser: headless Chromium (Debian's `chromium` and `chromedriver`,
//! installed by scripts/test.sh) opens the gallery page served by imgfn, checks that every
//! thumbnail decodes at the size its device pixel ratio asks for, uploads a photo through the
//! page's form straight to the store, and sees it appear. Once over the real S3 server, once
//! over a local folder.

use crate::support::{tempdir, testdata, S3Env, TestApp};
use crate::uploads::TOKEN;
use fantoccini::{Client, ClientBuilder, Locator};
use imgfn::config::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Browsers are heavy on 2 cores: one at a time (`support::turn("browser")`).

const SEED: [&str; 4] = ["small.jpg", "orient-6.jpg", "alpha-small.png", "still.webp"];
const DPR: u64 = 2;

/// The program named by `var` (scripts/test.sh finds Chromium and chromedriver and sets it),
/// else the first of `names` on PATH.
fn tool(var: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{} not found: set {var} or install it (apt-get install chromium chromium-driver; \
                 scripts/test.sh does it)",
                names[0]
            )
        })
}

/// chromedriver on a free loopback port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let child = Command::new(tool("IMGFN_TEST_CHROMEDRIVER", &["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver; scripts/test.sh does it)");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let started = Instant::now();
        while reqwest::get(&status).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver {
            child,
            url,
            profile: tempdir(),
        }
    }

    pub(crate) async fn browser(&self) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1000",
            &format!("--force-device-scale-factor={DPR}"),
            &format!("--user-data-dir={}", self.profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": tool("IMGFN_TEST_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]), "args": args }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Poll a script until it returns something other than `null`.
pub(crate) async fn wait_for(
    browser: &Client,
    what: &str,
    script: &str,
    args: Vec<Value>,
) -> Value {
    let started = Instant::now();
    loop {
        let v = browser.execute(script, args.clone()).await.expect("script");
        if !v.is_null() {
            return v;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let status = browser
                .execute(
                    "return [document.getElementById('status').textContent, document.getElementById('gallery-status').textContent]",
                    vec![],
                )
                .await;
            panic!("timed out waiting for {what}; page status: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every figure in the grid once there are `arguments[0]` and all their images have loaded
/// (scrolling lazy ones into view), as `{key, caption, natural, attrs, src, lazy, received}`;
/// `received` is what Chromium itself got for the chosen candidate (its resource timing
/// entry: content type, status, body bytes, initiator).
const LOADED_FIGURES: &str = r#"
const figs = [...document.querySelectorAll('#grid figure.item')];
if (figs.length < arguments[0]) return null;
for (const f of figs) {
  const img = f.querySelector('img');
  if (img && !(img.complete && img.naturalWidth > 0)) { img.scrollIntoView(); return null; }
}
return figs.map(f => {
  const img = f.querySelector('img');
  const entry = img ? performance.getEntriesByName(img.currentSrc, 'resource').at(-1) : null;
  return {
    key: f.dataset.key,
    caption: f.querySelector('figcaption .dims').textContent,
    natural: img ? [img.naturalWidth, img.naturalHeight] : null,
    attrs: img ? [+img.getAttribute('width'), +img.getAttribute('height')] : null,
    src: img ? img.currentSrc : null,
    lazy: img ? img.loading : null,
    received: entry ? {
      type: entry.contentType,
      status: entry.responseStatus,
      bytes: entry.encodedBodySize,
      initiator: entry.initiatorType,
    } : null,
  };
});
"#;

/// The checks of one figure: labelled with the original's size, decoded, and at the density
/// the device asks for. (`naturalWidth` of an `x`-descriptor candidate is density-corrected,
/// i.e. in CSS pixels; the device pixels are checked by decoding the chosen candidate.)
async fn assert_figure(app: &TestApp, fig: &Value, width: u64, height: u64) {
    assert_eq!(fig["caption"], format!("{width} \u{d7} {height}"), "{fig}");
    let (w, h) = (
        fig["attrs"][0].as_u64().unwrap(),
        fig["attrs"][1].as_u64().unwrap(),
    );
    assert_eq!(fig["natural"], json!([w, h]), "{fig}");
    assert_eq!(fig["lazy"], "lazy");
    let src = fig["src"].as_str().unwrap();
    assert!(src.contains("dpr=2") && src.contains("fmt=auto"), "{fig}");
    // What Chromium itself received for the candidate it chose, with its own Accept header.
    let received = &fig["received"];
    assert_eq!(received["initiator"], "img", "{fig}");
    assert_eq!(received["status"], 200, "{fig}");
    assert_eq!(
        received["type"], "image/avif",
        "fmt=auto gave Chromium AVIF: {fig}"
    );
    // The same rendition fetched again with Chromium's Accept, to decode it: the bytes
    // Chromium got.
    let chrome_accept = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let chosen =
        crate::support::Reply::send(app.client.get(src).header("accept", chrome_accept)).await;
    assert_eq!(chosen.content_type(), "image/avif");
    assert_eq!(
        received["bytes"].as_u64(),
        Some(chosen.body.len() as u64),
        "{fig}"
    );
    let decoded = chosen.image();
    assert_eq!(
        (u64::from(decoded.width()), u64::from(decoded.height())),
        (w * DPR, h * DPR),
        "{fig}"
    );
}

/// Where the test finds the stored object (S3 or the folder).
enum Store<'a> {
    S3(&'a S3Env),
    Folder(&'a Path),
}

impl Store<'_> {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            Store::S3(s3) => s3.get(key).await,
            Store::Folder(root) => std::fs::read(root.join(key)).ok(),
        }
    }
}

/// Wraps `window.fetch` to keep, for every POST the page makes, its headers and body.
const RECORD_POSTS: &str = r#"
window.__imgfnPosts = [];
const original = window.fetch;
window.fetch = (input, init = {}) => {
  if ((init.method || 'GET').toUpperCase() === 'POST') {
    window.__imgfnPosts.push({url: String(input), headers: init.headers || {}, body: init.body});
  }
  return original(input, init);
};
"#;

/// The page's POST (the upload grant) carried `x-amz-content-sha256`, the hex SHA-256 of the
/// very body it sent (what Lambda demands behind CloudFront's origin access control), and its
/// token in `X-Imgfn-Authorization` (CloudFront replaces `Authorization`).
async fn assert_payload_hashes(browser: &Client) {
    use sha2::{Digest, Sha256};
    let posts = browser
        .execute("return window.__imgfnPosts;", vec![])
        .await
        .unwrap();
    let posts = posts.as_array().expect("recorded POSTs");
    assert_eq!(posts.len(), 1, "one POST per upload: {posts:?}");
    let post = &posts[0];
    assert!(
        post["url"].as_str().unwrap().ends_with("/_/uploads"),
        "{post}"
    );
    let body = post["body"].as_str().expect("a text body");
    let hash = post["headers"]["x-amz-content-sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("no x-amz-content-sha256: {post}"));
    let expected: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hash, expected, "the payload hash of {body}");
    assert_eq!(
        post["headers"]["X-Imgfn-Authorization"],
        format!("Bearer {TOKEN}"),
        "{post}"
    );
}

/// `screenshot` names the PNG saved under target/; the S3 run's is also the README's
/// docs/gallery.png when IMGFN_UPDATE_SCREENSHOT is set.
async fn run_gallery(app: &TestApp, store: Store<'_>, screenshot: &str) {
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url(&format!("/_/gallery#token={TOKEN}")))
        .await
        .unwrap();
    let figures = wait_for(
        &browser,
        "the seeded thumbnails",
        LOADED_FIGURES,
        vec![json!(SEED.len())],
    )
    .await;
    let expected = [
        ("alpha-small.png", 400, 300),
        ("orient-6.jpg", 640, 427),
        ("small.jpg", 640, 427),
        ("still.webp", 400, 225),
    ];
    let figures = figures.as_array().unwrap();
    assert_eq!(figures.len(), expected.len());
    for (fig, (key, w, h)) in figures.iter().zip(expected) {
        assert_eq!(fig["key"], key);
        assert_figure(app, fig, w, h).await;
    }
    // The token left the address bar once the page had read it.
    let url = browser.current_url().await.unwrap();
    assert!(!url.as_str().contains(TOKEN), "{url}");

    // What the page hands the browser's fetch() for each POST, recorded on its way through
    // (the request itself still goes to the server): its headers and the exact body.
    browser
        .execute(RECORD_POSTS, vec![])
        .await
        .expect("the recorder installs");

    // Upload through the form: the page asks for a URL, PUTs the file to it, shows it.
    let upload_dir = tempdir();
    let file = upload_dir.join("holiday photo.jpg");
    std::fs::copy(testdata().join("medium.jpg"), &file).unwrap();
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    browser
        .find(Locator::Css("#upload-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for(
        &browser,
        "the upload to finish",
        "const s = document.getElementById('status'); \
         return ['done', 'error'].includes(s.dataset.state) ? [s.dataset.state, s.textContent] : null;",
        vec![],
    )
    .await;
    assert_eq!(state[0], "done", "upload failed in the page: {state}");
    assert_payload_hashes(&browser).await;
    // The bar is moved by the upload's progress events alone; the last one reported every
    // byte of the file.
    let progress = browser
        .execute(
            "const p = document.getElementById('progress'); \
             return [p.value, p.dataset.loaded ?? null, p.dataset.total ?? null];",
            vec![],
        )
        .await
        .unwrap();
    let size = std::fs::metadata(&file).unwrap().len().to_string();
    assert_eq!(
        progress,
        json!([100, size, size]),
        "upload progress events (value, loaded, total)"
    );
    let figures = wait_for(
        &browser,
        "the uploaded image in the grid",
        LOADED_FIGURES,
        vec![json!(SEED.len() + 1)],
    )
    .await;
    let uploaded = figures
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"].as_str().unwrap().starts_with("uploads/"))
        .expect("the new image is in the grid")
        .clone();
    assert_figure(app, &uploaded, 1920, 1280).await;
    let key = uploaded["key"].as_str().unwrap();
    assert_eq!(
        store.get(key).await.as_deref(),
        Some(std::fs::read(&file).unwrap().as_slice()),
        "the upload landed byte-identical"
    );

    let shot = browser.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(screenshot), &shot).unwrap();
    if screenshot == "gallery-s3.png" && std::env::var_os("IMGFN_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("gallery.png"), &shot).unwrap();
    }

    // A forged URL and an expired one, used from the page: refused, nothing stored.
    const TRY_PUT: &str = r#"
const [mode, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const token = sessionStorage.getItem('imgfn-token');
  const body = new Blob([new Uint8Array(1000)], {type: 'image/png'});
  const r = await fetch('/_/uploads', {method: 'POST', headers: {'content-type': 'application/json', authorization: `Bearer ${token}`},
    body: JSON.stringify({filename: 'x.png', content_type: 'image/png', bytes: 1000})});
  const grant = await r.json();
  let url = grant.upload_url;
  if (mode === 'forged') url = url.replace(/(sig=|X-Amz-Signature=)/, '$1A');
  if (mode === 'expired') await new Promise(ok => setTimeout(ok, 3000));
  try {
    const put = await fetch(url, {method: 'PUT', headers: {'content-type': 'image/png'}, body});
    return {key: grant.key, status: put.status};
  } catch (e) {
    return {key: grant.key, status: 0, error: String(e)};
  }
})().then(done, e => done({error: String(e)}));
"#;
    for mode in ["forged", "expired"] {
        let r = browser
            .execute_async(TRY_PUT, vec![json!(mode)])
            .await
            .unwrap();
        let key = r["key"].as_str().unwrap_or_else(|| panic!("{mode}: {r}"));
        let status = r["status"].as_u64().unwrap();
        // 403 from imgfn or S3; Garage says 400 for an expired URL; 0 when the store's
        // refusal carries no CORS header and the browser hides it.
        assert!(matches!(status, 0 | 400 | 403), "{mode}: {r}");
        assert!(store.get(key).await.is_none(), "{mode} upload stored");
    }
    browser.close().await.unwrap();
}

/// The app a gallery test runs: uploads on, URLs valid 2 s (so one can expire in the test).
fn gallery_config(mut config: Config) -> Config {
    config.upload_token = Some(TOKEN.parse().unwrap());
    config.upload_expiry_secs = 2;
    config.gallery = Some(imgfn::config::GalleryMode::Public);
    config
}

#[tokio::test]
async fn gallery_in_chromium_over_s3() {
    crate::needs!(Garage, Chromium, Avifdec);
    let _one = crate::support::turn("browser").await;
    let s3 = S3Env::new("browser").await;
    for f in SEED {
        s3.put_fixture(f).await;
    }
    // The page (imgfn's origin) PUTs straight to the bucket: the bucket must allow it.
    s3.allow_browser_uploads().await;
    let app = TestApp::spawn_with(gallery_config(s3.config())).await;
    run_gallery(&app, Store::S3(&s3), "gallery-s3.png").await;
}

#[tokio::test]
async fn gallery_in_chromium_over_a_folder() {
    crate::needs!(Chromium, Avifdec);
    let _one = crate::support::turn("browser").await;
    let root = tempdir();
    for f in SEED {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    let app = TestApp::spawn_with(gallery_config(Config::with_root(&root))).await;
    run_gallery(&app, Store::Folder(&root), "gallery-folder.png").await;
}
