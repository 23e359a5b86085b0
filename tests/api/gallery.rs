//! The gallery listing (`/_/gallery.json`) over a folder and a bucket, the page itself, and
//! downloads of originals (`download=1`, and the 302 to a presigned GET above the budget).

use crate::probe::{s3_source_via, Proxy, SeenRequest};
use crate::support::{tempdir, testdata, Reply, S3Env, TestApp};
use crate::uploads::{bearer, local_config, TOKEN};
use image::GenericImageView;
use imgfn::config::Config;
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

#[tokio::test]
async fn listing_needs_the_token_when_one_is_configured() {
    let (config, _root) = local_config(&["small.jpg"]);
    let app = TestApp::spawn_with(config).await;
    app.get("/_/gallery.json")
        .await
        .assert_error(401, "unauthorized");
    app.get_with(
        "/_/gallery.json",
        &[("authorization", "Bearer wrong-token-wrong-token")],
    )
    .await
    .assert_error(401, "unauthorized");
    assert_eq!(list_all(&app, "", Some(&bearer())).await.len(), 1);
    // The page itself is static: it asks for the token, it does not contain data.
    let page = app.get("/_/gallery").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("script-src 'self'")));
    assert!(!String::from_utf8_lossy(&page.body).contains(TOKEN));
    let js = app.get("/_/gallery.js").await;
    assert_eq!(js.content_type(), "text/javascript; charset=utf-8");
    Reply::send(app.client.post(app.url("/_/gallery")))
        .await
        .assert_error(405, "method_not_allowed");
    app.get("/_/nothing").await.assert_error(404, "not_found");
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
    config.gallery = Some(true);
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
