//! Placeholders over HTTP: `fmt=json`'s `thumbhash` and `dominant_color`, `fmt=thumbhash`, the
//! gallery listing's placeholders; checked against what the images look like (the hash
//! decoded by ThumbHash's own decoder, next to imgfn's rendition of the image as displayed),
//! across formats, EXIF orientations, a replaced original, corrupt and hostile files.

use crate::support::{tempdir, testdata, TestApp};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use image::{DynamicImage, GenericImageView, RgbaImage};
use std::time::{Duration, Instant};

/// A ThumbHash as the API prints it (standard base64, no padding), decoded to its bytes.
fn hash_bytes(b64: &str) -> Vec<u8> {
    STANDARD_NO_PAD
        .decode(b64)
        .unwrap_or_else(|e| panic!("not unpadded standard base64 ({e}): {b64}"))
}

/// The image a ThumbHash stands for, rendered by ThumbHash's decoder (at most 32x32).
fn render_hash(b64: &str) -> RgbaImage {
    let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash_bytes(b64)).expect("a valid ThumbHash");
    RgbaImage::from_raw(w as u32, h as u32, rgba).expect("w*h*4 bytes")
}

/// Mean absolute difference per channel of RGB, same size required.
fn mean_difference(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "sizes differ");
    let diffs: Vec<f64> = a
        .pixels()
        .zip(b.pixels())
        .flat_map(|(p, q)| (0..3).map(move |c| f64::from(p.0[c].abs_diff(q.0[c]))))
        .collect();
    diffs.iter().sum::<f64>() / diffs.len() as f64
}

fn is_hex_colour(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 7
            && s.starts_with('#')
            && s[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `fmt=json` and `fmt=thumbhash` of `path`, checked against each other; the hash.
async fn placeholder(app: &TestApp, path: &str) -> (String, serde_json::Value) {
    let meta = app.get(&format!("{path}?fmt=json")).await;
    assert_eq!(
        meta.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&meta.body)
    );
    let meta = meta.json();
    let hash = meta["thumbhash"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: no thumbhash in {meta}"))
        .to_string();
    assert!(is_hex_colour(&meta["dominant_color"]), "{path}: {meta}");
    let alone = app.get(&format!("{path}?fmt=thumbhash")).await;
    assert_eq!(alone.status, 200, "{path}");
    assert_eq!(alone.content_type(), "text/plain; charset=utf-8", "{path}");
    assert_eq!(String::from_utf8_lossy(&alone.body), hash, "{path}");
    (hash, meta)
}

#[tokio::test]
async fn every_format_has_a_placeholder_in_json_and_alone() {
    let app = TestApp::spawn().await;
    for file in [
        "small.jpg",
        "large.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "tiny.png",
        "wide.png",
        "deep.png",
        "palette.png",
        "alpha-small.png",
        "still.webp",
        "animated.gif",
    ] {
        let path = format!("/{file}");
        let (hash, meta) = placeholder(&app, &path).await;
        let bytes = hash_bytes(&hash);
        // 5 header bytes and the AC terms: 21 to 25 bytes for most images.
        assert!(
            (5..=32).contains(&bytes.len()),
            "{file}: {} bytes",
            bytes.len()
        );
        // The alpha flag (bit 23 of the header) says whether the image has transparency.
        let alpha = bytes[2] & 0x80 != 0;
        assert_eq!(alpha, file.starts_with("alpha"), "{file}: alpha flag");
        // The aspect ratio the hash carries is the image's (coarsely: ThumbHash keeps the
        // number of luminance terms per axis, up to 7).
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&bytes).unwrap();
        let (w, h) = (
            meta["width"].as_f64().unwrap(),
            meta["height"].as_f64().unwrap(),
        );
        assert_eq!(
            ratio > 1.0,
            w > h,
            "{file}: hash ratio {ratio}, image {w}x{h}"
        );
        // The decoded hash looks like the image: against imgfn's own rendition at its size,
        // a mean difference a wrong image (or a wrong orientation) is far from.
        if !alpha && w.min(h) >= 32.0 {
            let decoded = render_hash(&hash);
            let (dw, dh) = decoded.dimensions();
            let shown = app
                .get(&format!("{path}?w={dw}&h={dh}&fit=fill&fmt=png"))
                .await
                .image()
                .to_rgba8();
            // ThumbHash keeps at most 7 cosines an axis: compare what it can hold, both
            // averaged down to 8 pixels on the long side.
            let coarse = |img: &RgbaImage| {
                let (cw, ch) = if dw >= dh {
                    (8, (8 * dh).div_ceil(dw).max(1))
                } else {
                    ((8 * dw).div_ceil(dh).max(1), 8)
                };
                image::imageops::resize(img, cw, ch, image::imageops::FilterType::Triangle)
            };
            let diff = mean_difference(&coarse(&decoded), &coarse(&shown));
            let turned = image::imageops::rotate180(&shown);
            let wrong = mean_difference(&coarse(&decoded), &coarse(&turned));
            eprintln!(
                "{file}: decoded hash vs rendition: mean difference {diff:.1} \
                 (vs the rendition upside down: {wrong:.1})"
            );
            assert!(
                diff < 20.0,
                "{file}: the hash does not look like the image ({diff:.1})"
            );
        }
        // Cacheable, revalidated by its ETag like every other answer.
        let alone = app.get(&format!("{path}?fmt=thumbhash")).await;
        let etag = alone.header("etag").expect("an ETag").to_string();
        assert!(alone.header("cache-control").is_some());
        let again = app
            .get_with(
                &format!("{path}?fmt=thumbhash"),
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(again.status, 304, "{file}");
    }
}

#[tokio::test]
async fn the_hash_describes_the_image_as_displayed() {
    // orient-N.jpg hold small.jpg's pixels stored turned or mirrored, with the EXIF
    // orientation that shows them upright: every one has small.jpg's placeholder (within the
    // rounding of different JPEG encodings), and a hash of the stored pixels would not.
    let app = TestApp::spawn().await;
    let (upright, meta) = placeholder(&app, "/small.jpg").await;
    let upright_img = render_hash(&upright);
    for file in [
        "orient-3.jpg",
        "orient-5.jpg",
        "orient-6.jpg",
        "orient-8.jpg",
    ] {
        let (hash, m) = placeholder(&app, &format!("/{file}")).await;
        let img = render_hash(&hash);
        assert_eq!(
            img.dimensions(),
            upright_img.dimensions(),
            "{file}: the hash has the stored shape"
        );
        let diff = mean_difference(&img, &upright_img);
        eprintln!("{file}: vs small.jpg's placeholder: mean difference {diff:.2}");
        assert!(diff < 6.0, "{file}: not small.jpg as displayed ({diff:.2})");
        assert_eq!(m["dominant_color"], meta["dominant_color"], "{file}");
    }
    // The comparison can tell: small.jpg turned upside down is far from it.
    let flipped = image::imageops::rotate180(&upright_img);
    assert!(mean_difference(&flipped, &upright_img) > 10.0);
}

#[tokio::test]
async fn a_replaced_original_gets_a_new_placeholder() {
    let root = tempdir();
    std::fs::copy(testdata().join("small.jpg"), root.join("photo.jpg")).unwrap();
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    let reference = TestApp::spawn().await;
    let (before, _) = placeholder(&app, "/photo.jpg").await;
    assert_eq!(before, placeholder(&reference, "/small.jpg").await.0);
    // Same key, new content (and so a new version).
    let tmp = root.join("photo.tmp");
    std::fs::copy(testdata().join("still.webp"), &tmp).unwrap();
    std::fs::rename(&tmp, root.join("photo.jpg")).unwrap();
    tokio::time::sleep(imgfn::source::FS_REVALIDATE + Duration::from_millis(100)).await;
    let (after, meta) = placeholder(&app, "/photo.jpg").await;
    assert_ne!(
        after, before,
        "the placeholder of the old version was served"
    );
    assert_eq!(after, placeholder(&reference, "/still.webp").await.0);
    assert_eq!(meta["format"], "webp");
}

#[tokio::test]
async fn an_image_that_does_not_decode_has_no_placeholder_but_its_header_answers() {
    let app = TestApp::spawn().await;
    // Headers that read, pixels that do not (truncated, a corrupt chunk): `fmt=json` answers
    // its header fields with `null` placeholders, `fmt=thumbhash` is the image's 422.
    for (file, w, h) in [
        ("malformed/truncated.jpg", 640, 427),
        ("malformed/truncated.png", 400, 300),
        ("malformed/corrupt-chunk.png", 400, 300),
    ] {
        let meta = app.get(&format!("/{file}?fmt=json")).await;
        assert_eq!(meta.status, 200, "{file}");
        let meta = meta.json();
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (Some(w), Some(h))
        );
        assert!(meta["thumbhash"].is_null(), "{file}: {meta}");
        assert!(meta["dominant_color"].is_null(), "{file}: {meta}");
        app.get(&format!("/{file}?fmt=thumbhash"))
            .await
            .assert_error(422, "corrupt_image");
    }
    // Too many pixels to decode: over the limit, said so; the header still answers.
    let meta = app
        .get("/malformed/huge-dimensions.jpg?fmt=json")
        .await
        .json();
    assert_eq!(meta["width"], 60_000);
    assert!(meta["thumbhash"].is_null(), "{meta}");
    let err = app
        .get("/malformed/huge-dimensions.jpg?fmt=thumbhash")
        .await
        .assert_error(422, "limit_exceeded");
    assert_eq!(err["error"]["limit"], "max_source_pixels");
    // Not an image at all: neither answers.
    for mode in ["json", "thumbhash"] {
        app.get(&format!("/malformed/not-an-image.jpg?fmt={mode}"))
            .await
            .assert_error(415, "unsupported_format");
    }
}

#[tokio::test]
async fn hostile_files_are_refused_quickly_never_a_server_error() {
    // Timing-bound, like the hostile corpus: one at a time.
    let _serial = crate::support::turn("hostile").await;
    let server = crate::hostile::Server::start(&[], None);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut slowest = (Duration::ZERO, String::new());
    let mut answered = [0usize; 2];
    for dir in ["hostile", "malformed"] {
        let mut files: Vec<_> = std::fs::read_dir(testdata().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| !f.ends_with(".py") && !f.ends_with(".json"))
            .collect();
        files.sort();
        for file in files {
            for mode in ["thumbhash", "json"] {
                let path = format!("/{dir}/{file}?fmt={mode}");
                let started = Instant::now();
                let resp = client.get(server.url(&path)).send().await.expect("request");
                let status = resp.status().as_u16();
                let retry = resp.headers().contains_key("retry-after");
                let body = resp.bytes().await.expect("body");
                let took = started.elapsed();
                let what = format!("{path}: {status} in {took:?}");
                // The slowest legitimate case is a full decode of a 100 MP PNG (about 1 s on
                // a quiet machine); the suite runs beside other tests on two cores.
                assert!(took < Duration::from_secs(3), "too slow: {what}");
                assert!(
                    status < 500 || (status == 503 && retry),
                    "server error: {what}"
                );
                if status >= 400 {
                    let json: serde_json::Value = serde_json::from_slice(&body)
                        .unwrap_or_else(|_| panic!("not a JSON error: {what}"));
                    assert!(json["error"]["message"].is_string(), "{what}");
                    answered[1] += 1;
                } else {
                    answered[0] += 1;
                }
                if took > slowest.0 {
                    slowest = (took, path);
                }
            }
        }
    }
    eprintln!(
        "placeholders of hostile files: {} answered, {} refused; slowest {:?} ({})",
        answered[0], answered[1], slowest.0, slowest.1
    );
    assert!(answered[1] >= 40, "refused only {}", answered[1]);
    let peak = server.peak_rss_kib();
    eprintln!("placeholders of hostile files: peak RSS {} MiB", peak >> 10);
    assert!(peak < 1 << 20, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn the_gallery_listing_carries_each_placeholder() {
    let root = tempdir();
    for (name, file) in [
        ("a.jpg", "small.jpg"),
        ("b.png", "alpha-small.png"),
        ("c.jpg", "malformed/truncated.jpg"),
        ("d.webp", "still.webp"),
        ("e.jpg", "orient-6.jpg"),
    ] {
        std::fs::copy(testdata().join(file), root.join(name)).unwrap();
    }
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    let reference = TestApp::spawn().await;
    let started = Instant::now();
    let page = app.get("/_/gallery.json").await;
    let cold = started.elapsed();
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let page = page.json();
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 5, "{page}");
    for item in items {
        let key = item["key"].as_str().unwrap();
        if key == "c.jpg" {
            // Its header reads, its pixels do not: no placeholder, and the page still lists.
            assert!(
                item["thumbhash"].is_null() && item["dominant_color"].is_null(),
                "{item}"
            );
            assert_eq!(item["width"], 640);
            continue;
        }
        let hash = item["thumbhash"]
            .as_str()
            .unwrap_or_else(|| panic!("{item}"));
        let own = app.get(&format!("/{key}?fmt=thumbhash")).await;
        assert_eq!(String::from_utf8_lossy(&own.body), hash, "{key}");
        assert!(is_hex_colour(&item["dominant_color"]), "{item}");
    }
    let orient = items.iter().find(|i| i["key"] == "e.jpg").unwrap();
    let upright = reference.get("/small.jpg?fmt=thumbhash").await;
    let diff = mean_difference(
        &render_hash(orient["thumbhash"].as_str().unwrap()),
        &render_hash(&String::from_utf8_lossy(&upright.body)),
    );
    assert!(
        diff < 6.0,
        "the listing's hash of orient-6.jpg is not as displayed ({diff:.2})"
    );
    // Listed again: the same placeholders, from the cache.
    let started = Instant::now();
    let again = app.get("/_/gallery.json").await.json();
    let warm = started.elapsed();
    eprintln!("gallery listing of 5 images: cold {cold:?}, warm {warm:?}");
    for (a, b) in items.iter().zip(again["items"].as_array().unwrap()) {
        assert_eq!(a["thumbhash"], b["thumbhash"]);
        assert_eq!(a["dominant_color"], b["dominant_color"]);
    }
}

/// The dominant colour of a flat image is its colour, through the whole service.
#[tokio::test]
async fn the_dominant_colour_of_a_flat_image_is_its_colour() {
    let root = tempdir();
    let flat = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        300,
        200,
        image::Rgb([12, 200, 99]),
    ));
    flat.save(root.join("flat.png")).unwrap();
    // Two thirds orange and one third blue: orange.
    let split = image::RgbImage::from_fn(300, 200, |x, _| {
        if x < 200 {
            image::Rgb([250, 140, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    DynamicImage::ImageRgb8(split)
        .save(root.join("split.png"))
        .unwrap();
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    let meta = app.get("/flat.png?fmt=json").await.json();
    assert_eq!(meta["dominant_color"], "#0cc863", "{meta}");
    let meta = app.get("/split.png?fmt=json").await.json();
    assert_eq!(meta["dominant_color"], "#fa8c00", "{meta}");
    assert_eq!(flat.dimensions(), (300, 200));
}

/// The README's picture: `testdata/medium.jpg` at 240 px wide, and beside it its placeholder
/// as a page shows it (ThumbHash's own decoder, stretched to the same size). Run by hand:
/// `cargo test --features nasm --test api -- --ignored placeholder::example_picture`.
#[tokio::test]
#[ignore = "writes docs/examples/thumbhash.png"]
async fn example_picture() {
    let app = TestApp::spawn().await;
    let photo = app
        .get("/medium.jpg?w=240&fmt=png")
        .await
        .image()
        .to_rgba8();
    let (w, h) = photo.dimensions();
    let hash = String::from_utf8(app.get("/medium.jpg?fmt=thumbhash").await.body).unwrap();
    let stretched = image::imageops::resize(
        &render_hash(&hash),
        w,
        h,
        image::imageops::FilterType::Triangle,
    );
    let gap = 8;
    let mut out = RgbaImage::from_pixel(2 * w + gap, h, image::Rgba([255, 255, 255, 255]));
    image::imageops::overlay(&mut out, &stretched, 0, 0);
    image::imageops::overlay(&mut out, &photo, i64::from(w + gap), 0);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/thumbhash.png");
    out.save(&path).unwrap();
    eprintln!("{}: {hash}", path.display());
}

#[tokio::test]
async fn over_s3_placeholders_follow_the_object_version_and_the_listing_carries_them() {
    crate::needs!(Garage);
    let s3 = crate::support::S3Env::new("placeholder").await;
    s3.put_fixture("small.jpg").await;
    s3.put(
        "broken.jpg",
        &std::fs::read(testdata().join("malformed/truncated.jpg")).unwrap(),
    )
    .await;
    let mut config = s3.config();
    config.revalidate_secs = 1;
    config.gallery = Some(imgfn::config::GalleryMode::Public);
    let app = TestApp::spawn_with(config).await;
    let reference = TestApp::spawn().await;
    let (small, _) = placeholder(&reference, "/small.jpg").await;
    assert_eq!(placeholder(&app, "/small.jpg").await.0, small);
    let page = app.get("/_/gallery.json").await.json();
    let items = page["items"].as_array().expect("items");
    let item = |key: &str| items.iter().find(|i| i["key"] == key).cloned().unwrap();
    assert_eq!(item("small.jpg")["thumbhash"], small.as_str(), "{page}");
    assert!(item("broken.jpg")["thumbhash"].is_null(), "{page}");
    app.get("/broken.jpg?fmt=thumbhash")
        .await
        .assert_error(422, "corrupt_image");
    // A new object under the same key: a new ETag, a new placeholder once revalidated.
    s3.put(
        "small.jpg",
        &std::fs::read(testdata().join("still.webp")).unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (still, _) = placeholder(&reference, "/still.webp").await;
    assert_eq!(placeholder(&app, "/small.jpg").await.0, still);
    let page = app.get("/_/gallery.json").await.json();
    let listed = page["items"].as_array().unwrap();
    let again = listed.iter().find(|i| i["key"] == "small.jpg").unwrap();
    assert_eq!(again["thumbhash"], still.as_str(), "{page}");
}
