//! JPEG to JPEG in YCbCr planes, the way a JPEG already holds its pixels.
//!
//! The RGB path of a JPEG resize upsamples the chroma to full size, converts YCbCr to RGB,
//! resizes three full-size channels, then converts back and downsamples the chroma for the
//! encoder. When the plan is a resize (or crop) and nothing else, this path does none of
//! that: libjpeg hands over its planes as stored (`raw_data_out`), each plane is resized
//! straight to the output's plane (luma to the output size, chroma to half of it, 4:2:0),
//! and libjpeg encodes them as they are (`raw_data_in`). Half the resize work for a 4:2:0
//! photo and no colour conversion; the chroma is resampled once with Lanczos3 instead of
//! being upsampled, filtered and box-downsampled.
//!
//! Each plane keeps the JPEG's sample positions: chroma sample `i` is centred on luma
//! position `(i + 1/2) * hmax / h`, as libjpeg's own upsampling assumes, so a region of the
//! luma grid is the same region of every plane scaled by its sampling factor.
//!
//! It pays between 2x and 3x (below, three single-channel resizes cost more than the
//! conversions saved; from 3x the decode is DCT-scaled). Anything else (a colour profile that
//! changes colours, grey or CMYK, EXIF orientation, effects, padding, a DCT-scaled decode, a
//! reduction under 2x, another output format) takes the RGB path.

use super::decode::{self, Plane};
use super::geometry::Rect;
use super::plan::Plan;
use super::steps::Resize;
use super::timings::{self, Timings};
use super::{encode, resize, Orientation, SourceFormat, SourceInfo};
use crate::error::Result;
use crate::params::OutputFormat;
use fast_image_resize::PixelType;

/// Whether `plan` only resizes (or crops) a JPEG into a JPEG, at full decode scale.
pub fn applies(info: &SourceInfo, plan: &Plan) -> bool {
    info.format == SourceFormat::Jpeg
        && plan.format == OutputFormat::Jpeg
        && plan.frames.is_none()
        && plan.look.is_none()
        && plan.shrink == 1
        && !plan.linear
        && plan.effects.is_empty()
        && plan.orientation == Orientation::identity()
        && plan.canvas == plan.size
        && plan.flatten.is_none()
        && plan.size.0 > 0
        && plan.size.1 > 0
        // A reduction of at least 2x on both axes (under 3x, the decode stays at full scale):
        // below it three single-channel resizes (luma, Cb, Cr: 1.5 images of samples) cost
        // more than the colour conversions they save (medium.jpg 1.6x: 18.0 against 16.5 ms;
        // the G3 photo 2.14x: 22.3 against 23.6 ms), and at 1:1 the chroma would only be
        // resampled at a crop's half-sample offset, softer than the RGB path's.
        && plan.region.w >= 2.0 * f64::from(plan.size.0)
        && plan.region.h >= 2.0 * f64::from(plan.size.1)
}

/// Run `plan` (for which [`applies`] holds) on the source's YCbCr planes: the encoded JPEG,
/// or `None` when the source is not a JPEG the planes can carry (the RGB path then runs).
pub fn run(
    bytes: &[u8],
    info: &SourceInfo,
    plan: &Plan,
    resizer: &mut fast_image_resize::Resizer,
    timings: &mut Timings,
) -> Result<Option<Vec<u8>>> {
    let Some(src) = timings.time(timings::DECODE, || decode::decode_jpeg_planes(bytes, info))?
    else {
        return Ok(None);
    };
    let (ow, oh) = plan.size;
    let r = plan.region;
    let resized = timings.time(Resize::NAME, || -> Result<[Vec<u8>; 3]> {
        // Luma to the output size; Cb and Cr to half of it, rounded up (4:2:0): an odd-sized
        // output's last chroma sample reaches half a luma pixel past its edge, so the chroma
        // crop grows by as much (`k`).
        let y = plane(resizer, src.y, r, (1.0, 1.0), (ow, oh), (1.0, 1.0))?;
        let (cw, ch) = (ow.div_ceil(2), oh.div_ceil(2));
        let per_luma = (
            f64::from(src.chroma.0) / f64::from(src.luma.0),
            f64::from(src.chroma.1) / f64::from(src.luma.1),
        );
        let k = (
            f64::from(cw) / (f64::from(ow) / 2.0),
            f64::from(ch) / (f64::from(oh) / 2.0),
        );
        let cb = plane(resizer, src.cb, r, per_luma, (cw, ch), k)?;
        let cr = plane(resizer, src.cr, r, per_luma, (cw, ch), k)?;
        Ok([y, cb, cr])
    })?;
    let [y, cb, cr] = &resized;
    let bytes = timings.time(timings::ENCODE, || {
        encode::encode_jpeg_planes(y, cb, cr, plan.size, plan.quality)
    })?;
    Ok(Some(bytes))
}

/// `region` (in luma pixels) of `p`, whose samples are `per_luma` of a luma pixel's, resized
/// to `size`; the crop grown by `k` (at most to the plane's edge: a chroma plane's repeats
/// its last samples, `decode::CHROMA_EDGE`).
fn plane(
    resizer: &mut fast_image_resize::Resizer,
    p: Plane,
    region: Rect,
    per_luma: (f64, f64),
    size: (u32, u32),
    k: (f64, f64),
) -> Result<Vec<u8>> {
    let (x, y) = (region.x * per_luma.0, region.y * per_luma.1);
    let crop = Rect {
        x,
        y,
        w: (region.w * per_luma.0 * k.0).min(f64::from(p.width) - x),
        h: (region.h * per_luma.1 * k.1).min(f64::from(p.height) - y),
    };
    resize::resize_bytes(
        resizer,
        p.buf,
        (p.width, p.height),
        PixelType::U8,
        crop,
        size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ImageRequest;
    use crate::pipeline::{prepare, probe, render, Settings};
    use std::path::Path;

    fn testdata(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(name),
        )
        .unwrap()
    }

    fn rgb(jpeg: &[u8]) -> image::RgbImage {
        image::load_from_memory(jpeg).unwrap().to_rgb8()
    }

    fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let mse = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.as_raw().len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
    }

    /// The source's header and the plan of `query` into JPEG, as a render makes them.
    fn plan_of(bytes: &[u8], query: &str) -> (crate::pipeline::SourceInfo, Plan) {
        let request = ImageRequest::parse(Some(query)).unwrap();
        let format = match request.output {
            crate::params::Output::Exact(f) => f,
            _ => OutputFormat::Jpeg,
        };
        let info = probe(bytes).unwrap();
        let plan = prepare(&info, &request.transform, format, &Default::default()).unwrap();
        (info, plan)
    }

    /// Whether the planes path takes this render (and does not hand it back).
    fn planar_taken(bytes: &[u8], query: &str) -> bool {
        let (info, plan) = plan_of(bytes, query);
        let mut resizer = fast_image_resize::Resizer::new();
        applies(&info, &plan)
            && run(bytes, &info, &plan, &mut resizer, &mut Timings::default())
                .unwrap()
                .is_some()
    }

    /// The render of `query` into JPEG through the planes and through RGB pixels, with the
    /// reference both are judged by: the source decoded whole by libjpeg (through `image`),
    /// cropped and resized with the same Lanczos3, never encoded.
    fn both_paths(bytes: &[u8], query: &str) -> [image::RgbImage; 3] {
        let request = ImageRequest::parse(Some(&format!("{query}&fmt=jpeg"))).unwrap();
        let info = probe(bytes).unwrap();
        let mut resizer = fast_image_resize::Resizer::new();
        let mut go = |force_rgb| {
            let settings = Settings {
                force_rgb,
                ..Settings::default()
            };
            let out = render(
                bytes,
                &info,
                &request.transform,
                OutputFormat::Jpeg,
                &settings,
                &mut resizer,
            )
            .unwrap();
            let img = rgb(&out.bytes);
            assert_eq!(img.dimensions(), (out.width, out.height));
            img
        };
        let (planes, pixels) = (go(false), go(true));
        let (_, plan) = plan_of(bytes, query);
        let whole = rgb(bytes);
        let src = crate::pipeline::Pixels {
            width: whole.width(),
            height: whole.height(),
            buf: whole.into_raw(),
            alpha: false,
        };
        let reference = resize::resize(&mut resizer, src, plan.region, plan.size).unwrap();
        let reference =
            image::RgbImage::from_raw(reference.width, reference.height, reference.buf).unwrap();
        [planes, pixels, reference]
    }

    /// Every YCbCr sampling the fixtures have (4:2:0, 4:2:2, 4:4:0, 4:4:4), odd sizes,
    /// restarts, progressive, reductions from 2x to 2.5x, crops by `fit=cover` and `crop`: the planes path gives the
    /// RGB path's sizes, pixels within JPEG noise of it, and at least its fidelity to an
    /// unencoded reference.
    #[test]
    fn the_planes_render_what_the_pixels_render() {
        let files = [
            "medium.jpg",
            "small.jpg",
            "jpeg/s422.jpg",
            "jpeg/s440.jpg",
            "jpeg/s444.jpg",
            "jpeg/odd-601x397.jpg",
            "jpeg/odd-422-restart.jpg",
            "jpeg/restart-7blocks.jpg",
            "jpeg/q98-optimized.jpg",
            "jpeg/progressive.jpg",
        ];
        for file in files {
            let bytes = testdata(file);
            let w = f64::from(image::load_from_memory(&bytes).unwrap().width());
            // Reductions from 2x to 3x: the planes' range (the decode stays at full scale).
            let px = |f: f64| (w * f).round();
            let queries = [
                format!("w={}", px(0.47)),
                format!("w={}&h={}", px(0.4), px(0.16)),
                format!("w={}&h={}&fit=fill", px(0.45), px(0.3)),
                format!("crop=0.13,0.21,0.5,0.61&w={}", px(0.2)),
                "crop=7,5,33,29&w=15".to_string(),
            ];
            for query in &queries {
                assert!(planar_taken(&bytes, query), "{file} {query}: not taken");
                let [planes, pixels, reference] = both_paths(&bytes, query);
                let between = psnr(&planes, &pixels);
                let (p, q) = (psnr(&planes, &reference), psnr(&pixels, &reference));
                eprintln!("{file} {query}: {between:.1} dB apart; planes {p:.2}, pixels {q:.2} dB");
                assert!(between >= 33.0, "{file} {query}: {between:.1} dB apart");
                assert!(
                    p >= q - 0.5,
                    "{file} {query}: planes {p:.2} dB, pixels {q:.2} dB"
                );
            }
        }
    }

    /// A bright 4:2:0 JPEG of `w` × `h` (a gentle gradient), encoded as imgfn encodes.
    fn bright_jpeg(w: u32, h: u32) -> Vec<u8> {
        let px = crate::pipeline::Pixels::rgb_from_fn(w, h, |x, y| {
            [200 + (x % 40) as u8, 190 + (y % 50) as u8, 180]
        });
        encode::encode(&px, OutputFormat::Jpeg, 92, Default::default()).unwrap()
    }

    /// Heights whose last iMCU row libjpeg writes only in part (4:2:0 with a height of 1 to
    /// 8 past a multiple of 16, 1080 among them) and widths with block padding: the planes
    /// are read to their stored size and never past it, so the bottom and right edges of the
    /// output match the RGB path's (rows libjpeg never wrote read as a dark or random line).
    #[test]
    fn the_edges_come_from_the_image() {
        for (w, h) in [(64, 37), (61, 33), (99, 40), (35, 1080), (203, 105)] {
            let bytes = bright_jpeg(w, h);
            let query = format!("w={}", w * 2 / 5);
            assert!(planar_taken(&bytes, &query), "{w}x{h}: not taken");
            let [planes, pixels, _] = both_paths(&bytes, &query);
            let (ow, oh) = planes.dimensions();
            let edge = |img: &image::RgbImage| -> Vec<i32> {
                let mut v = Vec::new();
                for y in 0..oh {
                    for x in 0..ow {
                        if y + 2 >= oh || x + 2 >= ow {
                            v.extend(img.get_pixel(x, y).0.iter().map(|&c| i32::from(c)));
                        }
                    }
                }
                v
            };
            let (a, b) = (edge(&planes), edge(&pixels));
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).max().unwrap();
            assert!(
                worst <= 12,
                "{w}x{h}: an edge sample is {worst} levels off the RGB path's"
            );
        }
    }

    /// What the planes cannot carry takes the RGB path: grey, CMYK, EXIF orientation, a
    /// rotation, effects, padding, another output, a DCT-scaled decode, a reduction under 2x.
    #[test]
    fn the_rest_takes_the_rgb_path() {
        let medium = testdata("medium.jpg");
        for (file, query) in [
            ("gray.jpg", "w=100"),
            ("cmyk.jpg", "w=100"),
            ("orient-6.jpg", "w=100"),
            ("medium.jpg", "w=100&rot=90"),
            ("medium.jpg", "w=100&blur=2"),
            ("medium.jpg", "w=100&h=100&fit=pad"),
            ("medium.jpg", "w=100&lin=1"),
            ("medium.jpg", "w=100&fmt=webp"),
            ("medium.jpg", "w=40"),
            ("medium.jpg", "crop=7,5,33,29"),
            ("medium.jpg", "w=2000&fit=scale-down"),
            ("medium.jpg", "w=1200"),
        ] {
            let bytes = if file == "medium.jpg" {
                medium.clone()
            } else {
                testdata(file)
            };
            assert!(!planar_taken(&bytes, query), "{file} {query}: taken");
        }
    }
}
