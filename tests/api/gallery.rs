//! The gallery listing (`/_/gallery.json`) over a folder and a bucket, the page itself, and
//! downloads of originals (`download=1`, and the 302 to a presigned GET above the budget).

use crate::probe::{s3_source_via, Proxy, SeenRequest};
use crate::support::{tempdir, testdata, Reply, S3Env, TestApp};
use crate::uploads::{bearer, TOKEN};
use image::GenericImageView;
use imgfn::config::{Config, GalleryMode};
use std::collections::BTreeMap;

/// Every page of a listing, following `next_cursor`.
async fn list_all(app: &TestApp, query: &str, auth: Option<&str>) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("/_/gallery.json?{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let mut req = app.client.get(app.url(&url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let page = Reply::send(req).await;
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        let json = page.json();
        items.extend(json["items"].as_array().unwrap().iter().cloned());
        match json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
    panic!("the listing never ended");
}

fn by_key(items: &[serde_json::Value]) -> BTreeMap<String, serde_json::Value> {
    items
        .iter()
        .map(|i| (i["key"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

fn dims(item: &serde_json::Value) -> (u64, u64) {
    (
        item["width"].as_u64().unwrap(),
        item["height"].as_u64().unwrap(),
    )
}

/// Fetch both srcset candidates of an item and check they are exactly 1x and 2x its box.
async fn assert_thumbnails(app: &TestApp, item: &serde_json::Value) {
    let t = &item["thumbnail"];
    let (tw, th) = (
        t["width"].as_u64().unwrap() as u32,
        t["height"].as_u64().unwrap() as u32,
    );
    let one = app
        .get_with(t["src"].as_str().unwrap(), &[("accept", "image/webp,*/*")])
        .await;
    assert_eq!(one.content_type(), "image/webp", "fmt=auto follows Accept");
    assert_eq!(one.image().dimensions(), (tw, th), "{item}");
    let srcset = t["srcset"].as_str().unwrap();
    let two = srcset
        .split(", ")
        .find_map(|c| c.strip_suffix(" 2x"))
        .unwrap();
    assert_eq!(app.get(two).await.image().dimensions(), (2 * tw, 2 * th));
}

#[tokio::test]
async fn lists_a_folder_page_by_page_with_dimensions() {
    let files = [
        "small.jpg",
        "orient-6.jpg",
        "alpha-small.png",
        "still.webp",
        "animated.gif",
        "wide.png",
    ];
    let root = tempdir();
    for f in files {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    std::fs::create_dir_all(root.join("sub/dir")).unwrap();
    std::fs::copy(
        testdata().join("medium.jpg"),
        root.join("sub/dir/medium.jpg"),
    )
    .unwrap();
    std::fs::write(root.join(".hidden.jpg"), b"x").unwrap();
    std::fs::create_dir_all(root.join(".tmp")).unwrap();
    std::fs::write(root.join(".tmp/part.jpg"), b"x").unwrap();
    std::fs::write(root.join("broken.jpg"), b"not an image").unwrap();
    let app = TestApp::spawn_with(Config::with_root(&root)).await;

    let items = list_all(&app, "limit=3", None).await;
    let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = files.to_vec();
    expected.extend(["sub/dir/medium.jpg", "broken.jpg"]);
    expected.sort_unstable();
    assert_eq!(
        keys, expected,
        "every original once, in key order, no hidden files"
    );

    let items = by_key(&items);
    let expect = [
        ("small.jpg", (640, 427), "jpeg"),
        ("orient-6.jpg", (640, 427), "jpeg"), // as displayed: EXIF rotation applied
        ("alpha-small.png", (400, 300), "png"),
        ("still.webp", (400, 225), "webp"),
        ("animated.gif", (200, 150), "gif"),
        ("wide.png", (2000, 1), "png"),
        ("sub/dir/medium.jpg", (1920, 1280), "jpeg"),
    ];
    for (key, size, format) in expect {
        let item = &items[key];
        assert_eq!(dims(item), size, "{key}");
        assert_eq!(item["format"], format, "{key}");
        assert_eq!(
            item["bytes"].as_u64().unwrap(),
            std::fs::metadata(root.join(key)).unwrap().len()
        );
        assert_eq!(item["url"], format!("/{key}"));
        assert_thumbnails(&app, item).await;
    }
    assert_eq!(items["broken.jpg"]["error"]["code"], "unsupported_format");
    assert!(items["broken.jpg"]["thumbnail"].is_null());

    let sub = list_all(&app, "prefix=sub%2F", None).await;
    assert_eq!(sub.len(), 1);
    for (query, param) in [("limit=0", "limit"), ("cursor=!!", "cursor"), ("x=1", "x")] {
        let r = app.get(&format!("/_/gallery.json?{query}")).await;
        assert_eq!(
            r.assert_error(400, "invalid_parameter")["error"]["param"],
            param
        );
    }
}

/// The viewer token of the mode tests (`IMGFN_GALLERY_TOKEN`).
pub const VIEWER: &str = "test-viewer-token-0123456789";

/// Who may see, over one store: each mode (and the default) with and without each token
/// configured, asked with no token, a wrong one, the viewer's and the upload token (in
/// `Authorization` and in `X-Imgfn-Authorization`). The page and its script are static and
/// load in every served mode; the listing is the gate. Uploads need the upload token in
/// every mode: the viewer token never grants one.
async fn who_may_see(store: impl Fn() -> Config, default_mode: GalleryMode) {
    let viewer = format!("Bearer {VIEWER}");
    let upload = bearer();
    let wrong = "Bearer wrong-token-wrong-token".to_string();
    let asks: [(&str, Option<&String>); 4] = [
        ("none", None),
        ("wrong", Some(&wrong)),
        ("viewer", Some(&viewer)),
        ("upload", Some(&upload)),
    ];
    use GalleryMode::*;
    // (mode, viewer token configured, upload token configured, who gets the listing)
    let cases: [(Option<GalleryMode>, bool, bool, &[&str]); 9] = [
        (
            Some(Public),
            false,
            false,
            &["none", "wrong", "viewer", "upload"],
        ),
        // Uploads on no longer close the gallery (the coupling of issue 13).
        (
            Some(Public),
            true,
            true,
            &["none", "wrong", "viewer", "upload"],
        ),
        (Some(Private), true, true, &["viewer", "upload"]),
        (Some(Private), false, true, &["upload"]),
        (Some(Private), true, false, &["viewer"]),
        (Some(Private), false, false, &[]),
        (Some(Off), true, true, &[]),
        (None, false, true, &["none", "wrong", "viewer", "upload"]),
        (None, true, true, &["none", "wrong", "viewer", "upload"]),
    ];
    for (mode, with_viewer, with_upload, allowed) in cases {
        let mut config = store();
        config.gallery = mode;
        config.gallery_token = with_viewer.then(|| VIEWER.parse().unwrap());
        config.upload_token = with_upload.then(|| TOKEN.parse().unwrap());
        let served = mode.unwrap_or(default_mode) != Off;
        let app = TestApp::spawn_with(config).await;
        let case = format!("{mode:?} viewer={with_viewer} upload={with_upload}");
        for (who, auth) in asks {
            for header in ["authorization", "x-imgfn-authorization"] {
                let headers: Vec<(&str, &str)> =
                    auth.map(|a| vec![(header, a.as_str())]).unwrap_or_default();
                let listing = app.get_with("/_/gallery.json", &headers).await;
                if !served {
                    listing.assert_error(404, "not_found");
                } else if allowed.contains(&who) {
                    assert_eq!(
                        listing.status,
                        200,
                        "{case}: {who} in {header}: {}",
                        String::from_utf8_lossy(&listing.body)
                    );
                    let keys: Vec<String> = listing.json()["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["key"].as_str().unwrap().to_string())
                        .collect();
                    // Only images: the text file beside them is not listed.
                    assert_eq!(keys, ["small.jpg", "still.webp"], "{case}");
                } else {
                    let body = listing.assert_error(401, "unauthorized");
                    assert!(
                        !body.to_string().contains(VIEWER) && !body.to_string().contains(TOKEN),
                        "{body}"
                    );
                }
            }
        }
        for static_path in ["/_/gallery", "/_/gallery.js"] {
            let r = app.get(static_path).await;
            if served {
                assert_eq!(r.status, 200, "{case}: {static_path}");
                let text = String::from_utf8_lossy(&r.body);
                assert!(!text.contains(TOKEN) && !text.contains(VIEWER));
            } else {
                r.assert_error(404, "not_found");
            }
        }
        // An upload needs the upload token, whoever may see: never the viewer's.
        let body =
            serde_json::json!({"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 10});
        let r = crate::uploads::request_upload(&app, Some(&viewer), body.clone()).await;
        // 401 (wrong token), or 403 when uploads are off (no upload token configured).
        let refused = if with_upload { 401 } else { 403 };
        assert_eq!(r.status, refused, "{case}: an upload with the viewer token");
        if with_upload {
            let r = crate::uploads::request_upload(&app, Some(&upload), body).await;
            assert_eq!(
                r.status,
                200,
                "{case}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

#[tokio::test]
async fn who_may_see_a_folder_gallery() {
    let root = tempdir();
    for f in ["small.jpg", "still.webp"] {
        std::fs::copy(testdata().join(f), root.join(f)).unwrap();
    }
    std::fs::write(root.join("notes.txt"), b"not an image").unwrap();
    who_may_see(|| Config::with_root(&root), GalleryMode::Public).await;
    // The page is the same static shell in every mode (it asks for the token itself).
    let app = TestApp::spawn_with(Config::with_root(&root)).await;
    let page = app.get("/_/gallery").await;
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("script-src 'self'")));
    let js = app.get("/_/gallery.js").await;
    assert_eq!(js.content_type(), "text/javascript; charset=utf-8");
    Reply::send(app.client.post(app.url("/_/gallery")))
        .await
        .assert_error(405, "method_not_allowed");
    app.get("/_/nothing").await.assert_error(404, "not_found");
}

#[tokio::test]
async fn who_may_see_a_bucket_gallery() {
    crate::needs!(Garage);
    let s3 = S3Env::new("gallery-modes").await;
    for f in ["small.jpg", "still.webp"] {
        s3.put_fixture(f).await;
    }
    s3.put("notes.txt", b"not an image").await;
    // A bucket's gallery is off unless asked for.
    who_may_see(|| s3.config(), GalleryMode::Off).await;
}

/// Signed listings carry an `exp` rounded to a window of IMGFN_GALLERY_LINK_SECS / 2: two
/// listings in the same window hand out the same URLs (caches keep hitting), and each lives
/// between half and the whole of the setting.
#[tokio::test]
async fn signed_links_expire_in_rounded_windows() {
    let root = tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("small.jpg")).unwrap();
    let mut config = Config::with_root(&root);
    config.signing_keys = Some("k1:a-long-signing-secret".parse().unwrap());
    config.gallery_link_secs = 3600;
    let app = TestApp::spawn_with(config).await;
    let first = list_all(&app, "", None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let second = list_all(&app, "", None).await;
    let item = &first[0];
    let mut urls: Vec<&str> = vec![
        item["url"].as_str().unwrap(),
        item["download"].as_str().unwrap(),
        item["thumbnail"]["src"].as_str().unwrap(),
        item["viewer"]["src"].as_str().unwrap(),
    ];
    urls.extend(
        item["viewer"]["srcset"]
            .as_str()
            .unwrap()
            .split(", ")
            .map(|c| c.split(' ').next().unwrap()),
    );
    for url in urls {
        let exp: u64 = url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("exp="))
            .unwrap_or_else(|| panic!("no exp in {url}"))
            .parse()
            .unwrap();
        assert_eq!(exp % 1800, 0, "{url}");
        assert!(
            exp > now + 1800 - 5 && exp <= now + 3600 + 5,
            "{url}: {exp} at {now}"
        );
        assert_eq!(app.get(url).await.status, 200, "{url}");
    }
    if now % 1800 < 1795 {
        assert_eq!(first, second, "the same URLs within one window");
    }
}

#[tokio::test]
async fn signed_deployments_list_signed_thumbnails() {
    let root = tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("small.jpg")).unwrap();
    let mut config = Config::with_root(&root);
    config.signing_keys = Some("k1:a-long-signing-secret".parse().unwrap());
    let app = TestApp::spawn_with(config).await;
    let items = list_all(&app, "", None).await;
    let item = &items[0];
    let src = item["thumbnail"]["src"].as_str().unwrap();
    assert!(src.contains("&sig=k1."), "{src}");
    assert_eq!(app.get(src).await.image().dimensions(), (240, 160));
    assert!(item["url"].as_str().unwrap().contains("sig="));
    // Without the signature the same thumbnail is refused.
    let unsigned = src.split("&sig=").next().unwrap();
    app.get(unsigned).await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn bucket_listing_is_opt_in_and_paginates_with_ranged_reads() {
    crate::needs!(Garage);
    let s3 = S3Env::new("gallery").await;
    for f in ["large.jpg", "small.jpg", "alpha-small.png", "orient-6.jpg"] {
        s3.put_fixture(f).await;
    }
    s3.put(
        "photos/still.webp",
        &std::fs::read(testdata().join("still.webp")).unwrap(),
    )
    .await;
    s3.put("photos/broken.png", b"\x89PNG\r\n\x1a\nshort").await;
    // Something under the renditions prefix, which is not an original.
    s3.put("_renditions/abc.jpg", b"x").await;

    let off = TestApp::spawn_with(s3.config()).await;
    off.get("/_/gallery.json")
        .await
        .assert_error(404, "not_found");
    off.get("/_/gallery").await.assert_error(404, "not_found");

    let mut config = s3.config();
    config.gallery = Some(imgfn::config::GalleryMode::Public);
    // The app reaches the bucket through a recording proxy: the listing must read each
    // original's header with a ranged GET, never the whole object.
    let proxy = Proxy::before_s3().await;
    let source = s3_source_via(&proxy.endpoint(), &s3, &config, 10_000);
    let app = TestApp::spawn_source(config, source).await;
    // Without placeholders (`placeholders=0`): those fetch each original whole, by design.
    let items = list_all(&app, "limit=2&placeholders=0", None).await;
    let gets: Vec<SeenRequest> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.target.contains("list-type="))
        .collect();
    for key in [
        "alpha-small.png",
        "large.jpg",
        "orient-6.jpg",
        "photos/broken.png",
        "photos/still.webp",
        "small.jpg",
    ] {
        let object = format!("/{}/{}{key}", s3.bucket, s3.prefix);
        let of_key: Vec<&SeenRequest> = gets
            .iter()
            .filter(|r| r.target.split('?').next() == Some(object.as_str()))
            .collect();
        assert!(!of_key.is_empty(), "no GET of {object} in {gets:#?}");
        for r in of_key {
            assert_eq!(
                r.header("range"),
                Some("bytes=0-65535"),
                "the listing read {key} without a Range: {r:?}"
            );
        }
    }
    // large.jpg alone is 4.3 MB: the listing moved a fraction of that.
    assert!(
        proxy.bytes_down() < 1_000_000,
        "the listing read {} bytes from the store",
        proxy.bytes_down()
    );
    let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "alpha-small.png",
            "large.jpg",
            "orient-6.jpg",
            "photos/broken.png",
            "photos/still.webp",
            "small.jpg"
        ]
    );
    let items = by_key(&items);
    assert_eq!(dims(&items["large.jpg"]), (6028, 3391));
    assert_eq!(dims(&items["orient-6.jpg"]), (640, 427));
    assert_eq!(
        items["large.jpg"]["bytes"].as_u64().unwrap(),
        std::fs::metadata(testdata().join("large.jpg"))
            .unwrap()
            .len()
    );
    assert_eq!(items["photos/broken.png"]["error"]["code"], "corrupt_image");
    assert_thumbnails(&app, &items["large.jpg"]).await;
    assert_thumbnails(&app, &items["photos/still.webp"]).await;
    let photos = list_all(&app, "prefix=photos%2F", None).await;
    assert_eq!(photos.len(), 2);
}

#[tokio::test]
async fn download_names_the_file() {
    let app = TestApp::spawn().await;
    let original = app.get("/small.jpg?download=1").await;
    assert_eq!(original.status, 200);
    assert_eq!(
        original.header("content-disposition"),
        Some("attachment; filename=\"small.jpg\"; filename*=UTF-8''small%2Ejpg")
    );
    assert_eq!(
        original.body,
        std::fs::read(testdata().join("small.jpg")).unwrap()
    );
    let webp = app.get("/small.jpg?w=100&fmt=webp&download=1").await;
    assert_eq!(webp.content_type(), "image/webp");
    assert!(webp
        .header("content-disposition")
        .is_some_and(|d| d.contains("filename=\"small.webp\"")));
    // Without it, inline as always; the same rendition either way.
    let inline = app.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(inline.header("content-disposition"), None);
    assert_eq!(inline.body, webp.body);
    app.get("/small.jpg?download=yes")
        .await
        .assert_error(400, "invalid_parameter");
    app.get("/missing.jpg?download=1")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn big_originals_redirect_to_a_presigned_download() {
    crate::needs!(Garage);
    let s3 = S3Env::new("download").await;
    s3.put_fixture("medium.jpg").await;
    let mut config = s3.config();
    config.max_response_bytes = Some(100_000);
    let app = TestApp::spawn_with(config).await;

    let r = app.get("/medium.jpg?download=1").await;
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").unwrap().to_string();
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    assert!(
        location.contains("response-content-disposition="),
        "{location}"
    );
    let followed = Reply::send(app.client.get(&location)).await;
    assert_eq!(followed.status, 200);
    assert_eq!(
        followed.body,
        std::fs::read(testdata().join("medium.jpg")).unwrap()
    );
    assert!(followed
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment; filename=\"medium.jpg\"")));
    // Inline when not asked; a missing key is still a 404, never a signed URL.
    let inline = app.get("/medium.jpg").await;
    assert_eq!(inline.status, 302);
    assert!(!inline
        .header("location")
        .unwrap()
        .contains("response-content-disposition"));
    app.get("/missing.jpg?download=1")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn thumbnails_follow_the_size_ladder() {
    let root = tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("small.jpg")).unwrap();
    let mut config = Config::with_root(&root);
    config.allowed_sizes = vec![128, 256, 512];
    config.size_policy = imgfn::policy::SizePolicy::Refuse;
    let app = TestApp::spawn_with(config).await;
    let items = list_all(&app, "", None).await;
    let t = &items[0]["thumbnail"];
    assert_eq!(
        (t["width"].as_u64(), t["height"].as_u64()),
        (Some(256), Some(171))
    );
    // Both candidates are on the ladder (a refusing one), undistorted.
    for candidate in t["srcset"].as_str().unwrap().split(", ") {
        let (url, density) = candidate.split_once(' ').unwrap();
        let img = app.get(url).await.image();
        let scale = if density == "2x" { 2 } else { 1 };
        assert_eq!(img.width(), 256 * scale, "{url}");
        assert!(
            (i64::from(img.height()) - 171 * i64::from(scale)).abs() <= 1,
            "{url}"
        );
    }
}
