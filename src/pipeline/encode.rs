//! Pixels to bytes, one encoder per output format, chosen for speed at equal quality.
//!
//! - JPEG: libjpeg-turbo baseline with optimised Huffman tables (mozjpeg's "fastest" profile:
//!   no trellis, which costs several times the time for a few percent of bytes).
//! - WebP: libwebp lossy at method 4, the quality/speed point sharp and cwebp default to, the
//!   alpha plane filtered as they filter it.
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
    libjpeg_encode(|| {
        let c = jpeg_compressor(mozjpeg::ColorSpace::JCS_RGB, (p.width, p.height), quality);
        let mut started = c.start_compress(Vec::with_capacity(p.buf.len() / 8))?;
        started.write_scanlines(&p.buf)?;
        started.finish()
    })
}

/// libjpeg's compressor with imgfn's JPEG settings, whatever it is fed: baseline, mozjpeg's
/// "fastest" profile (no trellis), optimised Huffman tables.
fn jpeg_compressor(
    input: mozjpeg::ColorSpace,
    (width, height): (u32, u32),
    quality: u8,
) -> mozjpeg::Compress {
    let mut c = mozjpeg::Compress::new(input);
    c.set_fastest_defaults();
    c.set_size(width as usize, height as usize);
    c.set_quality(f32::from(quality.clamp(1, 100)));
    c.set_optimize_coding(true);
    c
}

/// Run a libjpeg encode, its errors (returned, or unwound by the mozjpeg crate) as internal
/// errors.
fn libjpeg_encode(run: impl FnOnce() -> std::io::Result<Vec<u8>>) -> Result<Vec<u8>> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::Internal(format!("jpeg encode: {e}"))),
        Err(_) => Err(Error::Internal("jpeg encode: libjpeg error".into())),
    }
}

/// A baseline 4:2:0 JPEG from YCbCr planes already at the output's sampling (`raw_data_in`):
/// `y` is `width` × `height`, `cb` and `cr` half of each, rounded up. The same tables and
/// settings as [`encode`]'s JPEG; only the colour conversion and chroma downsampling that
/// libjpeg would do are already done.
pub fn encode_jpeg_planes(
    y: &[u8],
    cb: &[u8],
    cr: &[u8],
    (width, height): (u32, u32),
    quality: u8,
) -> Result<Vec<u8>> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if w == 0 || h == 0 || y.len() != w * h || cb.len() != cw * ch || cr.len() != cw * ch {
        return Err(Error::Internal(
            "jpeg encoder was given planes of the wrong size".into(),
        ));
    }
    // libjpeg reads whole blocks of every plane, 16 luma rows at a time: each plane padded to
    // its blocks, and to whole MCU rows, by repeating its last column and row (what libjpeg
    // itself does with scanlines).
    let mcu_rows = h.div_ceil(16);
    let y = pad_plane(y, (w, h), (w.div_ceil(8) * 8, mcu_rows * 16));
    let chroma = (w.div_ceil(16) * 8, mcu_rows * 8);
    let cb = pad_plane(cb, (cw, ch), chroma);
    let cr = pad_plane(cr, (cw, ch), chroma);
    libjpeg_encode(|| {
        let mut c = jpeg_compressor(mozjpeg::ColorSpace::JCS_YCbCr, (width, height), quality);
        c.set_raw_data_in(true);
        let mut started = c.start_compress(Vec::with_capacity(w * h / 8))?;
        if !started.write_raw_data(&[&y, &cb, &cr]) {
            return Err(std::io::Error::other("libjpeg wrote no rows"));
        }
        started.finish()
    })
}

/// `plane` (`w` × `h`) in a `pw` × `ph` buffer, its last column and row repeated.
fn pad_plane(plane: &[u8], (w, h): (usize, usize), (pw, ph): (usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(pw * ph);
    let last = &plane[(h - 1) * w..];
    for row in plane
        .chunks_exact(w)
        .chain(std::iter::repeat_n(last, ph - h))
    {
        out.extend_from_slice(row);
        out.resize(out.len() + pw - w, row[w - 1]);
    }
    out
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
    config.alpha_compression = 1; // lossless alpha plane
                                  // The alpha plane's filter as libwebp and sharp choose it by default ("fast": a
                                  // predictor estimated from the plane, and at method 4 also none, keeping the smaller).
                                  // Off, as it was, a photo's soft edges cost 2.5x the bytes (15.2 KB against 9.2 KB of
                                  // alpha for the 1800x1200 RGBA photo of BENCHMARKS.md's G5 at 400 px); method 3, which
                                  // skips the unfiltered try, made alpha.png's thumbnail 24% larger than unfiltered.
    config.alpha_filtering = 1;
    config.method = 4; // libwebp's default, and sharp's `effort`
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The header byte of a WebP's ALPH chunk (filtering method in bits 2-3).
    fn alph_header(webp: &[u8]) -> Option<u8> {
        let mut i = 12;
        while i + 8 <= webp.len() {
            let size = u32::from_le_bytes(webp[i + 4..i + 8].try_into().ok()?) as usize;
            if &webp[i..i + 4] == b"ALPH" {
                return webp.get(i + 8).copied();
            }
            i += 8 + size + (size & 1);
        }
        None
    }

    /// A soft-edged alpha (a photo's cut-out, a shadow) is filtered before its lossless
    /// encode, as libwebp and sharp do by default: unfiltered it cost 2.5x the bytes.
    #[test]
    fn a_soft_alpha_plane_is_filtered() {
        let (w, h) = (160u32, 120u32);
        let mut buf = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 80.0, y as f32 - 60.0);
                let a = (255.0 - (dx * dx + dy * dy).sqrt() * 3.0).clamp(0.0, 255.0);
                buf.extend_from_slice(&[(x * 3) as u8, (y * 2) as u8, 90, a as u8]);
            }
        }
        let p = Pixels {
            buf,
            width: w,
            height: h,
            alpha: true,
        };
        let webp = encode_webp(&p, 80).unwrap();
        let header = alph_header(&webp).expect("an ALPH chunk");
        assert_eq!(header & 3, 1, "lossless alpha");
        assert_ne!((header >> 2) & 3, 0, "the alpha plane is stored unfiltered");
    }
}
