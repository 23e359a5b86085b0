//! Placeholders: an original's ThumbHash and dominant colour, from its smallest decode.
//!
//! A page shows the placeholder while the image loads: `fmt=thumbhash` answers the hash,
//! `fmt=json` and the gallery listing carry it with the dominant colour. Both describe the
//! image as displayed (EXIF orientation applied). The work is small and bounded like a
//! render's: a JPEG decodes at 1/8 scale in the DCT domain (1/4 or 1/2 when 1/8 would leave
//! fewer than [`MIN_DECODE_SIDE`] pixels), any other format decodes whole; the decode is then
//! downscaled to fit [`MAX_SIDE`] (the largest image the ThumbHash encoder accepts) and
//! hashed. Nothing here knows about HTTP or caching: the image route and the gallery cache the
//! result by source version and run it under admission.
//!
//! The dominant colour is defined like sharp's `stats().dominant`: the most frequent bin of a
//! 16-levels-per-channel (4096-bin) RGB histogram of the decoded pixels, fully transparent
//! pixels ignored. imgfn reports the mean colour of that bin's pixels, not its centre (sharp
//! reports `bin * 16 + 8`, which turns a white background into `#f8f8f8`). Ties go to the
//! lowest bin; an image without a visible pixel counts every pixel.

use crate::error::{Error, Result};
use crate::pipeline::decode::{self, SourceFormat, SourceInfo};
use crate::pipeline::geometry::Rect;
use crate::pipeline::steps::orient::orient;
use crate::pipeline::timings::{self, Timings};
use crate::pipeline::{guard, resize, Limits, Pixels};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

/// The hashed image fits in `MAX_SIDE` x `MAX_SIDE` (ThumbHash's own maximum; its reference
/// demo scales the long side to 100).
pub const MAX_SIDE: u32 = 100;
/// A scaled JPEG decode keeps at least this many pixels on its shorter side (ThumbHash keeps
/// up to 7 cosines per axis; 32 pixels resolve them).
pub const MIN_DECODE_SIDE: u32 = 32;
/// Levels per channel of the dominant colour's histogram.
const LEVELS: usize = 16;

/// An original's placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placeholder {
    /// The ThumbHash bytes (21 to 25 for photos).
    pub thumbhash: Vec<u8>,
    /// The dominant colour, sRGB.
    pub dominant: [u8; 3],
    /// The hash as a picture, ready for a page ([`data_url`]): made once, with the hash, and
    /// cached with it (a listing of 1000 items would otherwise encode 1000 PNGs each time).
    pub data_url: Option<String>,
}

impl Placeholder {
    /// The hash as ThumbHash's demo prints it: standard base64, without `=` padding.
    pub fn thumbhash_base64(&self) -> String {
        STANDARD_NO_PAD.encode(&self.thumbhash)
    }

    /// `#rrggbb`.
    pub fn dominant_hex(&self) -> String {
        let [r, g, b] = self.dominant;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// The placeholder fields of a `fmt=json` document (and of a gallery listing's item):
/// `thumbhash` (base64) and `dominant_color` (`#rrggbb`), both `null` when the image has none.
pub fn add_fields(doc: &mut serde_json::Value, p: Option<&Placeholder>) {
    doc["thumbhash"] = p.map(Placeholder::thumbhash_base64).into();
    doc["dominant_color"] = p.map(Placeholder::dominant_hex).into();
}

/// What [`placeholder`] hashes: the image as displayed, fitted in [`MAX_SIDE`], as RGBA; and
/// the dominant colour of the decode it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub thumb: Pixels,
    pub dominant: [u8; 3],
}

/// The DCT scale denominator of a placeholder's JPEG decode: the smallest decode that keeps
/// [`MIN_DECODE_SIDE`] pixels on the shorter side (1 for other formats).
pub fn shrink(info: &SourceInfo) -> u32 {
    if info.format != SourceFormat::Jpeg {
        return 1;
    }
    let short = info.stored.0.min(info.stored.1);
    [8u32, 4, 2]
        .into_iter()
        .find(|&d| short / d >= MIN_DECODE_SIDE)
        .unwrap_or(1)
}

/// Bytes a placeholder allocates at most, from the header: the decode, the downscale's
/// intermediate rows (a box pre-shrink to twice the output, then Lanczos3) and the small
/// images after it. What admission weighs.
pub fn memory(info: &SourceInfo) -> u64 {
    let s = shrink(info);
    let d = u64::from(s);
    let (w, h) = (
        u64::from(info.stored.0).div_ceil(d),
        u64::from(info.stored.1).div_ceil(d),
    );
    let mid = u64::from(2 * MAX_SIDE);
    // Each pass holds a row buffer per output column at 4 bytes a channel, RGBA.
    let passes = w.max(h) * mid * 16 * 2;
    info.decode_bytes(s) + passes + mid * mid * 16 + SCRATCH_SLACK
}

/// Coefficient tables, the histogram, the hash.
const SCRATCH_SLACK: u64 = 1 << 20;

/// Refuse a placeholder that the render limits would refuse: too many source pixels, or more
/// memory than one render may hold.
pub fn check(info: &SourceInfo, limits: &Limits) -> Result<()> {
    limits.check_source(info)?;
    let need = memory(info);
    if need > limits.max_render_bytes {
        return Err(Error::limit(
            "max_render_memory",
            format!(
                "this image would need about {} MiB to process; at most {} MiB are allowed",
                need >> 20,
                limits.max_render_bytes >> 20
            ),
        ));
    }
    Ok(())
}

/// The placeholder of `bytes` (already probed as `info`), under `limits`; every codec panic
/// becomes a 422 for this image only.
pub fn placeholder(bytes: &[u8], info: &SourceInfo, limits: &Limits) -> Result<Placeholder> {
    placeholder_timed(bytes, info, limits, &mut Timings::default())
}

/// [`placeholder`], timing its decode, its downscale (`thumb`) and its hash (`thumbhash`).
pub fn placeholder_timed(
    bytes: &[u8],
    info: &SourceInfo,
    limits: &Limits,
    timings: &mut Timings,
) -> Result<Placeholder> {
    let sample = sample_timed(bytes, info, limits, timings)?;
    let thumbhash = timings.time(HASH, || guard("thumbhash", || Ok(encode(&sample.thumb))))?;
    let data_url = data_url(&thumbhash);
    Ok(Placeholder {
        thumbhash,
        dominant: sample.dominant,
        data_url,
    })
}

/// Decode the smallest useful size, take its dominant colour, turn it as displayed and fit it
/// in [`MAX_SIDE`].
pub fn sample(bytes: &[u8], info: &SourceInfo, limits: &Limits) -> Result<Sample> {
    sample_timed(bytes, info, limits, &mut Timings::default())
}

/// What timings call the downscale and the hash.
pub const THUMB: &str = "thumb";
pub const HASH: &str = "thumbhash";

fn sample_timed(
    bytes: &[u8],
    info: &SourceInfo,
    limits: &Limits,
    timings: &mut Timings,
) -> Result<Sample> {
    check(info, limits)?;
    let decoded = timings.time(timings::DECODE, || {
        guard("placeholder decode", || {
            decode::decode(bytes, info, shrink(info))
        })
    })?;
    timings.time(THUMB, || {
        guard("placeholder", || {
            let dominant = dominant(&decoded);
            let size = info.orientation.inverse().display_size(thumb_size(
                info.orientation
                    .display_size((decoded.width, decoded.height)),
            ));
            let whole = Rect {
                x: 0.0,
                y: 0.0,
                w: f64::from(decoded.width),
                h: f64::from(decoded.height),
            };
            let small =
                resize::resize(&mut fast_image_resize::Resizer::new(), decoded, whole, size)?;
            let thumb = rgba(orient(small, info.orientation)?);
            Ok(Sample { thumb, dominant })
        })
    })
}

/// The size the hashed image has for an image of `size` as displayed: the long side
/// [`MAX_SIDE`] (never enlarged), the other in proportion, at least 1.
pub fn thumb_size(size: (u32, u32)) -> (u32, u32) {
    let (w, h) = (size.0.max(1), size.1.max(1));
    let long = w.max(h);
    if long <= MAX_SIDE {
        return (w, h);
    }
    let side = |v: u32| {
        ((f64::from(MAX_SIDE) * f64::from(v) / f64::from(long)).round() as u32).clamp(1, MAX_SIDE)
    };
    (side(w), side(h))
}

/// The ThumbHash of an RGBA image of at most [`MAX_SIDE`] x [`MAX_SIDE`].
pub fn encode(thumb: &Pixels) -> Vec<u8> {
    debug_assert!(thumb.alpha && thumb.width <= MAX_SIDE && thumb.height <= MAX_SIDE);
    thumbhash::rgba_to_thumb_hash(thumb.width as usize, thumb.height as usize, &thumb.buf)
}

/// RGBA, whatever `p` is.
fn rgba(p: Pixels) -> Pixels {
    if p.alpha {
        return p;
    }
    let mut buf = Vec::with_capacity(p.buf.len() / 3 * 4);
    for px in p.buf.chunks_exact(3) {
        buf.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    Pixels {
        buf,
        alpha: true,
        ..p
    }
}

/// The dominant colour of `p` (see the module's documentation).
pub fn dominant(p: &Pixels) -> [u8; 3] {
    let stride = if p.alpha { 4 } else { 3 };
    let mut count = vec![0u32; LEVELS * LEVELS * LEVELS];
    let mut sum = vec![[0u64; 3]; LEVELS * LEVELS * LEVELS];
    let mut add = |px: &[u8]| {
        let bin = usize::from(px[0] >> 4) * LEVELS * LEVELS
            + usize::from(px[1] >> 4) * LEVELS
            + usize::from(px[2] >> 4);
        count[bin] += 1;
        for (s, &v) in sum[bin].iter_mut().zip(px) {
            *s += u64::from(v);
        }
    };
    let pixels = p.buf.chunks_exact(stride);
    let visible = pixels.clone().filter(|px| stride == 3 || px[3] > 0);
    let mut seen = false;
    for px in visible {
        seen = true;
        add(px);
    }
    if !seen {
        pixels.for_each(&mut add);
    }
    let mut best = 0;
    for (bin, &n) in count.iter().enumerate() {
        if n > count[best] {
            best = bin;
        }
    }
    let n = u64::from(count[best].max(1));
    sum[best].map(|s| ((s + n / 2) / n) as u8)
}

/// The placeholder as an image a page can use as it is: ThumbHash's own decode (32 pixels on
/// the long side), halved, as a PNG `data:` URL, RGB when the hash has no alpha (about 0.5 KB
/// per photo, base64 included: 1.45 KB unhalved); `None` if the hash does not decode.
pub fn data_url(hash: &[u8]) -> Option<String> {
    use image::ImageEncoder;
    let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(hash).ok()?;
    // Halved (2×2 means): a ThumbHash holds at most 7 cosines per axis, which 16 samples
    // still carry, and the browser's smooth upscale draws the same blur from half the bytes.
    let (w, h, rgba) = halve(w, h, &rgba);
    let opaque = rgba.chunks_exact(4).all(|p| p[3] == 255);
    let (pixels, colour) = if opaque {
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        (rgb, image::ExtendedColorType::Rgb8)
    } else {
        (rgba, image::ExtendedColorType::Rgba8)
    };
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        &pixels,
        u32::try_from(w).ok()?,
        u32::try_from(h).ok()?,
        colour,
    )
    .ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    ))
}

/// `rgba` (`w`×`h`) at half its size, each pixel the mean of (up to) 2×2.
fn halve(w: usize, h: usize, rgba: &[u8]) -> (usize, usize, Vec<u8>) {
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = Vec::with_capacity(hw * hh * 4);
    for y in 0..hh {
        for x in 0..hw {
            let mut sum = [0u32; 4];
            let mut n = 0;
            for sy in (2 * y)..(2 * y + 2).min(h) {
                for sx in (2 * x)..(2 * x + 2).min(w) {
                    let i = (sy * w + sx) * 4;
                    for (c, total) in sum.iter_mut().enumerate() {
                        *total += u32::from(rgba.get(i + c).copied().unwrap_or(0));
                    }
                    n += 1;
                }
            }
            out.extend(sum.map(|t| ((t + n / 2) / n.max(1)) as u8));
        }
    }
    (hw, hh, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{probe, Orientation};

    fn rgb(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        Pixels::rgb_from_fn(width, height, f)
    }

    fn testdata(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(name),
        )
        .unwrap()
    }

    fn info(format: SourceFormat, stored: (u32, u32)) -> SourceInfo {
        SourceInfo {
            format,
            stored,
            orientation: Orientation::identity(),
            has_alpha: false,
            complete: true,
            decoder_overhead: 0,
            decode_px_bytes: 3,
            animation: None,
        }
    }

    #[test]
    fn jpegs_decode_at_the_smallest_scale_that_keeps_32_pixels() {
        let jpeg = |w, h| shrink(&info(SourceFormat::Jpeg, (w, h)));
        assert_eq!(jpeg(6000, 4000), 8);
        assert_eq!(jpeg(256, 4000), 8);
        assert_eq!(jpeg(255, 4000), 4);
        assert_eq!(jpeg(128, 128), 4);
        assert_eq!(jpeg(64, 64), 2);
        assert_eq!(jpeg(63, 63), 1);
        assert_eq!(jpeg(1, 1), 1);
        assert_eq!(shrink(&info(SourceFormat::Png, (6000, 4000))), 1);
    }

    #[test]
    fn thumbs_fit_100_and_never_grow() {
        assert_eq!(thumb_size((6000, 4000)), (100, 67));
        assert_eq!(thumb_size((4000, 6000)), (67, 100));
        assert_eq!(thumb_size((100, 100)), (100, 100));
        assert_eq!(thumb_size((40, 20)), (40, 20));
        assert_eq!(thumb_size((20000, 1)), (100, 1));
        assert_eq!(thumb_size((0, 0)), (1, 1));
    }

    #[test]
    fn dominant_is_the_most_frequent_bin_mean() {
        // 60% of pixels in one bin (two shades within it), 40% in another.
        let p = rgb(10, 10, |x, y| {
            if y < 6 {
                if x % 2 == 0 {
                    [200, 10, 30]
                } else {
                    [206, 12, 31]
                }
            } else {
                [0, 0, 255]
            }
        });
        assert_eq!(dominant(&p), [203, 11, 31]);
        // A bin's centre would be #f8f8f8; the mean of pure white is pure white.
        assert_eq!(dominant(&rgb(3, 3, |_, _| [255, 255, 255])), [255; 3]);
    }

    #[test]
    fn dominant_ignores_fully_transparent_pixels() {
        // 90 transparent black pixels and 10 visible green ones: green.
        let mut buf = Vec::new();
        for i in 0..100 {
            buf.extend_from_slice(if i < 90 {
                &[0, 0, 0, 0]
            } else {
                &[0, 200, 0, 1]
            });
        }
        let p = Pixels {
            buf,
            width: 10,
            height: 10,
            alpha: true,
        };
        assert_eq!(dominant(&p), [0, 200, 0]);
        // Nothing visible: every pixel counts.
        let clear = Pixels {
            buf: [9, 8, 7, 0].repeat(4),
            width: 2,
            height: 2,
            alpha: true,
        };
        assert_eq!(dominant(&clear), [9, 8, 7]);
    }

    #[test]
    fn ties_go_to_the_lowest_bin() {
        let p = rgb(2, 1, |x, _| if x == 0 { [250, 0, 0] } else { [0, 0, 250] });
        assert_eq!(dominant(&p), [0, 0, 250]);
    }

    #[test]
    fn base64_and_hex_as_pages_print_them() {
        let p = Placeholder {
            thumbhash: vec![0xDC, 0xE7, 0x11, 0x25],
            dominant: [1, 0xab, 255],
            data_url: None,
        };
        // Standard alphabet, no padding (the demo strips `=`).
        assert_eq!(p.thumbhash_base64(), "3OcRJQ");
        assert_eq!(p.dominant_hex(), "#01abff");
    }

    /// The size of a placeholder's decode of `info` (libjpeg rounds scaled sizes up).
    fn decoded(info: &SourceInfo) -> (u32, u32) {
        let d = shrink(info);
        (info.stored.0.div_ceil(d), info.stored.1.div_ceil(d))
    }

    #[test]
    fn the_hash_describes_the_image_as_displayed() {
        // orient-5/6 are stored turned a quarter: the hashed image has the displayed shape.
        for file in ["small.jpg", "orient-6.jpg", "orient-5.jpg", "orient-3.jpg"] {
            let bytes = testdata(file);
            let info = probe(&bytes).unwrap();
            let (dw, dh) = info.display_size();
            let turned = info.orientation.swaps_axes();
            assert_eq!(turned, file.contains('5') || file.contains('6'), "{file}");
            let s = sample(&bytes, &info, &Limits::default()).unwrap();
            assert_eq!(
                (s.thumb.width, s.thumb.height),
                thumb_size(info.orientation.display_size(decoded(&info))),
                "{file}"
            );
            assert!(
                s.thumb.alpha && s.thumb.buf.len() == (s.thumb.width * s.thumb.height * 4) as usize
            );
            let hash = placeholder(&bytes, &info, &Limits::default()).unwrap();
            // The aspect ratio the hash carries matches the displayed one.
            let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash.thumbhash).unwrap();
            assert_eq!(ratio > 1.0, dw > dh, "{file}: ratio {ratio}");
        }
    }

    #[test]
    fn limits_apply_before_decoding() {
        let bytes = testdata("small.jpg");
        let info = probe(&bytes).unwrap();
        let tight = Limits {
            max_source_pixels: info.stored_pixels() - 1,
            ..Limits::default()
        };
        assert_eq!(
            placeholder(&bytes, &info, &tight).unwrap_err().status(),
            422
        );
        let tight = Limits {
            max_render_bytes: memory(&info) - 1,
            ..Limits::default()
        };
        let err = placeholder(&bytes, &info, &tight).unwrap_err();
        assert!(err.to_string().contains("max_render_memory"), "{err}");
    }

    #[test]
    fn the_weight_covers_the_decode() {
        let i = info(SourceFormat::Jpeg, (6000, 4000));
        assert!(memory(&i) >= i.decode_bytes(8));
        assert!(memory(&i) < i.decode_bytes(1));
        let p = info(SourceFormat::Png, (6000, 4000));
        assert!(memory(&p) >= p.decode_bytes(1));
    }

    #[test]
    fn placeholder_data_urls_are_small_pngs_of_the_hash() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        // medium.jpg's hash (README, Placeholders): opaque, 3:2.
        let hash = STANDARD_NO_PAD
            .decode("ofgRLYZ3iHd/iIiLeJd4iImAlqgJ")
            .unwrap();
        let url = data_url(&hash).unwrap();
        let png = STANDARD
            .decode(url.strip_prefix("data:image/png;base64,").unwrap())
            .unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        // ThumbHash's decode (32 px on the long side, its approximate aspect ratio), halved;
        // RGB when opaque.
        assert_eq!((img.width(), img.height()), (16, 12));
        assert_eq!(img.color(), image::ColorType::Rgb8);
        let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).unwrap();
        assert_eq!((w, h), (32, 23));
        let (_, _, rgba) = halve(w, h, &rgba);
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(img.to_rgb8().into_raw(), rgb, "the PNG is lossless");
        eprintln!("placeholder data URL: {} bytes", url.len());
        assert!(url.len() < 800, "{} bytes per item", url.len());
        // With alpha, RGBA.
        let mut rgba = vec![0u8; 8 * 8 * 4];
        for (i, p) in rgba.chunks_exact_mut(4).enumerate() {
            p.copy_from_slice(&[200, 40, 40, if i % 8 < 4 { 255 } else { 0 }]);
        }
        let alpha = thumbhash::rgba_to_thumb_hash(8, 8, &rgba);
        let url = data_url(&alpha).unwrap();
        let png = STANDARD
            .decode(url.strip_prefix("data:image/png;base64,").unwrap())
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(img.color(), image::ColorType::Rgba8);
        assert!(data_url(&[]).is_none());
    }

    #[test]
    fn halving_means_two_by_two() {
        // 3×1: the odd column is its own mean.
        let px = [[0, 0, 0, 255], [100, 50, 10, 255], [7, 7, 7, 0]].concat();
        assert_eq!(
            halve(3, 1, &px),
            (2, 1, [[50, 25, 5, 255], [7, 7, 7, 0]].concat())
        );
    }
}
