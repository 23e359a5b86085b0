//! The operations of the vocabulary against an independent reference: Pillow doing the same
//! operation (tests/reference.py), compared pixel by pixel within a tolerance.
//!
//! Each case renders with imgfn's pipeline twice: once with the operation, once without it
//! (same size), and runs Pillow's version of the operation on the second. Rotations and
//! flips move pixels and must match exactly; filters are compared by mean and largest
//! difference per channel.

use crate::support::{reference_py, render_png, tempdir, testdata};
use image::{DynamicImage, GenericImageView};

/// `file` rendered by imgfn's pipeline with `query`, as PNG, decoded.
fn imgfn(file: &str, query: &str) -> DynamicImage {
    let bytes = std::fs::read(testdata().join(file)).unwrap();
    imgfn_bytes(&bytes, file, query)
}

/// The source `bytes` (called `file` in messages) rendered as [`imgfn`] does.
fn imgfn_bytes(bytes: &[u8], file: &str, query: &str) -> DynamicImage {
    render_png(bytes, file, query)
}

/// Pillow's `op` (see tests/reference.py) applied to `input`.
fn pillow(op: &str, arg: &str, input: &DynamicImage) -> DynamicImage {
    let dir = tempdir();
    let (src, dst) = (dir.join("in.png"), dir.join("out.png"));
    input.save(&src).unwrap();
    reference_py(op, &src, &dst, arg);
    let img = image::open(&dst).expect("Pillow's PNG");
    let _ = std::fs::remove_dir_all(&dir);
    img
}

/// Mean and largest absolute difference per channel of what a viewer sees (composited over
/// white: the colour under full transparency means nothing), same size required.
fn difference(a: &DynamicImage, b: &DynamicImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions(), "sizes differ");
    let (a, b) = (over_white(a), over_white(b));
    let diffs: Vec<u8> = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| x.abs_diff(y))
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    (mean, diffs.iter().copied().max().unwrap_or(0))
}

fn over_white(img: &DynamicImage) -> image::RgbImage {
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let c = |v: u8| ((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([c(p[0]), c(p[1]), c(p[2])])
    })
}

/// What Pillow calls the transposition of the user's rotation then flip.
fn transposes(rot: u16, flip: Option<&str>) -> Vec<&'static str> {
    let mut ops = Vec::new();
    match rot {
        90 => ops.push("rotate-90"),
        180 => ops.push("rotate-180"),
        270 => ops.push("rotate-270"),
        _ => {}
    }
    match flip {
        Some("h") => ops.push("flip-h"),
        Some("v") => ops.push("flip-v"),
        Some("hv") => ops.extend(["flip-h", "flip-v"]),
        _ => {}
    }
    ops
}

#[test]
fn rotations_and_flips_match_pillow_on_every_exif_orientation() {
    crate::needs!(Pillow);
    // Stored in all of these orientations: the user's rotation composes with EXIF's.
    let files = [
        "small.jpg",
        "orient-3.jpg",
        "orient-5.jpg",
        "orient-6.jpg",
        "orient-8.jpg",
        "alpha-small.png",
    ];
    for file in files {
        for rot in [0u16, 90, 180, 270] {
            for flip in [None, Some("h"), Some("v"), Some("hv")] {
                if rot == 0 && flip.is_none() {
                    continue;
                }
                // `w` refers to the rotated image: a quarter turn makes it the height before.
                let side = if rot % 180 == 90 { "h" } else { "w" };
                let mut plain = imgfn(file, &format!("{side}=96"));
                let mut query = format!("w=96&rot={rot}");
                if let Some(f) = flip {
                    query.push_str(&format!("&flip={f}"));
                }
                let ours = imgfn(file, &query);
                for op in transposes(rot, flip) {
                    plain = pillow("transpose", op, &plain);
                }
                assert_eq!(ours.width(), 96, "{file}?{query}");
                assert_eq!(
                    difference(&ours, &plain),
                    (0.0, 0),
                    "{file}?{query}: not Pillow's transposition of the unrotated rendition"
                );
            }
        }
    }
}

#[test]
fn blur_matches_pillow() {
    crate::needs!(Pillow);
    for (file, sigma) in [
        ("medium.jpg", "0.5"),
        ("medium.jpg", "2"),
        ("medium.jpg", "3"),
        ("medium.jpg", "8"),
        ("medium.jpg", "40"),
        ("alpha-small.png", "1.5"),
    ] {
        let plain = imgfn(file, "w=240");
        let ours = imgfn(file, &format!("w=240&blur={sigma}"));
        let theirs = pillow("blur", sigma, &plain);
        let (mean, max) = difference(&ours, &theirs);
        eprintln!("blur {file} sigma {sigma}: mean {mean:.3}, max {max}");
        assert!(
            mean <= 0.75 && max <= 6,
            "blur={sigma} on {file}: mean difference {mean:.3}, largest {max} from Pillow's"
        );
        // And it is a blur: far from the unblurred image.
        let (moved, _) = difference(&ours, &plain);
        assert!(
            moved > 0.5,
            "blur={sigma} on {file} barely changed anything ({moved:.3})"
        );
    }
}

#[test]
fn sharpen_matches_pillow() {
    crate::needs!(Pillow);
    for (file, sigma) in [
        ("medium.jpg", "0.5"),
        ("medium.jpg", "1"),
        ("medium.jpg", "3"),
    ] {
        let plain = imgfn(file, "w=240");
        let ours = imgfn(file, &format!("w=240&sharpen={sigma}"));
        let theirs = pillow("sharpen", sigma, &plain);
        let (mean, max) = difference(&ours, &theirs);
        eprintln!("sharpen {file} sigma {sigma}: mean {mean:.3}, max {max}");
        assert!(
            mean <= 0.75 && max <= 6,
            "sharpen={sigma} on {file}: mean difference {mean:.3}, largest {max} from Pillow's"
        );
        let (moved, _) = difference(&ours, &plain);
        assert!(
            moved > 0.5,
            "sharpen={sigma} on {file} barely changed anything ({moved:.3})"
        );
    }
}

#[test]
fn crop_matches_pillow_in_displayed_pixels() {
    crate::needs!(Pillow);
    // orient-6.jpg is stored turned: the crop is in the pixels as displayed (after EXIF).
    for file in ["small.jpg", "orient-6.jpg"] {
        let full = imgfn(file, "fmt=png");
        let (fw, fh) = full.dimensions();
        let fractions = format!("{},{},{},{}", fw / 10, fh / 5, fw / 2, fh / 2);
        for region in ["3,5,40,30", "0,0,17,23", fractions.as_str()] {
            let query = format!("crop={region}&fmt=png");
            let ours = imgfn(file, &query);
            let theirs = pillow("crop", region, &full);
            assert_eq!(
                difference(&ours, &theirs),
                (0.0, 0),
                "{file}?{query}: not Pillow's crop of the full rendition"
            );
        }
        // Partly outside: clipped to the image.
        let query = format!("crop={},{},500,500", fw - 10, fh - 7);
        assert_eq!(imgfn(file, &query).dimensions(), (10, 7), "{file}?{query}");
        // Fractions of the displayed size, then the resize applies to the cropped region.
        let ours = imgfn(file, "crop=0.5,0.0,0.5,1.0&w=20");
        let half = f64::from(fw - fw.div_ceil(2));
        let expected_h = (f64::from(fh) * 20.0 / half).round() as u32;
        assert_eq!(ours.dimensions(), (20, expected_h), "{file}");
        // `w`/`h` refer to the crop as turned by `rot`.
        let ours = imgfn(file, "crop=0,0,40,30&rot=90&w=15");
        assert_eq!(ours.dimensions(), (15, 20), "{file}");
    }
}

/// `photo` (RGBA) on a `border`-coloured frame (left, top, right, bottom widths), encoded as
/// PNG, or as JPEG (quality 92, alpha dropped).
fn framed(photo: &image::RgbaImage, border: [u8; 4], frame: [u32; 4], jpeg: bool) -> Vec<u8> {
    let [l, t, r, b] = frame;
    let (w, h) = (photo.width() + l + r, photo.height() + t + b);
    let mut canvas = image::RgbaImage::from_pixel(w, h, image::Rgba(border));
    image::imageops::replace(&mut canvas, photo, i64::from(l), i64::from(t));
    let mut out = std::io::Cursor::new(Vec::new());
    if jpeg {
        let rgb = DynamicImage::ImageRgba8(canvas).to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
            .encode_image(&rgb)
            .unwrap();
    } else {
        DynamicImage::ImageRgba8(canvas)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
    }
    out.into_inner()
}

#[test]
fn trim_matches_pillow() {
    crate::needs!(Pillow);
    let photo = image::open(testdata().join("small.jpg"))
        .unwrap()
        .to_rgba8();
    let (pw, ph) = photo.dimensions();
    let white = [255, 255, 255, 255];
    let clear = [0, 0, 0, 0];
    // (what, the source, the trim, the size Pillow must also find)
    type Case = (&'static str, Vec<u8>, &'static str, Option<(u32, u32)>);
    let cases: Vec<Case> = vec![
        (
            "white frame",
            framed(&photo, white, [50, 30, 80, 20], false),
            "10",
            Some((pw, ph)),
        ),
        (
            "white frame, colour given",
            framed(&photo, white, [7, 0, 0, 3], false),
            "0,ffffff",
            Some((pw, ph)),
        ),
        (
            "blue top strip",
            framed(&photo, [20, 40, 200, 255], [0, 60, 0, 0], false),
            "5",
            Some((pw, ph)),
        ),
        (
            "transparent frame",
            framed(&photo, clear, [11, 12, 13, 14], false),
            "0",
            Some((pw, ph)),
        ),
        (
            "white frame as JPEG",
            framed(&photo, white, [40, 24, 16, 32], true),
            "60",
            None,
        ),
        (
            "no border at all",
            framed(&photo, white, [0, 0, 0, 0], false),
            "10",
            Some((pw, ph)),
        ),
    ];
    let alpha = std::fs::read(testdata().join("alpha-small.png")).unwrap();
    let cases = cases.into_iter().chain([
        // A feathered ellipse on transparency: the threshold decides how much feather stays.
        ("feathered alpha", alpha.clone(), "0", None),
        ("feathered alpha", alpha.clone(), "100", None),
        ("feathered alpha, colour given", alpha, "0,00000000", None),
    ]);
    for (what, source, spec, size) in cases {
        // Pillow trims imgfn's own decode (lossless PNG), so only the trim is compared.
        let full = imgfn_bytes(&source, what, "fmt=png");
        let ours = imgfn_bytes(&source, what, &format!("trim={spec}&fmt=png"));
        let theirs = pillow("trim", spec, &full);
        eprintln!(
            "trim={spec} {what}: {:?} of {:?}",
            ours.dimensions(),
            full.dimensions()
        );
        assert_eq!(
            ours.dimensions(),
            theirs.dimensions(),
            "trim={spec} on {what}"
        );
        if let Some(size) = size {
            assert_eq!(ours.dimensions(), size, "trim={spec} on {what}");
        }
        assert_eq!(
            difference(&ours, &theirs),
            (0.0, 0),
            "trim={spec} on {what}: not Pillow's trim of the full rendition"
        );
    }
    // The JPEG frame is gone too (its ringing stays under the threshold).
    let jpeg = framed(&photo, white, [40, 24, 16, 32], true);
    let trimmed = imgfn_bytes(&jpeg, "JPEG", "trim=60&fmt=png").dimensions();
    assert!(
        trimmed.0.abs_diff(pw) <= 2 && trimmed.1.abs_diff(ph) <= 2,
        "{trimmed:?} for a {pw}x{ph} photo"
    );
    // The resize applies to the trimmed image.
    let framed_png = framed(&photo, white, [50, 30, 80, 20], false);
    let expected_h = (f64::from(ph) * 200.0 / f64::from(pw)).round() as u32;
    assert_eq!(
        imgfn_bytes(&framed_png, "white frame", "trim=10&w=200").dimensions(),
        (200, expected_h)
    );
}
