//! Uploads in parts, through the real server, against the local folder and against the real
//! S3 server (Garage): every behaviour runs on both (`::folder`, `::s3`), as the backend
//! contract does. Parts go where a client sends them: to imgfn's own part URL for the folder,
//! to S3's presigned `UploadPart` URL (S3 checks the signed length itself) for the bucket.

use crate::support::{testdata, Reply, S3Env, TestApp};
use crate::uploads::{bearer, local_config, TOKEN};
use imgfn::config::Config;
use std::path::PathBuf;
use std::time::Duration;

const MIB: usize = 1 << 20;
/// S3's smallest part, and the smallest part imgfn may be configured with.
const PART: usize = 5 * MIB;
/// Three parts: 5 MiB, 5 MiB and the rest.
const SIZE: usize = 2 * PART + MIB + 12_345;

/// Where the uploads land.
pub enum Store {
    Folder(PathBuf),
    S3(S3Env),
}

impl Store {
    /// The stored original, or `None`.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            Store::Folder(root) => std::fs::read(root.join(key)).ok(),
            Store::S3(s3) => s3.get(key).await,
        }
    }

    /// Uploads in progress the store still holds: the folder's hidden upload folders, the
    /// bucket's multipart uploads under this test's prefix.
    pub async fn in_progress(&self) -> usize {
        match self {
            Store::Folder(root) => std::fs::read_dir(root.join(".imgfn-uploads"))
                .map(|d| d.count())
                .unwrap_or(0),
            Store::S3(s3) => s3
                .client
                .list_multipart_uploads()
                .bucket(&s3.bucket)
                .prefix(&s3.prefix)
                .send()
                .await
                .expect("list multipart uploads")
                .uploads()
                .len(),
        }
    }
}

/// The real server over a fresh folder or a fresh prefix of the bucket, uploads on, files over
/// 1 MiB in parts of 5 MiB; `tweak` adjusts the rest.
pub async fn spawn(s3: bool, test: &str, tweak: impl FnOnce(&mut Config)) -> (TestApp, Store) {
    let (mut config, store) = if s3 {
        let env = S3Env::new(test).await;
        let mut config = env.config();
        config.upload_token = Some(TOKEN.parse().unwrap());
        (config, Store::S3(env))
    } else {
        let (config, root) = local_config(&[]);
        (config, Store::Folder(root))
    };
    config.multipart_threshold_bytes = MIB as u64;
    config.multipart_part_bytes = PART as u64;
    tweak(&mut config);
    (TestApp::spawn_with(config).await, store)
}

/// A real JPEG of exactly `size` bytes: testdata's photo with APP15 segments of padding
/// after its SOI, which every decoder skips.
pub fn padded_jpeg(size: usize) -> Vec<u8> {
    let photo = std::fs::read(testdata().join("medium.jpg")).unwrap();
    assert!(size >= photo.len() + 4);
    let mut out = vec![0xFF, 0xD8];
    let mut pad = size - photo.len();
    while pad > 0 {
        // A segment is 2 bytes of marker and at most 65535 of length field and payload; the
        // last one is made so that what remains is never less than a whole segment (4).
        let mut seg = pad.min(65_537);
        if pad - seg > 0 && pad - seg < 4 {
            seg -= 4;
        }
        let len = seg - 2;
        out.extend_from_slice(&[0xFF, 0xEF, (len >> 8) as u8, len as u8]);
        out.resize(out.len() + len - 2, 0x5A);
        pad -= seg;
    }
    out.extend_from_slice(&photo[2..]);
    assert_eq!(out.len(), size);
    out
}

/// An authorised call to the upload API.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> Reply {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("authorization", bearer());
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    Reply::send(req).await
}

/// Start an upload of `size` bytes; its answer.
pub async fn start(app: &TestApp, content_type: &str, size: usize) -> serde_json::Value {
    let body =
        serde_json::json!({"filename": "big.jpg", "content_type": content_type, "bytes": size});
    let r = call(
        app,
        reqwest::Method::POST,
        "/_/uploads",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn id_of(upload: &serde_json::Value) -> &str {
    upload["upload_id"].as_str().unwrap()
}

/// The URL of part `n`.
pub async fn part_url(app: &TestApp, id: &str, n: u32) -> serde_json::Value {
    let r = call(
        app,
        reqwest::Method::POST,
        &format!("/_/uploads/{id}/parts/{n}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn part_put(app: &TestApp, grant: &serde_json::Value, body: Vec<u8>) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .put(grant["upload_url"].as_str().unwrap())
        .body(body);
    for (name, value) in grant["headers"].as_object().unwrap() {
        if name != "content-length" {
            req = req.header(name.as_str(), value.as_str().unwrap());
        }
    }
    req
}

/// PUT a part's bytes to its URL; the ETag the store answered.
pub async fn put_part(app: &TestApp, grant: &serde_json::Value, body: Vec<u8>) -> String {
    let r = Reply::send(part_put(app, grant, body)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("etag").expect("a part's ETag").to_string()
}

/// A part PUT the store must refuse: its status (S3 may also close the connection before
/// reading the body: `None`).
async fn put_refused(app: &TestApp, grant: &serde_json::Value, body: Vec<u8>) -> Option<u16> {
    match part_put(app, grant, body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "a refused part PUT answered {status}"
            );
            Some(status)
        }
        Err(e) => {
            assert!(e.is_request(), "{e:?}");
            None
        }
    }
}

fn part_of(bytes: &[u8], n: u32) -> Vec<u8> {
    let start = (n as usize - 1) * PART;
    bytes[start..(start + PART).min(bytes.len())].to_vec()
}

/// Send parts `ns` (in that order); their ETags by number.
async fn send_parts(app: &TestApp, id: &str, bytes: &[u8], ns: &[u32]) -> Vec<(u32, String)> {
    let mut etags = Vec::new();
    for &n in ns {
        let grant = part_url(app, id, n).await;
        assert_eq!(grant["bytes"], part_of(bytes, n).len());
        etags.push((n, put_part(app, &grant, part_of(bytes, n)).await));
    }
    etags
}

fn completion(parts: &[(u32, String)]) -> String {
    let parts: Vec<serde_json::Value> = parts
        .iter()
        .map(|(n, etag)| serde_json::json!({"n": n, "etag": etag}))
        .collect();
    serde_json::json!({ "parts": parts }).to_string()
}

async fn complete(app: &TestApp, id: &str, parts: &[(u32, String)]) -> Reply {
    call(
        app,
        reqwest::Method::POST,
        &format!("/_/uploads/{id}/complete"),
        Some(completion(parts)),
    )
    .await
}

async fn status(app: &TestApp, id: &str) -> Reply {
    call(app, reqwest::Method::GET, &format!("/_/uploads/{id}"), None).await
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn folder() {
                super::$name(false).await;
            }

            #[tokio::test]
            async fn s3() {
                crate::needs!(Garage);
                super::$name(true).await;
            }
        }
    };
}

both!(parts_sent_out_of_order_make_the_same_bytes);
async fn parts_sent_out_of_order_make_the_same_bytes(s3: bool) {
    let (app, store) = spawn(s3, "mp-order", |_| {}).await;
    let photo = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    assert_eq!(upload["part_size"], PART);
    assert_eq!(upload["part_count"], 3);
    assert!(upload.get("upload_url").is_none(), "{upload}");
    let id = id_of(&upload);
    let key = upload["key"].as_str().unwrap();
    assert!(
        key.starts_with("uploads/") && key.ends_with(".jpg"),
        "{key}"
    );

    let mut etags = send_parts(&app, id, &photo, &[3, 1]).await;
    // What the store holds so far: parts 1 and 3, with their ETags and lengths.
    let held = status(&app, id).await;
    assert_eq!(held.status, 200);
    let held = held.json();
    assert_eq!(held["key"], key);
    assert_eq!(held["part_count"], 3);
    let parts: Vec<(u64, String, u64)> = held["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let etag = p["etag"].as_str().unwrap().to_string();
            (p["n"].as_u64().unwrap(), etag, p["bytes"].as_u64().unwrap())
        })
        .collect();
    let etag = |n: u32| etags.iter().find(|(m, _)| *m == n).unwrap().1.clone();
    assert_eq!(
        parts,
        [
            (1, etag(1), PART as u64),
            (3, etag(3), (SIZE - 2 * PART) as u64)
        ]
    );
    assert!(
        store.object(key).await.is_none(),
        "stored before completion"
    );

    etags.extend(send_parts(&app, id, &photo, &[2]).await);
    // Named in any order.
    let done = complete(&app, id, &etags).await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(done.json()["key"], key);
    assert!(
        store.object(key).await.as_deref() == Some(photo.as_slice()),
        "not byte-identical"
    );
    assert_eq!(
        store.in_progress().await,
        0,
        "the upload's parts are left behind"
    );

    // A normal original: served, resized.
    let thumb = app.get(&format!("/{key}?w=100&fmt=png")).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(image::GenericImageView::width(&thumb.image()), 100);
    // Completed: the id is spent.
    complete(&app, id, &etags)
        .await
        .assert_error(409, "conflict");
}

both!(a_part_of_the_wrong_length_is_refused);
async fn a_part_of_the_wrong_length_is_refused(s3: bool) {
    let (app, store) = spawn(s3, "mp-length", |_| {}).await;
    let bytes = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    let id = id_of(&upload);
    let first = part_url(&app, id, 1).await;
    assert_eq!(first["headers"]["content-length"], PART.to_string());
    if s3 {
        // The length is one of the headers S3 checks the signature over.
        let url = first["upload_url"].as_str().unwrap();
        assert!(
            url.contains("X-Amz-SignedHeaders=content-length%3Bhost"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=300"), "{url}");
    }
    let last = part_url(&app, id, 3).await;
    assert_eq!(last["bytes"], SIZE - 2 * PART);
    // Shorter and longer, a middle part and the last one: refused by whoever receives parts
    // (S3 itself: the length is signed).
    for (grant, body) in [
        (&first, bytes[..PART - 1].to_vec()),
        (&first, bytes[..PART + 1].to_vec()),
        (&last, bytes[2 * PART..SIZE - 1].to_vec()),
        (&last, [&bytes[2 * PART..], b"x".as_slice()].concat()),
    ] {
        let refused = put_refused(&app, grant, body).await;
        if !s3 {
            assert_eq!(refused, Some(403));
        }
    }
    let held = status(&app, id).await.json();
    assert_eq!(
        held["parts"],
        serde_json::json!([]),
        "a refused part was kept"
    );
    // The right lengths are accepted.
    let etags = send_parts(&app, id, &bytes, &[1, 2, 3]).await;
    assert_eq!(complete(&app, id, &etags).await.status, 200);
    assert_eq!(
        store
            .object(upload["key"].as_str().unwrap())
            .await
            .map(|b| b.len()),
        Some(SIZE)
    );
}

both!(completion_with_a_wrong_etag_or_missing_parts_is_refused);
async fn completion_with_a_wrong_etag_or_missing_parts_is_refused(s3: bool) {
    let (app, store) = spawn(s3, "mp-etag", |_| {}).await;
    let bytes = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    let id = id_of(&upload);
    let key = upload["key"].as_str().unwrap();
    let etags = send_parts(&app, id, &bytes, &[1, 2]).await;

    // Part 3 never sent, but named with an ETag: the store finds no such part.
    let mut named = etags.clone();
    named.push((3, etags[0].1.clone()));
    let json = complete(&app, id, &named)
        .await
        .assert_error(400, "invalid_parameter");
    eprintln!("part never received: {json}");
    // Part 3 not named: refused before the store is asked, naming it.
    let json = complete(&app, id, &etags)
        .await
        .assert_error(400, "invalid_parameter");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing: 3"),
        "{json}"
    );

    let mut all = etags.clone();
    all.extend(send_parts(&app, id, &bytes, &[3]).await);
    // A wrong ETag for part 2: the store's check (S3's, the folder's own).
    let mut wrong = all.clone();
    wrong[1].1 = "\"0123456789abcdef0123456789abcdef\"".into();
    let json = complete(&app, id, &wrong)
        .await
        .assert_error(400, "invalid_parameter");
    assert!(
        json["error"]["message"].as_str().unwrap().contains("ETag"),
        "{json}"
    );
    // Bad bodies: a 400 that says what is wrong.
    for (body, says) in [
        ("{}".to_string(), "must be JSON"),
        (
            r#"{"parts":[{"n":4,"etag":"x"}]}"#.to_string(),
            "parts 1 to 3",
        ),
        (
            r#"{"parts":[{"n":1,"etag":"x"},{"n":1,"etag":"x"}]}"#.to_string(),
            "twice",
        ),
    ] {
        let r = call(
            &app,
            reqwest::Method::POST,
            &format!("/_/uploads/{id}/complete"),
            Some(body),
        )
        .await;
        let json = r.assert_error(
            400,
            if says == "must be JSON" {
                "bad_request"
            } else {
                "invalid_parameter"
            },
        );
        assert!(
            json["error"]["message"].as_str().unwrap().contains(says),
            "{json}"
        );
    }
    assert!(
        store.object(key).await.is_none(),
        "a refused completion stored something"
    );

    // The upload is still there: the right ETags complete it.
    let done = complete(&app, id, &all).await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(store.object(key).await.as_deref(), Some(bytes.as_slice()));
}

both!(abort_leaves_nothing_behind);
async fn abort_leaves_nothing_behind(s3: bool) {
    let (app, store) = spawn(s3, "mp-abort", |_| {}).await;
    let bytes = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    let id = id_of(&upload);
    let key = upload["key"].as_str().unwrap();
    let etags = send_parts(&app, id, &bytes, &[1, 2]).await;
    let late = part_url(&app, id, 3).await;
    assert_eq!(store.in_progress().await, 1);

    let aborted = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/_/uploads/{id}"),
        None,
    )
    .await;
    assert_eq!(
        aborted.status,
        200,
        "{}",
        String::from_utf8_lossy(&aborted.body)
    );
    assert_eq!(
        store.in_progress().await,
        0,
        "an aborted upload is still held"
    );
    assert!(store.object(key).await.is_none());
    // Again: nothing to do, not an error.
    let again = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/_/uploads/{id}"),
        None,
    )
    .await;
    assert_eq!(again.status, 200);
    // The id is spent: no parts, no completion, and a part URL handed out earlier stores
    // nothing.
    status(&app, id).await.assert_error(409, "conflict");
    let mut named = etags.clone();
    named.push((3, etags[0].1.clone()));
    complete(&app, id, &named)
        .await
        .assert_error(409, "conflict");
    put_refused(&app, &late, part_of(&bytes, 3)).await;
    assert_eq!(store.in_progress().await, 0);
    assert!(store.object(key).await.is_none());
}

both!(an_expired_part_url_is_refused);
async fn an_expired_part_url_is_refused(s3: bool) {
    let (app, store) = spawn(s3, "mp-expired", |c| c.upload_expiry_secs = 1).await;
    let bytes = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    let id = id_of(&upload);
    let grant = part_url(&app, id, 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = put_refused(&app, &grant, part_of(&bytes, 1)).await;
    if !s3 {
        assert_eq!(refused, Some(403));
    }
    assert_eq!(
        status(&app, id).await.json()["parts"],
        serde_json::json!([])
    );
    // A fresh URL for the same part works.
    let etags = send_parts(&app, id, &bytes, &[1]).await;
    assert_eq!(etags.len(), 1);
    call(
        &app,
        reqwest::Method::DELETE,
        &format!("/_/uploads/{id}"),
        None,
    )
    .await;
    assert_eq!(store.in_progress().await, 0);
}

both!(a_completed_upload_that_is_not_an_image_is_refused_on_first_view);
async fn a_completed_upload_that_is_not_an_image_is_refused_on_first_view(s3: bool) {
    let (app, store) = spawn(s3, "mp-junk", |_| {}).await;
    let junk: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let upload = start(&app, "image/png", SIZE).await;
    let id = id_of(&upload);
    let key = upload["key"].as_str().unwrap();
    assert!(key.ends_with(".png"), "{key}");
    let etags = send_parts(&app, id, &junk, &[2, 3, 1]).await;
    assert_eq!(complete(&app, id, &etags).await.status, 200);
    assert_eq!(store.object(key).await.as_deref(), Some(junk.as_slice()));
    let view = app.get(&format!("/{key}?w=100")).await;
    assert!(
        matches!(view.status, 415 | 422),
        "first view of a non-image: {} {}",
        view.status,
        String::from_utf8_lossy(&view.body)
    );
    view.assert_error(
        view.status,
        if view.status == 415 {
            "unsupported_format"
        } else {
            "corrupt_image"
        },
    );
}

both!(forged_and_tampered_upload_ids_are_refused);
async fn forged_and_tampered_upload_ids_are_refused(s3: bool) {
    let (app, store) = spawn(s3, "mp-forged", |_| {}).await;
    let bytes = padded_jpeg(SIZE);
    let upload = start(&app, "image/jpeg", SIZE).await;
    let id = id_of(&upload).to_string();
    let etags = send_parts(&app, &id, &bytes, &[1, 2, 3]).await;

    // The same terms with another size, under the real signature; a flipped character; an
    // id without its signature; garbage; an id made with another token.
    let (payload, sig) = id.split_once('.').unwrap();
    let mut terms: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    terms["b"] = serde_json::json!(SIZE - 1);
    let altered = format!(
        "{}.{sig}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            terms.to_string()
        )
    );
    let mut flipped = id.clone().into_bytes();
    let i = flipped.len() / 3;
    flipped[i] = if flipped[i] == b'x' { b'y' } else { b'x' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_app = {
        let (mut config, _root) = local_config(&[]);
        config.upload_token = Some("another-upload-token-0123456789".parse().unwrap());
        config.multipart_threshold_bytes = MIB as u64;
        TestApp::spawn_with(config).await
    };
    let foreign = {
        let body =
            serde_json::json!({"filename": "a.jpg", "content_type": "image/jpeg", "bytes": SIZE});
        let r = Reply::send(
            other_app
                .client
                .post(other_app.url("/_/uploads"))
                .header("authorization", "Bearer another-upload-token-0123456789")
                .body(body.to_string()),
        )
        .await;
        r.json()["upload_id"].as_str().unwrap().to_string()
    };
    for bad in [
        altered.as_str(),
        &flipped,
        payload,
        "nothing-here",
        &foreign,
    ] {
        status(&app, bad).await.assert_error(403, "forbidden");
        let r = call(
            &app,
            reqwest::Method::POST,
            &format!("/_/uploads/{bad}/parts/1"),
            None,
        )
        .await;
        r.assert_error(403, "forbidden");
        complete(&app, bad, &etags)
            .await
            .assert_error(403, "forbidden");
        let r = call(
            &app,
            reqwest::Method::DELETE,
            &format!("/_/uploads/{bad}"),
            None,
        )
        .await;
        r.assert_error(403, "forbidden");
    }
    // Without the token, even the real id is refused.
    Reply::send(app.client.get(app.url(&format!("/_/uploads/{id}"))))
        .await
        .assert_error(401, "unauthorized");
    // Part numbers outside the upload's.
    for n in ["4", "0", "x"] {
        let r = call(
            &app,
            reqwest::Method::POST,
            &format!("/_/uploads/{id}/parts/{n}"),
            None,
        )
        .await;
        let json = r.assert_error(400, "invalid_parameter");
        assert!(
            json["error"]["message"].as_str().unwrap().contains("part"),
            "{json}"
        );
    }
    // The real one is untouched by all this.
    assert_eq!(complete(&app, &id, &etags).await.status, 200);
    assert_eq!(
        store
            .object(upload["key"].as_str().unwrap())
            .await
            .map(|b| b.len()),
        Some(SIZE)
    );
}

both!(the_threshold_and_the_limits);
async fn the_threshold_and_the_limits(s3: bool) {
    // The defaults' logic: at 16 MiB one PUT, above it parts of 8 MiB.
    let (app, store) = spawn(s3, "mp-threshold", |c| {
        let d = Config::with_root(".");
        c.multipart_threshold_bytes = d.multipart_threshold_bytes;
        c.multipart_part_bytes = d.multipart_part_bytes;
    })
    .await;
    let single = start(&app, "image/jpeg", 16 * MIB).await;
    assert!(
        single["upload_url"].is_string() && single.get("upload_id").is_none(),
        "{single}"
    );
    let parts = start(&app, "image/jpeg", 16 * MIB + 1).await;
    assert_eq!(parts["part_size"], 8 * MIB);
    assert_eq!(parts["part_count"], 3);
    let forty = start(&app, "image/jpeg", 40 * MIB).await;
    assert_eq!(
        (forty["part_size"].as_u64(), forty["part_count"].as_u64()),
        (Some(8 << 20), Some(5))
    );
    // Larger than IMGFN_MAX_UPLOAD_BYTES (5 GiB by default): refused before anything starts.
    let body = serde_json::json!({"filename": "a.jpg", "content_type": "image/jpeg", "bytes": (5u64 << 30) + 1});
    call(
        &app,
        reqwest::Method::POST,
        "/_/uploads",
        Some(body.to_string()),
    )
    .await
    .assert_error(413, "payload_too_large");
    for u in [&parts, &forty] {
        let r = call(
            &app,
            reqwest::Method::DELETE,
            &format!("/_/uploads/{}", id_of(u)),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(store.in_progress().await, 0);
}

#[tokio::test]
async fn the_folder_removes_uploads_abandoned_a_day_ago() {
    let (app, store) = spawn(false, "mp-stale", |_| {}).await;
    let Store::Folder(root) = &store else {
        unreachable!()
    };
    let old = start(&app, "image/jpeg", SIZE).await;
    send_parts(&app, id_of(&old), &padded_jpeg(SIZE), &[1]).await;
    let recent = start(&app, "image/jpeg", SIZE).await;
    assert_eq!(store.in_progress().await, 2);
    // Make the first one's folder two days old.
    let dirs: Vec<PathBuf> = std::fs::read_dir(root.join(".imgfn-uploads"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let first = dirs
        .iter()
        .find(|d| std::fs::read_dir(d).unwrap().count() == 1)
        .unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(first)
        .status()
        .unwrap();
    assert!(touched.success());
    // A new upload sweeps it away; the recent one stays.
    let _third = start(&app, "image/jpeg", SIZE).await;
    assert_eq!(store.in_progress().await, 2);
    assert!(!first.exists());
    status(&app, id_of(&old))
        .await
        .assert_error(409, "conflict");
    assert_eq!(status(&app, id_of(&recent)).await.status, 200);
}
