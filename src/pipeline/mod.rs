//! The synchronous image core: probe → plan → decode → resize → orient → pad/flatten → encode.
//!
//! Nothing here knows about HTTP, async or storage; `render` is a plain function of bytes and
//! params, so the CLI, the server and the benches all run the very same code.

pub mod decode;
pub mod encode;
pub mod geometry;
mod gif_frames;
pub mod jpeg_dc;
pub mod jpeg_header;
pub mod resize;

pub use decode::{probe, SourceFormat, SourceInfo};
pub use encode::EncodeOptions;
pub use geometry::{plan, Orientation, Plan, Rect};

use crate::error::{Error, Result};
use crate::params::{OutputFormat, Params};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// An 8-bit RGB or RGBA image, rows packed without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub buf: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
}

/// Limits the pipeline enforces, each before the work it guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest source, in pixels, read from the header before decoding. Default 100 MP.
    pub max_source_pixels: u64,
    /// Largest output side in pixels (after `dpr`). Default 8192.
    pub max_output_side: u32,
    /// Largest output in pixels. Default 25 MP (a 50 MP WebP takes 2.5 s to encode).
    pub max_output_pixels: u64,
    /// Largest encoded output in bytes. Default 32 MiB.
    pub max_output_bytes: u64,
    /// Largest AVIF output in pixels: AVIF encoding costs about a microsecond per pixel on
    /// one core even at the fastest useful speed. Default 4 MP.
    pub max_avif_pixels: u64,
    /// Most memory one render may need (decode, resize and encode together, estimated from
    /// the header and the plan before any work). Default 768 MiB, the default budget.
    pub max_render_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 100_000_000,
            max_output_side: 8192,
            max_output_pixels: 25_000_000,
            max_output_bytes: 32 << 20,
            max_avif_pixels: 4_000_000,
            max_render_bytes: 768 << 20,
        }
    }
}

impl Limits {
    /// Refuse a source whose header announces too many pixels.
    pub fn check_source(&self, info: &SourceInfo) -> Result<()> {
        if info.stored_pixels() > self.max_source_pixels {
            let (w, h) = info.stored;
            return Err(Error::limit(
                "max_source_pixels",
                format!(
                    "the source is {w}x{h} ({} megapixels); at most {} megapixels are allowed",
                    info.stored_pixels() / 1_000_000,
                    self.max_source_pixels / 1_000_000
                ),
            ));
        }
        Ok(())
    }

    /// Refuse a plan whose output has too many pixels (before any decoding).
    pub fn check_plan(&self, plan: &Plan) -> Result<()> {
        if plan.output_pixels() > self.max_output_pixels {
            let (w, h) = plan.canvas;
            return Err(Error::limit(
                "max_output_pixels",
                format!(
                    "the output would be {w}x{h}; at most {} megapixels are allowed",
                    self.max_output_pixels / 1_000_000
                ),
            ));
        }
        Ok(())
    }

    /// Refuse work the chosen encoder makes too slow.
    fn check_format(&self, plan: &Plan, format: OutputFormat) -> Result<()> {
        if format == OutputFormat::Avif && plan.output_pixels() > self.max_avif_pixels {
            let (w, h) = plan.canvas;
            return Err(Error::limit(
                "max_avif_pixels",
                format!(
                    "an AVIF output of {w}x{h} is too slow to encode; at most {} pixels are allowed (ask for webp or a smaller size)",
                    self.max_avif_pixels
                ),
            ));
        }
        Ok(())
    }
}

/// A render decided from the header and the request before any pixel is decoded: the plan,
/// the decode scale and what the whole render will allocate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub plan: Plan,
    /// The region of the stored (not yet oriented) pixels to use.
    pub crop: Rect,
    /// The resized size in stored orientation.
    pub size: (u32, u32),
    /// DCT scale denominator of the decode (1 unless JPEG).
    pub shrink: u32,
    /// Bytes the render allocates at its peak, estimated generously.
    pub memory: u64,
}

/// Bytes an encoder works with per output pixel, beyond its input (libwebp's YUV and ARGB
/// pictures; rav1e's 16-bit planes and reference frames; the GIF quantiser's RGBA copy).
fn encoder_bytes_per_pixel(format: OutputFormat) -> u64 {
    match format {
        OutputFormat::Jpeg => 2,
        OutputFormat::Png => 5,
        OutputFormat::Gif => 6,
        OutputFormat::Webp => 8,
        OutputFormat::Avif => 24,
    }
}

/// Plan a render and weigh it: every limit is checked here, before any decoding.
pub fn prepare(
    info: &SourceInfo,
    params: &Params,
    format: OutputFormat,
    limits: &Limits,
) -> Result<Job> {
    limits.check_source(info)?;
    let plan = plan(info.display_size(), params, limits.max_output_side)?;
    limits.check_plan(&plan)?;
    limits.check_format(&plan, format)?;
    // Work in stored pixels: crop and resize first, rotate the small result last.
    let o = info.orientation;
    let crop = o.crop_to_stored(plan.crop, info.stored);
    let size = if o.swaps_axes() {
        (plan.size.1, plan.size.0)
    } else {
        plan.size
    };
    let shrink = match info.format {
        SourceFormat::Jpeg => decode::jpeg_shrink((crop.w, crop.h), size),
        _ => 1,
    };
    let px = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    let out = px(plan.canvas);
    // The resizer's intermediate (output width by the decoded crop height) and, for a large
    // reduction, the box-filtered image Lanczos3 starts from.
    let crop_h = (crop.h / f64::from(shrink)).ceil() as u64 + 1;
    let decoded_crop = Rect {
        x: 0.0,
        y: 0.0,
        w: crop.w / f64::from(shrink),
        h: crop.h / f64::from(shrink),
    };
    let scratch = match resize::preshrink(decoded_crop, size) {
        Some(mid) => px(mid) * 4 + u64::from(mid.0) * crop_h * 4,
        None => u64::from(size.0) * crop_h * 4,
    };
    let memory = info.decode_bytes(shrink)
        + scratch
        + px(size) * 4
        // One oriented, padded or flattened copy at a time, then the encoder's working set.
        + out * 4
        + out * encoder_bytes_per_pixel(format);
    if memory > limits.max_render_bytes {
        return Err(Error::limit(
            "max_render_memory",
            format!(
                "this image would need about {} MiB to process; at most {} MiB are allowed",
                memory >> 20,
                limits.max_render_bytes >> 20
            ),
        ));
    }
    Ok(Job {
        plan,
        crop,
        size,
        shrink,
        memory,
    })
}

/// The text of a panic's payload (`panic!` with a message, or libjpeg's error as unwound).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> Option<String> {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// The one panic boundary of the codecs: a panic inside a decoder or an encoder (a bug in
/// it, or in imgfn) becomes a 422 for this request only, and is logged as the bug it is.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic_message(panic.as_ref()).unwrap_or_else(|| "unknown panic".into());
            tracing::error!(stage = what, panic = %msg, "a codec panicked (a bug); answered 422");
            Err(Error::corrupt(format!("{what} panicked: {msg}")))
        }
    }
}

/// Time spent in each CPU stage of one render.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

/// An encoded output and what produced it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub timings: StageTimings,
}

/// Everything the pipeline needs besides the request: limits and encoder settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub limits: Limits,
    pub encode: EncodeOptions,
    /// Decode every JPEG with libjpeg-turbo, never with the DC-only decoder (`jpeg_dc`) that
    /// 1/8-scale baseline decodes otherwise use. Default `false`; the benches set it to time
    /// the two paths side by side.
    pub force_libjpeg: bool,
}

/// Render `bytes` (already probed as `info`) with `params` into `format`.
pub fn render(
    bytes: &[u8],
    info: &SourceInfo,
    params: &Params,
    format: OutputFormat,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Rendered> {
    let job = prepare(info, params, format, &settings.limits)?;
    guard("render", || {
        render_job(bytes, info, &job, params, format, settings, resizer)
    })
}

/// Run a prepared job: decode, resize, orient, pad, encode.
pub fn render_job(
    bytes: &[u8],
    info: &SourceInfo,
    job: &Job,
    params: &Params,
    format: OutputFormat,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Rendered> {
    let limits = &settings.limits;
    let (plan, crop, size) = (&job.plan, job.crop, job.size);
    let o = info.orientation;
    let t = Instant::now();
    let decoded = decode::decode_with(bytes, info, job.shrink, !settings.force_libjpeg)?;
    let decode_time = t.elapsed();

    let t = Instant::now();
    // The decoder may have shrunk the image (DCT scaling rounds sizes up): rescale the crop.
    let (sx, sy) = (
        f64::from(decoded.width) / f64::from(info.stored.0),
        f64::from(decoded.height) / f64::from(info.stored.1),
    );
    let crop = Rect {
        x: crop.x * sx,
        y: crop.y * sy,
        w: (crop.w * sx).min(f64::from(decoded.width)),
        h: (crop.h * sy).min(f64::from(decoded.height)),
    };
    let resized = resize::resize(resizer, decoded, crop, size)?;
    let oriented = resize::orient(resized, o)?;
    let bg = params.background();
    let padded = resize::pad(oriented, plan.canvas, plan.offset, bg);
    let ready = if format.supports_alpha() {
        padded
    } else {
        // Formats without alpha get transparent areas composited over an opaque `bg`.
        let mut opaque = bg;
        opaque.0[3] = 255;
        resize::flatten(padded, opaque)
    };
    let resize_time = t.elapsed();

    let t = Instant::now();
    let bytes = encode::encode(&ready, format, params.quality_for(format), settings.encode)?;
    let encode_time = t.elapsed();
    if bytes.len() as u64 > limits.max_output_bytes {
        return Err(Error::limit(
            "max_output_bytes",
            format!(
                "the output is {} bytes; at most {} are allowed",
                bytes.len(),
                limits.max_output_bytes
            ),
        ));
    }

    Ok(Rendered {
        bytes,
        format,
        width: ready.width,
        height: ready.height,
        timings: StageTimings {
            decode: decode_time,
            resize: resize_time,
            encode: encode_time,
        },
    })
}

/// The `fmt=json` document: the source as displayed, from its header alone.
pub fn metadata_json(info: &SourceInfo, source_bytes: usize) -> serde_json::Value {
    let (width, height) = info.display_size();
    serde_json::json!({
        "width": width,
        "height": height,
        "format": info.format.name(),
        "bytes": source_bytes,
        "has_alpha": info.has_alpha,
        "orientation": info.orientation.exif(),
    })
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A real PNG of `w`x`h` (a gradient, optionally with alpha), encoded by the image crate.
    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([
                (x * 7) as u8,
                (y * 5) as u8,
                128,
                if alpha { (x + y) as u8 } else { 255 },
            ])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    }

    fn query() -> impl Strategy<Value = String> {
        let w = prop::option::of(1u32..=600);
        let h = prop::option::of(1u32..=600);
        let dpr = prop::option::of(prop_oneof![Just("1"), Just("1.5"), Just("2"), Just("3.25")]);
        let fit = prop::option::of(prop_oneof![
            Just("cover"),
            Just("contain"),
            Just("scale-down"),
            Just("fill"),
            Just("pad")
        ]);
        let gravity = prop::option::of(prop_oneof![
            Just("left".to_string()),
            Just("bottom-right".to_string()),
            (0u32..=100, 0u32..=100).prop_map(|(x, y)| format!(
                "{},{}",
                f64::from(x) / 100.0,
                f64::from(y) / 100.0
            )),
        ]);
        let fmt = prop::option::of(prop_oneof![
            Just("png"),
            Just("jpeg"),
            Just("webp"),
            Just("gif")
        ]);
        (w, h, dpr, fit, gravity, fmt).prop_map(|(w, h, dpr, fit, gravity, fmt)| {
            let mut parts = Vec::new();
            if let Some(w) = w {
                parts.push(format!("w={w}"));
            }
            if let Some(h) = h {
                parts.push(format!("h={h}"));
            }
            if let Some(d) = dpr {
                parts.push(format!("dpr={d}"));
            }
            if let Some(f) = fit {
                parts.push(format!("fit={f}"));
            }
            if let Some(g) = gravity {
                parts.push(format!("gravity={g}"));
            }
            parts.push(format!("fmt={}", fmt.unwrap_or("png")));
            parts.join("&")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every accepted parameter set yields an output of exactly the planned size, and
        /// the plan stays within the limits.
        #[test]
        fn output_has_exactly_the_planned_size(
            (sw, sh) in (1u32..=120, 1u32..=120),
            alpha in any::<bool>(),
            q in query(),
        ) {
            let params = Params::parse(Some(&q)).expect("generated queries are valid");
            let limits = Limits { max_output_side: 1000, ..Limits::default() };
            let bytes = png(sw, sh, alpha);
            let info = probe(&bytes).expect("probe");
            let Ok(plan) = plan(info.display_size(), &params, limits.max_output_side) else {
                // Refused plans must be over a limit, never something else.
                let err = plan(info.display_size(), &params, limits.max_output_side).unwrap_err();
                prop_assert_eq!(err.status(), 422);
                return Ok(());
            };
            prop_assert!(plan.canvas.0 <= 1000 && plan.canvas.1 <= 1000);
            prop_assert!(plan.size.0 <= plan.canvas.0 && plan.size.1 <= plan.canvas.1);
            let crop = plan.crop;
            prop_assert!(crop.x >= 0.0 && crop.y >= 0.0);
            prop_assert!(crop.x + crop.w <= f64::from(sw) + 1e-6 && crop.y + crop.h <= f64::from(sh) + 1e-6);
            let format = match params.format {
                Some(crate::params::FormatParam::Exact(f)) => f,
                _ => OutputFormat::Png,
            };
            let settings = Settings { limits, ..Settings::default() };
            let out = render(&bytes, &info, &params, format, &settings, &mut fast_image_resize::Resizer::new())
                .expect("render");
            prop_assert_eq!((out.width, out.height), plan.canvas);
            let decoded = image::load_from_memory(&out.bytes).expect("decodable");
            prop_assert_eq!((decoded.width(), decoded.height()), plan.canvas);
        }

        /// The parser never panics, and what it accepts round-trips through the canonical form.
        #[test]
        fn parser_is_total_and_canonical(raw in "[a-z=&%0-9.,#-]{0,40}") {
            if let Ok(p) = Params::parse(Some(&raw)) {
                let again = Params::parse(Some(&p.to_string())).expect("canonical form parses");
                prop_assert_eq!(p, again);
            }
        }

        #[test]
        fn generated_queries_round_trip(q in query()) {
            let p = Params::parse(Some(&q)).expect("valid");
            prop_assert_eq!(Params::parse(Some(&p.to_string())).expect("canonical"), p);
        }
    }
}
