//! Headers, caching semantics and concurrency.

use crate::support::{testdata, TestApp};
use image::GenericImageView;

#[tokio::test]
async fn no_parameters_serve_the_original_bytes() {
    let app = TestApp::spawn().await;
    for (file, ct) in [
        ("small.jpg", "image/jpeg"),
        ("alpha.png", "image/png"),
        ("jpeg-named.png", "image/jpeg"),
    ] {
        let r = app.get(&format!("/{file}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            std::fs::read(testdata().join(file)).unwrap(),
            "{file}"
        );
        assert_eq!(r.content_type(), ct);
    }
}

#[tokio::test]
async fn success_headers() {
    let app = TestApp::spawn().await;
    let r = app.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = r.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    let timing = r.header("server-timing").unwrap();
    for part in [
        "cache;desc=\"miss\"",
        "fetch;dur=",
        "decode;dur=",
        "resize;dur=",
        "encode;dur=",
    ] {
        assert!(timing.contains(part), "{timing}");
    }
    let again = app.get("/small.jpg?w=100&fmt=webp").await;
    assert!(again
        .header("server-timing")
        .unwrap()
        .contains("cache;desc=\"hit\""));
    assert_eq!(again.body, r.body);
    assert_eq!(again.header("etag"), r.header("etag"));
}

#[tokio::test]
async fn cache_control_is_configurable() {
    let mut config = imgfn::config::Config::with_root(testdata());
    config.cache_control = "public, max-age=60".into();
    let app = TestApp::spawn_with(config).await;
    assert_eq!(
        app.get("/small.jpg?w=10").await.header("cache-control"),
        Some("public, max-age=60")
    );
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let app = TestApp::spawn().await;
    for path in ["/small.jpg?w=100", "/small.jpg", "/small.jpg?fmt=json"] {
        let r = app.get(path).await;
        let etag = r.header("etag").unwrap().to_string();
        let r304 = app.get_with(path, &[("if-none-match", &etag)]).await;
        assert_eq!(r304.status, 304, "{path}");
        assert!(r304.body.is_empty());
        assert_eq!(r304.header("etag"), Some(etag.as_str()));
        let other = app.get_with(path, &[("if-none-match", "\"other\"")]).await;
        assert_eq!(other.status, 200);
    }
}

#[tokio::test]
async fn head_has_get_headers_and_no_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/small.jpg?w=100&fmt=avif",
        "/small.jpg",
        "/nope.jpg",
        "/small.jpg?w=0",
    ] {
        let get = app.get(path).await;
        let head = app.request(reqwest::Method::HEAD, path).await;
        assert_eq!(head.status, get.status, "{path}");
        assert!(head.body.is_empty(), "{path}");
        for h in ["content-type", "content-length", "etag", "cache-control"] {
            assert_eq!(head.header(h), get.header(h), "{path} {h}");
        }
    }
}

#[tokio::test]
async fn replaced_original_is_not_served_stale() {
    let root = crate::support::tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("photo.jpg")).unwrap();
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    let before = app.get("/photo.jpg?w=50&fmt=png").await.image();
    assert_eq!(before.dimensions(), (50, 33));
    let meta = app.get("/photo.jpg?fmt=json").await.json();
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(640), Some(427))
    );
    // Replace it with an image of another shape and format (still.webp, 400x225): same key,
    // new content. Every answer below differs from a stale one.
    let tmp = root.join("photo.tmp");
    std::fs::copy(testdata().join("still.webp"), &tmp).unwrap();
    std::fs::rename(&tmp, root.join("photo.jpg")).unwrap();
    // A local file's version is trusted for imgfn::source::FS_REVALIDATE.
    tokio::time::sleep(imgfn::source::FS_REVALIDATE + std::time::Duration::from_millis(100)).await;
    let after = app.get("/photo.jpg?w=50&fmt=png").await.image();
    assert_eq!(
        after.dimensions(),
        (50, 28),
        "the rendition is of the new image"
    );
    let db = crate::support::psnr(&after, &crate::support::reference("still.webp", 50, 28));
    assert!(db > 30.0, "the new image's pixels: PSNR {db:.1} dB");
    let meta = app.get("/photo.jpg?fmt=json").await.json();
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(400), Some(225))
    );
    assert_eq!(meta["format"], "webp");
    let original = app.get("/photo.jpg").await;
    assert_eq!(
        original.body,
        std::fs::read(testdata().join("still.webp")).unwrap()
    );
}

#[tokio::test]
async fn sixty_four_concurrent_requests() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            // A mix: identical requests (coalesced), distinct sizes, formats and errors.
            let (path, expect) = match i % 4 {
                0 => ("/medium.jpg?w=300&fmt=webp".to_string(), Some(300)),
                1 => (format!("/small.jpg?w={}", 50 + i), Some(50 + i)),
                2 => (
                    format!("/alpha-small.png?w={}&fmt=png", 40 + i),
                    Some(40 + i),
                ),
                _ => ("/malformed/truncated.jpg?w=10".to_string(), None),
            };
            let r = app.get(&path).await;
            match expect {
                Some(w) => assert_eq!(r.image().width(), w, "{path}"),
                None => assert_eq!(r.status, 422, "{path}"),
            }
        }));
    }
    for t in tasks {
        t.await.expect("request task");
    }
}
