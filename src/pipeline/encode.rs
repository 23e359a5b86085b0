//! Pixels to bytes, one encoder per output format, chosen for speed at equal quality.
//!
//! - JPEG: libjpeg-turbo baseline with optimised Huffman tables (mozjpeg's "fastest" profile:
//!   no trellis, which costs several times the time for a few percent of bytes).
//! - WebP: libwebp lossy at method 4, the quality/speed point sharp and cwebp default to.
//! - AVIF: rav1e through ravif, 8-bit, at a configurable speed.
//! - PNG, GIF: the `image` crate.
//!
//! No encoder is given metadata: EXIF, GPS and comments never reach the output.

use super::Pixels;
use crate::error::{Error, Result};
use crate::params::OutputFormat;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Encoder settings that are not part of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// rav1e speed 1 (slowest, smallest) ..= 10 (fastest). Default 8.
    pub avif_speed: u8,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { avif_speed: 8 }
    }
}

/// Bytes an encoder works with per output pixel, beyond its input (libwebp's YUV and ARGB
/// pictures; rav1e's 16-bit planes and reference frames; the GIF quantiser's RGBA copy).
pub fn bytes_per_pixel(format: OutputFormat) -> u64 {
    match format {
        OutputFormat::Jpeg => 2,
        OutputFormat::Png => 5,
        OutputFormat::Gif => 6,
        OutputFormat::Webp => 8,
        OutputFormat::Avif => 24,
    }
}

/// Encode `p` as `format` at `quality` (1..=100; ignored by PNG and GIF).
pub fn encode(
    p: &Pixels,
    format: OutputFormat,
    quality: u8,
    opts: EncodeOptions,
) -> Result<Vec<u8>> {
    let quality = quality.clamp(1, 100);
    match format {
        OutputFormat::Jpeg => encode_jpeg(p, quality),
        OutputFormat::Webp => encode_webp(p, quality),
        OutputFormat::Avif => encode_avif(p, quality, opts.avif_speed),
        OutputFormat::Png => encode_png(p),
        OutputFormat::Gif => encode_gif(p),
    }
}

fn encode_jpeg(p: &Pixels, quality: u8) -> Result<Vec<u8>> {
    if p.alpha {
        return Err(Error::Internal("jpeg encoder was given RGBA".into()));
    }
    let run = || -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(p.width as usize, p.height as usize);
        c.set_quality(f32::from(quality));
        c.set_optimize_coding(true);
        let mut started = c.start_compress(Vec::with_capacity(p.buf.len() / 8))?;
        started.write_scanlines(&p.buf)?;
        started.finish()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::Internal(format!("jpeg encode: {e}"))),
        Err(_) => Err(Error::Internal("jpeg encode: libjpeg error".into())),
    }
}

fn encode_webp(p: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let encoder = if p.alpha {
        webp::Encoder::from_rgba(&p.buf, p.width, p.height)
    } else {
        webp::Encoder::from_rgb(&p.buf, p.width, p.height)
    };
    let mem = encoder
        .encode_advanced(&webp_config(quality)?)
        .map_err(|e| Error::Internal(format!("webp encode: {e:?}")))?;
    Ok(mem.to_vec())
}

/// libwebp's settings for a lossy WebP at `quality`, still or animated.
pub(super) fn webp_config(quality: u8) -> Result<webp::WebPConfig> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| Error::Internal("webp: config init failed".into()))?;
    config.quality = f32::from(quality);
    config.method = 4; // libwebp's default, and sharp's `effort`
    config.alpha_compression = 1; // lossless alpha plane
                                  // Alpha filtering "fast" (the default) estimates a predictor and, at method 4, also
                                  // encodes the alpha plane unfiltered and keeps the smaller: two lossless encodes. On every
                                  // alpha fixture here the unfiltered one won at the same byte count, so encode it once
                                  // (about half of the WebP time of an RGBA thumbnail; see BENCHMARKS.md, W5).
    config.alpha_filtering = 0;
    Ok(config)
}

fn encode_avif(p: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>> {
    use rgb::FromSlice;
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(speed.clamp(1, 10))
        .with_bit_depth(ravif::BitDepth::Eight);
    let (w, h) = (p.width as usize, p.height as usize);
    let encoded = if p.alpha {
        encoder.encode_rgba(ravif::Img::new(p.buf.as_rgba(), w, h))
    } else {
        encoder.encode_rgb(ravif::Img::new(p.buf.as_rgb(), w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| Error::Internal(format!("avif encode: {e}")))
}

fn encode_png(p: &Pixels) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut out = Vec::new();
    let color = if p.alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
        .write_image(&p.buf, p.width, p.height, color)
        .map_err(|e| Error::Internal(format!("png encode: {e}")))?;
    Ok(out)
}

/// NeuQuant samples every 10th pixel of a GIF frame: quality is fine for thumbnails.
pub(super) const GIF_SPEED: i32 = 10;

/// The pixels as RGBA: as they are, or RGB with opaque alpha added (the GIF quantiser's input).
pub(super) fn rgba(p: &Pixels) -> std::borrow::Cow<'_, [u8]> {
    if p.alpha {
        std::borrow::Cow::Borrowed(&p.buf)
    } else {
        std::borrow::Cow::Owned(
            p.buf
                .chunks_exact(3)
                .flat_map(|c| [c[0], c[1], c[2], 255])
                .collect(),
        )
    }
}

fn encode_gif(p: &Pixels) -> Result<Vec<u8>> {
    use image::codecs::gif::GifEncoder;
    let buf = rgba(p);
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, GIF_SPEED);
        enc.encode(&buf, p.width, p.height, image::ExtendedColorType::Rgba8)
            .map_err(|e| Error::Internal(format!("gif encode: {e}")))?;
    }
    Ok(out)
}
