//! `fmt=json&srcset=`: the `<img>` attributes, through the real server: every candidate URL
//! answers (signed when signing is on) an image of exactly the announced size.

use crate::support::{testdata, TestApp};
use imgfn::config::Config;
use imgfn::signing::SigningKeys;

/// Every candidate of `img` fetched: 200, and the announced size.
async fn candidates_answer_their_sizes(app: &TestApp, img: &serde_json::Value) -> usize {
    let candidates = img["candidates"].as_array().expect("candidates");
    for c in candidates {
        let url = c["url"].as_str().expect("url");
        let reply = app.get_with(url, &[("accept", "image/webp")]).await;
        assert_eq!(reply.status, 200, "{url}");
        let got = reply.image();
        assert_eq!(
            (u64::from(got.width()), u64::from(got.height())),
            (c["width"].as_u64().unwrap(), c["height"].as_u64().unwrap()),
            "{url}"
        );
    }
    candidates.len()
}

#[tokio::test]
async fn signed_candidates_answer_exactly_their_announced_sizes() {
    let keys: SigningKeys = "k1:srcset-signing-secret-2026".parse().unwrap();
    let mut config = Config::with_root(testdata());
    config.signing_keys = Some(keys.clone());
    let app = TestApp::spawn_with(config).await;
    // orient-6.jpg is stored turned: the sizes are of the image as displayed.
    let url = keys.sign(
        "/orient-6.jpg?fmt=json&srcset=320,160,640&w=300&h=200&fit=cover&gravity=auto&sharpen=0.5",
        None,
    );
    let doc = app.get(&url).await.json();
    let img = &doc["img"];
    let sizes: Vec<_> = img["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["width"].as_u64().unwrap(), c["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, [(160, 107), (320, 213), (640, 427)]);
    assert_eq!(img["sizes"], "(max-width: 300px) 100vw, 300px");
    assert_eq!(img["src"], img["candidates"][1]["url"]);
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(320), Some(213))
    );
    let srcset = img["srcset"].as_str().unwrap();
    assert_eq!(srcset.matches("w, ").count(), 2, "{srcset}");
    for c in img["candidates"].as_array().unwrap() {
        let u = c["url"].as_str().unwrap();
        assert!(u.contains("&exp=") && u.contains("&sig=k1."), "{u}");
        assert!(srcset.contains(&format!("{u} {}w", c["width"])), "{srcset}");
    }
    assert_eq!(candidates_answer_their_sizes(&app, img).await, 3);
    // Without `srcset`, no `img`; `srcset` without `fmt=json` is a 400 naming it.
    let plain = app
        .get(&keys.sign("/orient-6.jpg?fmt=json", None))
        .await
        .json();
    assert!(plain.get("img").is_none(), "{plain}");
    let reply = app.get(&keys.sign("/small.jpg?srcset=320", None)).await;
    reply.assert_error(400, "invalid_parameter");
    assert_eq!(reply.json()["error"]["param"], "srcset");
}

#[tokio::test]
async fn under_only_presets_the_candidates_are_the_presets() {
    let mut config = Config::with_root(testdata());
    config.presets = Some(
        "thumb=w=200&h=200&fit=cover&fmt=webp,card=w=480&h=320&fit=cover,hero=w=1200"
            .parse()
            .unwrap(),
    );
    config.only_presets = true;
    let app = TestApp::spawn_with(config).await;
    let doc = app
        .get("/medium.jpg?fmt=json&srcset=hero,thumb,card")
        .await
        .json();
    let img = &doc["img"];
    let urls: Vec<_> = img["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        urls,
        [
            "/medium.jpg?preset=thumb",
            "/medium.jpg?preset=card",
            "/medium.jpg?preset=hero"
        ]
    );
    assert_eq!(candidates_answer_their_sizes(&app, img).await, 3);
    // Widths are what only-presets refuses, in `srcset` as in a URL.
    app.get("/medium.jpg?fmt=json&srcset=320")
        .await
        .assert_error(400, "invalid_parameter");
}
