//! Signed URLs, allow-lists, cost limits and admission, through the real server.

use crate::support::{testdata, TestApp};
use imgfn::config::Config;
use imgfn::signing::SigningKeys;

const KEYS: &str = "k1:my-signing-secret-2026,k0:an-older-secret-still-valid";

async fn signed_app() -> (TestApp, SigningKeys) {
    let keys: SigningKeys = KEYS.parse().unwrap();
    let mut config = Config::with_root(testdata());
    config.signing_keys = Some(keys.clone());
    (TestApp::spawn_with(config).await, keys)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn signed_urls_are_required_and_checked() {
    let (app, keys) = signed_app().await;
    let good = keys.sign("/small.jpg?w=100&fmt=webp", Some(now() + 300));
    let r = app.get(&good).await;
    assert_eq!(r.image().width(), 100);
    // Unsigned, tampered, reordered, re-dated, expired, unknown key: all 403, never cached.
    let sig = good.rsplit_once("&sig=").unwrap().1;
    let exp = now() + 300;
    let bad = [
        "/small.jpg?w=100&fmt=webp".to_string(),
        "/small.jpg".to_string(),
        "/small.jpg?fmt=json".to_string(),
        good.replace("w=100", "w=101"),
        good.replace("w=100&fmt=webp", "fmt=webp&w=100"),
        good.replace("small.jpg", "gray.jpg"),
        format!("/small.jpg?w=100&fmt=webp&exp={}&sig={sig}", exp + 1000),
        format!("{good}&q=99"),
        keys.sign("/small.jpg?w=100", Some(now() - 1)),
        good.replace("sig=k1.", "sig=k9."),
    ];
    for url in bad {
        let r = app.get(&url).await;
        r.assert_error(403, "forbidden");
    }
    // The older key still verifies (rotation), and a signed original works too.
    let old: SigningKeys = "k0:an-older-secret-still-valid".parse().unwrap();
    assert_eq!(
        app.get(&old.sign("/small.jpg?w=64", None))
            .await
            .image()
            .width(),
        64
    );
    assert_eq!(app.get(&keys.sign("/small.jpg", None)).await.status, 200);
    // Changing exp does not change the cache entry: same rendition, same ETag.
    let a = app
        .get(&keys.sign("/small.jpg?w=90", Some(now() + 100)))
        .await;
    let b = app
        .get(&keys.sign("/small.jpg?w=90", Some(now() + 200)))
        .await;
    assert_eq!(a.header("etag"), b.header("etag"));
    assert!(b.header("server-timing").unwrap().contains("hit"));
}

#[test]
fn the_readme_worked_example_is_true() {
    // README.md, section Security: this exact key, input and output.
    let keys: SigningKeys = "k1:my-signing-secret-2026".parse().unwrap();
    let signed = keys.sign("/photos/cat.jpg?w=400&fmt=webp", Some(1_800_000_000));
    let expected = "/photos/cat.jpg?w=400&fmt=webp&exp=1800000000&sig=k1.S8aIAwZQa0WdhgtkvMNMdVDM-SYJgI8ZpzVO_enRAvw";
    assert_eq!(signed, expected);
    let readme = std::fs::read_to_string(testdata().join("../README.md")).unwrap();
    assert!(
        readme.contains(expected),
        "README.md must show the worked example"
    );
}

#[tokio::test]
async fn allow_lists_bound_the_key_space() {
    let mut config = Config::with_root(testdata());
    config.allowed_sizes = vec![64, 128, 256];
    config.allowed_formats = vec!["webp".into(), "jpeg".into(), "json".into()];
    config.max_quality = Some(70);
    let app = TestApp::spawn_with(config.clone()).await;
    let a = app.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(a.image().width(), 128);
    assert!(
        a.header("server-timing")
            .is_some_and(|t| t.contains("cache;desc=\"miss\"")),
        "{:?}",
        a.header("server-timing")
    );
    assert_eq!(
        app.get("/small.jpg?w=65&fmt=jpeg").await.image().width(),
        128
    );
    // (ETags hash the body, so they would agree for two entries too: the hit is what shows
    // one entry.)
    for w in [101, 128, 120] {
        let b = app.get(&format!("/small.jpg?w={w}&fmt=webp")).await;
        assert!(
            b.header("server-timing")
                .is_some_and(|t| t.contains("cache;desc=\"hit\"")),
            "w={w} snaps to 128: one cache entry, a hit; {:?}",
            b.header("server-timing")
        );
        assert_eq!(b.body, a.body);
    }
    app.get("/small.jpg?w=300")
        .await
        .assert_error(400, "invalid_parameter");
    app.get("/small.jpg?w=64&fmt=png")
        .await
        .assert_error(400, "invalid_parameter");
    let q99 = app.get("/small.jpg?w=128&fmt=jpeg&q=99").await;
    let q70 = app.get("/small.jpg?w=128&fmt=jpeg&q=70").await;
    assert_eq!(q99.body, q70.body, "q is lowered to the maximum");

    config.size_policy = imgfn::policy::SizePolicy::Refuse;
    let strict = TestApp::spawn_with(config).await;
    strict
        .get("/small.jpg?w=100&fmt=webp")
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(
        strict.get("/small.jpg?w=64&fmt=webp").await.image().width(),
        64
    );
}

#[tokio::test]
async fn output_limits_are_422_before_and_after_the_work() {
    let mut config = Config::with_root(testdata());
    config.max_output_pixels = 1_000_000;
    config.max_output_bytes = 20_000;
    let app = TestApp::spawn_with(config).await;
    let json = app
        .get("/small.jpg?w=2000&h=2000&fit=fill")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_output_pixels");
    let json = app
        .get("/small.jpg?w=600&fmt=png")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_output_bytes");
    assert_eq!(app.get("/small.jpg?w=100").await.status, 200);
}

#[tokio::test]
async fn renders_are_admitted_against_a_memory_budget() {
    // Budget: what one of these renders needs (as the pipeline weighs it before decoding),
    // so one runs at a time; a short queue, then 503.
    let bytes = std::fs::read(testdata().join("large.jpg")).unwrap();
    let info = imgfn::pipeline::probe(&bytes).unwrap();
    let params = imgfn::params::ImageRequest::parse(Some("w=1507&fmt=png"))
        .unwrap()
        .transform;
    let job = imgfn::pipeline::prepare(
        &info,
        &params,
        imgfn::params::OutputFormat::Png,
        &imgfn::pipeline::Limits::default(),
    )
    .unwrap();
    let mut config = Config::with_root(testdata());
    config.memory_budget_mib = (job.memory >> 20) + 2;
    config.queue_timeout_ms = 50;
    let app = std::sync::Arc::new(TestApp::spawn_with(config).await);
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let app = app.clone();
        // PNG output of a 20 MP source: a full decode each, distinct sizes (no coalescing).
        tasks.push(tokio::spawn(async move {
            app.get(&format!("/large.jpg?w={}&fmt=png", 1500 + i)).await
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                r.assert_error(503, "overloaded");
                assert_eq!(r.header("retry-after"), Some("1"));
                shed += 1;
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok={ok} shed={shed}");
    // Once the burst is over the next request is served.
    assert_eq!(app.get("/large.jpg?w=1400&fmt=png").await.status, 200);
}

fn cache_hit(r: &crate::support::Reply) -> bool {
    r.header("server-timing")
        .is_some_and(|t| t.contains("cache;desc=\"hit\""))
}

#[tokio::test]
async fn the_resolved_output_format_must_be_allowed() {
    let mut config = Config::with_root(testdata());
    config.allowed_formats = vec!["webp".into(), "jpeg".into(), "auto".into()];
    let app = TestApp::spawn_with(config).await;
    let chrome = [(
        "accept",
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    )];
    // AVIF is accepted by the browser but not allowed: auto picks WebP.
    let r = app.get_with("/small.jpg?w=64&fmt=auto", &chrome).await;
    assert_eq!(r.content_type(), "image/webp");
    // A PNG source with no `fmt` would come back as PNG: refused, as is auto's PNG fallback.
    app.get("/alpha-small.png?w=32")
        .await
        .assert_error(400, "invalid_parameter");
    app.get_with("/alpha-small.png?w=32&fmt=auto", &[("accept", "*/*")])
        .await
        .assert_error(400, "invalid_parameter");
    // A JPEG source with no `fmt` stays JPEG, which is allowed.
    assert_eq!(
        app.get("/small.jpg?w=32").await.content_type(),
        "image/jpeg"
    );
}

#[tokio::test]
async fn under_a_ladder_every_parameter_is_bounded() {
    let mut config = Config::with_root(testdata());
    config.allowed_sizes = vec![64, 128];
    config.allowed_backgrounds = vec!["ffffff".parse().unwrap()];
    let app = TestApp::spawn_with(config).await;
    // dpr 1.01, 1.02, ... 1.5 all snap to 1.5: one render, then cache hits.
    let first = app.get("/small.jpg?w=64&dpr=1.01&fmt=webp").await;
    assert_eq!(first.image().width(), 96);
    for d in ["1.02", "1.3", "1.5"] {
        let r = app.get(&format!("/small.jpg?w=64&dpr={d}&fmt=webp")).await;
        assert!(cache_hit(&r), "dpr={d} rendered again");
    }
    // dpr without a box does not re-render the full image at another ratio.
    let plain = app.get("/small.jpg?fmt=webp&q=50").await;
    let with_dpr = app.get("/small.jpg?fmt=webp&q=50&dpr=3").await;
    assert!(cache_hit(&with_dpr), "dpr without w/h rendered again");
    assert_eq!(plain.image().width(), with_dpr.image().width());
    // q and focal points are quantised; bg must be listed.
    app.get("/small.jpg?w=64&fmt=webp&q=71").await;
    assert!(cache_hit(&app.get("/small.jpg?w=64&fmt=webp&q=69").await));
    app.get("/small.jpg?w=64&h=64&gravity=0.31,0.5").await;
    assert!(cache_hit(
        &app.get("/small.jpg?w=64&h=64&gravity=0.32,0.5").await
    ));
    app.get("/small.jpg?w=64&bg=123456&fit=pad&h=64")
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(
        app.get("/small.jpg?w=64&bg=ffffff&fit=pad&h=64")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_expiring_url_is_cached_no_longer_than_it_lives() {
    let (app, keys) = signed_app().await;
    for path in ["/small.jpg?w=70", "/small.jpg", "/small.jpg?fmt=json"] {
        let r = app.get(&keys.sign(path, Some(now() + 30))).await;
        assert_eq!(r.status, 200, "{path}");
        let cc = r.header("cache-control").unwrap();
        assert!(!cc.contains("immutable"), "{path}: {cc}");
        let age: u64 = cc
            .split(", ")
            .find_map(|d| d.strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path}: {cc}"));
        assert!((25..=30).contains(&age), "{path}: {cc}");
    }
    // Without `exp`, the configured (immutable) policy.
    let r = app.get(&keys.sign("/small.jpg?w=70", None)).await;
    assert_eq!(
        r.header("cache-control"),
        Some(imgfn::config::DEFAULT_CACHE_CONTROL)
    );
}

#[tokio::test]
async fn every_response_says_nosniff_and_originals_are_sandboxed() {
    let app = TestApp::spawn().await;
    // An original with HTML appended is still served as the image it starts as.
    let html = app.get("/hostile/html-appended.jpg").await;
    assert_eq!(html.status, 200);
    assert_eq!(html.content_type(), "image/jpeg");
    assert_eq!(html.header("content-security-policy"), Some("sandbox"));
    for path in [
        "/hostile/html-appended.jpg",
        "/small.jpg?w=20",
        "/small.jpg?fmt=json",
        "/nope.jpg",
        "/small.jpg?w=0",
        "/_/gallery",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn dot_files_are_never_served() {
    let app = TestApp::spawn().await;
    // They exist (positive control: the same bytes under a visible name are served).
    assert!(testdata().join(".hidden.jpg").is_file());
    assert_eq!(app.get("/jpeg/restart-7blocks.jpg").await.status, 200);
    for path in [
        "/.hidden.jpg",
        "/.hidden.jpg?w=10",
        "/.private/secret.jpg",
        "/%2Ehidden.jpg",
        "/jpeg/../.hidden.jpg",
    ] {
        app.get(path).await.assert_error(404, "not_found");
    }
}
