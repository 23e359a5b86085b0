//! The synchronous image core: probe → plan → decode → resize → orient → pad/flatten → encode.
//!
//! Nothing here knows about HTTP, async or storage; `render` is a plain function of bytes and
//! params, so the CLI, the server and the benches all run the very same code.

pub mod decode;
pub mod encode;
pub mod geometry;
pub mod resize;

pub use decode::{probe, SourceFormat, SourceInfo};
pub use encode::EncodeOptions;
pub use geometry::{plan, Orientation, Plan, Rect};

use crate::error::{Error, Result};
use crate::params::{OutputFormat, Params};
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
    /// Largest output in pixels. Default 50 MP.
    pub max_output_pixels: u64,
    /// Largest encoded output in bytes. Default 32 MiB.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 100_000_000,
            max_output_side: 8192,
            max_output_pixels: 50_000_000,
            max_output_bytes: 32 << 20,
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

    /// Bytes a decoder may allocate: the largest allowed source at 16-bit RGBA, plus slack.
    fn max_decode_alloc(&self) -> u64 {
        self.max_source_pixels
            .saturating_mul(8)
            .saturating_add(64 << 20)
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
    let limits = &settings.limits;
    limits.check_source(info)?;
    let plan = plan(info.display_size(), params, limits.max_output_side)?;
    limits.check_plan(&plan)?;
    // Work in stored pixels: crop and resize first, rotate the small result last.
    let o = info.orientation;
    let crop = o.crop_to_stored(plan.crop, info.stored);
    let size = if o.swaps_axes() {
        (plan.size.1, plan.size.0)
    } else {
        plan.size
    };

    let t = Instant::now();
    let shrink = match info.format {
        SourceFormat::Jpeg => decode::jpeg_shrink((crop.w, crop.h), size),
        _ => 1,
    };
    let decoded = decode::decode(bytes, info, shrink, limits.max_decode_alloc())?;
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
