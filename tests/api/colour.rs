//! Colour management against LittleCMS: files carrying Debian's ICC profiles (Adobe RGB,
//! ProPhoto, a channel-swapping one, a CMYK press profile, a grey one), written by Pillow,
//! rendered by imgfn and compared in CIEDE2000 with LittleCMS' own conversion to sRGB
//! (Pillow's ImageCms, tests/reference.py); and broken or absurd ICC chunks, which must not
//! keep an image from rendering.

use crate::support::{reference_py, render_png, tempdir, testdata, TestApp};
use image::{DynamicImage, RgbImage};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Debian's `colord-data` profiles (matrix/shaper, ICC v4).
const COLORD: &str = "/usr/share/color/icc/colord";

fn profile(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path}: apt-get install colord-data icc-profiles-free libgs-common"
    );
    p
}

/// The test photo written by Pillow as `name` with the profile `spec` (see reference.py's
/// `icc-embed`): its bytes.
fn embed(dir: &Path, name: &str, spec: &str) -> Vec<u8> {
    let out = dir.join(name);
    reference_py("icc-embed", &testdata().join("small.jpg"), &out, spec);
    std::fs::read(&out).unwrap()
}

/// LittleCMS' conversion of `file` to sRGB (or Pillow's naive one without a profile).
fn littlecms(file: &Path) -> RgbImage {
    let out = file.with_extension("srgb.png");
    reference_py("icc-to-srgb", file, &out, "-");
    image::open(&out).unwrap().to_rgb8()
}

/// imgfn's rendition of `bytes` at `query` (PNG, decoded).
fn imgfn(bytes: &[u8], name: &str, query: &str) -> RgbImage {
    render_png(bytes, name, query).to_rgb8()
}

/// imgfn's JPEG rendition of a JPEG at `query`, decoded.
fn jpeg_to_jpeg(bytes: &[u8], query: &str) -> RgbImage {
    let info = imgfn::pipeline::probe(bytes).unwrap();
    let transform = imgfn::params::ImageRequest::parse(Some(query))
        .unwrap()
        .transform;
    let out = imgfn::pipeline::render(
        bytes,
        &info,
        &transform,
        imgfn::params::OutputFormat::Jpeg,
        &imgfn::pipeline::Settings::default(),
        &mut fast_image_resize::Resizer::new(),
    )
    .unwrap();
    image::load_from_memory(&out.bytes).unwrap().to_rgb8()
}

/// Mean and largest CIEDE2000 difference of two same-sized sRGB images.
fn delta_e(a: &RgbImage, b: &RgbImage) -> (f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions(), "sizes differ");
    let (mut sum, mut max) = (0.0, 0.0f64);
    for (p, q) in a.pixels().zip(b.pixels()) {
        let d = ciede2000(lab(p.0), lab(q.0));
        sum += d;
        max = max.max(d);
    }
    (sum / f64::from(a.width() * a.height()), max)
}

/// CIELAB (D65 white) of an sRGB colour.
fn lab(rgb: [u8; 3]) -> [f64; 3] {
    let lin = |v: u8| {
        let c = f64::from(v) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb.map(lin);
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIEDE2000 (Sharma, Wu and Dalal 2005), kL = kC = kH = 1.
fn ciede2000(c1: [f64; 3], c2: [f64; 3]) -> f64 {
    use std::f64::consts::PI;
    let [l1, a1, b1] = c1;
    let [l2, a2, b2] = c2;
    let cab = (a1.hypot(b1) + a2.hypot(b2)) / 2.0;
    let g = 0.5 * (1.0 - (cab.powi(7) / (cab.powi(7) + 25f64.powi(7))).sqrt());
    let (a1p, a2p) = ((1.0 + g) * a1, (1.0 + g) * a2);
    let (c1p, c2p) = (a1p.hypot(b1), a2p.hypot(b2));
    let hue = |b: f64, a: f64| {
        if a == 0.0 && b == 0.0 {
            0.0
        } else {
            b.atan2(a).rem_euclid(2.0 * PI)
        }
    };
    let (h1p, h2p) = (hue(b1, a1p), hue(b2, a2p));
    let dl = l2 - l1;
    let dc = c2p - c1p;
    let dh = if c1p * c2p == 0.0 {
        0.0
    } else if (h2p - h1p).abs() <= PI {
        h2p - h1p
    } else if h2p - h1p > PI {
        h2p - h1p - 2.0 * PI
    } else {
        h2p - h1p + 2.0 * PI
    };
    let dhh = 2.0 * (c1p * c2p).sqrt() * (dh / 2.0).sin();
    let lm = (l1 + l2) / 2.0;
    let cm = (c1p + c2p) / 2.0;
    let hm = if c1p * c2p == 0.0 {
        h1p + h2p
    } else if (h1p - h2p).abs() <= PI {
        (h1p + h2p) / 2.0
    } else if h1p + h2p < 2.0 * PI {
        (h1p + h2p + 2.0 * PI) / 2.0
    } else {
        (h1p + h2p - 2.0 * PI) / 2.0
    };
    let t = 1.0 - 0.17 * (hm - PI / 6.0).cos()
        + 0.24 * (2.0 * hm).cos()
        + 0.32 * (3.0 * hm + PI / 30.0).cos()
        - 0.20 * (4.0 * hm - 63.0 * PI / 180.0).cos();
    let dtheta = PI / 6.0 * (-((hm * 180.0 / PI - 275.0) / 25.0).powi(2)).exp();
    let rc = 2.0 * (cm.powi(7) / (cm.powi(7) + 25f64.powi(7))).sqrt();
    let sl = 1.0 + 0.015 * (lm - 50.0).powi(2) / (20.0 + (lm - 50.0).powi(2)).sqrt();
    let sc = 1.0 + 0.045 * cm;
    let sh = 1.0 + 0.015 * cm * t;
    let rt = -(2.0 * dtheta).sin() * rc;
    ((dl / sl).powi(2) + (dc / sc).powi(2) + (dhh / sh).powi(2) + rt * (dc / sc) * (dhh / sh))
        .sqrt()
}

#[test]
fn ciede2000_matches_the_published_test_data() {
    // Pairs 1, 7, 17 and 25 of Sharma, Wu and Dalal's table.
    for (c1, c2, want) in [
        ([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485], 2.0425),
        ([50.0, 0.0, 0.0], [50.0, -1.0, 2.0], 2.3669),
        ([50.0, 2.5, 0.0], [73.0, 25.0, -18.0], 27.1492),
        (
            [60.2574, -34.0099, 36.2677],
            [60.4626, -34.1751, 39.4387],
            1.2644,
        ),
    ] {
        let got = ciede2000(c1, c2);
        assert!((got - want).abs() < 1e-4, "{c1:?} {c2:?}: {got} != {want}");
    }
}

/// The photo's pixels as stored, read as sRGB: what imgfn gave before colour management.
fn as_stored(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

#[test]
fn embedded_rgb_profiles_match_littlecms() {
    crate::needs!(Pillow, IccProfiles);
    let dir = tempdir();
    for name in ["AdobeRGB1998", "ProPhotoRGB", "SwappedRedAndGreen"] {
        let icc = profile(&format!("{COLORD}/{name}.icc"));
        for ext in ["jpg", "png", "webp"] {
            let file = format!("{name}.{ext}");
            let bytes = embed(&dir, &file, icc.to_str().unwrap());
            let want = littlecms(&dir.join(&file));
            let got = imgfn(&bytes, &file, &format!("w={}", want.width()));
            let (mean, max) = delta_e(&got, &want);
            // The numbers as stored are far from the conversion: the test can tell.
            let (unconverted, _) = delta_e(&as_stored(&bytes), &want);
            eprintln!("{file}: mean ΔE00 {mean:.3} (max {max:.2}); unconverted {unconverted:.2}");
            assert!(mean <= 2.0, "{file}: mean ΔE00 {mean:.3} (max {max:.2})");
            assert!(
                unconverted > 2.0 && unconverted > 10.0 * mean,
                "{file}: unconverted only {unconverted:.2} away"
            );
            if ext == "jpg" {
                // JPEG to JPEG, which otherwise stays in YCbCr planes (pipeline::planar):
                // the profile still converts it.
                // (The JPEG's own noise is about 1 ΔE00, Adobe RGB's whole shift 2.4: the
                // output must be nearer the conversion than the numbers as stored.)
                let got = jpeg_to_jpeg(&bytes, &format!("w={}", want.width()));
                let (mean, max) = delta_e(&got, &want);
                let (from_stored, _) = delta_e(&got, &as_stored(&bytes));
                eprintln!(
                    "{file} as JPEG: mean ΔE00 {mean:.3} (max {max:.2}); {from_stored:.2} from the numbers as stored"
                );
                assert!(
                    mean <= 2.5,
                    "{file} as JPEG: mean ΔE00 {mean:.3} (max {max:.2})"
                );
                assert!(
                    from_stored > 1.5 * mean,
                    "{file} as JPEG: {from_stored:.2} from the numbers as stored, {mean:.3} from the conversion"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `jpeg` without its APP2 segments (its ICC profile).
fn without_icc(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if jpeg[i + 1] != 0xE2 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

#[test]
fn the_profile_applies_after_shrink_on_load() {
    crate::needs!(Pillow, IccProfiles);
    // At 1/8 (the DC-only decoder) and 1/4 (libjpeg's scaled IDCT), the profile still
    // applies: the rendition of the ProPhoto file is within ΔE00 2 of the same rendition of
    // LittleCMS' full-size conversion (stored as a plain sRGB JPEG).
    let dir = tempdir();
    let icc = profile(&format!("{COLORD}/ProPhotoRGB.icc"));
    let bytes = embed(&dir, "prophoto.jpg", icc.to_str().unwrap());
    let converted = littlecms(&dir.join("prophoto.jpg"));
    let mut plain = Vec::new();
    DynamicImage::ImageRgb8(converted)
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    for (query, shrink) in [("w=50", 8), ("w=100", 4)] {
        let info = imgfn::pipeline::probe(&bytes).unwrap();
        let t = imgfn::params::ImageRequest::parse(Some(query))
            .unwrap()
            .transform;
        let plan = imgfn::pipeline::prepare(
            &info,
            &t,
            imgfn::params::OutputFormat::Png,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(plan.shrink, shrink, "{query}");
        let got = imgfn(&bytes, "prophoto.jpg", query);
        let want = imgfn(&plain, "converted.jpg", query);
        let (mean, max) = delta_e(&got, &want);
        let (unconverted, _) = delta_e(&imgfn(&without_icc(&bytes), "bare.jpg", query), &want);
        eprintln!("{query}: mean ΔE00 {mean:.3} (max {max:.2}); unconverted {unconverted:.2}");
        assert!(mean <= 2.0, "{query}: mean ΔE00 {mean:.3} (max {max:.2})");
        assert!(
            unconverted > 2.0,
            "{query}: unconverted only {unconverted:.2} away"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cmyk_jpegs_with_and_without_a_profile() {
    crate::needs!(Pillow, IccProfiles);
    let dir = tempdir();
    // Ghostscript's SWOP press profile (187 KB: three APP2 chunks), Adobe-inverted samples.
    let swop = profile("/usr/share/color/icc/ghostscript/default_cmyk.icc");
    let with = embed(&dir, "swop.jpg", &format!("cmyk:{}", swop.display()));
    let chunks = with.windows(12).filter(|w| w == b"ICC_PROFILE\0").count();
    assert_eq!(chunks, 3, "the profile spans three APP2 chunks");
    let want = littlecms(&dir.join("swop.jpg"));
    let got = imgfn(&with, "swop.jpg", &format!("w={}", want.width()));
    let (mean, max) = delta_e(&got, &want);
    eprintln!("CMYK with profile: mean ΔE00 {mean:.3} (max {max:.2})");
    assert!(
        mean <= 2.0,
        "CMYK with profile: mean ΔE00 {mean:.3} (max {max:.2})"
    );

    // Without a profile: the naive formula, as Pillow's.
    let without = embed(&dir, "naive.jpg", "cmyk");
    let want_naive = littlecms(&dir.join("naive.jpg"));
    let got_naive = imgfn(&without, "naive.jpg", &format!("w={}", want.width()));
    let (mean, max) = delta_e(&got_naive, &want_naive);
    eprintln!("CMYK without profile: mean ΔE00 {mean:.3} (max {max:.2})");
    assert!(
        mean <= 2.0,
        "CMYK without profile: mean ΔE00 {mean:.3} (max {max:.2})"
    );
    // The SWOP samples through the naive formula are far from the profile's conversion.
    let bare = imgfn(
        &without_icc(&with),
        "bare.jpg",
        &format!("w={}", want.width()),
    );
    let (naive_vs_profile, _) = delta_e(&bare, &want);
    eprintln!("SWOP samples, naive formula: mean ΔE00 {naive_vs_profile:.2}");
    assert!(
        naive_vs_profile > 3.0,
        "naive vs SWOP only {naive_vs_profile:.2}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_grey_jpeg_with_a_grey_profile_stays_grey() {
    crate::needs!(Pillow, IccProfiles);
    let dir = tempdir();
    // icc-profiles-free's Gray.icc: a gamma 1.8-like curve, far enough from sRGB's to see.
    let icc = profile("/usr/share/color/icc/Gray.icc");
    let bytes = embed(&dir, "grey.jpg", &format!("gray:{}", icc.display()));
    let want = littlecms(&dir.join("grey.jpg"));
    let got = imgfn(&bytes, "grey.jpg", &format!("w={}", want.width()));
    let (mean, max) = delta_e(&got, &want);
    let (unconverted, _) = delta_e(&as_stored(&bytes), &want);
    eprintln!("grey: mean ΔE00 {mean:.3} (max {max:.2}); unconverted {unconverted:.2}");
    assert!(mean <= 2.0, "grey: mean ΔE00 {mean:.3} (max {max:.2})");
    assert!(
        unconverted > 1.0,
        "grey: unconverted only {unconverted:.2} away"
    );
    assert!(
        got.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        "not grey"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `jpeg` with `segments` (APP2 chunks, whole segments with their markers) after its SOI.
fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An APP2 `ICC_PROFILE` segment: chunk `seq` of `count`.
fn icc_chunk(seq: u8, count: u8, data: &[u8]) -> Vec<u8> {
    let len = 2 + 12 + 2 + data.len();
    let mut v = vec![0xFF, 0xE2, (len >> 8) as u8, len as u8];
    v.extend_from_slice(b"ICC_PROFILE\0");
    v.extend_from_slice(&[seq, count]);
    v.extend_from_slice(data);
    v
}

/// A profile header claiming `size` bytes and `tags` tags, and nothing else.
fn lying_header(size: u32, tags: u32) -> Vec<u8> {
    let mut p = vec![0u8; 132];
    p[..4].copy_from_slice(&size.to_be_bytes());
    p[8] = 4;
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    p[128..132].copy_from_slice(&tags.to_be_bytes());
    p
}

#[tokio::test]
async fn broken_and_absurd_icc_chunks_still_render() {
    let plain = std::fs::read(testdata().join("small.jpg")).unwrap();
    let full = 65_519 - 14;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("missing-chunk", vec![icc_chunk(1, 2, &[0; 100])]),
        (
            "duplicate-chunk",
            vec![icc_chunk(1, 2, &[0; 100]), icc_chunk(1, 2, &[0; 100])],
        ),
        (
            "counts-disagree",
            vec![icc_chunk(1, 2, &[0; 10]), icc_chunk(2, 3, &[0; 10])],
        ),
        ("count-255-one-present", vec![icc_chunk(7, 255, &[1; 1000])]),
        (
            "no-sequence",
            vec![[&[0xFF, 0xE2, 0, 14][..], b"ICC_PROFILE\0"].concat()],
        ),
        (
            "garbage-profile",
            vec![icc_chunk(1, 1, &b"garbage!".repeat(500))],
        ),
        (
            "claims-4-GB",
            vec![icc_chunk(1, 1, &lying_header(u32::MAX, 1_000_000))],
        ),
        (
            "over-the-cap",
            (1..=70).map(|i| icc_chunk(i, 70, &vec![i; full])).collect(),
        ),
    ];
    let root = tempdir();
    for (name, segments) in &cases {
        std::fs::write(
            root.join(format!("{name}.jpg")),
            with_segments(&plain, segments),
        )
        .unwrap();
    }
    std::fs::write(root.join("plain.jpg"), &plain).unwrap();
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&root)).await;
    let reference = app.get("/plain.jpg?w=200&fmt=png").await.image().to_rgb8();
    for (name, _) in &cases {
        let start = Instant::now();
        let reply = app.get(&format!("/{name}.jpg?w=200&fmt=png")).await;
        let took = start.elapsed();
        assert_eq!(reply.status, 200, "{name}");
        assert!(took < Duration::from_secs(2), "{name}: {took:?}");
        // The profile is ignored: the pixels are the plain file's.
        assert_eq!(reply.image().to_rgb8(), reference, "{name}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn outputs_carry_no_profile() {
    crate::needs!(Pillow, IccProfiles);
    // An Adobe RGB original: converted to sRGB, and no output format says otherwise (no
    // JPEG APP2 ICC_PROFILE, PNG iCCP/cICP, WebP ICCP, AVIF colr prof).
    let dir = tempdir();
    let icc = profile(&format!("{COLORD}/AdobeRGB1998.icc"));
    let bytes = embed(&dir, "adobe.png", icc.to_str().unwrap());
    let info = imgfn::pipeline::probe(&bytes).unwrap();
    let t = imgfn::params::ImageRequest::parse(Some("w=64"))
        .unwrap()
        .transform;
    use imgfn::params::OutputFormat as F;
    for format in [F::Jpeg, F::Png, F::Webp, F::Gif, F::Avif] {
        let out = imgfn::pipeline::render(
            &bytes,
            &info,
            &t,
            format,
            &Default::default(),
            &mut fast_image_resize::Resizer::new(),
        )
        .unwrap();
        for marker in [
            &b"ICC_PROFILE"[..],
            b"iCCP",
            b"cICP",
            b"ICCP",
            b"colrprof",
            b"colrrICC",
        ] {
            assert!(
                !out.bytes.windows(marker.len()).any(|w| w == marker),
                "{format:?} carries {}",
                String::from_utf8_lossy(marker)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn linear_light_keeps_fine_bright_detail() {
    // One-pixel white lines on black, every fourth column: reduced 4x, sRGB averaging gives
    // about 64, linear light about a quarter of white's light (sRGB 137).
    let img = RgbImage::from_fn(400, 100, |x, _| {
        if x % 4 == 0 {
            image::Rgb([255; 3])
        } else {
            image::Rgb([0; 3])
        }
    });
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mean = |img: &RgbImage| {
        img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / img.as_raw().len() as f64
    };
    let plain = imgfn(&png, "lines.png", "w=100");
    let linear = imgfn(&png, "lines.png", "w=100&lin=1");
    assert!((mean(&plain) - 64.0).abs() < 4.0, "lin=0: {}", mean(&plain));
    assert!(
        (mean(&linear) - 137.0).abs() < 6.0,
        "lin=1: {}",
        mean(&linear)
    );
}
