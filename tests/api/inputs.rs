//! Every input kind the README promises, through the real server: progressive JPEG, plain
//! (Adobe, transform 0) CMYK JPEG, WebP lossless and with alpha, 1-, 2- and 4-bit PNG, every
//! EXIF orientation, and `fmt=json` answering from the header alone.
//!
//! The fixtures in `testdata/inputs/` are made by `make_input_fixtures` at the end of this
//! file, deterministically, from the photos in `testdata/` (run it with
//! `cargo test --locked --features nasm --test api -- --ignored --exact inputs::make_input_fixtures`).
//! Every test checks the fixture is what it claims (marker, chunk, bit depth), then compares
//! pixels with an expectation that imgfn's decoders play no part in: the photo the fixture was
//! made from (decoded and resized by the `image` crate), or the pattern a PNG was built from.

use crate::support::{psnr, reference, testdata, TestApp};
use image::{DynamicImage, GenericImageView, RgbaImage};
use imgfn::params::{ImageRequest, OutputFormat};
use imgfn::pipeline::{self, Limits};
use std::time::{Duration, Instant};

/// The DCT scale imgfn's planner picks for `query` on `file` (so a test can show it covers
/// every scale it means to, instead of assuming).
fn planned_shrink(file: &str, query: &str) -> u32 {
    let bytes = std::fs::read(testdata().join(file)).unwrap();
    let info = pipeline::probe(&bytes).expect("probe");
    let params = ImageRequest::parse(Some(query)).expect("params").transform;
    pipeline::prepare(&info, &params, OutputFormat::Png, &Limits::default())
        .expect("plan")
        .shrink
}

/// The marker segments of a JPEG before its first scan, as (marker, payload).
fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        out.push((marker, &bytes[i + 4..i + 2 + len]));
        if marker == 0xDA {
            break;
        }
        i += 2 + len;
    }
    out
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(testdata().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[tokio::test]
async fn progressive_jpeg_at_every_decode_scale() {
    let app = TestApp::spawn().await;
    // (fixture, the photo it was encoded from, least PSNR, (query, DCT scale the planner
    // must pick)). jpeg/progressive.jpg is cjpeg's q80, measured 30.8 dB at 1/8.
    let cases = [
        (
            "inputs/progressive.jpg",
            "medium.jpg",
            40.0,
            [("w=1200", 1), ("w=600", 2), ("w=300", 4), ("w=150", 8)],
        ),
        (
            "jpeg/progressive.jpg",
            "small.jpg",
            28.0,
            [("w=400", 1), ("w=200", 2), ("w=100", 4), ("w=50", 8)],
        ),
    ];
    for (file, photo, min_db, queries) in cases {
        let bytes = fixture(file);
        let segments = jpeg_segments(&bytes);
        assert!(
            segments.iter().any(|(m, _)| *m == 0xC2),
            "{file} has no SOF2: not progressive"
        );
        assert!(count(&bytes, &[0xFF, 0xDA]) > 1, "{file}: a single scan");
        for (query, shrink) in queries {
            assert_eq!(planned_shrink(file, query), shrink, "{file}?{query}");
            let got = app.get(&format!("/{file}?{query}&fmt=png")).await.image();
            let want = reference(photo, got.width(), got.height());
            let db = psnr(&got, &want);
            assert!(
                db > min_db,
                "{file}?{query} (1/{shrink} decode): PSNR {db:.1} dB against {photo}"
            );
        }
    }
}

#[tokio::test]
async fn plain_adobe_cmyk_jpeg_is_inverted_and_converted() {
    let app = TestApp::spawn().await;
    let file = "inputs/cmyk-adobe.jpg";
    let bytes = fixture(file);
    let segments = jpeg_segments(&bytes);
    let adobe = segments
        .iter()
        .find(|(m, d)| *m == 0xEE && d.starts_with(b"Adobe"))
        .expect("an Adobe APP14 segment");
    assert_eq!(adobe.1[11], 0, "transform 0: plain CMYK, not YCCK");
    let sof = segments.iter().find(|(m, _)| *m == 0xC0).expect("SOF0");
    assert_eq!(sof.1[5], 4, "four components");

    let meta = app.get(&format!("/{file}?fmt=json")).await.json();
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(400), Some(267))
    );
    for (query, shrink) in [("w=400", 1), ("w=100", 2)] {
        assert_eq!(planned_shrink(file, query), shrink, "{query}");
        let got = app.get(&format!("/{file}?{query}&fmt=png")).await.image();
        assert_eq!(got.color(), image::ColorType::Rgb8);
        let want = reference("small.jpg", got.width(), got.height());
        let db = psnr(&got, &want);
        // Measured 35.8 dB at w=400: a CMYK read without the Adobe inversion is a negative.
        assert!(db > 32.0, "{query}: PSNR {db:.1} dB against small.jpg");
    }
}

#[tokio::test]
async fn webp_lossless_and_alpha_inputs() {
    let app = TestApp::spawn().await;
    // (fixture, its first chunk, the source it was encoded from, alpha, RGB kept exactly)
    let cases = [
        ("inputs/lossless.webp", b"VP8L", "small.jpg", false, true),
        (
            "inputs/alpha-lossless.webp",
            b"VP8L",
            "alpha-small.png",
            true,
            true,
        ),
        (
            "inputs/alpha-lossy.webp",
            b"VP8X",
            "alpha-small.png",
            true,
            false,
        ),
    ];
    for (file, chunk, source, alpha, lossless) in cases {
        let bytes = fixture(file);
        assert_eq!(&bytes[12..16], chunk, "{file}");
        if !lossless {
            assert!(
                count(&bytes, b"ALPH") == 1 && count(&bytes, b"VP8 ") == 1,
                "{file}"
            );
        }
        let source_px = image::open(testdata().join(source)).unwrap();
        let meta = app.get(&format!("/{file}?fmt=json")).await.json();
        assert_eq!(meta["format"], "webp", "{file}");
        assert_eq!(meta["has_alpha"], alpha, "{file}");
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (
                Some(u64::from(source_px.width())),
                Some(u64::from(source_px.height()))
            ),
            "{file}"
        );

        // At its own size nothing is resampled: the pixels are the decoder's.
        let query = format!("/{file}?w={}&fmt=png", source_px.width());
        let got = app.get(&query).await.image();
        assert_eq!(got.color().has_alpha(), alpha, "{file}");
        let (got, want) = (got.to_rgba8(), source_px.to_rgba8());
        if lossless {
            assert!(got == want, "{file}: not the pixels of {source}");
        } else {
            // Lossy colour, but libwebp codes the alpha plane losslessly by default.
            let alpha_of = |i: &RgbaImage| i.pixels().map(|p| p[3]).collect::<Vec<_>>();
            assert!(alpha_of(&got) == alpha_of(&want), "{file}: alpha changed");
            let db = psnr(&got.into(), &want.into());
            assert!(db > 35.0, "{file}: PSNR {db:.1} dB against {source}");
        }

        let got = app.get(&format!("/{file}?w=200&fmt=png")).await.image();
        assert_eq!(got.color().has_alpha(), alpha, "{file}");
        let want = reference(source, got.width(), got.height());
        let db = psnr(&got, &want);
        assert!(db > 35.0, "{file}?w=200: PSNR {db:.1} dB against {source}");
    }
    // JPEG output flattens the transparent corners onto `bg`.
    let img = app
        .get("/inputs/alpha-lossy.webp?w=200&fmt=jpeg&bg=00ff00")
        .await
        .image()
        .to_rgb8();
    let corner = img.get_pixel(1, 1).0;
    assert!(
        corner[0] < 20 && corner[1] > 235 && corner[2] < 20,
        "{corner:?}"
    );
}

/// The low-bit-depth PNGs: name, bit depth, palette (else grey), with a tRNS chunk.
const LOW_BIT_PNGS: [(&str, u8, bool, bool); 6] = [
    ("gray-1bit.png", 1, false, false),
    ("gray-2bit-trns.png", 2, false, true),
    ("gray-4bit.png", 4, false, false),
    ("palette-1bit.png", 1, true, false),
    ("palette-2bit.png", 2, true, false),
    ("palette-4bit-trns.png", 4, true, true),
];
/// Odd width: 45 samples of 1, 2 or 4 bits never fill whole bytes, so every row ends padded.
const LOW_BIT_SIZE: (u32, u32) = (45, 29);
/// The grey level made transparent by the grey tRNS fixture.
const GRAY_TRNS_LEVEL: u8 = 1;

/// The sample (grey level or palette index) at (x, y) of a `depth`-bit fixture.
fn low_bit_level(x: u32, y: u32, depth: u8) -> u8 {
    ((x / 3 + (y / 2) * 3 + x * y / 7) % (1 << depth)) as u8
}

fn palette_entry(i: u8) -> [u8; 3] {
    let i = u32::from(i);
    [
        ((i * 67 + 13) % 256) as u8,
        ((i * 151 + 7) % 256) as u8,
        ((i * 29 + 200) % 256) as u8,
    ]
}

fn palette_alpha(i: u8, depth: u8) -> u8 {
    (u32::from(i) * 255 / ((1 << depth) - 1)) as u8
}

/// What a low-bit PNG shows, computed from its definition (not decoded).
fn low_bit_expected(depth: u8, palette: bool, trns: bool) -> DynamicImage {
    let (w, h) = LOW_BIT_SIZE;
    let max = (1u32 << depth) - 1;
    DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
        let l = low_bit_level(x, y, depth);
        image::Rgba(if palette {
            let [r, g, b] = palette_entry(l);
            [r, g, b, if trns { palette_alpha(l, depth) } else { 255 }]
        } else {
            let v = (u32::from(l) * 255 / max) as u8;
            [v, v, v, if trns && l == GRAY_TRNS_LEVEL { 0 } else { 255 }]
        })
    }))
}

#[tokio::test]
async fn one_two_and_four_bit_pngs() {
    let app = TestApp::spawn().await;
    let (w, h) = LOW_BIT_SIZE;
    for (name, depth, palette, trns) in LOW_BIT_PNGS {
        let file = format!("inputs/{name}");
        let bytes = fixture(&file);
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(bytes[24], depth, "{file}: IHDR bit depth");
        assert_eq!(
            bytes[25],
            if palette { 3 } else { 0 },
            "{file}: colour type"
        );
        assert_eq!(count(&bytes, b"tRNS") == 1, trns, "{file}");

        let meta = app.get(&format!("/{file}?fmt=json")).await.json();
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (Some(45), Some(29))
        );
        assert_eq!(meta["has_alpha"], trns, "{file}");

        let want = low_bit_expected(depth, palette, trns);
        let got = app.get(&format!("/{file}?w={w}&fmt=png")).await.image();
        assert_eq!(got.dimensions(), (w, h), "{file}");
        assert_eq!(got.color().has_alpha(), trns, "{file}");
        let (got, want_px) = (got.to_rgba8(), want.to_rgba8());
        if let Some((x, y, p)) = got
            .enumerate_pixels()
            .find(|(x, y, p)| **p != *want_px.get_pixel(*x, *y))
        {
            panic!(
                "{file}: pixel ({x}, {y}) is {:?}, the fixture says {:?}",
                p.0,
                want_px.get_pixel(x, y).0
            );
        }
        if !trns {
            // Resampled too (colour under transparency has no one right answer, so opaque only).
            let got = app
                .get(&format!("/{file}?w={}&fmt=png", w * 2))
                .await
                .image();
            let want = want.resize_exact(w * 2, h * 2, image::imageops::FilterType::Lanczos3);
            let db = psnr(&got, &want);
            // Lanczos3 rings on the 0/255 edges of the 1-bit fixture: 28.5 dB there, 38+ elsewhere.
            assert!(db > 25.0, "{file} at 2x: PSNR {db:.1} dB");
        }
    }
}

#[tokio::test]
async fn every_exif_orientation_is_applied() {
    let app = TestApp::spawn().await;
    // small.jpg is 640x427; every orient-N.jpg shows it upright.
    let queries = [
        "w=200",
        "w=100&h=100&gravity=left",
        "w=100&h=100&gravity=right",
        "w=200&h=50&gravity=bottom",
        "w=120&h=90&gravity=0.2,0.8",
    ];
    for o in 2..=8 {
        let file = if [2, 4, 7].contains(&o) {
            format!("inputs/orient-{o}.jpg")
        } else {
            format!("orient-{o}.jpg")
        };
        let meta = app.get(&format!("/{file}?fmt=json")).await.json();
        assert_eq!(meta["orientation"], o, "{file}");
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (Some(640), Some(427)),
            "{file}"
        );
        // The image crate's own reading of the fixture's orientation, as an outside check
        // that the fixture is what its name says.
        let outside = reference(&file, 640, 427);
        let upright = reference("small.jpg", 640, 427);
        assert!(psnr(&outside, &upright) > 30.0, "{file} is not small.jpg");
        for query in queries {
            let got = app.get(&format!("/{file}?{query}&fmt=png")).await.image();
            let want = app
                .get(&format!("/small.jpg?{query}&fmt=png"))
                .await
                .image();
            assert_eq!(got.dimensions(), want.dimensions(), "{file}?{query}");
            // Measured 31.0 dB at worst (orient-3 and -8, re-encoded twice by ImageMagick);
            // a mirrored or wrongly rotated rendering is far below.
            let db = psnr(&got, &want);
            assert!(
                db > 29.0,
                "{file}?{query}: PSNR {db:.1} dB against small.jpg"
            );
        }
    }
}

#[tokio::test]
async fn fmt_json_reads_only_the_header() {
    let app = TestApp::spawn().await;
    // Headers claiming billions of pixels over a tiny body (or the body of a 640x427 photo):
    // a decode is impossible, so an answer with the claimed size came from the header.
    let cases = [
        ("malformed/huge-dimensions.jpg", 60_000, 60_000, "jpeg"),
        ("malformed/huge-dimensions.png", 100_000, 100_000, "png"),
        ("inputs/header-only-60000x60000.jpg", 60_000, 60_000, "jpeg"),
        ("inputs/header-only-60000x60000.png", 60_000, 60_000, "png"),
    ];
    for (file, w, h, format) in cases {
        let size = fixture(file).len() as u64;
        let t = Instant::now();
        let r = app.get(&format!("/{file}?fmt=json")).await;
        let took = t.elapsed();
        assert_eq!(
            r.status,
            200,
            "{file}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let meta = r.json();
        assert_eq!(meta["width"], w, "{file}");
        assert_eq!(meta["height"], h, "{file}");
        assert_eq!(meta["format"], format, "{file}");
        assert_eq!(meta["bytes"], size, "{file}");
        // Milliseconds on a quiet machine; the bound leaves room for a loaded one.
        assert!(took < Duration::from_millis(500), "{file}: {took:?}");
        // Pixels of the same file are refused by the source pixel limit, before decoding.
        let r = app.get(&format!("/{file}?w=100")).await;
        let err = r.assert_error(422, "limit_exceeded");
        assert_eq!(err["error"]["limit"], "max_source_pixels", "{file}");
    }
}

/// `Settings::force_libjpeg`, which the benches set to time libjpeg-turbo beside the DC-only
/// decoder, really changes the decoder of a render: at 1/8 the two differ in chroma.
#[test]
fn force_libjpeg_renders_through_libjpeg() {
    let bytes = fixture("small.jpg");
    let info = pipeline::probe(&bytes).expect("probe");
    let dc = pipeline::decode::decode_with(&bytes, &info, 8, true).expect("dc");
    let libjpeg = pipeline::decode::decode_with(&bytes, &info, 8, false).expect("libjpeg");
    assert_eq!(
        libjpeg,
        pipeline::decode::decode_jpeg_libjpeg(&bytes, 8).expect("libjpeg")
    );
    assert!(
        dc.buf != libjpeg.buf,
        "small.jpg (4:2:0) must take the DC-only path"
    );

    let params = ImageRequest::parse(Some("w=50&fmt=png"))
        .expect("params")
        .transform;
    let render = |settings: pipeline::Settings| {
        let job =
            pipeline::prepare(&info, &params, OutputFormat::Png, &settings.limits).expect("plan");
        assert_eq!(job.shrink, 8);
        pipeline::render(
            &bytes,
            &info,
            &params,
            OutputFormat::Png,
            &settings,
            &mut fast_image_resize::Resizer::new(),
        )
        .expect("render")
        .bytes
    };
    let default = render(pipeline::Settings::default());
    let forced = render(pipeline::Settings {
        force_libjpeg: true,
        ..pipeline::Settings::default()
    });
    assert!(default != forced, "force_libjpeg changed nothing");
    let (a, b) = (decode_png(&default), decode_png(&forced));
    let db = psnr(&a, &b);
    assert!(db > 35.0, "the two decoders disagree: {db:.1} dB");
}

fn decode_png(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("png")
}

// ------------------------------------------------------------------------------------------
// The fixtures
// ------------------------------------------------------------------------------------------

/// Regenerates `testdata/inputs/`. Deterministic: the same bytes on every run with the
/// libjpeg-turbo (mozjpeg-sys) and libwebp (libwebp-sys) versions of Cargo.lock.
#[test]
#[ignore = "regenerates testdata/inputs/; run by hand"]
fn make_input_fixtures() {
    let dir = testdata().join("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).unwrap();
        println!("{name}: {} bytes", bytes.len());
    };
    let small = image::open(testdata().join("small.jpg")).unwrap().to_rgb8();
    let medium = image::open(testdata().join("medium.jpg"))
        .unwrap()
        .to_rgb8();
    let alpha = image::open(testdata().join("alpha-small.png"))
        .unwrap()
        .to_rgba8();

    // Progressive JPEG (libjpeg-turbo's simple progression, 10 scans), 1920x1280 4:2:0: its
    // coefficient buffer (7.4 MB) is larger than the decoder's slack, so admission must count it.
    let (w, h) = medium.dimensions();
    write(
        "progressive.jpg",
        &jpeg(&medium, w, h, mozjpeg::ColorSpace::JCS_RGB, true, 90, None),
    );

    // Plain CMYK as Photoshop writes it: inverted samples (255 = no ink), Adobe APP14 with
    // transform 0. Full grey replacement: K' = max(R, G, B), C' = R * 255 / K'.
    let small400 = image::imageops::resize(&small, 400, 267, image::imageops::FilterType::Lanczos3);
    let cmyk: Vec<u8> = small400
        .pixels()
        .flat_map(|p| {
            let k = p.0.iter().copied().max().unwrap_or(0);
            let inv = |v: u8| {
                if k == 0 {
                    255
                } else {
                    ((u32::from(v) * 255 + u32::from(k) / 2) / u32::from(k)) as u8
                }
            };
            [inv(p[0]), inv(p[1]), inv(p[2]), k]
        })
        .collect();
    write(
        "cmyk-adobe.jpg",
        &jpeg(
            &cmyk,
            400,
            267,
            mozjpeg::ColorSpace::JCS_CMYK,
            false,
            92,
            None,
        ),
    );

    // EXIF orientations 2, 4 and 7 (3, 5, 6 and 8 are in testdata/): the stored pixels are
    // the inverse of the display transform; all three are their own inverse.
    let (sw, sh) = small.dimensions();
    let flipped_h = image::imageops::flip_horizontal(&small);
    let flipped_v = image::imageops::flip_vertical(&small);
    let transverse =
        image::RgbImage::from_fn(sh, sw, |x, y| *small.get_pixel(sw - 1 - y, sh - 1 - x));
    for (o, img) in [(2u16, &flipped_h), (4, &flipped_v), (7, &transverse)] {
        let (w, h) = img.dimensions();
        let exif = exif_orientation(o);
        write(
            &format!("orient-{o}.jpg"),
            &jpeg(
                img,
                w,
                h,
                mozjpeg::ColorSpace::JCS_RGB,
                false,
                95,
                Some(&exif),
            ),
        );
    }

    // WebP (libwebp): lossless RGB, lossless RGBA keeping the colour under transparency,
    // lossy RGBA (VP8X + ALPH + VP8; the alpha plane lossless, libwebp's default).
    write(
        "lossless.webp",
        &webp(webp::Encoder::from_rgb(&small, sw, sh), true),
    );
    let (aw, ah) = alpha.dimensions();
    write(
        "alpha-lossless.webp",
        &webp(webp::Encoder::from_rgba(&alpha, aw, ah), true),
    );
    write(
        "alpha-lossy.webp",
        &webp(webp::Encoder::from_rgba(&alpha, aw, ah), false),
    );

    // 1-, 2- and 4-bit PNGs, written by hand (stored deflate blocks): the pattern is the
    // expectation, so no PNG library is involved on either side.
    for (name, depth, palette, trns) in LOW_BIT_PNGS {
        write(name, &low_bit_png(depth, palette, trns));
    }

    // Headers that claim 60000x60000 over almost nothing.
    let small_bytes = std::fs::read(testdata().join("small.jpg")).unwrap();
    write(
        "header-only-60000x60000.jpg",
        &jpeg_header_only(&small_bytes, 60_000, 60_000),
    );
    let mut ihdr = Vec::new();
    ihdr.extend(60_000u32.to_be_bytes());
    ihdr.extend(60_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    // The first bytes of a zlib stream: a decoder would need 10.8 GB more.
    png.extend(png_chunk(b"IDAT", &[0x78, 0x01]));
    png.extend(png_chunk(b"IEND", &[]));
    write("header-only-60000x60000.png", &png);
}

fn jpeg(
    px: &[u8],
    w: u32,
    h: u32,
    color: mozjpeg::ColorSpace,
    progressive: bool,
    quality: u8,
    app1: Option<&[u8]>,
) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(color);
    // libjpeg-turbo's own defaults (baseline, 4:2:0 for YCbCr, CMYK kept as CMYK).
    c.set_fastest_defaults();
    if progressive {
        c.set_progressive_mode();
    }
    c.set_optimize_coding(true);
    c.set_size(w as usize, h as usize);
    c.set_quality(f32::from(quality));
    let mut started = c.start_compress(Vec::new()).expect("start");
    if let Some(data) = app1 {
        started.write_marker(mozjpeg::Marker::APP(1), data);
    }
    started.write_scanlines(px).expect("scanlines");
    started.finish().expect("finish")
}

/// An EXIF APP1 payload holding only an Orientation tag (big-endian TIFF).
fn exif_orientation(o: u16) -> Vec<u8> {
    let mut v = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    v.extend([0, 1]); // one IFD entry
    v.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]); // tag 0x0112, SHORT, count 1
    v.extend(o.to_be_bytes());
    v.extend([0, 0]);
    v.extend([0, 0, 0, 0]); // no next IFD
    v
}

fn webp(encoder: webp::Encoder, lossless: bool) -> Vec<u8> {
    let mut config = webp::WebPConfig::new().expect("config");
    if lossless {
        config.lossless = 1;
        config.exact = 1;
    } else {
        config.quality = 90.0;
    }
    encoder.encode_advanced(&config).expect("webp").to_vec()
}

/// small.jpg's segments up to its scan header with the frame size replaced, then EOI: a
/// valid header with no entropy-coded data at all.
fn jpeg_header_only(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    for (marker, data) in jpeg_segments(jpeg) {
        let mut data = data.to_vec();
        if marker == 0xC0 {
            data[1..3].copy_from_slice(&h.to_be_bytes());
            data[3..5].copy_from_slice(&w.to_be_bytes());
        }
        out.extend([0xFF, marker]);
        out.extend(((data.len() + 2) as u16).to_be_bytes());
        out.extend(data);
    }
    out.extend([0xFF, 0xD9]);
    out
}

fn low_bit_png(depth: u8, palette: bool, trns: bool) -> Vec<u8> {
    let (w, h) = LOW_BIT_SIZE;
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        let (mut byte, mut bits) = (0u8, 0u8);
        for x in 0..w {
            byte = (byte << depth) | low_bit_level(x, y, depth);
            bits += depth;
            if bits == 8 {
                raw.push(byte);
                (byte, bits) = (0, 0);
            }
        }
        if bits > 0 {
            raw.push(byte << (8 - bits));
        }
    }
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, if palette { 3 } else { 0 }, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    let entries = 0..1u8 << depth;
    if palette {
        let plte: Vec<u8> = entries.clone().flat_map(palette_entry).collect();
        png.extend(png_chunk(b"PLTE", &plte));
    }
    if trns {
        let t: Vec<u8> = if palette {
            entries.map(|i| palette_alpha(i, depth)).collect()
        } else {
            vec![0, GRAY_TRNS_LEVEL]
        };
        png.extend(png_chunk(b"tRNS", &t));
    }
    png.extend(png_chunk(b"IDAT", &zlib_stored(&raw)));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[4..]);
    out.extend(crc.to_be_bytes());
    out
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
