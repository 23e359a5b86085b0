//! Source bytes to pixels: format detection, header-only probing and decoding.
//!
//! JPEG goes through libjpeg-turbo (the `mozjpeg` crate) because it can decode at 1/2, 1/4 or
//! 1/8 scale in the DCT domain ("shrink-on-load"): for a thumbnail of a 20 MP photo that skips
//! most of the work. Every other format goes through the `image` crate under `image::Limits`.
//! Both paths produce 8-bit RGB or RGBA, the one working layout of the pipeline.

use super::colour::{self, Profile};
use super::orientation::Orientation;
use super::{jpeg_header, Pixels};
use crate::error::{Error, Result};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A source format imgfn decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Jxl,
    Tiff,
    Bmp,
    Avif,
    /// HEIC and other HEIF files (the container's brands decide; the codec is read later).
    Heif,
}

impl SourceFormat {
    /// Detect from magic bytes; the file name is never trusted.
    pub fn detect(bytes: &[u8]) -> Result<SourceFormat> {
        Ok(match bytes {
            [0xFF, 0xD8, 0xFF, ..] => SourceFormat::Jpeg,
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => SourceFormat::Png,
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => SourceFormat::Gif,
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => SourceFormat::Webp,
            // A bare codestream, or the ISO BMFF container's signature box.
            [0xFF, 0x0A, ..] | [0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A, ..] => {
                SourceFormat::Jxl
            }
            // Classic and BigTIFF, both byte orders.
            [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => SourceFormat::Tiff,
            // "BM" alone is too weak a signature: the DIB header that follows must have one of
            // the sizes its versions define.
            [b'B', b'M', _, _, _, _, _, _, _, _, _, _, _, _, 12 | 40 | 52 | 56 | 64 | 108 | 124, 0, 0, 0, ..] => {
                SourceFormat::Bmp
            }
            [_, _, _, _, b'f', b't', b'y', b'p', ..] if super::heif::brand_is_avif(bytes).is_some() => {
                if super::heif::brand_is_avif(bytes) == Some(true) {
                    SourceFormat::Avif
                } else {
                    SourceFormat::Heif
                }
            }
            _ => {
                return Err(Error::UnsupportedFormat(format!(
                    "the source is not a supported image ({}); supported: jpeg, png, gif, webp, jxl, tiff, bmp",
                    describe_unsupported(bytes)
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::Webp => "webp",
            SourceFormat::Jxl => "jxl",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Bmp => "bmp",
            SourceFormat::Avif => "avif",
            SourceFormat::Heif => "heic",
        }
    }

    /// The media type of the stored bytes (an original served as it is).
    pub fn content_type(self) -> &'static str {
        match self {
            SourceFormat::Jxl => "image/jxl",
            SourceFormat::Tiff => "image/tiff",
            SourceFormat::Bmp => "image/bmp",
            SourceFormat::Heif => "image/heic",
            _ => self.output().content_type(),
        }
    }

    /// The output format that keeps this source's format. Browsers cannot show JPEG XL,
    /// TIFF or BMP: those become JPEG (PNG when they have alpha: [`SourceInfo::output`]).
    pub fn output(self) -> crate::params::OutputFormat {
        use crate::params::OutputFormat;
        match self {
            SourceFormat::Jpeg => OutputFormat::Jpeg,
            SourceFormat::Png => OutputFormat::Png,
            SourceFormat::Gif => OutputFormat::Gif,
            SourceFormat::Webp => OutputFormat::Webp,
            SourceFormat::Jxl | SourceFormat::Tiff | SourceFormat::Bmp => OutputFormat::Jpeg,
            SourceFormat::Avif => OutputFormat::Avif,
            // Browsers cannot show HEIC either.
            SourceFormat::Heif => OutputFormat::Jpeg,
        }
    }

    /// The `image` crate's decoder, for the formats that go through it.
    fn image_format(self) -> Result<image::ImageFormat> {
        Ok(match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Gif => image::ImageFormat::Gif,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Tiff => image::ImageFormat::Tiff,
            SourceFormat::Bmp => image::ImageFormat::Bmp,
            other => {
                return Err(Error::UnsupportedFormat(format!(
                    "{} is not decoded through the image crate",
                    other.name()
                )))
            }
        })
    }
}

fn describe_unsupported(bytes: &[u8]) -> &'static str {
    match bytes {
        [] => "it is empty",
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => {
            "an ISO BMFF file of neither an AVIF nor a HEIF brand"
        }
        [b'B', b'M', ..] => "a BMP of an unknown version",
        _ => "unrecognised signature",
    }
}

/// What the header says about a source, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    pub format: SourceFormat,
    /// Size of the stored pixels (before orientation).
    pub stored: (u32, u32),
    pub orientation: Orientation,
    pub has_alpha: bool,
    /// The file ends where its format says it does (a JPEG's EOI after its scans); a
    /// truncated upload is refused instead of being served half grey.
    pub complete: bool,
    /// Bytes a decoder holds besides the pixels it returns, whatever the scale: libjpeg's
    /// coefficient buffer (progressive JPEG), a GIF's canvas and frame, the `image` crate's
    /// native buffer before conversion.
    pub decoder_overhead: u64,
    /// Bytes per returned pixel the decode holds (3 for RGB; 7 for CMYK JPEG, decoded
    /// through a 4-byte buffer into a 3-byte one).
    pub decode_px_bytes: u8,
    /// More than one frame (an animated GIF or WebP), from the container alone.
    pub animation: Option<Animation>,
}

/// What an animation's container says of its frames, before any is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Animation {
    /// At least 2.
    pub frames: u32,
    /// The frames' delays added up, in milliseconds.
    pub duration_ms: u64,
    /// How many times it plays; `None` for ever.
    pub plays: Option<u32>,
}

impl Animation {
    /// Pixels decoded over all frames (each is composed on the whole canvas).
    pub fn pixels(&self, canvas: (u32, u32)) -> u64 {
        u64::from(self.frames) * u64::from(canvas.0) * u64::from(canvas.1)
    }
}

impl SourceInfo {
    /// Bytes a decode at 1/`shrink` scale allocates (only JPEGs decode scaled), read from
    /// the header: what admission weighs and the decoders' allocation limits enforce.
    pub fn decode_bytes(&self, shrink: u32) -> u64 {
        let d = if self.format == SourceFormat::Jpeg {
            u64::from(shrink.clamp(1, 8))
        } else {
            1
        };
        let px = u64::from(self.stored.0).div_ceil(d) * u64::from(self.stored.1).div_ceil(d);
        self.decoder_overhead + px * u64::from(self.decode_px_bytes) + DECODER_SLACK
    }

    /// Size as displayed (after EXIF orientation).
    pub fn display_size(&self) -> (u32, u32) {
        self.orientation.display_size(self.stored)
    }

    /// Whether a render of `transform` keeps the motion (an animation, without `anim=0`),
    /// if its output format can.
    pub fn animated(&self, transform: &crate::params::Transform) -> bool {
        self.animation.is_some() && !transform.still
    }

    pub fn stored_pixels(&self) -> u64 {
        u64::from(self.stored.0) * u64::from(self.stored.1)
    }

    /// The output format that keeps the source's format: [`SourceFormat::output`], except
    /// that a source that would become JPEG but has alpha becomes PNG.
    pub fn output(&self) -> crate::params::OutputFormat {
        use crate::params::OutputFormat;
        match self.format.output() {
            OutputFormat::Jpeg if self.has_alpha => OutputFormat::Png,
            f => f,
        }
    }
}

/// Read format, size, orientation and alpha from the header only.
pub fn probe(bytes: &[u8]) -> Result<SourceInfo> {
    let format = SourceFormat::detect(bytes)?;
    super::guard("probe", || match format {
        SourceFormat::Jpeg => probe_jpeg(bytes),
        SourceFormat::Jxl => super::jxl::probe(bytes),
        SourceFormat::Avif | SourceFormat::Heif => super::heif::probe(bytes, format),
        _ => probe_with_image(bytes, format),
    })
}

/// Run libjpeg code, turning its unwinding errors (the mozjpeg crate reports libjpeg's
/// `error_exit` by unwinding) into `CorruptImage`.
fn libjpeg<T>(what: &str, f: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::corrupt(format!("{what}: {e}"))),
        Err(panic) => {
            let msg =
                super::panic_message(panic.as_ref()).unwrap_or_else(|| "libjpeg error".into());
            Err(Error::corrupt(format!("{what}: {msg}")))
        }
    }
}

/// Row buffers, Huffman and palette tables and the like: well under this at any size.
const DECODER_SLACK: u64 = 4 << 20;

fn probe_jpeg(bytes: &[u8]) -> Result<SourceInfo> {
    let header = jpeg_header::parse(bytes)?;
    let f = &header.frame;
    let orientation = header
        .exif
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .map(|o| Orientation::from_exif(o.to_exif()))
        .unwrap_or_default();
    Ok(SourceInfo {
        format: SourceFormat::Jpeg,
        stored: (u32::from(f.width), u32::from(f.height)),
        orientation,
        has_alpha: false,
        complete: header.complete,
        decoder_overhead: header.coefficient_bytes(),
        decode_px_bytes: if f.components.len() == 4 { 7 } else { 3 },
        animation: None,
    })
}

pub(crate) fn image_error(e: image::ImageError) -> Error {
    use image::ImageError as E;
    match e {
        E::Limits(l) => Error::limit(
            "max_source_pixels",
            format!("decoding would exceed the memory limit ({l})"),
        ),
        E::Unsupported(u) => Error::UnsupportedFormat(format!("unsupported image variant: {u}")),
        other => Error::corrupt(other),
    }
}

fn probe_with_image(bytes: &[u8], format: SourceFormat) -> Result<SourceInfo> {
    use image::ImageDecoder;
    // What the container says before any decoder allocates: frames within the canvas, no
    // zero sizes.
    let (frame_bytes, animation) = match format {
        SourceFormat::Gif => {
            let l = super::gif_frames::layout(bytes)?;
            let animation = (l.frames > 1).then_some(Animation {
                frames: l.frames,
                duration_ms: l.duration_ms,
                plays: l.plays,
            });
            (l.largest_frame * 4, animation)
        }
        SourceFormat::Webp => {
            let animation = super::webp_frames::layout(bytes)?
                .filter(|l| l.frames > 1)
                .map(|l| Animation {
                    frames: l.frames,
                    duration_ms: l.duration_ms,
                    plays: l.plays,
                });
            (0, animation)
        }
        _ => (0, None),
    };
    if format == SourceFormat::Bmp {
        bmp_pixels_present(bytes)?;
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format()?);
    // Header parsing should never need much memory; this bounds hostile headers.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(64 << 20);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::corrupt(format!("{}: size {w}x{h}", format.name())));
    }
    let color = decoder.color_type();
    let has_alpha = color.has_alpha();
    let orientation = decoder
        .orientation()
        .map(|o| Orientation::from_exif(o.to_exif()))
        .unwrap_or_default();
    // The decoders keep a buffer of their own besides the image they return (measured: a
    // 100 MP grey PNG peaks at 400 MB), `DynamicImage::from_decoder` holds the native
    // image, and converting it to 8-bit RGB(A) allocates another unless it already is.
    let native = decoder.total_bytes();
    let converted = !matches!(color, image::ColorType::Rgb8 | image::ColorType::Rgba8);
    Ok(SourceInfo {
        format,
        stored: (w, h),
        orientation,
        has_alpha,
        complete: true,
        decoder_overhead: frame_bytes
            .saturating_add(native)
            .saturating_add(if converted { native } else { 0 })
            .saturating_add(tiff_buffers(format, native)),
        decode_px_bytes: if has_alpha { 4 } else { 3 },
        animation,
    })
}

/// An uncompressed BMP must hold every row its header announces: a truncated file, or a
/// header that lies about the size, is refused before the decoder allocates the image.
/// (Run-length encoded ones may legitimately be short; they are weighed like any other.)
fn bmp_pixels_present(bytes: &[u8]) -> Result<()> {
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let (Some(offset), Some(dib)) = (u32_at(10), u32_at(14)) else {
        return Err(Error::corrupt("bmp: the file ends inside its header"));
    };
    let fields = if dib == 12 {
        // OS/2 core header: 16-bit sizes, never compressed.
        (|| {
            Some((
                u64::from(u16_at(18)?),
                u64::from(u16_at(20)?),
                u16_at(24)?,
                0,
            ))
        })()
    } else {
        (|| {
            let h = u32_at(22)? as i32;
            Some((
                u64::from(u32_at(18)?),
                u64::from(h.unsigned_abs()),
                u16_at(28)?,
                u32_at(30)?,
            ))
        })()
    };
    let Some((w, h, bpp, compression)) = fields else {
        return Err(Error::corrupt("bmp: the file ends inside its header"));
    };
    // BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: rows stored whole, padded to 4 bytes.
    if matches!(compression, 0 | 3 | 6) {
        let row = (w * u64::from(bpp)).div_ceil(32) * 4;
        let needed = u64::from(offset).saturating_add(row.saturating_mul(h));
        if needed > bytes.len() as u64 {
            return Err(Error::corrupt(format!(
                "bmp: the header announces {needed} bytes of pixels and offsets, the file has {} (truncated)",
                bytes.len()
            )));
        }
    }
    Ok(())
}

/// What the `image` crate's TIFF decoder holds besides the image it returns: the whole
/// image decoded into its own buffer first (a third larger for CMYK), and one compressed
/// strip or tile read whole (at most the image's size for an uncompressed one-strip file).
fn tiff_buffers(format: SourceFormat, native: u64) -> u64 {
    match format {
        SourceFormat::Tiff => native.saturating_mul(4) / 3 + native,
        _ => 0,
    }
}

/// How far shrink-on-load may reduce a JPEG before Lanczos3 does the rest (`IMGFN_SHRINK`).
/// DCT scaling is a box-like filter: the larger the share of the reduction it does, the faster
/// the decode and the further the result drifts from a full-resolution Lanczos3 (measured on
/// the photos of BENCHMARKS.md, "Shrink-on-load").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shrink {
    /// The smallest DCT scale that still covers the output: the fastest, and up to 9 dB
    /// further from a full-resolution Lanczos3 when the scale does the whole reduction (a
    /// fine-grained photo reduced exactly 4x).
    Fast,
    /// sharp's rule, the default: scale 1/d only when the whole reduction is at least d + 1,
    /// so that Lanczos3 always does part of it (at least 1.5x after 1/2, 1.25x after 1/4,
    /// 1.125x after 1/8). Same decode scales as sharp, so the same fidelity or better.
    #[default]
    Balanced,
    /// At least 1.5x left to Lanczos3 after any scale (the rule before `IMGFN_SHRINK`):
    /// slower (1/4 where the others take 1/8), within 1-2 dB of a full-resolution Lanczos3.
    Faithful,
}

impl Shrink {
    /// Every mode, as `IMGFN_SHRINK` spells it.
    pub const NAMES: [&'static str; 3] = ["fast", "balanced", "faithful"];

    /// The least whole reduction (source over output, per side) at which 1/`d` may be used.
    fn least_reduction(self, d: u32) -> f64 {
        let d = f64::from(d);
        match self {
            Shrink::Fast => d,
            Shrink::Balanced => d + 1.0,
            Shrink::Faithful => d * 1.5,
        }
    }

    /// The DCT scale denominator (1, 2, 4 or 8): the largest reduction of the `crop` region
    /// (stored pixels) to `need` pixels that this mode allows on both sides.
    pub fn jpeg_shrink(self, crop: (f64, f64), need: (u32, u32)) -> u32 {
        let fits = |d: u32, len: f64, need: u32| len >= f64::from(need) * self.least_reduction(d);
        [8u32, 4, 2]
            .into_iter()
            .find(|&d| fits(d, crop.0, need.0) && fits(d, crop.1, need.1))
            .unwrap_or(1)
    }
}

impl std::str::FromStr for Shrink {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fast" => Ok(Shrink::Fast),
            "balanced" => Ok(Shrink::Balanced),
            "faithful" => Ok(Shrink::Faithful),
            other => Err(format!(
                "`{other}` is not a shrink mode: one of {}",
                Shrink::NAMES.join(", ")
            )),
        }
    }
}

/// Decode the stored pixels, JPEGs at 1/`shrink` scale (1, 2, 4 or 8), allocating at most
/// what the probe announced (`info.decode_bytes(shrink)`), enforced by each decoder.
pub fn decode(bytes: &[u8], info: &SourceInfo, shrink: u32) -> Result<Pixels> {
    decode_with(bytes, info, shrink, true)
}

/// [`decode`], choosing whether a 1/8-scale JPEG decode may take the DC-only fast path
/// (`jpeg_dc`); `false` sends every JPEG to libjpeg-turbo (what `Settings::force_libjpeg`
/// asks for, so the benches can time both paths).
pub fn decode_with(bytes: &[u8], info: &SourceInfo, shrink: u32, jpeg_dc: bool) -> Result<Pixels> {
    let max_alloc = info.decode_bytes(shrink);
    match info.format {
        SourceFormat::Jpeg => {
            if !info.complete {
                return Err(Error::corrupt(
                    "jpeg: no EOI marker after the scan (truncated)",
                ));
            }
            let (profile, adobe) = jpeg_colour(bytes)?;
            if jpeg_dc && shrink == 8 {
                if let Some(mut pixels) = super::guard("jpeg dc decode", || {
                    Ok(super::jpeg_dc::decode_checked(bytes, info))
                })? {
                    colour::to_srgb(&mut pixels, profile.as_ref());
                    return Ok(pixels);
                }
            }
            decode_jpeg(bytes, shrink, max_alloc, profile.as_ref(), adobe)
        }
        SourceFormat::Jxl => super::jxl::decode(bytes, info, max_alloc),
        SourceFormat::Avif | SourceFormat::Heif => super::heif::decode(bytes, info),
        format => decode_with_image(bytes, format, max_alloc),
    }
}

/// libjpeg-turbo's scaled decode on its own (the DC-only fast path is not tried), probing
/// the header itself: the reference the fast path is fuzzed against. A render takes the same
/// path with `Settings::force_libjpeg`.
pub fn decode_jpeg_libjpeg(bytes: &[u8], shrink: u32) -> Result<Pixels> {
    let info = probe_jpeg(bytes)?;
    let (_, adobe) = jpeg_colour(bytes)?;
    decode_jpeg(bytes, shrink, info.decode_bytes(shrink), None, adobe)
}

/// A JPEG's colour as its header describes it: the embedded ICC profile (ignored with a log
/// line when its chunks are broken), and whether CMYK samples are stored inverted (an Adobe
/// APP14 marker, as Photoshop writes them; libjpeg hands over the stored values).
fn jpeg_colour(bytes: &[u8]) -> Result<(Option<Profile>, bool)> {
    let header = jpeg_header::parse_head(bytes)?;
    let profile = match header.icc_profile(colour::MAX_ICC_BYTES) {
        Ok(icc) => icc.map(Profile::Icc),
        Err(why) => {
            tracing::warn!(reason = %why, "JPEG ICC profile ignored; pixels read as sRGB");
            None
        }
    };
    Ok((profile, header.adobe_transform.is_some()))
}

/// libjpeg's decode at 1/`shrink`, converted to sRGB through `profile` (CMYK and YCCK
/// through it too, or the naive formula without one).
fn decode_jpeg(
    bytes: &[u8],
    shrink: u32,
    max_alloc: u64,
    profile: Option<&Profile>,
    adobe: bool,
) -> Result<Pixels> {
    libjpeg("jpeg decode", || {
        let mut d = mozjpeg::Decompress::builder()
            .with_err(libjpeg_limits::error_mgr(max_alloc))
            .from_mem(bytes)?;
        d.scale((8 / shrink.clamp(1, 8)) as u8);
        let cmyk = matches!(
            d.color_space(),
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK
        );
        let (buf, width, height) = if cmyk {
            let mut started = d.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK)?;
            let (w, h) = (started.width(), started.height());
            let cmyk: Vec<[u8; 4]> = started.read_scanlines()?;
            started.finish()?;
            (
                colour::cmyk_to_srgb(cmyk.as_flattened(), adobe, profile),
                w,
                h,
            )
        } else {
            let mut started = d.rgb()?;
            let (w, h) = (started.width(), started.height());
            let mut rgb = Pixels {
                buf: started.read_scanlines()?,
                width: w as u32,
                height: h as u32,
                alpha: false,
            };
            started.finish()?;
            colour::to_srgb(&mut rgb, profile);
            (rgb.buf, w, h)
        };
        Ok(Pixels {
            buf,
            width: width as u32,
            height: height as u32,
            alpha: false,
        })
    })
}

/// One plane of a JPEG's YCbCr: `width` × `height` samples, rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    pub buf: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Chroma samples repeated past the right and bottom edges of a chroma plane (libjpeg's own
/// edge rule): an odd-sized output's last chroma sample covers half an output pixel past the
/// image, up to 1.5 chroma samples at the reductions under 3x that the planes take.
pub const CHROMA_EDGE: u32 = 2;

/// A YCbCr JPEG decoded without upsampling or colour conversion: full-resolution luma, and
/// Cb and Cr at their stored resolution, with the chroma's sampling factors against luma's
/// (`chroma` of `luma`, per axis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YccPlanes {
    pub y: Plane,
    pub cb: Plane,
    pub cr: Plane,
    pub luma: (u32, u32),
    pub chroma: (u32, u32),
}

/// libjpeg's full-scale decode into YCbCr planes (`raw_data_out`), for a 3-component YCbCr
/// JPEG whose colour needs no conversion to sRGB, with luma at the largest sampling factors
/// of at most 2 and both chroma planes alike; `None` for anything else (the RGB path decodes
/// it). Held to the same allocation cap and refusals as the RGB decode.
pub fn decode_jpeg_planes(bytes: &[u8], info: &SourceInfo) -> Result<Option<YccPlanes>> {
    if info.format != SourceFormat::Jpeg || !info.complete {
        return Ok(None);
    }
    let (profile, _) = jpeg_colour(bytes)?;
    if colour::changes_rgb(profile.as_ref()) {
        return Ok(None);
    }
    libjpeg("jpeg decode", || {
        let d = mozjpeg::Decompress::builder()
            .with_err(libjpeg_limits::error_mgr(info.decode_bytes(1)))
            .from_mem(bytes)?;
        let f: Vec<(u32, u32)> = d
            .components()
            .iter()
            .map(|c| (c.h_samp_factor as u32, c.v_samp_factor as u32))
            .collect();
        let ycc = d.color_space() == mozjpeg::ColorSpace::JCS_YCbCr && f.len() == 3;
        if !ycc || f[1] != f[2] {
            return Ok(None);
        }
        let (luma, chroma) = (f[0], f[1]);
        let divides = |l: u32, c: u32| (1..=2).contains(&l) && c >= 1 && l % c == 0;
        if !divides(luma.0, chroma.0) || !divides(luma.1, chroma.1) {
            return Ok(None);
        }
        let (w, h) = (d.width(), d.height());
        let mut started = d.raw()?;
        // libjpeg hands over whole iMCU rows of whole blocks: reserve exactly that (the crate
        // appends a row group at a time, and a doubling Vec would hold up to twice it).
        let imcu_rows = h.div_ceil(luma.1 as usize * 8);
        let mut bufs: Vec<(Vec<u8>, usize)> = started
            .components()
            .iter()
            .map(|c| {
                let stride = c.width_in_blocks as usize * 8;
                let rows = imcu_rows * c.v_samp_factor as usize * 8;
                (Vec::with_capacity(stride * rows), stride)
            })
            .collect();
        let [(y, ys), (cb, cs), (cr, _)] = &mut bufs[..] else {
            return Ok(None);
        };
        started.read_raw_data(&mut [y, cb, cr]);
        started.finish()?;
        let (ys, cs) = (*ys, *cs);
        let mut bufs = bufs.into_iter().map(|(b, _)| b);
        let (Some(y), Some(cb), Some(cr)) = (bufs.next(), bufs.next(), bufs.next()) else {
            return Ok(None);
        };
        // Only the stored samples (libjpeg's `downsampled_width` and `height`) are the image:
        // the block padding past them, and rows of the last iMCU row that libjpeg leaves
        // unwritten, are never read.
        let sub = |n: usize, c: u32, l: u32| (n * c as usize).div_ceil(l as usize);
        let y = Plane {
            buf: packed(y, ys, (w, h), 0),
            width: w as u32,
            height: h as u32,
        };
        let (cw, ch) = (sub(w, chroma.0, luma.0), sub(h, chroma.1, luma.1));
        let e = CHROMA_EDGE as usize;
        let chroma_plane = |buf: Vec<u8>| Plane {
            buf: packed(buf, cs, (cw, ch), e),
            width: (cw + e) as u32,
            height: (ch + e) as u32,
        };
        let (cb, cr) = (chroma_plane(cb), chroma_plane(cr));
        Ok(Some(YccPlanes {
            y,
            cb,
            cr,
            luma,
            chroma,
        }))
    })
}

/// The first `w` × `h` samples of `buf` (rows of `stride`), rows packed, with `edge` more
/// columns and rows repeating the last ones. In place when nothing is added.
fn packed(mut buf: Vec<u8>, stride: usize, (w, h): (usize, usize), edge: usize) -> Vec<u8> {
    if edge == 0 {
        for row in 1..h {
            buf.copy_within(row * stride..row * stride + w, row * w);
        }
        buf.truncate(w * h);
        return buf;
    }
    let mut out = Vec::with_capacity((w + edge) * (h + edge));
    let rows = buf.chunks(stride).take(h);
    let last = &buf[(h - 1) * stride..(h - 1) * stride + w];
    for row in rows.chain(std::iter::repeat_n(last, edge)) {
        out.extend_from_slice(&row[..w]);
        out.resize(out.len() + edge, row[w - 1]);
    }
    out
}

fn decode_with_image(bytes: &[u8], format: SourceFormat, max_alloc: u64) -> Result<Pixels> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format()?);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let profile = image_profile(bytes, format, &mut decoder);
    // For animations this is the first frame.
    let img = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let (width, height) = (img.width(), img.height());
    // One conversion to the working layout; 16-bit, grey and palette all end as 8-bit RGB(A).
    let mut px = if img.color().has_alpha() {
        Pixels {
            buf: img.into_rgba8().into_raw(),
            width,
            height,
            alpha: true,
        }
    } else {
        Pixels {
            buf: img.into_rgb8().into_raw(),
            width,
            height,
            alpha: false,
        }
    };
    colour::to_srgb(&mut px, profile.as_ref());
    Ok(px)
}

/// The colour description of a file the `image` crate decodes: a PNG's `cICP` (which takes
/// precedence), else the decoder's ICC profile (PNG `iCCP`, WebP `ICCP`, TIFF). A PNG `sRGB`
/// chunk, or nothing, means sRGB: nothing to do.
fn image_profile(
    bytes: &[u8],
    format: SourceFormat,
    decoder: &mut impl image::ImageDecoder,
) -> Option<Profile> {
    if format == SourceFormat::Png {
        if let Some(cicp) = colour::png_cicp(bytes) {
            return Some(cicp);
        }
    }
    match decoder.icc_profile() {
        Ok(icc) => icc.map(Profile::Icc),
        Err(e) => {
            tracing::warn!(error = %e, "ICC profile unreadable; pixels read as sRGB");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(
            SourceFormat::detect(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap(),
            SourceFormat::Jpeg
        );
        assert_eq!(
            SourceFormat::detect(b"GIF89a....").unwrap(),
            SourceFormat::Gif
        );
        assert_eq!(
            SourceFormat::detect(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(),
            SourceFormat::Webp
        );
        assert_eq!(
            SourceFormat::detect(b"\0\0\0\x14ftypavif\0\0\0\0mif1").unwrap(),
            SourceFormat::Avif
        );
        assert_eq!(
            SourceFormat::detect(b"\0\0\0\x14ftypheic\0\0\0\0mif1").unwrap(),
            SourceFormat::Heif
        );
        // An MP4 video is ISO BMFF too, of neither brand.
        let mp4 = b"\0\0\0\x14ftypisom\0\0\0\0mp41";
        for bad in [&b""[..], b"hello world", mp4, b"BM\0\0"] {
            assert_eq!(SourceFormat::detect(bad).unwrap_err().status(), 415);
        }
    }

    #[test]
    fn detects_jxl_tiff_and_bmp_by_magic() {
        let bmp = |dib: u8| {
            let mut b = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0".to_vec();
            b.extend_from_slice(&[dib, 0, 0, 0, 1, 0]);
            b
        };
        let cases: [(&[u8], SourceFormat); 8] = [
            (b"\xFF\x0A\xFA\x13", SourceFormat::Jxl),
            (b"\0\0\0\x0CJXL \r\n\x87\n\0\0", SourceFormat::Jxl),
            (b"II*\0\x08\0\0\0", SourceFormat::Tiff),
            (b"MM\0*\0\0\0\x08", SourceFormat::Tiff),
            (b"II+\0\x08\0\0\0", SourceFormat::Tiff),
            (&bmp(40), SourceFormat::Bmp),
            (&bmp(124), SourceFormat::Bmp),
            (&bmp(12), SourceFormat::Bmp),
        ];
        for (bytes, format) in cases {
            assert_eq!(SourceFormat::detect(bytes).unwrap(), format, "{bytes:x?}");
        }
        // Near misses: a JXL container box of another type, "BM" with no DIB header size
        // of any BMP version, TIFF's magic with the wrong number.
        for bad in [
            &b"\0\0\0\x0CJXL \r\n\x87\x0B"[..],
            &bmp(41),
            b"BM\0\0",
            b"II\x2A\x01",
        ] {
            assert_eq!(SourceFormat::detect(bad).unwrap_err().status(), 415);
        }
    }

    #[test]
    fn a_bmp_without_the_rows_it_announces_is_refused_by_the_probe() {
        // 9000x9000 at 24 bits announced, 64 bytes of pixels: refused from the header,
        // before a decoder allocates 243 MB for it.
        let mut lying = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
        for v in [9000u32, 9000] {
            lying.extend_from_slice(&v.to_le_bytes());
        }
        lying.extend_from_slice(&[1, 0, 24, 0]);
        lying.extend_from_slice(&[0; 24 + 64]);
        let err = probe(&lying).unwrap_err();
        assert_eq!(err.status(), 422, "{err:?}");
        let whole = std::fs::read("testdata/inputs/new/rgb24.bmp").unwrap();
        assert_eq!(probe(&whole).unwrap().stored, (240, 160));
        assert!(probe(&whole[..whole.len() - 1]).is_err());
    }

    #[test]
    fn shrink_keeps_at_least_the_needed_pixels() {
        let faithful = |crop, need| Shrink::Faithful.jpeg_shrink(crop, need);
        assert_eq!(faithful((6000.0, 4000.0), (400, 267)), 8);
        assert_eq!(faithful((6000.0, 4000.0), (1000, 600)), 4);
        assert_eq!(faithful((6000.0, 4000.0), (1000, 667)), 2); // 1000 < 667 * 1.5
        assert_eq!(faithful((6000.0, 4000.0), (2000, 1333)), 2);
        assert_eq!(faithful((6000.0, 4000.0), (4000, 2667)), 1);
        assert_eq!(faithful((100.0, 100.0), (20, 20)), 2);
        assert_eq!(faithful((800.0, 533.0), (200, 133)), 2);
        // Fast: the scaled image only has to cover the output.
        let fast = |crop, need| Shrink::Fast.jpeg_shrink(crop, need);
        assert_eq!(fast((2560.0, 1707.0), (1200, 800)), 2);
        assert_eq!(fast((800.0, 533.0), (200, 133)), 4); // exactly 4x: the scale does it all
        assert_eq!(fast((6000.0, 4000.0), (750, 500)), 8);
        assert_eq!(fast((6000.0, 4000.0), (751, 500)), 4);
        // Upscaling: never.
        assert_eq!(fast((100.0, 100.0), (200, 200)), 1);
        // Balanced (sharp's rule): 1/d when the reduction is at least d + 1.
        let balanced = |crop, need| Shrink::default().jpeg_shrink(crop, need);
        assert_eq!(balanced((2560.0, 1707.0), (1200, 800)), 1); // 2.13x < 3
        assert_eq!(balanced((2560.0, 1707.0), (853, 569)), 2); // 3.0x
        assert_eq!(balanced((800.0, 533.0), (200, 133)), 2); // 4x < 5: 1/2, not 1/4
        assert_eq!(balanced((6000.0, 4000.0), (666, 444)), 8); // 9.01x
        assert_eq!(balanced((6000.0, 4000.0), (667, 445)), 4); // 8.99x
        assert_eq!(balanced((6028.0, 3391.0), (400, 225)), 8); // the 20 MP thumbnail
        for name in Shrink::NAMES {
            assert_eq!(
                name.parse::<Shrink>()
                    .map(|s| format!("{s:?}").to_lowercase()),
                Ok(name.to_string())
            );
        }
        assert!("quick".parse::<Shrink>().is_err());
    }
}

/// libjpeg's error manager with two rules added to the mozjpeg crate's (errors unwind):
/// - the memory manager may hold at most what admission allowed (`max_memory_to_use`):
///   libjpeg then refuses a coefficient buffer larger than that ("backing store not
///   supported") instead of allocating it, whatever the header walk missed;
/// - warnings are fatal. libjpeg warns on corrupt entropy data, premature ends and
///   extraneous bytes and goes on decoding grey or garbage; like sharp's default
///   (`failOn: 'warning'`), imgfn refuses the file instead.
mod libjpeg_limits {
    use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};
    use std::cell::Cell;
    use std::os::raw::{c_int, c_long};

    thread_local! {
        /// The cap of the decode running on this thread (a decode never leaves its thread).
        static MAX_MEMORY: Cell<c_long> = const { Cell::new(0) };
    }

    pub fn error_mgr(max_alloc: u64) -> jpeg_error_mgr {
        MAX_MEMORY.with(|m| m.set(c_long::try_from(max_alloc).unwrap_or(c_long::MAX)));
        // SAFETY: `jpeg_error_mgr` is a C struct of integers, raw pointers and nullable
        // function pointers, for all of which zero bytes are a valid value; `jpeg_std_error`
        // then fills in libjpeg's defaults, as every libjpeg program does.
        let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
        // SAFETY: `err` is a valid, exclusively borrowed error manager.
        unsafe { jpeg_std_error(&mut err) };
        err.error_exit = Some(error_exit);
        err.emit_message = Some(emit_message);
        err
    }

    /// libjpeg's message for the current code, unformatted (its parameters are left out,
    /// so nothing is written into a buffer). For the logs only.
    fn message(cinfo: &jpeg_common_struct) -> String {
        // SAFETY: `err` points at the error manager libjpeg was created with, alive for the
        // whole decompression; its table has `last_jpeg_message + 1` NUL-terminated strings.
        unsafe {
            let Some(err) = cinfo.err.as_ref() else {
                return "libjpeg error".into();
            };
            let code = err.msg_code;
            if err.jpeg_message_table.is_null() || code < 0 || code > err.last_jpeg_message {
                return format!("libjpeg error {code}");
            }
            let text = *err.jpeg_message_table.add(code as usize);
            if text.is_null() {
                return format!("libjpeg error {code}");
            }
            std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .into_owned()
        }
    }

    extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
        // No panic hook: this is a refusal, not a bug. `decode::libjpeg` catches it.
        std::panic::resume_unwind(Box::new(message(cinfo)));
    }

    extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
        // The first message of every decompression (the SOI trace) comes before libjpeg
        // allocates anything large, so the cap is in place in time.
        // SAFETY: `mem` is libjpeg's memory manager for this object, set up before any
        // marker is read, and only read or written on this thread.
        if let Some(mem) = unsafe { cinfo.mem.as_mut() } {
            mem.max_memory_to_use = MAX_MEMORY.with(Cell::get);
        }
        if level < 0 {
            let msg = format!("corrupt data: {}", message(cinfo));
            std::panic::resume_unwind(Box::new(msg));
        }
    }
}
