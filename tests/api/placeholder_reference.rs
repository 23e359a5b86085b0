//! Placeholders against independent implementations (tests/reference.py): the PyPI
//! `thumbhash` port of ThumbHash's reference encoder hashes the very image imgfn hashes (its
//! downscale as displayed), and the two hashes must agree term by term within one quantisation
//! step and decode to images Pillow finds alike; the dominant colour is Pillow computing the
//! same histogram definition over the same decoded pixels.

use crate::support::{reference_py, tempdir, testdata};
use image::RgbaImage;
use imgfn::pipeline::{self, decode, Limits, Pixels};
use imgfn::placeholder;
use std::path::Path;

/// `tests/reference.py OP IN - ARG`: what it prints.
fn reference(op: &str, input: &Path, arg: &str) -> String {
    let out = reference_py(op, input, Path::new("-"), arg);
    String::from_utf8(out).unwrap().trim().to_string()
}

fn save(px: &Pixels, path: &Path) {
    let img = if px.alpha {
        image::DynamicImage::ImageRgba8(
            RgbaImage::from_raw(px.width, px.height, px.buf.clone()).unwrap(),
        )
    } else {
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(px.width, px.height, px.buf.clone()).unwrap(),
        )
    };
    img.save(path).unwrap();
}

/// ThumbHash's own decoder (the reference's Rust port), saved as a PNG.
fn save_decoded(hash: &[u8], path: &Path) {
    let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(hash).expect("a valid ThumbHash");
    RgbaImage::from_raw(w as u32, h as u32, rgba)
        .unwrap()
        .save(path)
        .unwrap();
}

/// The hash's fields, each as its quantised integer: header (l_dc, p_dc, q_dc, l_scale,
/// has_alpha, l_count, p_scale, q_scale, is_landscape), then every 4-bit AC term.
fn fields(hash: &[u8]) -> Vec<u32> {
    let h24 = u32::from(hash[0]) | u32::from(hash[1]) << 8 | u32::from(hash[2]) << 16;
    let h16 = u32::from(hash[3]) | u32::from(hash[4]) << 8;
    let mut f = vec![
        h24 & 63,
        (h24 >> 6) & 63,
        (h24 >> 12) & 63,
        (h24 >> 18) & 31,
        h24 >> 23,
        h16 & 7,
        (h16 >> 3) & 63,
        (h16 >> 9) & 63,
        h16 >> 15,
    ];
    for &b in &hash[5..] {
        f.extend([u32::from(b & 15), u32::from(b >> 4)]);
    }
    f
}

fn bytes(file: &str) -> Vec<u8> {
    std::fs::read(testdata().join(file)).unwrap()
}

/// imgfn's hash and the PyPI port's of the same RGBA image: the same length, every field
/// within one quantisation step, decoded within `mean`/`max` of each other (Pillow's
/// difference). Returns how many fields differ.
fn agree(what: &str, thumb: &Pixels, ours: &[u8], mean: f64, max: u64) -> usize {
    let dir = tempdir();
    let src = dir.join("thumb.png");
    save(thumb, &src);
    let b64 = reference("thumbhash", &src, "");
    let theirs = base64::Engine::decode(&base64::engine::general_purpose::STANDARD_NO_PAD, &b64)
        .unwrap_or_else(|e| panic!("{what}: the reference printed {b64:?} ({e})"));
    assert_eq!(ours.len(), theirs.len(), "{what}: hash lengths");
    let (a, b) = (fields(ours), fields(&theirs));
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    if differ > 0 {
        eprintln!("{what}:\n ours {a:?}\n ref  {b:?}");
    }
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x.abs_diff(*y) <= 1,
            "{what}: field {i} is {x} here, {y} in the reference\n ours {a:?}\n ref  {b:?}"
        );
    }
    // The header's flags and counts are exact: they fix the hash's layout.
    assert_eq!(a[4..6], b[4..6], "{what}: alpha flag and luminance count");
    assert_eq!(a[8], b[8], "{what}: landscape flag");
    let (ours_png, theirs_png) = (dir.join("ours.png"), dir.join("theirs.png"));
    save_decoded(ours, &ours_png);
    save_decoded(&theirs, &theirs_png);
    let diff: serde_json::Value = serde_json::from_str(&reference(
        "compare",
        &ours_png,
        theirs_png.to_str().unwrap(),
    ))
    .unwrap();
    let (m, x) = (
        diff["mean"].as_f64().unwrap(),
        diff["max"].as_u64().unwrap(),
    );
    eprintln!(
        "{what}: {differ} of {} fields differ; decoded: mean {m:.3}, max {x}",
        a.len()
    );
    assert!(
        m <= mean && x <= max,
        "{what}: decoded hashes differ by a mean of {m:.3}, at most {x}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    differ
}

#[test]
fn the_hash_of_a_small_rgba_image_is_the_reference_s() {
    crate::needs!(Pillow);
    // Smooth opaque images the encoders see identically: gradients and waves in each aspect.
    for (w, h) in [(37u32, 23u32), (23, 37), (100, 100), (64, 9)] {
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                buf.extend_from_slice(&[
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    (128.0 + 100.0 * (x as f64 / 7.0).sin() * (y as f64 / 5.0).cos()) as u8,
                    255,
                ]);
            }
        }
        let thumb = Pixels {
            buf,
            width: w,
            height: h,
            alpha: true,
        };
        let ours = placeholder::encode(&thumb);
        // Where an AC term is 7.5 to a float's last bit (a term that is zero, or nearly: the
        // encoder stores 0.5 + 0.5 * term / scale in 4 bits), f32 here and f64 there round it
        // to either side: one such step, scaled by a large chroma scale, moves the decoded
        // image by a few levels.
        agree(&format!("gradient {w}x{h}"), &thumb, &ours, 4.0, 12);
    }
}

#[test]
fn the_hash_of_each_photo_agrees_with_the_reference_on_imgfn_s_downscale() {
    crate::needs!(Pillow);
    let limits = Limits::default();
    let mut total = 0;
    for file in [
        "small.jpg",
        "medium.jpg",
        "large.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "orient-6.jpg",
        "deep.png",
        "palette.png",
        "still.webp",
        "animated.gif",
    ] {
        let bytes = bytes(file);
        let info = pipeline::probe(&bytes).unwrap();
        let sample = placeholder::sample(&bytes, &info, &limits).unwrap();
        let ours = placeholder::placeholder(&bytes, &info, &limits).unwrap();
        assert_eq!(ours.thumbhash, placeholder::encode(&sample.thumb), "{file}");
        total += agree(file, &sample.thumb, &ours.thumbhash, 1.0, 12);
    }
    // f32 here and f64 there, and Python's half-to-even rounding, move a term now and then;
    // most terms are equal.
    assert!(total <= 20, "{total} fields differ over the photos");
}

#[test]
fn the_dominant_colour_is_pillow_s_histogram() {
    crate::needs!(Pillow);
    let limits = Limits::default();
    for file in [
        "small.jpg",
        "large.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "palette.png",
        "deep.png",
        "alpha.png",
        "alpha-small.png",
        "still.webp",
        "animated.gif",
    ] {
        let bytes = bytes(file);
        let info = pipeline::probe(&bytes).unwrap();
        // The pixels the histogram runs over: the placeholder's own decode.
        let decoded = decode::decode(&bytes, &info, placeholder::shrink(&info)).unwrap();
        let dir = tempdir();
        let src = dir.join("decoded.png");
        save(&decoded, &src);
        let theirs = reference("dominant", &src, "");
        let ours = placeholder::placeholder(&bytes, &info, &limits).unwrap();
        eprintln!("{file}: dominant {} (Pillow {theirs})", ours.dominant_hex());
        assert_eq!(ours.dominant_hex(), theirs, "{file}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
