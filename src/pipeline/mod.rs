//! The synchronous image core: probe → plan → decode → steps → encode.
//!
//! [`prepare`] makes a [`Plan`] from the header and the request (every limit checked, the
//! memory weighed); [`run`] decodes, runs the plan's [`Step`]s (resize, orient, pad,
//! flatten: one file each in `steps/`) and encodes, timing each by name. Nothing here knows
//! about HTTP, async or storage; `render` is a plain function of bytes and params, so the
//! CLI, the server and the benches all run the very same code.

pub mod animation;
pub mod attention;
mod avif;
pub mod colour;
pub mod decode;
pub mod encode;
pub mod geometry;
mod gif_frames;
mod heic;
pub mod heif;
pub mod jpeg_dc;
pub mod jpeg_header;
pub mod jxl;
pub mod orientation;
pub mod plan;
pub mod planar;
pub mod resize;
pub mod steps;
pub mod timings;
mod webp_frames;

pub use decode::{probe, Animation, SourceFormat, SourceInfo};
pub use encode::EncodeOptions;
pub use geometry::{layout, Layout, Rect};
pub use orientation::Orientation;
pub use plan::{prepare, Plan};
pub use steps::Step;
pub use timings::Timings;

use crate::error::{Error, Result};
use crate::params::{OutputFormat, Transform};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An 8-bit RGB or RGBA image, rows packed without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub buf: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
}

#[cfg(test)]
impl Pixels {
    /// An RGB image whose pixel at (x, y) is `f(x, y)` (for tests).
    pub(crate) fn rgb_from_fn(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        let mut buf = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                buf.extend_from_slice(&f(x, y));
            }
        }
        Pixels {
            buf,
            width,
            height,
            alpha: false,
        }
    }
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
    /// Most frames of an animation rendered animated. Default 300.
    pub max_frames: u32,
    /// Most pixels over all the frames of an animation rendered animated, composed (frames x
    /// canvas) and encoded (frames x output) alike. Default 100 MP.
    pub max_animation_pixels: u64,
    /// Most memory one render may need (decode, resize and encode together, estimated from
    /// the header and the plan before any work). Default 768 MiB, the default budget.
    pub max_render_bytes: u64,
    /// How far a JPEG's shrink-on-load may reduce before the resize (`IMGFN_SHRINK`): it bounds
    /// the fidelity lost to DCT scaling. Default [`decode::Shrink::Balanced`], sharp's rule.
    pub shrink: decode::Shrink,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 100_000_000,
            max_output_side: 8192,
            max_output_pixels: 25_000_000,
            max_output_bytes: 32 << 20,
            max_avif_pixels: 4_000_000,
            max_frames: 300,
            max_animation_pixels: 100_000_000,
            max_render_bytes: 768 << 20,
            shrink: decode::Shrink::default(),
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

    /// Refuse a layout whose output has too many pixels (before any decoding).
    pub fn check_layout(&self, layout: &Layout) -> Result<()> {
        if layout.output_pixels() > self.max_output_pixels {
            let (w, h) = layout.canvas;
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

    /// Refuse an animation with more frames, or more pixels over all its frames, than an
    /// animated render may decode (from the header, before any decoding).
    pub fn check_animation(
        &self,
        animation: &Animation,
        canvas: (u32, u32),
        output: (u32, u32),
    ) -> Result<()> {
        let still = "ask for its first frame with anim=0";
        if animation.frames > self.max_frames {
            return Err(Error::limit(
                "max_frames",
                format!(
                    "the animation has {} frames; at most {} are allowed ({still})",
                    animation.frames, self.max_frames
                ),
            ));
        }
        // Composing every frame on the canvas, and encoding every output frame.
        let pixels = animation.pixels(canvas).max(animation.pixels(output));
        if pixels > self.max_animation_pixels {
            return Err(Error::limit(
                "max_animation_pixels",
                format!(
                    "the animation's frames add up to {} megapixels; at most {} are allowed ({still})",
                    pixels / 1_000_000,
                    self.max_animation_pixels / 1_000_000
                ),
            ));
        }
        Ok(())
    }

    /// Refuse an encoded output (or an animation's frames so far) over `max_output_bytes`.
    pub fn check_output_bytes(&self, len: usize) -> Result<()> {
        if len as u64 > self.max_output_bytes {
            return Err(Error::limit(
                "max_output_bytes",
                format!(
                    "the output is {len} bytes; at most {} are allowed",
                    self.max_output_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Refuse work the chosen encoder makes too slow.
    fn check_format(&self, layout: &Layout, format: OutputFormat) -> Result<()> {
        if format == OutputFormat::Avif && layout.output_pixels() > self.max_avif_pixels {
            let (w, h) = layout.canvas;
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

/// An encoded output and what produced it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// Decode, each step by name, encode.
    pub timings: Timings,
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
    /// Run every render on RGB pixels, never on a JPEG's YCbCr planes (`planar`: a JPEG
    /// resized into a JPEG). Default `false`; tests and benches set it to compare the two.
    pub force_rgb: bool,
}

/// Render `bytes` (already probed as `info`) with `params` into `format`.
pub fn render(
    bytes: &[u8],
    info: &SourceInfo,
    params: &Transform,
    format: OutputFormat,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Rendered> {
    let plan = prepare(info, params, format, &settings.limits)?;
    guard("render", || run(bytes, info, &plan, settings, resizer))
}

/// [`run`], for callers that still pass the request beside its plan (`params` and `format`
/// are in the plan already).
pub fn render_job(
    bytes: &[u8],
    info: &SourceInfo,
    plan: &Plan,
    _params: &Transform,
    format: OutputFormat,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Rendered> {
    debug_assert_eq!(format, plan.format);
    run(bytes, info, plan, settings, resizer)
}

/// Run a plan: decode, each of its steps, encode; each timed by name.
pub fn run(
    bytes: &[u8],
    info: &SourceInfo,
    plan: &Plan,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
) -> Result<Rendered> {
    let limits = &settings.limits;
    let mut timings = Timings::default();
    if plan.frames.is_some() {
        let (bytes, (width, height)) =
            animation::run(bytes, info, plan, settings, resizer, &mut timings)?;
        return Ok(Rendered {
            bytes,
            format: plan.format,
            width,
            height,
            timings,
        });
    }
    if !settings.force_rgb && planar::applies(info, plan) {
        if let Some(bytes) = planar::run(bytes, info, plan, resizer, &mut timings)? {
            limits.check_output_bytes(bytes.len())?;
            return Ok(Rendered {
                bytes,
                format: plan.format,
                width: plan.size.0,
                height: plan.size.1,
                timings,
            });
        }
    }
    let decode = |shrink| decode::decode_with(bytes, info, shrink, !settings.force_libjpeg);
    let px = timings.time(timings::DECODE, || decode(plan.shrink))?;
    // `trim` and `gravity=auto` finish the plan from the pixels (the plan is only cloned
    // when there is something to look at).
    let (seen, mut px) = match plan.look {
        Some(_) => {
            let (seen, px) = plan.see(info, px, limits, &mut timings, decode)?;
            (Some(seen), px)
        }
        None => (None, px),
    };
    let plan = seen.as_ref().unwrap_or(plan);
    let mut cx = steps::Context { resizer };
    for step in plan.steps() {
        px = timings.time(step.name(), || step.run(px, &mut cx))?;
    }
    let bytes = timings.time(timings::ENCODE, || {
        encode::encode(&px, plan.format, plan.quality, settings.encode)
    })?;
    limits.check_output_bytes(bytes.len())?;
    Ok(Rendered {
        bytes,
        format: plan.format,
        width: px.width,
        height: px.height,
        timings,
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
        // An animation's frames and their delays added up (a still is one frame).
        "frames": info.animation.map_or(1, |a| a.frames),
        "duration_ms": info.animation.map_or(0, |a| a.duration_ms),
    })
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::params::Rotation;
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
        let rot = prop::option::of(prop_oneof![Just("90"), Just("180"), Just("270")]);
        let flip = prop::option::of(prop_oneof![Just("h"), Just("v"), Just("hv")]);
        let blur = prop::option::of(prop_oneof![Just("0.3"), Just("1.5"), Just("4")]);
        let sharpen = prop::option::of(prop_oneof![Just("0.5"), Just("2")]);
        let effects = (rot, flip, blur, sharpen).prop_map(|(rot, flip, blur, sharpen)| {
            [
                ("rot", rot),
                ("flip", flip),
                ("blur", blur),
                ("sharpen", sharpen),
            ]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| format!("{name}={v}")))
            .collect::<Vec<_>>()
        });
        (w, h, dpr, fit, gravity, fmt, effects).prop_map(
            |(w, h, dpr, fit, gravity, fmt, effects)| {
                let mut parts = effects;
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
            },
        )
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
            let request = crate::params::ImageRequest::parse(Some(&q)).expect("generated queries are valid");
            let params = request.transform.clone();
            let limits = Limits { max_output_side: 1000, ..Limits::default() };
            let bytes = png(sw, sh, alpha);
            let info = probe(&bytes).expect("probe");
            // `w` and `h` refer to the image as rotated by `rot`.
            let turned = matches!(params.rotation, Some(Rotation::Cw90 | Rotation::Cw270));
            let (sw, sh) = if turned { (sh, sw) } else { (sw, sh) };
            let Ok(layout) = layout((sw, sh), &params, limits.max_output_side) else {
                // Refused plans must be over a limit, never something else.
                let err = layout((sw, sh), &params, limits.max_output_side).unwrap_err();
                prop_assert_eq!(err.status(), 422);
                return Ok(());
            };
            prop_assert!(layout.canvas.0 <= 1000 && layout.canvas.1 <= 1000);
            prop_assert!(layout.size.0 <= layout.canvas.0 && layout.size.1 <= layout.canvas.1);
            let crop = layout.crop;
            prop_assert!(crop.x >= 0.0 && crop.y >= 0.0);
            prop_assert!(crop.x + crop.w <= f64::from(sw) + 1e-6 && crop.y + crop.h <= f64::from(sh) + 1e-6);
            let format = match request.output {
                crate::params::Output::Exact(f) => f,
                _ => OutputFormat::Png,
            };
            let settings = Settings { limits, ..Settings::default() };
            let out = render(&bytes, &info, &params, format, &settings, &mut fast_image_resize::Resizer::new())
                .expect("render");
            prop_assert_eq!((out.width, out.height), layout.canvas);
            let planned = prepare(&info, &params, format, &settings.limits).expect("planned");
            prop_assert_eq!(planned.canvas, layout.canvas);
            let decoded = image::load_from_memory(&out.bytes).expect("decodable");
            prop_assert_eq!((decoded.width(), decoded.height()), layout.canvas);
        }

        /// `trim` and `gravity=auto` (the plan finished from the pixels): a photo-like
        /// gradient on a frame of one colour renders to exactly the layout of the content
        /// box, whatever the box, fit, gravity, rotation and output format.
        #[test]
        fn trimmed_output_has_exactly_the_size_of_the_content(
            (cw, ch) in (1u32..=80, 1u32..=80),
            frame in (0u32..20, 0u32..20, 0u32..20, 0u32..20),
            alpha in any::<bool>(),
            q in query(),
            auto in any::<bool>(),
        ) {
            let (l, t, r, b) = frame;
            let (sw, sh) = (cw + l + r, ch + t + b);
            let img = image::RgbaImage::from_fn(sw, sh, |x, y| {
                let inside = x >= l && x < l + cw && y >= t && y < t + ch;
                if inside {
                    // Never the frame's colour: red stays below 200.
                    image::Rgba([(x * 7 % 200) as u8, (y * 5) as u8, 128, if alpha { 200 } else { 255 }])
                } else {
                    image::Rgba([255, 255, 255, 255])
                }
            });
            let mut bytes = std::io::Cursor::new(Vec::new());
            image::DynamicImage::ImageRgba8(img)
                .write_to(&mut bytes, image::ImageFormat::Png)
                .expect("png");
            let bytes = bytes.into_inner();
            let mut q = format!("{q}&trim=0,ffffff");
            if auto && !q.contains("gravity=") {
                q.push_str("&gravity=auto");
            }
            let request = crate::params::ImageRequest::parse(Some(&q)).expect("generated queries are valid");
            let params = request.transform.clone();
            let limits = Limits { max_output_side: 1000, ..Limits::default() };
            let info = probe(&bytes).expect("probe");
            let turned = matches!(params.rotation, Some(Rotation::Cw90 | Rotation::Cw270));
            let shown = if turned { (ch, cw) } else { (cw, ch) };
            let format = match request.output {
                crate::params::Output::Exact(f) => f,
                _ => OutputFormat::Png,
            };
            let settings = Settings { limits, ..Settings::default() };
            let rendered = render(&bytes, &info, &params, format, &settings, &mut fast_image_resize::Resizer::new());
            let Ok(layout) = layout(shown, &params, limits.max_output_side) else {
                prop_assert_eq!(rendered.expect_err("over a limit").status(), 422);
                return Ok(());
            };
            let out = rendered.expect("render");
            prop_assert_eq!((out.width, out.height), layout.canvas, "{}", q);
            let decoded = image::load_from_memory(&out.bytes).expect("decodable");
            prop_assert_eq!((decoded.width(), decoded.height()), layout.canvas);
        }

        /// The parser never panics, and what it accepts round-trips through the canonical form.
        #[test]
        fn parser_is_total_and_canonical(raw in "[a-z=&%0-9.,#-]{0,40}") {
            if let Ok(p) = crate::params::ImageRequest::parse(Some(&raw)) {
                let again = crate::params::ImageRequest::parse(Some(&p.to_string())).expect("canonical form parses");
                prop_assert_eq!(p, again);
            }
        }

    }
}
