//! JPEG XL, TIFF and BMP originals through the real server: decoded pixels against the
//! reference decoders' (libjxl's `djxl`, Pillow), `fmt=json` against the headers, the output
//! format browsers can show, uploads of every type added in issue 12 and the gallery listing
//! them, and malformed files of each new format refused with a 4xx in time.
//!
//! The fixtures and references in `testdata/inputs/new/` are made by
//! `testdata/inputs/make_new_inputs.py` (cjxl/djxl from Debian's `libjxl-tools`, Pillow).

use crate::support::{json_list, premultiplied_diff, testdata, S3Env, TestApp};
use crate::uploads::{bearer, local_config, put, request_upload};
use std::time::{Duration, Instant};

const DIR: &str = "inputs/new";

fn manifest() -> Vec<serde_json::Value> {
    json_list(&testdata().join(DIR).join("manifest.json"))
}

#[tokio::test]
async fn jxl_tiff_and_bmp_decode_like_their_reference_decoders() {
    let app = TestApp::spawn().await;
    for case in manifest() {
        let file = case["file"].as_str().unwrap();
        let path = format!("/{DIR}/{file}");
        let format = case["format"].as_str().unwrap();
        let alpha = case["has_alpha"].as_bool().unwrap();

        let meta = app.get(&format!("{path}?fmt=json")).await.json();
        for field in ["width", "height", "format", "has_alpha"] {
            assert_eq!(meta[field], case[field], "{file}: {field} in {meta}");
        }

        let got = app.get(&format!("{path}?fmt=png")).await.image();
        let want =
            image::open(testdata().join(DIR).join("ref").join(format!("{file}.png"))).unwrap();
        let (mean, max) = premultiplied_diff(&got, &want);
        // djxl and jxl-oxide both render in floating point and round once to 8 bits; TIFF
        // and BMP are integer formats with one exact answer (16 bits: v / 257).
        let (max_mean, max_max) = if format == "jxl" { (0.5, 4) } else { (0.0, 0) };
        assert!(
            mean <= max_mean && max <= max_max,
            "{file}: mean {mean:.3}, max {max} against the reference decoder"
        );

        // Browsers show none of these: the source's own format is JPEG, or PNG with alpha.
        let thumb = app.get(&format!("{path}?w=100")).await;
        let expected = if alpha { "image/png" } else { "image/jpeg" };
        assert_eq!(thumb.content_type(), expected, "{file}");
        assert_eq!(thumb.image().width(), 100, "{file}");
        // The original as stored keeps its own media type.
        let original = app.get(&path).await;
        assert_eq!(original.status, 200);
        let media = match format {
            "jxl" => "image/jxl",
            "tiff" => "image/tiff",
            _ => "image/bmp",
        };
        assert_eq!(original.content_type(), media, "{file}");
    }
}

/// An image of each type added in issue 12, as a client would upload it: (content type,
/// key extension, bytes, displayed size).
async fn new_type_files(app: &TestApp) -> Vec<(&'static str, &'static str, Vec<u8>, (u64, u64))> {
    let read = |f: &str| std::fs::read(testdata().join(DIR).join(f)).unwrap();
    // An AVIF made by the AVIF encoder imgfn ships (ravif), 120 px wide.
    let avif = app.get("/small.jpg?w=120&fmt=avif").await;
    assert_eq!(avif.status, 200);
    let mut files = vec![
        ("image/jxl", "jxl", read("lossless-alpha.jxl"), (200, 150)),
        ("image/jxl", "jxl", read("orient-6.jxl"), (240, 160)),
        ("image/tiff", "tif", read("rgb16.tif"), (240, 160)),
        ("image/bmp", "bmp", read("rgb24.bmp"), (240, 160)),
        ("image/avif", "avif", avif.body.to_vec(), (120, 80)),
    ];
    if cfg!(feature = "heic") {
        let heic = std::fs::read(testdata().join("inputs/heif/grid-rot.heic")).expect("fixture");
        // Stored 480x320 with a quarter turn (irot): shown 320x480.
        files.push(("image/heic", "heic", heic, (320, 480)));
    }
    files
}

/// Every page of the gallery listing, keyed.
async fn listing(app: &TestApp) -> std::collections::BTreeMap<String, serde_json::Value> {
    let r = app
        .get_with(
            "/_/gallery.json?limit=1000",
            &[("authorization", &bearer())],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

/// Upload each new type through `app` (a granted URL, PUT with its headers), then find it in
/// the gallery with its size and a thumbnail that renders.
async fn upload_and_list(app: &TestApp, put_status: u16) {
    let files = new_type_files(app).await;
    let mut keys = Vec::new();
    for (content_type, ext, bytes, _) in &files {
        let body = serde_json::json!({
            "filename": format!("photo.{ext}"),
            "content_type": content_type,
            "bytes": bytes.len(),
        });
        let grant = request_upload(app, Some(&bearer()), body).await;
        assert_eq!(
            grant.status,
            200,
            "{}",
            String::from_utf8_lossy(&grant.body)
        );
        let grant = grant.json();
        let key = grant["key"].as_str().unwrap().to_string();
        assert!(key.ends_with(&format!(".{ext}")), "{key}");
        assert_eq!(grant["headers"]["content-type"], *content_type);
        let done = put(app, &grant, content_type, bytes.clone()).await;
        assert_eq!(
            done.status,
            put_status,
            "{content_type}: {}",
            String::from_utf8_lossy(&done.body)
        );
        keys.push(key);
    }
    let items = listing(app).await;
    for ((content_type, _, _, size), key) in files.iter().zip(&keys) {
        let item = items
            .get(key)
            .unwrap_or_else(|| panic!("{content_type} upload {key} is not listed"));
        if size.0 > 0 {
            let dims = (
                item["width"].as_u64().unwrap(),
                item["height"].as_u64().unwrap(),
            );
            assert_eq!(dims, *size, "{content_type}: {item}");
        }
        let src = item["thumbnail"]["src"].as_str().unwrap();
        let thumb = app.get_with(src, &[("accept", "image/webp,*/*")]).await;
        assert_eq!(thumb.status, 200, "{content_type}: {src}");
        assert!(thumb.image().width() > 0);
    }
}

#[tokio::test]
async fn every_new_type_uploads_to_a_folder_and_is_listed() {
    let (config, _root) = local_config(&["small.jpg"]);
    let app = TestApp::spawn_with(config).await;
    upload_and_list(&app, 201).await;
    // HEIC only where libheif is built in; elsewhere the refusal names what is accepted.
    if !cfg!(feature = "heic") {
        let body =
            serde_json::json!({"filename": "a.heic", "content_type": "image/heic", "bytes": 10});
        let r = request_upload(&app, Some(&bearer()), body).await;
        let json = r.assert_error(415, "unsupported_format");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("image/jxl") && message.contains("image/avif"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn every_new_type_uploads_to_s3_and_is_listed() {
    crate::needs!(Garage);
    let s3 = S3Env::new("new-inputs").await;
    s3.put_fixture("small.jpg").await;
    s3.allow_browser_uploads().await;
    let mut config = s3.config();
    config.upload_token = Some(crate::uploads::TOKEN.parse().unwrap());
    config.gallery = Some(imgfn::config::GalleryMode::Public);
    let app = TestApp::spawn_with(config).await;
    upload_and_list(&app, 200).await;
}

/// A JPEG XL codestream whose header says `width`x`height` (bits written least significant
/// first, as the format packs them), followed by `tail`.
fn jxl_header(width: u32, height: u32, tail: &[u8]) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut put = |value: u64, n: u32| {
        for i in 0..n {
            bits.push(value >> i & 1 == 1);
        }
    };
    put(0, 1); // not small
    put(3, 2); // height: 1 + u(30)
    put(u64::from(height - 1), 30);
    put(0, 3); // no ratio
    put(3, 2); // width: 1 + u(30)
    put(u64::from(width - 1), 30);
    put(1, 1); // metadata all default
    let mut out = vec![0xFF, 0x0A];
    out.extend(bits.chunks(8).map(|byte| {
        byte.iter()
            .enumerate()
            .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i))
    }));
    out.extend_from_slice(tail);
    out
}

/// A little-endian TIFF of one IFD with these (tag, type, count, value) entries and `data`
/// after it.
fn tiff(entries: &[(u16, u16, u32, u32)], data: &[u8]) -> Vec<u8> {
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, count, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(data);
    out
}

/// A BMP with a BITMAPINFOHEADER saying `width`x`height` at `bpp`, `compression`, then `data`.
fn bmp(width: i32, height: i32, bpp: u16, compression: u32, data: &[u8]) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&bpp.to_le_bytes());
    out.extend_from_slice(&compression.to_le_bytes());
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(data);
    out
}

/// zlib of `n` zero bytes (a compression bomb: 13 bits per 258 bytes), written by hand as
/// one fixed-Huffman deflate block: a literal 0, then copies of length 258 at distance 1.
fn zlib_zeros(n: usize) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let (mut acc, mut nbits) = (0u64, 0u32);
    let mut bits = |out: &mut Vec<u8>, value: u64, n: u32| {
        acc |= value << nbits;
        nbits += n;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    };
    // Huffman codes go most significant bit first.
    let code = |c: u64, len: u32| (0..len).fold(0, |r, i| r | ((c >> i & 1) << (len - 1 - i)));
    bits(&mut out, 1, 1); // final block
    bits(&mut out, 1, 2); // fixed Huffman
    bits(&mut out, code(0x30, 8), 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        bits(&mut out, code(0xC5, 8), 8); // length 258
        bits(&mut out, 0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits(&mut out, code(0x30, 8), 8);
    }
    bits(&mut out, 0, 7); // end of block
    if nbits > 0 {
        out.push(acc as u8);
    }
    let b = (n % 65521) as u32;
    // Adler-32 of n zeros: a stays 1, b adds 1 per byte.
    out.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    out
}

/// The malformed JPEG XL, TIFF and BMP files: (name, bytes). Written to
/// `fuzz/seeds/decode/` too by `-- --ignored new_inputs::write_hostile_seeds`.
pub fn hostile_files() -> Vec<(String, Vec<u8>)> {
    let read = |f: &str| std::fs::read(testdata().join(DIR).join(f)).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for f in ["lossy.jxl", "lossless-alpha.jxl", "jpeg-recompressed.jxl"] {
        let b = read(f);
        out.push((format!("truncated-half-{f}"), b[..b.len() / 2].to_vec()));
        out.push((
            format!("truncated-header-{f}"),
            b[..b.len().min(14)].to_vec(),
        ));
        let mut flipped = b.clone();
        for i in (40..flipped.len()).step_by(97) {
            flipped[i] ^= 0x5A;
        }
        out.push((format!("corrupt-{f}"), flipped));
    }
    // Sizes that lie: enormous, over the pixel limit, and within it with no frame behind.
    out.push(("huge.jxl".into(), jxl_header(1 << 30, 1 << 30, &[0; 64])));
    out.push((
        "over-limit.jxl".into(),
        jxl_header(20_000, 20_000, &[0; 64]),
    ));
    out.push(("no-frame.jxl".into(), jxl_header(4000, 4000, &[])));
    out.push((
        "garbage-frame.jxl".into(),
        jxl_header(4000, 4000, &[0xA5; 256]),
    ));
    out.push((
        "container-without-codestream.jxl".into(),
        b"\0\0\0\x0CJXL \r\n\x87\n\0\0\0\x14ftypjxl \0\0\0\0jxl ".to_vec(),
    ));

    for f in ["rgb-deflate.tif", "rgba-lzw.tif", "multipage.tif"] {
        let b = read(f);
        // A third: inside the first page's pixels even with two pages.
        out.push((format!("truncated-third-{f}"), b[..b.len() / 3].to_vec()));
    }
    let rgb = |w: u32, h: u32, compression: u32, strips: u32, offsets: u32, counts: u32| {
        vec![
            (256, 4, 1, w),
            (257, 4, 1, h),
            (258, 3, 1, 8),
            (259, 3, 1, compression),
            (262, 3, 1, 1),
            (273, 4, strips, offsets),
            (277, 3, 1, 1),
            (278, 4, 1, h.div_ceil(strips.max(1))),
            (279, 4, strips, counts),
        ]
    };
    out.push((
        "huge.tif".into(),
        tiff(&rgb(60_000, 60_000, 1, 1, 122, 16), &[0; 16]),
    ));
    // 9000x9000 grey claimed (81 MP, under the pixel limit), 16 bytes stored.
    out.push((
        "lying-size.tif".into(),
        tiff(&rgb(9000, 9000, 1, 1, 122, 16), &[0; 16]),
    ));
    // Ten million strips, their offset and count arrays pointing past the end.
    out.push((
        "many-strips.tif".into(),
        tiff(&rgb(4000, 4000, 1, 10_000_000, 1 << 20, 1 << 24), &[]),
    ));
    // A deflate bomb: 64 MB of zeros in one strip of a 2000x2000 grey image (4 MB).
    let bomb = zlib_zeros(64 << 20);
    out.push((
        "deflate-bomb.tif".into(),
        tiff(&rgb(2000, 2000, 8, 1, 122, bomb.len() as u32), &bomb),
    ));

    let b = read("rgb24.bmp");
    out.push(("truncated-half.bmp".into(), b[..b.len() / 2].to_vec()));
    out.push(("huge.bmp".into(), bmp(30_000, 30_000, 24, 0, &[0; 64])));
    out.push(("lying-size.bmp".into(), bmp(9000, 9000, 24, 0, &[0; 64])));
    out.push(("negative-width.bmp".into(), bmp(-100, 100, 24, 0, &[0; 64])));
    out.push(("zero-bpp.bmp".into(), bmp(100, 100, 0, 0, &[0; 64])));
    // RLE8 whose first code ends the bitmap: 9000x9000 from two bytes (an RLE "bomb").
    out.push(("rle-end.bmp".into(), bmp(9000, 9000, 8, 1, &[0, 1])));
    out
}

#[tokio::test]
async fn malformed_jxl_tiff_and_bmp_are_refused_quickly() {
    let _serial = crate::support::turn("new-inputs-hostile").await;
    let root = crate::support::tempdir();
    let files = hostile_files();
    for (name, bytes) in &files {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    for (name, _) in &files {
        for query in ["w=100", "fmt=json", "w=100&fmt=png"] {
            let started = Instant::now();
            let r = app.get(&format!("/{name}?{query}")).await;
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "{name}?{query} took {took:?}"
            );
            // `fmt=json` reads the header alone: an intact header is described (200)
            // whatever follows it. A render succeeds only for what is a valid image after
            // all: the RLE end code, the bomb whose first 4 MB are a whole picture.
            if r.status == 200
                && (query == "fmt=json"
                    || matches!(name.as_str(), "rle-end.bmp" | "deflate-bomb.tif"))
            {
                continue;
            }
            assert!(
                (400..500).contains(&r.status),
                "{name}?{query}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            let json = r.json();
            assert!(
                json["error"]["message"].as_str().is_some(),
                "{name}: {json}"
            );
        }
    }
}

/// Keep the malformed files as seeds of the `decode` fuzz target.
#[test]
#[ignore = "writes fuzz/seeds/decode/: -- --ignored new_inputs::write_hostile_seeds"]
fn write_hostile_seeds() {
    let dir = testdata().join("../fuzz/seeds/decode");
    for (name, bytes) in hostile_files() {
        // The bomb stays out: a seed over a few kilobytes slows every fuzz run.
        if bytes.len() <= 64 << 10 {
            std::fs::write(dir.join(format!("new-{name}")), bytes).unwrap();
        }
    }
    for case in manifest() {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(testdata().join(DIR).join(file)).unwrap();
        if bytes.len() <= 64 << 10 {
            std::fs::write(dir.join(format!("new-{file}")), bytes).unwrap();
        }
    }
}
