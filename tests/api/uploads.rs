//! Uploads: `POST /_/uploads` and the URLs it hands out, against the local folder (imgfn's
//! own PUT endpoint) and against the real S3 server (presigned PUT, checked by S3 itself).

use crate::support::{tempdir, testdata, Reply, S3Env, TestApp};
use image::GenericImageView;
use imgfn::config::Config;
use std::time::Duration;

/// Also the token of the `cargo lambda watch` function that scripts/test.sh starts.
pub const TOKEN: &str = "test-upload-token-0123456789";

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A local folder with a copy of `files` from testdata, served with uploads on.
pub fn local_config(files: &[&str]) -> (Config, std::path::PathBuf) {
    let root = tempdir();
    for f in files {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    let mut config = Config::with_root(&root);
    config.upload_token = Some(TOKEN.parse().unwrap());
    (config, root)
}

/// Ask for an upload URL.
pub async fn request_upload(app: &TestApp, auth: Option<&str>, body: serde_json::Value) -> Reply {
    let mut req = app
        .client
        .post(app.url("/_/uploads"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    Reply::send(req).await
}

/// An upload URL for `bytes` of `content_type`, asked with the right token.
async fn ask_upload(app: &TestApp, content_type: &str, bytes: usize) -> serde_json::Value {
    let r = request_upload(app, Some(&bearer()), upload_body(content_type, bytes)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn upload_body(content_type: &str, bytes: usize) -> serde_json::Value {
    serde_json::json!({"filename": "photo.jpg", "content_type": content_type, "bytes": bytes})
}

/// PUT `body` to a granted upload URL with the headers it lists, `content_type` overriding.
pub async fn put(
    app: &TestApp,
    grant: &serde_json::Value,
    content_type: &str,
    body: Vec<u8>,
) -> Reply {
    Reply::send(put_request(app, grant, content_type, body)).await
}

/// A PUT that S3 must refuse. S3 (Garage here) may answer before reading the body and close
/// the connection while the client still writes it: the client then sees a broken pipe
/// instead of the 403. Either way the refusal is proven by what is stored, checked after.
async fn put_refused(app: &TestApp, grant: &serde_json::Value, content_type: &str, body: Vec<u8>) {
    match put_request(app, grant, content_type, body).send().await {
        Ok(resp) => assert!(
            matches!(resp.status().as_u16(), 400 | 403),
            "S3 accepted a PUT it should refuse: {}",
            resp.status()
        ),
        Err(e) => assert!(e.is_request(), "{e:?}"),
    }
}

fn put_request(
    app: &TestApp,
    grant: &serde_json::Value,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .put(grant["upload_url"].as_str().unwrap())
        .header("content-type", content_type)
        .body(body);
    for (name, value) in grant["headers"].as_object().unwrap() {
        if name != "content-length" && name != "content-type" {
            req = req.header(name.as_str(), value.as_str().unwrap());
        }
    }
    req
}

/// The refusals both sources share, before any URL is signed.
async fn assert_request_refusals(app: &TestApp) {
    let ok = upload_body("image/jpeg", 1000);
    request_upload(app, None, ok.clone())
        .await
        .assert_error(401, "unauthorized");
    let wrong = request_upload(app, Some("Bearer not-the-token-at-all"), ok.clone()).await;
    wrong.assert_error(401, "unauthorized");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    request_upload(app, Some(&bearer()), upload_body("text/html", 10))
        .await
        .assert_error(415, "unsupported_format");
    request_upload(app, Some(&bearer()), upload_body("image/svg+xml", 10))
        .await
        .assert_error(415, "unsupported_format");
    // Over IMGFN_MAX_UPLOAD_BYTES (5 GiB by default), in one PUT or in parts.
    let big = request_upload(
        app,
        Some(&bearer()),
        upload_body("image/png", (5 << 30) + 1),
    )
    .await;
    big.assert_error(413, "payload_too_large");
    assert!(!String::from_utf8_lossy(&big.body).contains("upload_url"));
    assert!(!String::from_utf8_lossy(&big.body).contains("upload_id"));
    request_upload(app, Some(&bearer()), upload_body("image/png", 0))
        .await
        .assert_error(400, "invalid_parameter");
    let client_key = serde_json::json!({"filename": "a.png", "content_type": "image/png", "bytes": 5, "key": "index.html"});
    request_upload(app, Some(&bearer()), client_key)
        .await
        .assert_error(400, "invalid_parameter");
    Reply::send(app.client.delete(app.url("/_/uploads")))
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn only_the_upload_token_may_see_the_upload_form() {
    const VIEWER: &str = "test-viewer-token-0123456789";
    let (mut config, _root) = local_config(&[]);
    config.gallery_token = Some(VIEWER.parse().unwrap());
    let app = TestApp::spawn_with(config).await;
    let check = |auth: Option<String>| {
        let mut req = app.client.get(app.url("/_/uploads"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        Reply::send(req)
    };
    let ok = check(Some(bearer())).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), serde_json::json!({"can_upload": true}));
    check(Some(format!("Bearer {VIEWER}")))
        .await
        .assert_error(401, "unauthorized");
    check(None).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn uploads_are_off_unless_a_token_is_configured() {
    let app = TestApp::spawn().await;
    request_upload(&app, Some(&bearer()), upload_body("image/jpeg", 10))
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn local_upload_lands_atomically_and_is_served() {
    let (config, root) = local_config(&[]);
    let app = TestApp::spawn_with(config).await;
    assert_request_refusals(&app).await;

    let photo = std::fs::read(testdata().join("medium.jpg")).unwrap();
    let grant = ask_upload(&app, "image/jpeg", photo.len()).await;
    let key = grant["key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with("uploads/") && key.ends_with(".jpg"),
        "{key}"
    );
    assert_eq!(grant["method"], "PUT");
    assert_eq!(grant["headers"]["content-type"], "image/jpeg");
    assert_eq!(grant["headers"]["content-length"], photo.len().to_string());

    // A different length or type with the right URL is refused, and nothing is written.
    put(
        &app,
        &grant,
        "image/jpeg",
        photo[..photo.len() - 1].to_vec(),
    )
    .await
    .assert_error(403, "forbidden");
    put(&app, &grant, "image/png", photo.clone())
        .await
        .assert_error(403, "forbidden");
    let forged = grant["upload_url"]
        .as_str()
        .unwrap()
        .replace("sig=", "sig=A");
    let forged_grant = serde_json::json!({"upload_url": forged, "headers": {}});
    put(&app, &forged_grant, "image/jpeg", photo.clone())
        .await
        .assert_error(403, "forbidden");
    assert!(!root.join(&key).exists());

    let done = put(&app, &grant, "image/jpeg", photo.clone()).await;
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(std::fs::read(root.join(&key)).unwrap(), photo);
    // No temporary file is left next to it.
    let dir = root.join(&key).parent().unwrap().to_path_buf();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // A replayed URL never replaces what was stored.
    put(&app, &grant, "image/jpeg", photo.clone())
        .await
        .assert_error(409, "conflict");
    assert_eq!(std::fs::read(root.join(&key)).unwrap(), photo);

    let thumb = app.get(&format!("/{key}?w=120&fmt=png")).await.image();
    assert_eq!(thumb.width(), 120);
}

#[tokio::test]
async fn expired_local_upload_url_is_refused() {
    let (mut config, root) = local_config(&[]);
    config.upload_expiry_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let bytes = std::fs::read(testdata().join("tiny.png")).unwrap();
    let grant = ask_upload(&app, "image/png", bytes.len()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = put(&app, &grant, "image/png", bytes).await;
    let json = late.assert_error(403, "forbidden");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{json}"
    );
    assert!(!root.join(grant["key"].as_str().unwrap()).exists());
}

#[tokio::test]
async fn a_malformed_upload_is_refused_on_first_view_not_at_upload() {
    let (config, _root) = local_config(&[]);
    let app = TestApp::spawn_with(config).await;
    let junk = b"<html>not an image</html>".to_vec();
    let grant = ask_upload(&app, "image/jpeg", junk.len()).await;
    assert_eq!(put(&app, &grant, "image/jpeg", junk).await.status, 201);
    let key = grant["key"].as_str().unwrap();
    app.get(&format!("/{key}?w=100"))
        .await
        .assert_error(415, "unsupported_format");
    let truncated = std::fs::read(testdata().join("small.jpg")).unwrap()[..3000].to_vec();
    let grant = ask_upload(&app, "image/jpeg", truncated.len()).await;
    assert_eq!(put(&app, &grant, "image/jpeg", truncated).await.status, 201);
    let key = grant["key"].as_str().unwrap();
    app.get(&format!("/{key}?w=100"))
        .await
        .assert_error(422, "corrupt_image");
    // The server is unharmed.
    assert_eq!(app.get("/small.jpg?w=10").await.status, 404); // not in this root
}

#[tokio::test]
async fn presigned_s3_put_pins_type_and_length() {
    crate::needs!(Garage);
    let s3 = S3Env::new("upload").await;
    let mut config = s3.config();
    config.upload_token = Some(TOKEN.parse().unwrap());
    let app = TestApp::spawn_with(config.clone()).await;
    assert_request_refusals(&app).await;

    let photo = std::fs::read(testdata().join("medium.jpg")).unwrap();
    let grant = ask_upload(&app, "image/jpeg", photo.len()).await;
    let url = grant["upload_url"].as_str().unwrap();
    assert!(url.starts_with(&imgfn_endpoint()), "{url}");
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    let key = grant["key"].as_str().unwrap().to_string();

    // S3 itself refuses anything but the signed length and type.
    let longer = [photo.as_slice(), b"extra"].concat();
    put_refused(&app, &grant, "image/jpeg", longer).await;
    put_refused(&app, &grant, "image/png", photo.clone()).await;
    let forged = serde_json::json!({
        "upload_url": url.replace("X-Amz-Signature=", "X-Amz-Signature=0"),
        "headers": {},
    });
    put_refused(&app, &forged, "image/jpeg", photo.clone()).await;
    assert!(
        s3.get(&key).await.is_none(),
        "a refused PUT stored something"
    );

    assert_eq!(grant["headers"]["if-none-match"], "*");
    let done = put(&app, &grant, "image/jpeg", photo.clone()).await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(s3.get(&key).await.as_deref(), Some(photo.as_slice()));
    // `If-None-Match: *` is signed: a client cannot drop it to overwrite an object.
    let mut stripped = grant.clone();
    stripped["headers"]
        .as_object_mut()
        .unwrap()
        .remove("if-none-match");
    put_refused(&app, &stripped, "image/jpeg", photo.clone()).await;
    // What the store does with a replay of the whole URL: AWS S3 answers 412 (conditional
    // writes); Garage 2.5 ignores `If-None-Match` on PutObject and stores it again (200).
    // The same bytes are replayed, so the object is unchanged either way. (A store that
    // answers before reading the body closes the connection under the client's upload: a
    // broken pipe here, seen once under cargo-nextest.)
    match put_request(&app, &grant, "image/jpeg", photo.clone())
        .send()
        .await
    {
        Ok(replay) => eprintln!("replayed presigned PUT: {}", replay.status()),
        Err(e) => eprintln!("replayed presigned PUT refused before its body was read: {e}"),
    }
    assert_eq!(s3.get(&key).await.as_deref(), Some(photo.as_slice()));
    assert_eq!(
        app.get(&format!("/{key}?w=200&fmt=png"))
            .await
            .image()
            .dimensions(),
        (200, 133)
    );

    // Expired: a one-second URL, used late.
    config.upload_expiry_secs = 1;
    let quick = TestApp::spawn_with(config).await;
    let tiny = std::fs::read(testdata().join("tiny.png")).unwrap();
    let grant = ask_upload(&quick, "image/png", tiny.len()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // AWS answers 403 "Request has expired", Garage 400 "date is too old".
    put_refused(&quick, &grant, "image/png", tiny).await;
    assert!(s3.get(grant["key"].as_str().unwrap()).await.is_none());
}

#[tokio::test]
async fn local_put_endpoint_does_not_exist_with_s3() {
    crate::needs!(Garage);
    let s3 = S3Env::new("no-local-put").await;
    let mut config = s3.config();
    config.upload_token = Some(TOKEN.parse().unwrap());
    let app = TestApp::spawn_with(config).await;
    let r = Reply::send(
        app.client
            .put(app.url("/_/uploads/uploads/x.jpg?ct=image%2Fjpeg&len=1&exp=9999999999&sig=x"))
            .header("content-type", "image/jpeg")
            .body(vec![0u8]),
    )
    .await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn oversized_local_put_is_refused_before_reading() {
    // A correctly signed URL for 5000 bytes, issued while the limit allowed it; the same
    // folder is then served with a 1000-byte limit (lowered after the URL was handed out).
    let (config, root) = local_config(&[]);
    let issuer = TestApp::spawn_with(config.clone()).await;
    let grant = ask_upload(&issuer, "image/jpeg", 5000).await;
    let mut strict = config;
    strict.max_upload_bytes = 1000;
    strict.body_timeout_ms = 10_000;
    let app = TestApp::spawn_with(strict).await;
    let url = grant["upload_url"]
        .as_str()
        .unwrap()
        .replace(&issuer.addr.to_string(), &app.addr.to_string());
    let target = url.split_once(&app.addr.to_string()).unwrap().1.to_string();

    // Only the head is sent: the 413 must come from it alone, at once, and not after
    // waiting for a body (which would end in a 408 after the 10 s body timeout).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n\
         Content-Length: 5000\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut buf))
        .await
        .expect("no answer within 5 s: the server waited for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 413 "),
        "refused on its head with 413: {text}"
    );
    assert!(text.contains("\"payload_too_large\""), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!root.join(grant["key"].as_str().unwrap()).exists());

    // The same signed URL is valid: the server that allows 5000 bytes stores it.
    let done = put(&issuer, &grant, "image/jpeg", vec![0u8; 5000]).await;
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
}

fn imgfn_endpoint() -> String {
    crate::support::required_env("AWS_ENDPOINT_URL_S3")
}
