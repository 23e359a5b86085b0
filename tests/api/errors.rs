//! Every error status, with a JSON body, and never a 500 or a dead server.

use crate::support::{tempdir, testdata, TestApp};
use image::GenericImageView;
use imgfn::config::Config;

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let cases = [
        ("w=0", "w"),
        ("w=9000", "w"),
        ("h=x", "h"),
        ("dpr=5", "dpr"),
        ("fit=zoom", "fit"),
        ("gravity=middle", "gravity"),
        ("fmt=bmp", "fmt"),
        ("q=0", "q"),
        ("bg=blue", "bg"),
        ("size=10", "size"),
        ("w=10&w=20", "w"),
    ];
    for (query, param) in cases {
        let r = app.get(&format!("/small.jpg?{query}")).await;
        let json = r.assert_error(400, "invalid_parameter");
        assert_eq!(json["error"]["param"], param, "{query}");
    }
}

#[tokio::test]
async fn missing_and_unsafe_keys_are_404() {
    let app = TestApp::spawn().await;
    for path in ["/nope.jpg", "/", "/malformed", "/small.jpg%00.png"] {
        app.get(path).await.assert_error(404, "not_found");
    }
    // Sent raw: an HTTP client would resolve the dot segments before sending. Each of these
    // names a file that exists outside testdata/ (the crate's Cargo.toml, /etc/passwd).
    for target in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/Cargo.toml?w=10",
        "/malformed/..%2F..%2FCargo.toml",
        "/malformed/%2e%2e/%2e%2e/Cargo.toml",
        "/%2Fetc%2Fpasswd",
        "//etc/passwd",
        "/..%5CCargo.toml",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/./small.jpg",
    ] {
        let (status, body) = app.raw_get(target).await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(body.contains("not_found"), "{target}: {body}");
    }
    // The same request line with a safe key works, so the raw path is really exercised.
    assert_eq!(app.raw_get("/small.jpg?w=10").await.0, 200);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_not_followed() {
    let root = tempdir();
    let outside = tempdir();
    std::fs::copy(testdata().join("small.jpg"), outside.join("secret.jpg")).unwrap();
    std::fs::copy(testdata().join("small.jpg"), root.join("inside.jpg")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.jpg"), root.join("link.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("dir")).unwrap();
    std::os::unix::fs::symlink(root.join("inside.jpg"), root.join("ok-link.jpg")).unwrap();
    let app = TestApp::spawn_with(Config::with_root(&root)).await;
    app.get("/link.jpg").await.assert_error(404, "not_found");
    app.get("/dir/secret.jpg?w=10")
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.get("/ok-link.jpg?w=10").await.status, 200);
    assert_eq!(app.get("/inside.jpg").await.status, 200);
}

#[tokio::test]
async fn other_methods_are_405() {
    let app = TestApp::spawn().await;
    for m in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = app.request(m.clone(), "/small.jpg").await;
        r.assert_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{m}");
    }
}

#[tokio::test]
async fn malformed_sources_get_their_status() {
    let app = TestApp::spawn().await;
    // (file, status, code); each with and without a transformation.
    let cases = [
        ("malformed/not-an-image.jpg", 415, "unsupported_format"),
        ("malformed/empty.jpg", 415, "unsupported_format"),
        ("malformed/truncated.jpg", 422, "corrupt_image"),
        ("malformed/truncated.png", 422, "corrupt_image"),
        ("malformed/corrupt-chunk.png", 422, "corrupt_image"),
        ("malformed/huge-dimensions.png", 422, "limit_exceeded"),
        ("malformed/huge-dimensions.jpg", 422, "limit_exceeded"),
    ];
    for (file, status, code) in cases {
        app.get(&format!("/{file}?w=100"))
            .await
            .assert_error(status, code);
        app.get(&format!("/{file}?w=100&fmt=webp"))
            .await
            .assert_error(status, code);
    }
    // Extreme aspect ratios: a 100 px wide thumbnail of a 20000x1 strip is 100x1; a
    // 1x20000 strip at w=100 would be 100x2000000, over the output side limit.
    assert_eq!(
        app.get("/malformed/extreme-20000x1.png?w=100")
            .await
            .image()
            .dimensions(),
        (100, 1)
    );
    let json = app
        .get("/malformed/extreme-1x20000.png?w=100")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_output_side");
    assert_eq!(
        app.get("/malformed/extreme-1x20000.png?h=500")
            .await
            .image()
            .dimensions(),
        (1, 500)
    );
    // Untransformed, a non-image is still refused rather than served as an image.
    app.get("/malformed/not-an-image.jpg")
        .await
        .assert_error(415, "unsupported_format");
    // And the server is still fine afterwards.
    assert_eq!(app.get("/small.jpg?w=50").await.status, 200);
}

#[tokio::test]
async fn limits_are_422_naming_the_limit() {
    let mut config = Config::with_root(testdata());
    config.max_source_bytes = 10_000;
    config.max_source_pixels = 1_000_000;
    config.max_output_side = 1000;
    let app = TestApp::spawn_with(config).await;
    let cases = [
        ("/small.jpg?w=100", "max_source_bytes"), // 640x427 but more than 10 kB
        ("/large.jpg?w=100", "max_source_bytes"),
        ("/tiny.png?w=1001", "max_output_side"),
        ("/tiny.png?w=600&dpr=2", "max_output_side"),
    ];
    for (path, limit) in cases {
        let json = app.get(path).await.assert_error(422, "limit_exceeded");
        assert_eq!(json["error"]["limit"], limit, "{path}");
    }
    let mut config = Config::with_root(testdata());
    config.max_source_pixels = 100_000;
    let app = TestApp::spawn_with(config).await;
    let json = app
        .get("/small.jpg?w=100")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_source_pixels");
    // Default output limit: 8192 per side.
    let app = TestApp::spawn().await;
    let json = app
        .get("/tiny.png?w=8192&dpr=2")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_output_side");
}

#[tokio::test]
async fn one_bad_request_never_harms_the_next() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        for path in [
            "/malformed/truncated.jpg?w=10",
            "/malformed/huge-dimensions.png?w=10",
            "/x?w=0",
        ] {
            let r = app.get(path).await;
            assert!(r.status >= 400 && r.status < 500, "{path}: {}", r.status);
        }
        assert_eq!(app.get("/small.jpg?w=64").await.image().width(), 64);
    }
}
