//! `gravity=auto`'s saliency window against libvips' "attention" smartcrop on real photos.
//!
//! Each photo is decoded by imgfn's own decoder (large.jpg at 1/8 scale, as a render of a
//! thumbnail decodes it); one more is alpha-small.png with a checkerboard hidden under its
//! transparent pixels (transparent is not interesting, however busy the colour under it). For several cover crops (tall and square windows that move
//! across, wide windows that move down) the window `imgfn::pipeline::attention::attention`
//! picks is compared with the one libvips 8.18 picks on the very same pixels (pyvips,
//! `tests/reference.py attention`). The error of a case is
//! the distance between the two windows' offsets as a fraction of the range the window can
//! move in (0: the same window, 1: opposite ends); the centre crop, measured the same way,
//! is the baseline that shows the test can tell a saliency crop from no saliency at all.

use crate::support::{reference_py, render_png, tempdir, testdata};
use imgfn::params::{ImageRequest, OutputFormat};
use imgfn::pipeline::attention::attention;
use imgfn::pipeline::{self, Limits, Pixels, Rect};
use std::fmt::Write as _;
use std::io::Write as _;

/// The photos: (file, JPEG shrink-on-load).
const PHOTOS: [(&str, u32); 11] = [
    ("large.jpg", 8),
    ("medium.jpg", 1),
    ("small.jpg", 1),
    ("still.webp", 1),
    ("gray.jpg", 1),
    ("palette.png", 1),
    ("alpha-small.png", 1),
    ("attention/astronaut.jpg", 1),
    ("attention/chelsea.jpg", 1),
    ("attention/coffee.jpg", 1),
    ("attention/rocket.jpg", 1),
];

/// Output aspect ratios of the cover crops (width:height).
const ASPECTS: [(u32, u32); 5] = [(1, 1), (2, 3), (9, 16), (3, 1), (16, 9)];

/// Largest error of one case, as a fraction of the free range.
const MAX_CASE_ERROR: f64 = 0.3;
/// Largest mean error over all cases.
const MAX_MEAN_ERROR: f64 = 0.08;
/// A case is "off-centre" when libvips moves the window this far (fraction of the free
/// range) from the centre; over those cases ours must beat the centre crop clearly.
const OFF_CENTRE: f64 = 0.25;

fn decode(file: &str, shrink: u32) -> Pixels {
    let bytes = std::fs::read(testdata().join(file)).unwrap();
    let info = pipeline::probe(&bytes).expect("probe");
    pipeline::decode::decode(&bytes, &info, shrink).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The top-left of the window libvips' attention smartcrop picks for each size, on `px`.
fn libvips(px: &Pixels, sizes: &[(u32, u32)]) -> Vec<(f64, f64)> {
    let dir = tempdir();
    let src = dir.join("in.png");
    let colour = if px.alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::save_buffer(&src, &px.buf, px.width, px.height, colour).unwrap();
    let arg = sizes
        .iter()
        .map(|(w, h)| format!("{w},{h}"))
        .collect::<Vec<_>>()
        .join(";");
    let out = reference_py("attention", &src, std::path::Path::new("-"), &arg);
    let _ = std::fs::remove_dir_all(&dir);
    let windows: Vec<serde_json::Value> = serde_json::from_slice(&out).expect("JSON");
    windows
        .iter()
        .map(|w| (w["left"].as_f64().unwrap(), w["top"].as_f64().unwrap()))
        .collect()
}

/// The cover crop of aspect `a:b` on a `w` x `h` image, in whole pixels (as libvips takes
/// it); `None` when it leaves the window less than 8 pixels to move in.
fn cover((w, h): (u32, u32), (a, b): (u32, u32)) -> Option<(u32, u32)> {
    let size = if u64::from(w) * u64::from(b) > u64::from(h) * u64::from(a) {
        (
            (f64::from(h) * f64::from(a) / f64::from(b)).round() as u32,
            h,
        )
    } else {
        (
            w,
            (f64::from(w) * f64::from(b) / f64::from(a)).round() as u32,
        )
    };
    ((w - size.0).max(h - size.1) >= 8).then_some(size)
}

/// One crop compared.
struct Case {
    name: String,
    /// Error of ours and of the centre crop against libvips (fraction of the free range);
    /// the second is also how far libvips moved the window from the centre.
    ours: f64,
    centre: f64,
}

/// The distance between two offsets over the free range (the window moves in one axis).
fn error(a: (f64, f64), b: (f64, f64), free: (f64, f64)) -> f64 {
    let fx = if free.0 > 0.0 {
        (a.0 - b.0).abs() / free.0
    } else {
        0.0
    };
    let fy = if free.1 > 0.0 {
        (a.1 - b.1).abs() / free.1
    } else {
        0.0
    };
    fx.max(fy)
}

/// `px` with a high-contrast checkerboard in its fully transparent pixels: invisible, so
/// it must not attract the window (libvips premultiplies alpha before it looks).
fn checker_under_transparency(mut px: Pixels) -> Pixels {
    let w = px.width as usize;
    for (i, p) in px.buf.chunks_exact_mut(4).enumerate() {
        if p[3] == 0 {
            let on = ((i % w) / 16 + (i / w) / 16) % 2 == 0;
            let v = if on { [255, 230, 0] } else { [0, 0, 255] };
            p[..3].copy_from_slice(&v);
        }
    }
    px
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let hidden = "alpha-small.png (checker under transparency)";
    let photos = PHOTOS
        .iter()
        .map(|&(file, shrink)| (file, decode(file, shrink)));
    let extra = std::iter::once((
        hidden,
        checker_under_transparency(decode("alpha-small.png", 1)),
    ));
    for (file, px) in photos.chain(extra) {
        let (w, h) = (px.width, px.height);
        let sizes: Vec<(u32, u32)> = ASPECTS
            .iter()
            .filter_map(|&aspect| cover((w, h), aspect))
            .collect();
        let theirs = libvips(&px, &sizes);
        let area = Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(w),
            h: f64::from(h),
        };
        for (&(ww, wh), &vips) in sizes.iter().zip(&theirs) {
            let window = (f64::from(ww), f64::from(wh));
            let free = (area.w - window.0, area.h - window.1);
            let ours = attention(&px, area, window);
            let centre = (free.0 / 2.0, free.1 / 2.0);
            cases.push(Case {
                name: format!(
                    "{file} {w}x{h} -> {ww}x{wh}: libvips ({}, {}), ours ({:.0}, {:.0})",
                    vips.0, vips.1, ours.0, ours.1
                ),
                ours: error(ours, vips, free),
                centre: error(centre, vips, free),
            });
        }
    }
    cases
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

#[test]
fn attention_picks_the_window_libvips_picks_on_real_photos() {
    crate::needs!(Pyvips);
    let cases = cases();
    let mut table = String::new();
    for c in &cases {
        let _ = writeln!(
            table,
            "  ours {:.2}  centre {:.2}  {}",
            c.ours, c.centre, c.name
        );
    }
    let all = mean(cases.iter().map(|c| c.ours));
    let all_centre = mean(cases.iter().map(|c| c.centre));
    let off: Vec<&Case> = cases.iter().filter(|c| c.centre >= OFF_CENTRE).collect();
    let off_ours = mean(off.iter().map(|c| c.ours));
    let off_centre = mean(off.iter().map(|c| c.centre));
    let _ = writeln!(
        table,
        "  mean error over {} cases: ours {all:.3}, centre {all_centre:.3}; over the {} \
         off-centre ones: ours {off_ours:.3}, centre {off_centre:.3}",
        cases.len(),
        off.len()
    );
    // Shown in a passing run too (libtest captures only the print macros).
    let _ = std::io::stderr().write_all(format!("attention vs libvips:\n{table}").as_bytes());
    let worst = cases.iter().map(|c| c.ours).fold(0.0, f64::max);
    // (The table above is on stderr whether these pass or fail.)
    assert!(
        worst <= MAX_CASE_ERROR,
        "a case is off by {worst:.2} of its free range (at most {MAX_CASE_ERROR})"
    );
    assert!(
        all <= MAX_MEAN_ERROR,
        "mean error {all:.3} (at most {MAX_MEAN_ERROR})"
    );
    assert!(
        off.len() >= 10 && off_ours <= off_centre / 3.0,
        "on the {} off-centre cases ours ({off_ours:.3}) must beat the centre crop \
         ({off_centre:.3}) threefold",
        off.len()
    );
}

/// `file` rendered by imgfn's pipeline with `query`, as PNG, decoded.
fn render(file: &str, query: &str) -> image::RgbImage {
    let bytes = std::fs::read(testdata().join(file)).unwrap();
    render_png(&bytes, file, query).to_rgb8()
}

/// Mean absolute difference between `part` and the same-sized window of `whole` at `at`,
/// over every other pixel.
fn difference(whole: &image::RgbImage, part: &image::RgbImage, at: (u32, u32)) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for y in (0..part.height()).step_by(2) {
        for x in (0..part.width()).step_by(2) {
            let a = whole.get_pixel(x + at.0, y + at.1).0;
            let b = part.get_pixel(x, y).0;
            sum += (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n.max(1) as f64
}

/// Through the whole render (plan, decode at the plan's scale, `Plan::see`, crop, resize),
/// `w=..&h=..&fit=cover&gravity=auto` outputs the window `attention` picks on the decoded
/// pixels: the output is found in the whole image rendered at the same scale, at the offset
/// attention gives (within the rounding of the focal point and of the scale), and away from
/// the centred window.
#[test]
fn gravity_auto_renders_the_window_attention_picks() {
    // (file, output w, h): tall windows of wide photos, wide ones that move down; at the
    // original's scale and shrunk on load (large.jpg at 1/8, medium.jpg at 1/2).
    let cases = [
        ("attention/rocket.jpg", 240, 427),
        ("attention/astronaut.jpg", 512, 171),
        ("attention/coffee.jpg", 600, 200),
        ("large.jpg", 239, 424),
        ("medium.jpg", 360, 640),
    ];
    let mut log = String::new();
    for (file, w, h) in cases {
        let bytes = std::fs::read(testdata().join(file)).unwrap();
        let info = pipeline::probe(&bytes).expect("probe");
        let query = format!("w={w}&h={h}&fit=cover&gravity=auto");
        let transform = ImageRequest::parse(Some(&query)).unwrap().transform;
        let plan = pipeline::prepare(&info, &transform, OutputFormat::Png, &Limits::default())
            .expect("plan");
        let px = pipeline::decode::decode(&bytes, &info, plan.shrink).expect("decode");
        let (sw, sh) = info.display_size();
        // The output's scale (cover: the axis that fits), and the whole image at it.
        let scale = (f64::from(w) / f64::from(sw)).max(f64::from(h) / f64::from(sh));
        let whole = (
            (f64::from(sw) * scale).round() as u32,
            (f64::from(sh) * scale).round() as u32,
        );
        // attention on the decoded pixels, brought to the output's scale.
        let decoded = f64::from(px.width) / f64::from(sw);
        let area = Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(px.width),
            h: f64::from(px.height),
        };
        let window = (
            f64::from(w) / scale * decoded,
            f64::from(h) / scale * decoded,
        );
        let (ax, ay) = attention(&px, area, window);
        let expected = (ax / decoded * scale, ay / decoded * scale);
        let out = render(file, &format!("{query}&fmt=png"));
        assert_eq!(out.dimensions(), (w, h), "{file}?{query}");
        let full = render(
            file,
            &format!("w={}&h={}&fit=fill&fmt=png", whole.0, whole.1),
        );
        // The offset of the output in the whole image (it moves along one axis).
        let free = (full.width() - w, full.height() - h);
        let offsets: Vec<(u32, u32)> = if free.0 > 0 {
            (0..=free.0).map(|x| (x, 0)).collect()
        } else {
            (0..=free.1).map(|y| (0, y)).collect()
        };
        let (found, diff) = offsets
            .iter()
            .map(|&at| (at, difference(&full, &out, at)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let centre = (free.0 / 2, free.1 / 2);
        let at_centre = difference(&full, &out, centre);
        let _ = writeln!(
            log,
            "  {file}?{query}: attention ({:.1}, {:.1}), output found at {found:?} (mean \
             difference {diff:.2}), centre {centre:?} (difference {at_centre:.2})",
            expected.0, expected.1
        );
        let off = (f64::from(found.0) - expected.0)
            .abs()
            .max((f64::from(found.1) - expected.1).abs());
        assert!(
            off <= 2.0 && diff <= 4.0 && at_centre >= 4.0 * diff.max(1.0),
            "{file}?{query}: the output is not the window attention picks:\n{log}"
        );
    }
    let _ = std::io::stderr().write_all(format!("gravity=auto renders:\n{log}").as_bytes());
}
