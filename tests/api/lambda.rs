//! The real Lambda runtime path: `cargo lambda watch` (started by scripts/test.sh) runs the
//! binary as a Lambda and serves Function URL requests; its answers must be the local
//! server's, byte for byte, whatever the caller's Accept header.

use crate::support::{required_env, testdata, S3Env, TestApp};
use image::GenericImageView;

/// One Lambda execution environment handles one event at a time, and the emulator does not
/// cope with overlapping invocations either: the Lambda tests take turns (across processes).
struct Lambda {
    _turn: crate::support::Turn,
    base: String,
    client: reqwest::Client,
    /// The local server over the same bucket and prefix, for comparison.
    local: TestApp,
}

impl Lambda {
    async fn new() -> Lambda {
        let turn = crate::support::turn("lambda").await;
        let base = required_env("IMGFN_TEST_LAMBDA_URL");
        let s3 = S3Env::with_prefix(&required_env("IMGFN_TEST_LAMBDA_PREFIX")).await;
        for f in ["small.jpg", "alpha-small.png", "medium.jpg"] {
            s3.put_fixture(f).await;
        }
        s3.put(
            "photos/my cat.jpg",
            &std::fs::read(testdata().join("small.jpg")).unwrap(),
        )
        .await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(300)) // the first request waits for the build
            .build()
            .unwrap();
        Lambda {
            _turn: turn,
            base,
            client,
            local: TestApp::spawn_with(s3.config()).await,
        }
    }

    async fn get(&self, path: &str, accept: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        req.send().await.expect("lambda request")
    }
}

const BROWSER_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

#[tokio::test]
async fn binary_bodies_arrive_byte_identical() {
    crate::needs!(LambdaEmulator, Garage);
    let l = Lambda::new().await;
    let paths = [
        ("/small.jpg?w=120&fmt=jpeg", "image/jpeg"),
        ("/alpha-small.png?w=120&fmt=png", "image/png"),
        ("/small.jpg?w=120&fmt=webp", "image/webp"),
        ("/small.jpg?w=120&fmt=avif", "image/avif"),
        ("/small.jpg", "image/jpeg"),
    ];
    for (path, content_type) in paths {
        let local = l.local.get(path).await;
        assert_eq!(local.status, 200);
        for accept in [None, Some("*/*"), Some(BROWSER_ACCEPT)] {
            let resp = l.get(path, accept).await;
            assert_eq!(resp.status(), 200, "{path} {accept:?}");
            assert_eq!(
                resp.headers()["content-type"],
                content_type,
                "{path} {accept:?}"
            );
            let body = resp.bytes().await.unwrap();
            assert!(
                body.as_ref() == local.body.as_slice(),
                "{path} with Accept {accept:?}: bytes differ ({} vs {})",
                body.len(),
                local.body.len()
            );
        }
    }
}

#[tokio::test]
async fn query_parameters_and_keys_arrive_intact() {
    crate::needs!(LambdaEmulator, Garage);
    let l = Lambda::new().await;
    // Every parameter shows in the output: pad (not fill) leaves bands of the percent-encoded
    // `bg` beside the 67x45 photo, and the bytes are the local server's.
    let path = "/small.jpg?w=123&h=45&fit=pad&bg=%23ff0000&fmt=png";
    let resp = l.get(path, None).await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let img = image::load_from_memory(&body).unwrap();
    assert_eq!(img.dimensions(), (123, 45));
    let img = img.to_rgb8();
    for x in [0, 20, 102, 122] {
        assert_eq!(img.get_pixel(x, 22).0, [255, 0, 0], "bg at x={x}");
    }
    assert_ne!(
        img.get_pixel(61, 22).0,
        [255, 0, 0],
        "the photo in the middle"
    );
    assert!(
        body.as_ref() == l.local.get(path).await.body.as_slice(),
        "{path}: bytes differ from the local server's"
    );
    let resp = l.get("/photos/my%20cat.jpg?w=50&fmt=png", None).await;
    assert_eq!(resp.status(), 200);
    let auto = l
        .get("/small.jpg?w=60&fmt=auto", Some(BROWSER_ACCEPT))
        .await;
    assert_eq!(auto.headers()["content-type"], "image/avif");
    assert_eq!(auto.headers()["vary"], "Accept");
}

#[tokio::test]
async fn errors_arrive_with_their_status_and_json() {
    crate::needs!(LambdaEmulator, Garage);
    let l = Lambda::new().await;
    for (path, status, code) in [
        ("/nope.jpg?w=10", 404, "not_found"),
        ("/small.jpg?w=0", 400, "invalid_parameter"),
        ("/small.jpg?bogus=1", 400, "invalid_parameter"),
        // (reqwest resolves %2e%2e itself, so a NUL stands in for the unsafe key here)
        ("/small.jpg%00.png", 404, "not_found"),
    ] {
        let resp = l.get(path, None).await;
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(json["error"]["code"], code, "{path}");
    }
}

#[tokio::test]
async fn outputs_above_the_budget_redirect_to_s3() {
    crate::needs!(LambdaEmulator, Garage);
    // scripts/test.sh runs the Lambda with IMGFN_MAX_RESPONSE_BYTES=200000.
    let l = Lambda::new().await;
    let path = "/medium.jpg?w=1500&fmt=png";
    let resp = l.get(path, None).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let fetched = l.client.get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), 200, "{location}");
    let bytes = fetched.bytes().await.unwrap();
    let local = l.local.get(path).await;
    assert!(
        bytes.as_ref() == local.body.as_slice(),
        "redirected bytes differ from a direct answer"
    );
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 1500);
}

#[tokio::test]
async fn uploads_through_the_function_url_go_straight_to_s3() {
    crate::needs!(LambdaEmulator, Garage);
    let l = Lambda::new().await;
    // scripts/test.sh gives the function a fresh token each run.
    let bearer = || format!("Bearer {}", required_env("IMGFN_TEST_LAMBDA_UPLOAD_TOKEN"));
    let photo = std::fs::read(testdata().join("small.jpg")).unwrap();
    let ask = |auth: Option<String>| {
        let mut req = l
            .client
            .post(format!("{}/_/uploads", l.base))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"filename": "cat.jpg", "content_type": "image/jpeg", "bytes": photo.len()})
                    .to_string(),
            );
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let refused = ask(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    assert_eq!(
        json(&refused.bytes().await.unwrap())["error"]["code"],
        "unauthorized"
    );
    let grant = json(&ask(Some(bearer())).await.unwrap().bytes().await.unwrap());
    let url = grant["upload_url"].as_str().expect("an upload URL");
    assert!(
        url.starts_with(&required_env("AWS_ENDPOINT_URL_S3")),
        "{url}"
    );
    // Every header the grant lists is signed (type, length, If-None-Match): send them all.
    let mut put = l.client.put(url).body(photo.clone());
    for (name, value) in grant["headers"].as_object().expect("headers") {
        if name != "content-length" {
            put = put.header(name.as_str(), value.as_str().expect("header value"));
        }
    }
    let put = put.send().await.unwrap();
    assert_eq!(put.status(), 200);
    let key = grant["key"].as_str().unwrap();
    let s3 = S3Env::with_prefix(&required_env("IMGFN_TEST_LAMBDA_PREFIX")).await;
    assert_eq!(s3.get(key).await.as_deref(), Some(photo.as_slice()));
    let thumb = l.get(&format!("/{key}?w=100&fmt=png"), None).await;
    assert_eq!(thumb.status(), 200);
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width(), 100);
}
