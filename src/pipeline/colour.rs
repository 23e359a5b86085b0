//! Colour management: every decoded image leaves the decoder in sRGB.
//!
//! Decoders hand over the colour description they found in the file ([`Profile`]); [`to_srgb`]
//! converts the decoded pixels in place, on the smallest pixels that allow it (after the
//! shrink-on-load, before the resize), alpha untouched. CMYK JPEGs go through
//! [`cmyk_to_srgb`], their profile when they carry one, the naive formula when not.
//!
//! The engine is `moxcms` (pure Rust, already in the tree through `image`). Building a
//! transform costs far more than running it on a thumbnail, so transforms are kept in a small
//! cache keyed by a hash of the profile; a profile whose transform changes no colour by more
//! than one level (any sRGB profile, whatever its spelling) is remembered as "nothing to do".
//! A profile that cannot be used is ignored with one log line: the image is still served, as
//! its numbers read as sRGB, never refused for its profile.

use super::Pixels;
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    ParsingOptions, RenderingIntent, TransferCharacteristics, Transform8BitExecutor,
    TransformOptions,
};
use std::sync::{Arc, Mutex};

/// The colour description a decoder found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// An embedded ICC profile, as stored.
    Icc(Vec<u8>),
    /// Coding-independent code points (ITU-T H.273): AVIF/HEIF `colr nclx`, PNG `cICP`.
    Cicp { primaries: u8, transfer: u8 },
}

/// Largest ICC profile read. Real profiles are far smaller (sRGB 3 KB, Adobe RGB 0.5 KB, the
/// big CMYK press profiles 0.5–2 MB); a hostile one is refused before moxcms parses it.
pub const MAX_ICC_BYTES: usize = 4 << 20;

/// Largest colour lookup table moxcms may read from a profile (entries, as moxcms counts
/// them: grid points to the power of the inputs). A 4-input table of 33 points per axis (1.2 M
/// entries) is the largest press profiles use; moxcms' default allows 10 M.
const MAX_CLUT_ENTRIES: usize = 2_000_000;

/// Transforms kept (each a few KB for a matrix profile, up to about a megabyte for a CMYK
/// lookup table). A service sees a handful of distinct profiles: sRGB, Display P3, Adobe RGB,
/// ProPhoto, a few camera and press profiles.
const CACHE_ENTRIES: usize = 32;

/// Pixels converted per call into the transform (then copied back): a bounded scratch
/// buffer instead of a second full-size image.
const CHUNK_PIXELS: usize = 4096;

/// Convert `px` from `profile` to sRGB in place (alpha untouched). No profile means sRGB; a
/// profile that cannot be parsed or converted is ignored with a log line, never a failure.
pub fn to_srgb(px: &mut Pixels, profile: Option<&Profile>) {
    let Some(profile) = profile else { return };
    let kind = if px.alpha { Kind::Rgba } else { Kind::Rgb };
    match converter(profile, kind).as_ref() {
        Converter::Identity => {}
        Converter::Tone(curve) => {
            let channels = if px.alpha { 4 } else { 3 };
            for pixel in px.buf.chunks_exact_mut(channels) {
                for v in &mut pixel[..3] {
                    *v = curve[usize::from(*v)];
                }
            }
        }
        Converter::Transform(t) => {
            let channels = if px.alpha { 4 } else { 3 };
            let mut scratch = vec![0u8; CHUNK_PIXELS.min(px.buf.len() / channels) * channels];
            for chunk in px.buf.chunks_mut(CHUNK_PIXELS * channels) {
                let out = &mut scratch[..chunk.len()];
                if let Err(e) = t.transform(chunk, out) {
                    tracing::warn!(error = %e, "colour transform failed; pixels left as they are");
                    return;
                }
                chunk.copy_from_slice(out);
            }
        }
        Converter::Unusable(why) => {
            tracing::warn!(reason = %why, "colour profile ignored; pixels read as sRGB");
        }
    }
}

/// Whether [`to_srgb`] would change any RGB value under `profile`: not for none, an sRGB
/// profile (whatever its spelling) or one it ignores. What the YCbCr-plane path of JPEG to
/// JPEG asks before it skips the conversion to RGB.
pub fn changes_rgb(profile: Option<&Profile>) -> bool {
    profile.is_some_and(|p| {
        matches!(
            converter(p, Kind::Rgb).as_ref(),
            Converter::Tone(_) | Converter::Transform(_)
        )
    })
}

/// A PNG's `cICP` chunk (before its image data), as a [`Profile`]. The `image` crate does not
/// expose it; the PNG specification gives it precedence over `iCCP` and `sRGB`.
pub fn png_cicp(bytes: &[u8]) -> Option<Profile> {
    let mut at = 8; // the signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"IDAT" | b"IEND" => return None,
            b"cICP" => {
                // Primaries, transfer, matrix (0: RGB), full range.
                let data = bytes.get(at + 8..at + 8 + len)?;
                return match data {
                    [primaries, transfer, 0, _] => Some(Profile::Cicp {
                        primaries: *primaries,
                        transfer: *transfer,
                    }),
                    _ => None,
                };
            }
            _ => at = at.checked_add(12)?.checked_add(len)?,
        }
    }
    None
}

/// CMYK samples (4 bytes a pixel, as libjpeg hands them over) to packed sRGB. `inverted`:
/// the file stores 255 for no ink (an Adobe APP14 marker, as Photoshop writes them). With a
/// CMYK profile the samples go through it; without one (or with one that cannot be used), the
/// naive `R = (255 - C)(255 - K) / 255`.
pub fn cmyk_to_srgb(cmyk: &[u8], inverted: bool, profile: Option<&Profile>) -> Vec<u8> {
    let pixels = cmyk.len() / 4;
    let mut out = vec![0u8; pixels * 3];
    let conv = profile.map(|p| converter(p, Kind::Cmyk));
    if let Some(Converter::Transform(t)) = conv.as_deref() {
        // Ink amounts, 0 for none, which is what a CMYK profile expects.
        let mut ink = vec![0u8; CHUNK_PIXELS.min(pixels) * 4];
        let ok = cmyk
            .chunks(CHUNK_PIXELS * 4)
            .zip(out.chunks_mut(CHUNK_PIXELS * 3))
            .all(|(src, dst)| {
                let ink = &mut ink[..src.len()];
                for (i, s) in ink.iter_mut().zip(src) {
                    *i = if inverted { 255 - s } else { *s };
                }
                t.transform(ink, dst)
                    .inspect_err(|e| tracing::warn!(error = %e, "CMYK transform failed"))
                    .is_ok()
            });
        if ok {
            return out;
        }
    } else if let Some(Converter::Unusable(why)) = conv.as_deref() {
        tracing::warn!(reason = %why, "CMYK profile ignored; naive conversion");
    }
    for (src, dst) in cmyk.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let ink = |v: u8| if inverted { 255 - v } else { v };
        let white = 255 - u16::from(ink(src[3]));
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = (((255 - u16::from(ink(s))) * white + 127) / 255) as u8;
        }
    }
    out
}

/// What the pixels are, which decides the transform's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rgb,
    Rgba,
    Cmyk,
}

/// What a profile does to pixels of one kind.
enum Converter {
    /// sRGB, or close enough that no colour moves by more than one level.
    Identity,
    /// A grey profile: one curve for each of R, G and B (grey stays grey).
    Tone(Box<[u8; 256]>),
    Transform(Arc<Transform8BitExecutor>),
    /// Ignored, and why (for the log line).
    Unusable(String),
}

/// A bounded cache of converters, most recently used last. A memo of a pure function (the
/// same profile bytes always make the same transform), shared by every decode: the seam's
/// callers are the decoders, which hold no state of the app.
static CACHE: Mutex<Vec<(u128, Kind, Arc<Converter>)>> = Mutex::new(Vec::new());

fn converter(profile: &Profile, kind: Kind) -> Arc<Converter> {
    let hash = match profile {
        Profile::Icc(bytes) => xxhash_rust::xxh3::xxh3_128(bytes),
        Profile::Cicp {
            primaries,
            transfer,
        } => u128::from(u16::from_be_bytes([*primaries, *transfer])),
    };
    let key_is = |h: u128, k: Kind| h == hash && k == kind;
    if let Ok(mut cache) = CACHE.lock() {
        if let Some(i) = cache.iter().position(|(h, k, _)| key_is(*h, *k)) {
            let entry = cache.remove(i);
            let conv = entry.2.clone();
            cache.push(entry);
            return conv;
        }
    }
    // Built outside the lock: other decodes go on meanwhile (two may build the same one).
    let conv = Arc::new(build(profile, kind));
    if let Ok(mut cache) = CACHE.lock() {
        if !cache.iter().any(|(h, k, _)| key_is(*h, *k)) {
            if cache.len() >= CACHE_ENTRIES {
                cache.remove(0);
            }
            cache.push((hash, kind, conv.clone()));
        }
    }
    conv
}

fn build(profile: &Profile, kind: Kind) -> Converter {
    let source = match profile {
        Profile::Icc(bytes) => match parse_icc(bytes) {
            Ok(p) => p,
            Err(why) => return Converter::Unusable(why),
        },
        Profile::Cicp {
            primaries,
            transfer,
        } => match from_cicp(*primaries, *transfer) {
            Ok(Some(p)) => p,
            Ok(None) => return Converter::Identity,
            Err(why) => return Converter::Unusable(why),
        },
    };
    let srgb = ColorProfile::new_srgb();
    // Relative colorimetric, as libvips (sharp) imports: matrix profiles convert the same
    // under every intent, and for lookup-table (CMYK) profiles moxcms has no perceptual
    // black-point scaling, which LittleCMS applies to a v2 profile's perceptual table.
    let options = TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    };
    let unusable = |e: moxcms::CmsError| Converter::Unusable(format!("moxcms: {e}"));
    match (source.color_space, kind) {
        (DataColorSpace::Gray, Kind::Rgb | Kind::Rgba) => {
            let t = match source.create_transform_8bit(Layout::Gray, &srgb, Layout::Rgb, options) {
                Ok(t) => t,
                Err(e) => return unusable(e),
            };
            let ramp: Vec<u8> = (0..=255).collect();
            let mut rgb = [0u8; 768];
            if let Err(e) = t.transform(&ramp, &mut rgb) {
                return unusable(e);
            }
            let mut curve = Box::new([0u8; 256]);
            for (c, px) in curve.iter_mut().zip(rgb.chunks_exact(3)) {
                *c = px[1];
            }
            if curve
                .iter()
                .zip(0u8..=255)
                .all(|(&c, i)| c.abs_diff(i) <= 1)
            {
                Converter::Identity
            } else {
                Converter::Tone(curve)
            }
        }
        (DataColorSpace::Rgb, Kind::Rgb | Kind::Rgba) => {
            let layout = if kind == Kind::Rgba {
                Layout::Rgba
            } else {
                Layout::Rgb
            };
            match source.create_transform_8bit(layout, &srgb, layout, options) {
                Ok(t) if changes_nothing(t.as_ref(), layout) => Converter::Identity,
                Ok(t) => Converter::Transform(t),
                Err(e) => unusable(e),
            }
        }
        (DataColorSpace::Cmyk, Kind::Cmyk) => {
            match source.create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgb, options) {
                Ok(t) => Converter::Transform(t),
                Err(e) => unusable(e),
            }
        }
        (space, kind) => Converter::Unusable(format!("a {space:?} profile on {kind:?} pixels")),
    }
}

fn parse_icc(bytes: &[u8]) -> Result<ColorProfile, String> {
    if bytes.len() > MAX_ICC_BYTES {
        return Err(format!(
            "ICC profile of {} bytes (at most {MAX_ICC_BYTES})",
            bytes.len()
        ));
    }
    let options = ParsingOptions {
        max_profile_size: MAX_ICC_BYTES + 1,
        max_allowed_clut_size: MAX_CLUT_ENTRIES,
        ..ParsingOptions::default()
    };
    ColorProfile::new_from_slice_with_options(bytes, options)
        .map_err(|e| format!("ICC profile not readable: {e}"))
}

/// The profile of H.273 code points; `None` for sRGB itself (or unspecified).
fn from_cicp(primaries: u8, transfer: u8) -> Result<Option<ColorProfile>, String> {
    // 2 is "unspecified": read as sRGB's, like browsers.
    let primaries = if primaries == 2 { 1 } else { primaries };
    let transfer = if transfer == 2 { 13 } else { transfer };
    if primaries == 1 && transfer == 13 {
        return Ok(None);
    }
    if matches!(transfer, 16 | 18) {
        // PQ and HLG need tone mapping to fit SDR sRGB; a plain conversion would crush an HDR
        // image to near black. Left as they are (too bright and flat, but visible).
        return Err(format!(
            "HDR transfer {transfer} (PQ/HLG) is not tone-mapped"
        ));
    }
    let bad = |what: &str, v: u8| format!("CICP {what} {v} not supported");
    let color_primaries =
        CicpColorPrimaries::try_from(primaries).map_err(|_| bad("primaries", primaries))?;
    let transfer_characteristics =
        TransferCharacteristics::try_from(transfer).map_err(|_| bad("transfer", transfer))?;
    // (moxcms' `update_rgb_colorimetry_from_cicp` answers false even when it succeeds: the
    // profile is checked for what it must have instead.)
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries,
        transfer_characteristics,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    });
    if !profile.is_matrix_shaper() {
        return Err(format!(
            "CICP primaries {primaries} / transfer {transfer} not supported"
        ));
    }
    Ok(Some(profile))
}

/// Does the transform leave every colour within one level (an sRGB profile in any spelling)?
/// Checked on a 9-level grid of the cube and every grey.
fn changes_nothing(t: &Transform8BitExecutor, layout: Layout) -> bool {
    let channels = layout.channels();
    let levels = [0u8, 32, 64, 96, 128, 160, 192, 224, 255];
    let mut src = Vec::with_capacity((9 * 9 * 9 + 256) * channels);
    let mut push = |rgb: [u8; 3]| {
        src.extend_from_slice(&rgb);
        if channels == 4 {
            src.push(255);
        }
    };
    for r in levels {
        for g in levels {
            for b in levels {
                push([r, g, b]);
            }
        }
    }
    for v in 0..=255u8 {
        push([v, v, v]);
    }
    let mut dst = vec![0u8; src.len()];
    t.transform(&src, &mut dst).is_ok() && src.iter().zip(&dst).all(|(a, b)| a.abs_diff(*b) <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn rgb(pixels: &[[u8; 3]]) -> Pixels {
        Pixels {
            buf: pixels.concat(),
            width: pixels.len() as u32,
            height: 1,
            alpha: false,
        }
    }

    fn icc(profile: &ColorProfile) -> Profile {
        Profile::Icc(profile.encode().expect("moxcms writes the profile"))
    }

    /// The pixels of `px` after `profile`.
    fn converted(px: &[[u8; 3]], profile: &Profile) -> Vec<u8> {
        let mut px = rgb(px);
        to_srgb(&mut px, Some(profile));
        px.buf
    }

    const COLOURS: [[u8; 3]; 5] = [
        [0, 0, 0],
        [255, 255, 255],
        [200, 30, 40],
        [20, 180, 90],
        [128, 128, 128],
    ];

    #[test]
    fn no_profile_and_srgb_change_nothing() {
        let before = rgb(&COLOURS);
        let mut px = before.clone();
        to_srgb(&mut px, None);
        assert_eq!(px, before);
        for p in [
            icc(&ColorProfile::new_srgb()),
            Profile::Cicp {
                primaries: 1,
                transfer: 13,
            },
            Profile::Cicp {
                primaries: 2,
                transfer: 2,
            },
        ] {
            assert_eq!(converted(&COLOURS, &p), before.buf, "{p:?}");
            assert!(matches!(*converter(&p, Kind::Rgb), Converter::Identity));
        }
    }

    #[test]
    fn wide_gamut_profiles_move_colours_and_keep_grey() {
        // Adobe RGB's saturated green is outside sRGB: it clips to full green with less red
        // and blue than zero, and a mid grey stays a (nearly identical) grey.
        for p in [
            icc(&ColorProfile::new_adobe_rgb()),
            icc(&ColorProfile::new_display_p3()),
            Profile::Cicp {
                primaries: 12,
                transfer: 13,
            },
            Profile::Cicp {
                primaries: 9,
                transfer: 1,
            },
        ] {
            let out = converted(&[[40, 200, 40], [128, 128, 128]], &p);
            assert!(out[1] > 200 && out[0] < 40 && out[2] < 40, "{p:?}: {out:?}");
            let grey = &out[3..6];
            assert!(grey[0] == grey[1] && grey[1] == grey[2], "{p:?}: {grey:?}");
        }
        // Display P3 as ICC and as code points are the same conversion.
        let a = converted(&COLOURS, &icc(&ColorProfile::new_display_p3()));
        let b = converted(
            &COLOURS,
            &Profile::Cicp {
                primaries: 12,
                transfer: 13,
            },
        );
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= 1),
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn alpha_is_untouched() {
        let mut px = Pixels {
            buf: vec![40, 200, 40, 7, 255, 0, 0, 0, 10, 20, 30, 255],
            width: 3,
            height: 1,
            alpha: true,
        };
        to_srgb(&mut px, Some(&icc(&ColorProfile::new_adobe_rgb())));
        assert_eq!([px.buf[3], px.buf[7], px.buf[11]], [7, 0, 255]);
        assert_ne!(&px.buf[..3], &[40, 200, 40]);
    }

    #[test]
    fn grey_profiles_keep_grey() {
        let gamma18 = icc(&ColorProfile::new_gray_with_gamma(1.8));
        let out = converted(&[[100, 100, 100], [0, 0, 0], [255, 255, 255]], &gamma18);
        // Gamma 1.8 is lighter than sRGB's curve in the middle.
        assert!(
            out[0] > 110 && out[0] == out[1] && out[1] == out[2],
            "{out:?}"
        );
        assert_eq!(&out[3..], &[0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn unusable_profiles_are_ignored() {
        let before = rgb(&COLOURS).buf;
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        let mut truncated = srgb.clone();
        truncated.truncate(200);
        for p in [
            Profile::Icc(vec![]),
            Profile::Icc(b"not a profile at all".repeat(20)),
            Profile::Icc(truncated),
            Profile::Icc(vec![0; MAX_ICC_BYTES + 1]),
            Profile::Cicp {
                primaries: 9,
                transfer: 16,
            },
            Profile::Cicp {
                primaries: 200,
                transfer: 13,
            },
        ] {
            assert_eq!(converted(&COLOURS, &p), before, "{p:?}");
        }
        // A CMYK profile on RGB pixels is ignored, and an RGB one on CMYK samples gives the
        // naive conversion.
        let p = Profile::Icc(srgb);
        assert_eq!(
            cmyk_to_srgb(&[0, 0, 0, 0, 255, 0, 0, 0], false, Some(&p)),
            vec![255, 255, 255, 0, 255, 255]
        );
    }

    #[test]
    fn oversized_profiles_are_ignored_even_when_valid() {
        // A usable Adobe RGB profile padded past the cap: moxcms would read it (its own cap is
        // 10 MB); imgfn does not.
        let mut big = ColorProfile::new_adobe_rgb().encode().unwrap();
        let converts = converted(&COLOURS, &Profile::Icc(big.clone()));
        assert_ne!(converts, rgb(&COLOURS).buf);
        big.resize(MAX_ICC_BYTES + 1, 0);
        let size = (big.len() as u32).to_be_bytes();
        big[..4].copy_from_slice(&size);
        assert_eq!(converted(&COLOURS, &Profile::Icc(big)), rgb(&COLOURS).buf);
    }

    /// A PNG's chunks (signature, then length, type, data and a CRC left at zero: the walk
    /// does not check it).
    fn png_chunks(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in chunks {
            v.extend_from_slice(&(data.len() as u32).to_be_bytes());
            v.extend_from_slice(*kind);
            v.extend_from_slice(data);
            v.extend_from_slice(&[0; 4]);
        }
        v
    }

    #[test]
    fn png_cicp_is_read_before_the_image_data() {
        let ihdr: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0];
        let p3 = png_chunks(&[(b"IHDR", ihdr), (b"cICP", &[12, 13, 0, 1]), (b"IDAT", &[0])]);
        assert_eq!(
            png_cicp(&p3),
            Some(Profile::Cicp {
                primaries: 12,
                transfer: 13
            })
        );
        // After IDAT, with a YCbCr matrix, or short: not a colour description imgfn uses.
        for none in [
            png_chunks(&[(b"IHDR", ihdr), (b"IDAT", &[0]), (b"cICP", &[12, 13, 0, 1])]),
            png_chunks(&[(b"IHDR", ihdr), (b"cICP", &[12, 13, 1, 1]), (b"IDAT", &[0])]),
            png_chunks(&[(b"IHDR", ihdr), (b"cICP", &[12, 13]), (b"IDAT", &[0])]),
            png_chunks(&[(b"IHDR", ihdr)]),
            b"\x89PNG\r\n\x1a\n\xff\xff\xff\xffcICP".to_vec(),
        ] {
            assert_eq!(png_cicp(&none), None);
        }
    }

    #[test]
    fn naive_cmyk_respects_the_adobe_inversion() {
        // Adobe-inverted: C=M=Y=255 and K=255 mean no ink: white.
        assert_eq!(cmyk_to_srgb(&[255, 255, 255, 255], true, None), [255; 3]);
        assert_eq!(cmyk_to_srgb(&[255, 0, 255, 255], true, None), [255, 0, 255]);
        assert_eq!(cmyk_to_srgb(&[255, 255, 255, 0], true, None), [0, 0, 0]);
        // Plain: 0 is no ink.
        assert_eq!(cmyk_to_srgb(&[0, 0, 0, 0], false, None), [255; 3]);
        assert_eq!(cmyk_to_srgb(&[0, 255, 0, 0], false, None), [255, 0, 255]);
    }

    #[test]
    fn the_cache_is_bounded() {
        for gamma in 0..(CACHE_ENTRIES as u32 * 2) {
            let p = icc(&ColorProfile::new_gray_with_gamma(
                1.0 + gamma as f32 / 50.0,
            ));
            let _ = converted(&[[100, 100, 100]], &p);
            assert!(CACHE.lock().unwrap().len() <= CACHE_ENTRIES);
        }
    }

    /// An RGB profile whose A2B0 is an `mft2` (lut16) table of `grid` points per axis,
    /// swapping red and green; everything else minimal.
    fn lut_profile(grid: u8, clut_len_override: Option<usize>) -> Vec<u8> {
        let g = usize::from(grid);
        let entries = g * g * g;
        let mut tag = Vec::new();
        tag.extend_from_slice(b"mft2\0\0\0\0");
        tag.extend_from_slice(&[3, 3, grid, 0]);
        for i in 0..9 {
            let v: i32 = if i % 4 == 0 { 0x10000 } else { 0 };
            tag.extend_from_slice(&v.to_be_bytes());
        }
        tag.extend_from_slice(&2u16.to_be_bytes());
        tag.extend_from_slice(&2u16.to_be_bytes());
        for _ in 0..3 {
            tag.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        }
        let n = clut_len_override.unwrap_or(entries);
        for i in 0..n.min(entries) {
            let (r, gg, b) = (i / (g * g), (i / g) % g, i % g);
            let s = |v: usize| ((v * 0xFFFF) / (g - 1).max(1)) as u16;
            // PCS is Lab: L from green, a and b neutral-ish: not colorimetric, just work.
            for v in [s(gg), s(r).max(0x8000), s(b).max(0x8000)] {
                tag.extend_from_slice(&v.to_be_bytes());
            }
        }
        for _ in 0..3 {
            tag.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        }
        let header_len = 128 + 4 + 12;
        let mut p = vec![0u8; header_len];
        let total = header_len + tag.len();
        p[0..4].copy_from_slice(&(total as u32).to_be_bytes());
        p[8] = 2; // version 2
        p[12..16].copy_from_slice(b"mntr");
        p[16..20].copy_from_slice(b"RGB ");
        p[20..24].copy_from_slice(b"Lab ");
        p[36..40].copy_from_slice(b"acsp");
        p[128..132].copy_from_slice(&1u32.to_be_bytes());
        p[132..136].copy_from_slice(b"A2B0");
        p[136..140].copy_from_slice(&(header_len as u32).to_be_bytes());
        p[140..144].copy_from_slice(&(tag.len() as u32).to_be_bytes());
        p.extend_from_slice(&tag);
        p
    }

    #[test]
    fn hostile_profiles_cost_little() {
        // The largest lookup table the size cap lets through, one that claims more data than
        // it has, and one over the entry cap: each answered (converted or ignored) quickly.
        let big = lut_profile(88, None); // 88^3 * 6 bytes: 4 MB, just under the cap
        assert!(big.len() <= MAX_ICC_BYTES, "{}", big.len());
        for p in [
            big,
            lut_profile(255, Some(1000)),
            lut_profile(130, Some(10)),
        ] {
            let mut px = Pixels {
                buf: vec![90; 400 * 300 * 3],
                width: 400,
                height: 300,
                alpha: false,
            };
            let start = Instant::now();
            to_srgb(&mut px, Some(&Profile::Icc(p)));
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
        }
    }
}
