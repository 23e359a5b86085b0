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

// ---------------------------------------------------------------------------------------
// Issue 14: a body's payload hash, secrets from Secrets Manager, EMF metrics. Each through the
// real Lambda runtime path (`cargo lambda watch` running the binary).

/// Hex SHA-256, as `x-amz-content-sha256` carries it.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn bodies_with_their_payload_hash_are_accepted_and_a_wrong_hash_is_refused() {
    crate::needs!(LambdaEmulator, Garage);
    let l = Lambda::new().await;
    let body =
        serde_json::json!({"filename": "cat.jpg", "content_type": "image/jpeg", "bytes": 1000})
            .to_string();
    // What the gallery page sends through CloudFront: the token in X-Imgfn-Authorization
    // (CloudFront's signature replaces Authorization) and the body's SHA-256.
    let post = |hash: String| {
        l.client
            .post(format!("{}/_/uploads", l.base))
            .header("content-type", "application/json")
            .header(
                "x-imgfn-authorization",
                format!("Bearer {}", required_env("IMGFN_TEST_LAMBDA_UPLOAD_TOKEN")),
            )
            .header("x-amz-content-sha256", hash)
            .body(body.clone())
            .send()
    };
    let ok = post(sha256_hex(body.as_bytes())).await.unwrap();
    assert_eq!(ok.status(), 200);
    let grant: serde_json::Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
    assert!(grant["upload_url"].is_string(), "{grant}");
    // Upper-case hex is the same hash.
    let upper = post(sha256_hex(body.as_bytes()).to_uppercase())
        .await
        .unwrap();
    assert_eq!(upper.status(), 200);
    for wrong in [
        sha256_hex(b"another body"),
        "UNSIGNED-PAYLOAD".to_string(),
        sha256_hex(body.as_bytes())[..63].to_string(),
    ] {
        let refused = post(wrong.clone()).await.unwrap();
        assert_eq!(refused.status(), 400, "{wrong}");
        let json: serde_json::Value =
            serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
        assert_eq!(json["error"]["code"], "bad_request", "{wrong}: {json}");
    }
}

/// AWS's Parameters and Secrets Lambda extension, stood in for on loopback (it stands in for
/// AWS, not for imgfn): `GET /secretsmanager/get?secretId=` answered with the secret's
/// `GetSecretValue` JSON, only to a caller presenting the session token in
/// `X-Aws-Parameters-Secrets-Token`. The test changes the secret's value as an operator
/// rotating it would.
struct SecretsExtension {
    port: u16,
    value: std::sync::Arc<std::sync::Mutex<String>>,
    /// (secretId, token header) of every call.
    calls: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:imgfn/test-AbCdEf";
const SESSION_TOKEN: &str = "session-token-of-this-execution-environment";

impl SecretsExtension {
    async fn start(value: &str) -> SecretsExtension {
        use http_body_util::Full;
        use hyper::body::Bytes;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let value = std::sync::Arc::new(std::sync::Mutex::new(value.to_string()));
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (v, c) = (value.clone(), calls.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (v, c) = (v.clone(), c.clone());
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let id = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                        .find(|(k, _)| k == "secretId")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let token = req
                        .headers()
                        .get("x-aws-parameters-secrets-token")
                        .and_then(|t| t.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    c.lock().unwrap().push((id.clone(), token.clone()));
                    let (status, body) = if req.uri().path() != "/secretsmanager/get" {
                        (404, "not found".to_string())
                    } else if token != SESSION_TOKEN {
                        (
                            401,
                            "missing or wrong X-Aws-Parameters-Secrets-Token".to_string(),
                        )
                    } else if id != SECRET_ARN {
                        (400, "ResourceNotFoundException".to_string())
                    } else {
                        let secret = v.lock().unwrap().clone();
                        (
                            200,
                            serde_json::json!({
                            "ARN": SECRET_ARN, "Name": "imgfn/test", "SecretString": secret,
                            "VersionId": "v", "VersionStages": ["AWSCURRENT"],
                            "CreatedDate": "2026-11-30T00:00:00Z"})
                            .to_string(),
                        )
                    };
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        SecretsExtension { port, value, calls }
    }

    fn rotate_to(&self, value: &str) {
        *self.value.lock().unwrap() = value.to_string();
    }
}

/// The EMF documents among the lines of a log.
fn emf_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line.trim()).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

#[tokio::test]
async fn secrets_come_from_the_extension_rotate_without_a_restart_and_metrics_are_emf() {
    crate::needs!(CargoLambda, Garage);
    let _turn = crate::support::turn("lambda-claims").await;
    let s3 = S3Env::new("lambda-secrets").await;
    s3.put_fixture("small.jpg").await;
    let token = "upload-token-from-the-secret-0001";
    // No signing keys yet (the emulator's start-up check fetches an unsigned URL).
    let extension =
        SecretsExtension::start(&serde_json::json!({"upload_token": token}).to_string()).await;
    let port = extension.port.to_string();
    let lambda = crate::claims::Watch::start(
        "secrets",
        &s3,
        &[
            ("IMGFN_SECRETS_ID", SECRET_ARN),
            ("IMGFN_SECRETS_TTL_SECS", "1"),
            ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", &port),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ],
    )
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // The upload token is the secret's: a grant for it, none for another.
    let ask = |bearer: &str| {
        client
            .post(format!("{}/_/uploads", lambda.base))
            .header("authorization", format!("Bearer {bearer}"))
            .body(r#"{"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 10}"#)
            .send()
    };
    assert_eq!(ask(token).await.unwrap().status(), 200);
    assert_eq!(ask("some-other-token-0000000").await.unwrap().status(), 401);

    // Rotation, as the README's procedure does it, with no restart in between.
    let k1 = "k1:first-signing-secret-2026";
    let k2 = "k2:second-signing-secret-2026";
    let sign = |keys: &str, path: &str| {
        keys.parse::<imgfn::signing::SigningKeys>()
            .unwrap()
            .sign(path, None)
    };
    let path = "/small.jpg?w=40&fmt=png";
    let status = |p: String| {
        let lambda = &lambda;
        async move { lambda.get(&p).await.status }
    };
    let ttl = std::time::Duration::from_millis(1200);
    // 1. Signing turned on: k1.
    extension
        .rotate_to(&serde_json::json!({"signing_keys": k1, "upload_token": token}).to_string());
    tokio::time::sleep(ttl).await;
    assert_eq!(status(path.into()).await, 403, "unsigned, once keys are on");
    assert_eq!(status(sign(k1, path)).await, 200);
    // 2. The new key first, the old one kept: both verify, URLs signed before keep working.
    extension.rotate_to(&format!("{k2},{k1}"));
    tokio::time::sleep(ttl).await;
    assert_eq!(status(sign(k2, path)).await, 200);
    assert_eq!(status(sign(k1, path)).await, 200);
    // ...and a plain keys string carries no upload token: uploads are off.
    assert_eq!(ask(token).await.unwrap().status(), 403);
    // 3. The old key's URLs have expired: it goes.
    extension.rotate_to(k2);
    tokio::time::sleep(ttl).await;
    assert_eq!(status(sign(k1, path)).await, 403);
    assert_eq!(status(sign(k2, path)).await, 200);
    // A secret that turns unreadable keeps the last good values in force.
    extension.rotate_to("k9:short");
    tokio::time::sleep(ttl).await;
    assert_eq!(status(sign(k2, path)).await, 200);
    let calls = extension.calls.lock().unwrap().clone();
    assert!(
        calls.len() >= 5,
        "read at cold start and after each TTL: {calls:?}"
    );
    for (id, token) in &calls {
        assert_eq!((id.as_str(), token.as_str()), (SECRET_ARN, SESSION_TOKEN));
    }

    // EMF: one line per request, on the function's stdout (the emulator's log here).
    let log = std::fs::read_to_string(&lambda.log).unwrap();
    let docs = emf_lines(&log);
    assert!(
        docs.len() >= 10,
        "EMF lines: {}\n{}",
        docs.len(),
        lambda.log_tail()
    );
    let mut seen = std::collections::BTreeSet::new();
    for doc in &docs {
        let aws = &doc["_aws"];
        assert!(
            aws["Timestamp"].as_u64().unwrap() > 1_700_000_000_000,
            "{doc}"
        );
        let (directive,) = (aws["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .first()
            .unwrap(),);
        assert_eq!(directive["Namespace"], "imgfn");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Route"]]));
        assert!(doc["Route"].is_string(), "{doc}");
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            let unit = metric["Unit"].as_str().unwrap();
            assert!(
                ["Milliseconds", "Count", "Bytes"].contains(&unit),
                "{name}: {unit}"
            );
            assert!(doc[name].is_number(), "{name} has no value: {doc}");
            seen.insert(name.to_string());
        }
    }
    for name in [
        "Latency",
        "FetchLatency",
        "DecodeLatency",
        "ResizeLatency",
        "EncodeLatency",
        "CacheHit",
        "CacheMiss",
        "ResponseBytes",
        "ServerErrors",
        "ClientErrors",
        "AdmissionWait",
        "AdmissionRejected",
    ] {
        assert!(seen.contains(name), "no {name} in any EMF line: {seen:?}");
    }
    // The refusals counted as client errors of the image route, the renders as misses.
    let refused = docs
        .iter()
        .filter(|d| d["Route"] == "image" && d["Status"] == 403)
        .count();
    assert!(refused >= 2, "{refused}");
    assert!(docs
        .iter()
        .filter(|d| d["Status"] == 403)
        .all(|d| d["ClientErrors"] == 1 && d["ServerErrors"] == 0));
    assert!(docs
        .iter()
        .any(|d| d["Route"] == "image" && d["CacheMiss"] == 1));
    assert!(docs
        .iter()
        .any(|d| d["Route"] == "uploads" && d["Status"] == 200));
}
