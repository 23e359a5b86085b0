//! End to end in a real browser: headless Chromium (Debian's `chromium` and `chromedriver`,
//! installed by scripts/test.sh) opens the gallery page served by imgfn, once over the real S3
//! server and once over a local folder: placeholders at the final size while the thumbnails are
//! held back, every thumbnail at the size its device pixel ratio asks for, more pages as the
//! page scrolls, the viewer (click and keyboard, ←/→/Esc, focus returned, the download), the
//! upload form only with a token, a private gallery asking for its token, and axe-core finding
//! no serious or critical violation in each state. (Uploads through the page:
//! `browser_uploads.rs`.)

use crate::support::{tempdir, testdata, S3Env, TestApp};
use crate::uploads::TOKEN;
use fantoccini::{Client, ClientBuilder, Locator};
use imgfn::config::{Config, GalleryMode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Browsers are heavy on 2 cores: one at a time (`support::turn("browser")`).

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
                    "return [document.getElementById('gallery-status')?.textContent, \
                     document.getElementById('signin-status')?.textContent]",
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

/// A Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(&'static str, Value);

type UrlParseError = <reqwest::Url as std::str::FromStr>::Err;

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, UrlParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 }).to_string();
        (http::Method::POST, Some(body))
    }
}

async fn cdp(browser: &Client, cmd: &'static str, params: Value) {
    browser
        .issue_cmd(Cdp(cmd, params))
        .await
        .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
}

/// Thumbnails (the 2x candidates the DPR-2 browser asks for) are held back by the browser
/// until [`release_thumbnails`]: the placeholders stay on screen.
async fn hold_thumbnails(browser: &Client) {
    let pattern = json!({ "urlPattern": "*dpr=2*", "requestStage": "Request" });
    cdp(browser, "Fetch.enable", json!({ "patterns": [pattern] })).await;
}

async fn release_thumbnails(browser: &Client) {
    cdp(browser, "Fetch.disable", json!({})).await;
}

/// The grid's figures with what each `img` shows before its thumbnail has arrived (or
/// `null` until there are `arguments[0]`): its attributes, its placeholder (the `data:` URL
/// and whether it is the background), whether it has loaded, and where it is on the page.
const FIGURE_STATES: &str = r#"
const figs = [...document.querySelectorAll('#grid figure.item')];
if (figs.length < arguments[0]) return null;
return figs.map(f => {
  const img = f.querySelector('img');
  const r = img.getBoundingClientRect();
  return {
    key: f.dataset.key,
    attrs: [img.getAttribute('width'), img.getAttribute('height')],
    alt: img.alt,
    placeholder: img.dataset.placeholder ?? null,
    background: img.style.backgroundImage,
    loaded: img.complete && img.naturalWidth > 0,
    cleared: img.dataset.loaded === '1',
    box: [r.left + scrollX, r.top + scrollY, r.width, r.height],
  };
});
"#;

/// The viewer once its image has loaded (`null` before).
const VIEWER_STATE: &str = r#"
const d = document.getElementById('viewer');
const img = document.getElementById('viewer-img');
if (!d.open || !(img.complete && img.naturalWidth > 0)) return null;
const r = img.getBoundingClientRect();
const text = id => document.getElementById(id).textContent;
return {
  title: text('viewer-title'), dims: text('viewer-dims'), format: text('viewer-format'),
  bytes: text('viewer-bytes'), key: img.dataset.key, alt: img.alt,
  download: document.getElementById('viewer-download').getAttribute('href'),
  src: img.currentSrc, srcset: img.getAttribute('srcset'), sizes: img.getAttribute('sizes'),
  rendered: [r.width, r.height], viewport: [innerWidth, innerHeight],
  focus: document.activeElement.id,
};
"#;

/// Where focus is: the key of the figure whose link has it, else the element's id.
const FOCUS: &str = r#"
const a = document.activeElement;
const fig = a && a.closest('figure.item');
return fig ? {figure: fig.dataset.key, tag: a.tagName} : {id: a ? a.id : null, tag: a ? a.tagName : null};
"#;

/// Where focus is once a closed viewer's `close` event has run, waiting for it to reach the
/// thumbnail of `figure`: on Esc, Chrome first gives focus back to what had it before
/// `showModal()` (the thumbnail the viewer was opened from), and the page's handler then
/// moves it to the image last shown. Read at once, the first of the two could be seen.
async fn focus_after_close(browser: &Client, figure: &str) -> Value {
    wait_for(
        browser,
        &format!("focus on the thumbnail of {figure}"),
        &format!("const f = (() => {{{FOCUS}}})(); return f.figure === arguments[0] ? f : null;"),
        vec![json!(figure)],
    )
    .await
}

/// axe-core's serious and critical violations on the page as it is, `what` naming the state.
async fn assert_accessible(browser: &Client, what: &str) {
    assert_accessible_in(browser, "document", what).await;
}

/// [`assert_accessible`] within `context`, an axe-core context as JavaScript (`document`, or a
/// selector such as `'#upload'`).
pub(crate) async fn assert_accessible_in(browser: &Client, context: &str, what: &str) {
    let axe = std::env::var_os("IMGFN_TEST_AXE").expect("IMGFN_TEST_AXE (crate::needs!(Axe))");
    let source = std::fs::read_to_string(&axe).expect("axe.min.js");
    // axe.min.js is a UMD bundle: run as a script body it defines `window.axe`.
    browser
        .execute(&format!("{source}\nreturn typeof window.axe;"), vec![])
        .await
        .expect("axe-core loads");
    let result = browser
        .execute_async(
            &format!(
                r#"const done = arguments[arguments.length - 1];
axe.run({context}, {{resultTypes: ['violations']}})
  .then(r => done(r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' '))}}))), e => done({{error: String(e)}}));"#
            ),
            vec![],
        )
        .await
        .expect("axe.run");
    let violations = result
        .as_array()
        .unwrap_or_else(|| panic!("axe failed on {what}: {result}"));
    let grave: Vec<&Value> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        grave.is_empty(),
        "axe-core on {what}: {}",
        serde_json::to_string_pretty(&grave).unwrap()
    );
    eprintln!(
        "axe-core on {what}: no serious or critical violation ({} minor/moderate: {:?})",
        violations.len(),
        violations.iter().map(|v| &v["id"]).collect::<Vec<_>>()
    );
}

/// Send a key (WebDriver's code points: U+E007 Enter, U+E00C Escape, U+E012 ←, U+E014 →) to
/// whatever has focus.
async fn press(browser: &Client, key: &str) {
    browser
        .active_element()
        .await
        .expect("a focused element")
        .send_keys(key)
        .await
        .expect("keys");
}

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const LEFT: &str = "\u{E012}";
const RIGHT: &str = "\u{E014}";

/// Copies of small.jpg that make the listing several pages long (last in key order).
const COPIES: usize = 16;
/// The originals a gallery test starts with, as displayed, in key order.
const GRID: [(&str, u64, u64); 5] = [
    ("alpha-small.png", 400, 300),
    ("medium.jpg", 1920, 1280),
    ("orient-6.jpg", 640, 427),
    ("small.jpg", 640, 427),
    ("still.webp", 400, 225),
];
/// The listing's page size in the tests (the page passes its own `?limit=` on).
const PAGE: usize = 4;

fn copy_key(i: usize) -> String {
    format!("zz/copy-{i:02}.jpg")
}

fn all_keys() -> Vec<String> {
    let mut keys: Vec<String> = GRID.iter().map(|(k, _, _)| k.to_string()).collect();
    keys.extend((1..=COPIES).map(copy_key));
    keys
}

/// The public gallery (uploads on) and the private one over the same store.
async fn run_gallery(app: &TestApp, private: &TestApp, store: Store<'_>, label: &str) {
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    // Short enough that the first pages do not fill it: scrolling must load the rest.
    browser.set_window_size(1200, 700).await.unwrap();

    // 1. No token, thumbnails held back: the grid shows placeholders at the final size, and
    //    no upload form.
    hold_thumbnails(&browser).await;
    browser
        .goto(&app.url(&format!("/_/gallery?limit={PAGE}")))
        .await
        .unwrap();
    let held = wait_for(
        &browser,
        "the first page's placeholders",
        FIGURE_STATES,
        vec![json!(PAGE)],
    )
    .await;
    let listing = app.get("/_/gallery.json?limit=1000").await.json();
    let placeholders: std::collections::HashMap<&str, &str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap(),
                i["placeholder"].as_str().unwrap(),
            )
        })
        .collect();
    let held = held.as_array().unwrap().clone();
    for fig in &held {
        let key = fig["key"].as_str().unwrap();
        assert_eq!(fig["alt"], key, "alt from the key");
        assert!(
            fig["attrs"].as_array().unwrap().iter().all(|v| v
                .as_str()
                .and_then(|s| s.parse::<u32>().ok())
                .is_some_and(|n| n > 0)),
            "width and height attributes: {fig}"
        );
        assert_eq!(fig["loaded"], false, "the thumbnail was held back: {fig}");
        assert_eq!(
            fig["placeholder"], placeholders[key],
            "the listing's placeholder: {key}"
        );
        assert!(
            fig["background"]
                .as_str()
                .unwrap()
                .contains("data:image/png;base64,"),
            "the placeholder is drawn: {fig}"
        );
    }
    let shot = browser.screenshot().await.unwrap();
    save_screenshot(&format!("gallery-placeholders-{label}.png"), &shot);
    let upload = browser
        .execute(
            "const u = document.getElementById('upload'); \
             return [u.children.length, u.querySelectorAll('input[type=file]').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(upload, json!([0, 0]), "no upload form without a token");

    // 2. Scrolling loads the next pages (through the listing's cursor) until the end.
    let first = browser
        .execute(
            "return document.querySelectorAll('#grid figure.item').length",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap() as usize;
    let total = GRID.len() + COPIES;
    assert!(
        first < total,
        "the first screenful loaded everything ({first})"
    );
    let scrolled = wait_for(
        &browser,
        "every page, scrolling",
        "const n = document.querySelectorAll('#grid figure.item').length; \
         if (n < arguments[0]) { scrollTo(0, document.documentElement.scrollHeight); return null; } \
         return [...document.querySelectorAll('#grid figure.item')].map(f => f.dataset.key);",
        vec![json!(total)],
    )
    .await;
    assert_eq!(
        scrolled,
        json!(all_keys()),
        "every original once, in key order"
    );
    let cursors = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name) \
               .filter(n => n.includes('/_/gallery.json') && n.includes('cursor=')).length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        cursors.as_u64().unwrap() as usize >= total.div_ceil(PAGE) - 1,
        "pages after the first asked with the listing's cursor: {cursors}"
    );
    assert_eq!(
        browser
            .execute("return document.getElementById('more').hidden", vec![])
            .await
            .unwrap(),
        true,
        "no `Load more` after the last page"
    );

    // 3. The thumbnails arrive: each at the density asked for, in the box its placeholder
    //    held (no layout shift), the placeholder gone.
    browser.execute("scrollTo(0, 0)", vec![]).await.unwrap();
    let held = wait_for(&browser, "the held grid", FIGURE_STATES, vec![json!(total)]).await;
    let held = held.as_array().unwrap().clone();
    assert!(held.iter().all(|f| f["loaded"] == false), "still held back");
    release_thumbnails(&browser).await;
    browser.execute("scrollTo(0, 0)", vec![]).await.unwrap();
    let figures = wait_for(
        &browser,
        "every thumbnail",
        LOADED_FIGURES,
        vec![json!(total)],
    )
    .await;
    for (key, w, h) in GRID {
        let fig = figures
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap();
        assert_figure(app, fig, w, h).await;
    }
    browser.execute("scrollTo(0, 0)", vec![]).await.unwrap();
    let loaded = wait_for(&browser, "the grid", FIGURE_STATES, vec![json!(total)]).await;
    for before in &held {
        let after = loaded
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == before["key"])
            .unwrap();
        assert_eq!(after["loaded"], true, "{after}");
        assert_eq!(after["box"], before["box"], "layout shift: {after}");
        assert_eq!(after["cleared"], true, "{after}");
        assert_eq!(after["background"], "", "the placeholder is gone: {after}");
    }
    assert_accessible(&browser, &format!("the grid ({label})")).await;

    // 4. The viewer, opened by a click: the image at the viewport's size, its facts, the
    //    download link.
    browser
        .find(Locator::Css("#grid figure.item[data-key='medium.jpg'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let v = wait_for(&browser, "the viewer", VIEWER_STATE, vec![]).await;
    assert_eq!(v["title"], "medium.jpg", "{v}");
    assert_eq!(v["alt"], "medium.jpg");
    assert_eq!(v["dims"], "1920 \u{d7} 1280");
    assert_eq!(v["format"], "JPEG");
    let medium = std::fs::read(testdata().join("medium.jpg")).unwrap();
    let bytes_text = v["bytes"].as_str().unwrap();
    let with_commas = {
        let digits = medium.len().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    assert!(
        bytes_text.contains(&format!("({with_commas} bytes)")),
        "{v}"
    );
    assert_eq!(v["focus"], "viewer-close", "focus moves into the viewer");
    // The candidate Chromium chose covers the drawn width at DPR 2 (or is the widest), and
    // no candidate is wider than the original.
    let width_of = |url: &str| -> u64 {
        url.split(['?', '&'])
            .find_map(|p| p.strip_prefix("w="))
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no w= in {url}"))
    };
    let candidates: Vec<u64> = v["srcset"]
        .as_str()
        .unwrap()
        .split(", ")
        .map(|c| {
            c.rsplit_once(' ')
                .unwrap()
                .1
                .trim_end_matches('w')
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(candidates, [640, 1280, 1920], "{v}");
    let drawn = v["rendered"][0].as_f64().unwrap();
    let viewport = v["viewport"][0].as_f64().unwrap();
    assert!(drawn <= viewport && drawn > viewport / 2.0, "{v}");
    let chosen = width_of(v["src"].as_str().unwrap());
    let needed = (drawn * DPR as f64).min(1920.0) as u64;
    assert!(
        chosen >= needed,
        "chose {chosen}w for {drawn} CSS px at DPR {DPR}: {v}"
    );
    let image = crate::support::Reply::send(app.client.get(v["src"].as_str().unwrap()))
        .await
        .image();
    assert_eq!(u64::from(image.width()), chosen);
    assert_accessible(&browser, &format!("the viewer ({label})")).await;

    // The download link: `download=1`, an attachment with the original's bytes.
    let download = v["download"].as_str().unwrap();
    assert!(download.contains("download=1"), "{download}");
    let got = app.get(download).await;
    assert_eq!(got.status, 200);
    assert!(
        got.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "{:?}",
        got.header("content-disposition")
    );
    assert_eq!(
        store.get("medium.jpg").await.as_deref(),
        Some(&got.body[..])
    );

    // 5. The keyboard: → and ← follow the grid, Esc closes and gives focus back.
    let title = |b: &Client| {
        let b = b.clone();
        async move {
            b.execute(
                "return document.getElementById('viewer').open ? \
                 document.getElementById('viewer-title').textContent : null",
                vec![],
            )
            .await
            .unwrap()
        }
    };
    for (key, expected) in [
        (RIGHT, "orient-6.jpg"),
        (LEFT, "medium.jpg"),
        (LEFT, "alpha-small.png"),
    ] {
        press(&browser, key).await;
        wait_for(
            &browser,
            expected,
            "return document.getElementById('viewer-title').textContent === arguments[0] ? true : null",
            vec![json!(expected)],
        )
        .await;
    }
    press(&browser, ESCAPE).await;
    assert_eq!(title(&browser).await, Value::Null, "Esc closes the viewer");
    assert_eq!(
        focus_after_close(&browser, "alpha-small.png").await,
        json!({"figure": "alpha-small.png", "tag": "A"}),
        "focus is back on the thumbnail last shown"
    );
    // Opened from the keyboard: Enter on a focused thumbnail.
    browser
        .execute(
            "document.querySelector(\"#grid figure.item[data-key='small.jpg'] a\").focus()",
            vec![],
        )
        .await
        .unwrap();
    press(&browser, ENTER).await;
    let v = wait_for(&browser, "the viewer from Enter", VIEWER_STATE, vec![]).await;
    assert_eq!(v["title"], "small.jpg");
    press(&browser, ESCAPE).await;
    assert_eq!(
        focus_after_close(&browser, "small.jpg").await,
        json!({"figure": "small.jpg", "tag": "A"})
    );

    // 6. With the token (`#token=`): the upload form appears (upload.js), and the token
    //    leaves the address bar.
    browser
        .goto(&app.url(&format!("/_/gallery#token={TOKEN}")))
        .await
        .unwrap();
    wait_for(
        &browser,
        "the grid with a token",
        FIGURE_STATES,
        vec![json!(PAGE)],
    )
    .await;
    let url = browser.current_url().await.unwrap();
    assert!(!url.as_str().contains(TOKEN), "{url}");
    wait_for(
        &browser,
        "the upload form",
        "return document.querySelector('#upload input[type=file]') ? true : null",
        vec![],
    )
    .await;
    assert_accessible(&browser, &format!("the upload form ({label})")).await;
    forged_and_expired_uploads_are_refused(&browser, &store).await;

    // 7. A private gallery: the page asks for the token; the viewer token opens it.
    browser.goto(&private.url("/_/gallery")).await.unwrap();
    let asked = wait_for(
        &browser,
        "the sign-in",
        "const f = document.getElementById('signin'); \
         return f.hidden ? null : [document.getElementById('signin-status').textContent, \
           document.activeElement.id, document.querySelectorAll('#grid figure').length];",
        vec![],
    )
    .await;
    assert!(asked[0].as_str().unwrap().contains("private"), "{asked}");
    assert_eq!(asked[1], "token", "the token field has focus");
    assert_eq!(asked[2], 0, "nothing listed without the token");
    assert_accessible(&browser, &format!("the sign-in ({label})")).await;
    for (token, grid) in [("wrong-token-wrong-token", false), (VIEWER, true)] {
        let field = browser.find(Locator::Id("token")).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(token).await.unwrap();
        press(&browser, ENTER).await;
        if grid {
            wait_for(
                &browser,
                "the private grid",
                FIGURE_STATES,
                vec![json!(GRID.len())],
            )
            .await;
        } else {
            wait_for(
                &browser,
                "the refusal",
                "const s = document.getElementById('signin-status').textContent; \
                 return s.includes('refused') ? s : null;",
                vec![],
            )
            .await;
        }
    }
    browser.close().await.unwrap();
}

fn save_screenshot(name: &str, png: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// A forged URL and an expired one, used from the page: refused, nothing stored.
async fn forged_and_expired_uploads_are_refused(browser: &Client, store: &Store<'_>) {
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
}

/// The viewer token of the private runs.
const VIEWER: &str = crate::gallery::VIEWER;

/// The apps a gallery test runs: public with uploads on (URLs valid 2 s, so one can expire in
/// the test), and private with a viewer token, over the same store.
fn gallery_configs(store: impl Fn() -> Config) -> (Config, Config) {
    let mut public = store();
    public.upload_token = Some(TOKEN.parse().unwrap());
    public.upload_expiry_secs = 2;
    public.gallery = Some(GalleryMode::Public);
    let mut private = store();
    private.upload_token = Some(TOKEN.parse().unwrap());
    private.gallery_token = Some(VIEWER.parse().unwrap());
    private.gallery = Some(GalleryMode::Private);
    (public, private)
}

fn seed_folder(root: &Path) {
    for (f, _, _) in GRID {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    std::fs::create_dir_all(root.join("zz")).unwrap();
    for i in 1..=COPIES {
        std::fs::copy(testdata().join("small.jpg"), root.join(copy_key(i))).unwrap();
    }
}

#[tokio::test]
async fn gallery_in_chromium_over_s3() {
    crate::needs!(Garage, Chromium, Avifdec, Axe);
    let _one = crate::support::turn("browser").await;
    let s3 = S3Env::new("browser").await;
    for (f, _, _) in GRID {
        s3.put_fixture(f).await;
    }
    let small = std::fs::read(testdata().join("small.jpg")).unwrap();
    for i in 1..=COPIES {
        s3.put(&copy_key(i), &small).await;
    }
    // The page (imgfn's origin) PUTs straight to the bucket: the bucket must allow it.
    s3.allow_browser_uploads().await;
    let (public, private) = gallery_configs(|| s3.config());
    let app = TestApp::spawn_with(public).await;
    let private = TestApp::spawn_with(private).await;
    run_gallery(&app, &private, Store::S3(&s3), "s3").await;
}

#[tokio::test]
async fn gallery_in_chromium_over_a_folder() {
    crate::needs!(Chromium, Avifdec, Axe);
    let _one = crate::support::turn("browser").await;
    let root = tempdir();
    seed_folder(&root);
    let (public, private) = gallery_configs(|| Config::with_root(&root));
    let app = TestApp::spawn_with(public).await;
    let private = TestApp::spawn_with(private).await;
    run_gallery(&app, &private, Store::Folder(&root), "folder").await;
}

/// The README's pictures of the gallery (docs/gallery.png, docs/gallery-placeholders.png,
/// docs/gallery-viewer.png), from the real page in headless Chromium over testdata's photos:
/// `cargo test --locked --features nasm,heic --test api -- --ignored browser::screenshots`.
#[tokio::test]
#[ignore = "writes docs/gallery*.png"]
async fn screenshots() {
    crate::needs!(Chromium);
    let _one = crate::support::turn("browser").await;
    let root = tempdir();
    for f in [
        "medium.jpg",
        "small.jpg",
        "alpha-small.png",
        "still.webp",
        "orient-6.jpg",
        "large.jpg",
    ] {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    std::fs::create_dir_all(root.join("photos")).unwrap();
    for f in ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        std::fs::copy(
            testdata().join("attention").join(f),
            root.join("photos").join(f),
        )
        .unwrap();
    }
    let app = TestApp::spawn_with(Config::with_root(&root)).await;
    // Placeholders and dimensions computed before the browser asks (a warm listing).
    assert_eq!(app.get("/_/gallery.json").await.status, 200);
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.set_window_size(1200, 820).await.unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    // Thumbnails held back: the placeholders.
    hold_thumbnails(&browser).await;
    browser.goto(&app.url("/_/gallery")).await.unwrap();
    wait_for(&browser, "the placeholders", FIGURE_STATES, vec![json!(10)]).await;
    std::fs::write(
        docs.join("gallery-placeholders.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    release_thumbnails(&browser).await;
    wait_for(&browser, "the thumbnails", LOADED_FIGURES, vec![json!(10)]).await;
    browser.execute("scrollTo(0, 0)", vec![]).await.unwrap();
    std::fs::write(
        docs.join("gallery.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser
        .find(Locator::Css("#grid figure.item[data-key='medium.jpg'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "the viewer", VIEWER_STATE, vec![]).await;
    std::fs::write(
        docs.join("gallery-viewer.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.close().await.unwrap();
}
