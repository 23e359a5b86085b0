//! Against a real S3-compatible server (Garage on 127.0.0.1, started by scripts/test.sh):
//! originals, versions, the 404/403/502/504 mapping, and oversized outputs redirected.

use crate::probe::{s3_source_via, Proxy};
use crate::support::{testdata, S3Env, TestApp};
use image::GenericImageView;
use std::time::{Duration, Instant};

#[tokio::test]
async fn serves_originals_from_s3() {
    crate::needs!(Garage);
    let s3 = S3Env::new("serve").await;
    s3.put_fixture("small.jpg").await;
    s3.put(
        "photos/my cat.jpg",
        &std::fs::read(testdata().join("small.jpg")).unwrap(),
    )
    .await;
    let app = TestApp::spawn_with(s3.config()).await;
    assert_eq!(
        app.get("/small.jpg?w=100").await.image().dimensions(),
        (100, 67)
    );
    let original = app.get("/small.jpg").await;
    assert_eq!(
        original.body,
        std::fs::read(testdata().join("small.jpg")).unwrap()
    );
    assert_eq!(original.content_type(), "image/jpeg");
    assert_eq!(
        app.get("/photos/my%20cat.jpg?w=64").await.image().width(),
        64
    );
    let missing = app.get("/missing.jpg?w=10").await;
    missing.assert_error(404, "not_found");
}

#[tokio::test]
async fn replaced_original_is_served_after_revalidation() {
    crate::needs!(Garage);
    let s3 = S3Env::new("replace").await;
    s3.put(
        "photo.jpg",
        &std::fs::read(testdata().join("small.jpg")).unwrap(),
    )
    .await;
    let mut config = s3.config();
    config.revalidate_secs = 1;
    let app = TestApp::spawn_with(config).await;
    assert_eq!(
        app.get("/photo.jpg?fmt=json").await.json()["orientation"],
        1
    );
    let before = app.get("/photo.jpg?w=40&fmt=png").await;
    s3.put(
        "photo.jpg",
        &std::fs::read(testdata().join("orient-6.jpg")).unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        app.get("/photo.jpg?fmt=json").await.json()["orientation"],
        6
    );
    let after = app.get("/photo.jpg?w=40&fmt=png").await;
    assert_ne!(
        before.header("etag"),
        after.header("etag"),
        "new version, new rendition"
    );
}

#[tokio::test]
async fn size_limit_is_checked_before_reading() {
    crate::needs!(Garage);
    let s3 = S3Env::new("limit").await;
    s3.put_fixture("small.jpg").await;
    let mut config = s3.config();
    config.max_source_bytes = 1000;
    let app = TestApp::spawn_with(config).await;
    let json = app
        .get("/small.jpg?w=10")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(json["error"]["limit"], "max_source_bytes");
}

#[tokio::test]
async fn denied_access_is_403() {
    crate::needs!(Garage);
    let s3 = S3Env::new("denied").await;
    s3.put_fixture("small.jpg").await;
    // Same server, a key the server does not know: S3 answers 403.
    let app = TestApp::spawn_source(
        s3.config(),
        s3.source_with_credentials("GK00000000000000000000dead", "0".repeat(64), 2000),
    )
    .await;
    app.get("/small.jpg?w=10")
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn dead_store_fails_fast_with_502() {
    crate::needs!(Garage);
    let s3 = S3Env::new("dead").await;
    let dead = S3Env::source_at("http://127.0.0.1:9", &s3.bucket, 2000).await; // discard port: refused
    let app = TestApp::spawn_source(s3.config(), dead).await;
    let started = Instant::now();
    let r = app.get("/small.jpg?w=10").await;
    r.assert_error(502, "upstream_error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stalled_store_times_out_with_504() {
    crate::needs!(Garage);
    let s3 = S3Env::new("stalled").await;
    s3.put_fixture("small.jpg").await;
    // The real store behind a proxy that, at first, accepts connections and never answers.
    let proxy = Proxy::before_s3().await;
    proxy.stall(true);
    let config = s3.config();
    let source = s3_source_via(&proxy.endpoint(), &s3, &config, 500);
    let app = TestApp::spawn_source(config, source).await;
    for path in ["/small.jpg?w=10&fmt=png", "/small.jpg"] {
        let started = Instant::now();
        let r = app.get(path).await;
        r.assert_error(504, "upstream_timeout");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    // The store answers again: the same app, with whatever its caches kept from the stall,
    // serves the right image, rendered now.
    proxy.stall(false);
    let r = app.get("/small.jpg?w=10&fmt=png").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.header("server-timing")
            .is_some_and(|t| t.contains("cache;desc=\"miss\"")),
        "{:?}",
        r.header("server-timing")
    );
    let img = r.image();
    assert_eq!(img.dimensions(), (10, 7));
    let db = crate::support::psnr(&img, &crate::support::reference("small.jpg", 10, 7));
    assert!(db > 25.0, "PSNR {db:.1} dB");
    assert_eq!(
        app.get("/small.jpg").await.body,
        std::fs::read(testdata().join("small.jpg")).unwrap()
    );
}

#[tokio::test]
async fn oversized_outputs_redirect_to_a_presigned_get() {
    crate::needs!(Garage);
    let s3 = S3Env::new("offload").await;
    s3.put_fixture("medium.jpg").await;
    let mut config = s3.config();
    config.max_response_bytes = Some(200_000);
    let app = TestApp::spawn_with(config).await;
    let direct = TestApp::spawn_with(s3.config()).await;

    // A big rendition is stored once under the renditions prefix and redirected to.
    let path = "/medium.jpg?w=1600&fmt=png";
    let r = app.get(path).await;
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").unwrap().to_string();
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    assert!(location.contains("_renditions/"), "{location}");
    let fetched = app.client.get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    let bytes = fetched.bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        direct.get(path).await.body.as_slice(),
        "same bytes as a direct answer"
    );

    // An original over the budget is redirected to the original itself.
    let r = app.get("/medium.jpg").await;
    assert_eq!(r.status, 302);
    let bytes = app
        .client
        .get(r.header("location").unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes.as_ref(),
        std::fs::read(testdata().join("medium.jpg"))
            .unwrap()
            .as_slice()
    );

    // Small outputs are still answered directly.
    assert_eq!(app.get("/medium.jpg?w=100").await.status, 200);
}

#[tokio::test]
async fn missing_keys_are_remembered_briefly() {
    crate::needs!(Garage);
    let s3 = S3Env::new("negative").await;
    let photo = std::fs::read(testdata().join("small.jpg")).unwrap();
    // Remembered as missing for the TTL: one store call per key, not one per request.
    let app = TestApp::spawn_with(s3.config()).await;
    app.get("/later.jpg?w=10")
        .await
        .assert_error(404, "not_found");
    s3.put("later.jpg", &photo).await;
    app.get("/later.jpg?w=10")
        .await
        .assert_error(404, "not_found");
    // With the cache off (TTL 0), the same sequence finds the new object at once: the 404
    // above came from the cache, not from the store.
    let mut config = s3.config();
    config.not_found_ttl_secs = 0;
    let uncached = TestApp::spawn_with(config).await;
    uncached
        .get("/later2.jpg?w=10")
        .await
        .assert_error(404, "not_found");
    s3.put("later2.jpg", &photo).await;
    assert_eq!(uncached.get("/later2.jpg?w=10").await.image().width(), 10);
}
