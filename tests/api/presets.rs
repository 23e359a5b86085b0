//! `preset=NAME` (IMGFN_PRESETS) and the only-presets mode, through the real server.

use crate::support::{testdata, TestApp};
use imgfn::config::Config;

#[tokio::test]
async fn a_preset_is_its_explicit_query_and_only_presets_refuses_the_rest() {
    let mut config = Config::with_root(testdata());
    config.presets = Some("thumb=w=200&h=200&fit=cover&fmt=webp".parse().unwrap());
    let app = TestApp::spawn_with(config.clone()).await;
    let preset = app.get("/small.jpg?preset=thumb").await;
    assert_eq!(preset.status, 200);
    let img = preset.image();
    assert_eq!((img.width(), img.height()), (200, 200));
    let explicit = app.get("/small.jpg?w=200&h=200&fit=cover&fmt=webp").await;
    assert_eq!(explicit.header("etag"), preset.header("etag"));
    app.get("/small.jpg?preset=thumb&w=10")
        .await
        .assert_error(400, "invalid_parameter");

    config.only_presets = true;
    let only = TestApp::spawn_with(config).await;
    only.get("/small.jpg?w=100")
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(only.get("/small.jpg?preset=thumb").await.status, 200);
    assert_eq!(only.get("/small.jpg").await.status, 200);
}
