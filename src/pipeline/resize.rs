//! The resize core: SIMD crop and resize (the `resize` step runs it; see `steps/`).
//!
//! The resize is `fast_image_resize` with Lanczos3. RGBA is resized premultiplied (the
//! crate's default `mul_div_alpha`), so transparent pixels never bleed dark fringes.

use super::geometry::Rect;
use super::Pixels;
use crate::error::{Error, Result};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

fn pixel_type(alpha: bool) -> PixelType {
    if alpha {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    }
}

/// Reductions larger than this go through a box filter first.
const PRESHRINK_ABOVE: f64 = 4.0;
/// What the box filter leaves for Lanczos3: this many times the output size.
const PRESHRINK_GAP: u32 = 2;

/// The size a box-filter pre-shrink takes `crop` to before Lanczos3, when the reduction is
/// large: Lanczos3 reads 6 source pixels per unit of reduction for every output pixel, so a
/// 100 MP PNG to a 64 px thumbnail would read each source pixel ~900 times. Like libvips'
/// `shrink` before `reduce`, a box average does all but the last `PRESHRINK_GAP`x, at the
/// cost of one read of the source.
pub fn preshrink(crop: Rect, size: (u32, u32)) -> Option<(u32, u32)> {
    let axis = |len: f64, out: u32| {
        if len / f64::from(out) > PRESHRINK_ABOVE {
            out * PRESHRINK_GAP
        } else {
            (len.round() as u32).max(out)
        }
    };
    let mid = (axis(crop.w, size.0), axis(crop.h, size.1));
    let untouched = (crop.w.round() as u32, crop.h.round() as u32);
    (mid != untouched && (mid.0 < untouched.0 || mid.1 < untouched.1)).then_some(mid)
}

/// Crop `crop` (in `src` pixels) out of `src` and resize it to `size`.
pub fn resize(resizer: &mut Resizer, src: Pixels, crop: Rect, size: (u32, u32)) -> Result<Pixels> {
    if let Some(mid) = preshrink(crop, size) {
        let shrunk = convolve(resizer, &src, crop, mid, FilterType::Box)?;
        drop(src);
        return convolve(resizer, &shrunk, whole(mid), size, FilterType::Lanczos3);
    }
    if unchanged(&src, crop, size) {
        return Ok(src);
    }
    convolve(resizer, &src, crop, size, FilterType::Lanczos3)
}

/// [`resize`] of an image of any pixel type held as bytes (`src` is `width` × `height` of
/// them): the same pre-shrink and Lanczos3, for the planes of a YCbCr image.
pub fn resize_bytes(
    resizer: &mut Resizer,
    src: Vec<u8>,
    (width, height): (u32, u32),
    ptype: PixelType,
    crop: Rect,
    size: (u32, u32),
) -> Result<Vec<u8>> {
    let image = Image::from_vec_u8(width, height, src, ptype)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    Ok(shrink_then_lanczos(resizer, image, crop, size)?.into_vec())
}

/// `crop` of `image` to `size`: a box pre-shrink first when the reduction is large
/// ([`preshrink`]), then Lanczos3; each image dropped once the next exists.
fn shrink_then_lanczos(
    resizer: &mut Resizer,
    image: Image<'_>,
    crop: Rect,
    size: (u32, u32),
) -> Result<Image<'static>> {
    match preshrink(crop, size) {
        Some(mid) => {
            let shrunk = convolve_image(resizer, &image, crop, mid, FilterType::Box)?;
            drop(image);
            convolve_image(resizer, &shrunk, whole(mid), size, FilterType::Lanczos3)
        }
        None => convolve_image(resizer, &image, crop, size, FilterType::Lanczos3),
    }
}

/// The whole of an image of `size`, as a crop.
fn whole((w, h): (u32, u32)) -> Rect {
    Rect {
        x: 0.0,
        y: 0.0,
        w: f64::from(w),
        h: f64::from(h),
    }
}

/// Whether cropping `crop` out of `src` and resizing it to `size` leaves `src` as it is.
fn unchanged(src: &Pixels, crop: Rect, size: (u32, u32)) -> bool {
    crop == whole((src.width, src.height)) && size == (src.width, src.height)
}

/// [`resize`] in linear light: the sRGB values are mapped to 16-bit linear ones
/// (`fast_image_resize`'s sRGB mapper), resized, and mapped back, so that averaging adds
/// light rather than sRGB numbers (a thin bright line on black stays as bright overall).
/// Alpha is not mapped; RGBA is premultiplied as in [`resize`].
pub fn resize_linear(
    resizer: &mut Resizer,
    src: Pixels,
    crop: Rect,
    size: (u32, u32),
) -> Result<Pixels> {
    if unchanged(&src, crop, size) {
        return Ok(src);
    }
    let mapping = |e: fast_image_resize::MappingError| Error::Internal(format!("sRGB map: {e}"));
    let (t8, t16) = if src.alpha {
        (PixelType::U8x4, PixelType::U16x4)
    } else {
        (PixelType::U8x3, PixelType::U16x3)
    };
    let mapper = fast_image_resize::create_srgb_mapper();
    let view = ImageRef::new(src.width, src.height, &src.buf, t8)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut linear = Image::new(src.width, src.height, t16);
    mapper.forward_map(&view, &mut linear).map_err(mapping)?;
    let alpha = src.alpha;
    drop(src);
    let linear = shrink_then_lanczos(resizer, linear, crop, size)?;
    let mut out = Image::new(size.0, size.1, t8);
    mapper.backward_map(&linear, &mut out).map_err(mapping)?;
    Ok(Pixels {
        buf: out.into_vec(),
        width: size.0,
        height: size.1,
        alpha,
    })
}

/// One convolution pass over an image of any pixel type (the 16-bit linear ones).
fn convolve_image(
    resizer: &mut Resizer,
    src: &Image<'_>,
    crop: Rect,
    size: (u32, u32),
    filter: FilterType,
) -> Result<Image<'static>> {
    let mut dst = Image::new(size.0, size.1, src.pixel_type());
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(crop.x, crop.y, crop.w, crop.h);
    resizer
        .resize(src, &mut dst, &options)
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    Ok(dst)
}

/// One convolution pass of `crop` of `src` to `size` with `filter`.
fn convolve(
    resizer: &mut Resizer,
    src: &Pixels,
    crop: Rect,
    size: (u32, u32),
    filter: FilterType,
) -> Result<Pixels> {
    let ptype = pixel_type(src.alpha);
    let src_view = ImageRef::new(src.width, src.height, &src.buf, ptype)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut dst = Image::new(size.0, size.1, ptype);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(crop.x, crop.y, crop.w, crop.h);
    resizer
        .resize(&src_view, &mut dst, &options)
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    Ok(Pixels {
        buf: dst.into_vec(),
        width: size.0,
        height: size.1,
        alpha: src.alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        Pixels::rgb_from_fn(width, height, f)
    }

    #[test]
    fn linear_light_keeps_bright_lines_bright() {
        // One-pixel white lines on black, every fourth column, halved: in sRGB numbers the
        // average is 255/4 (too dark: 64), in light it is a quarter of white's (sRGB 137).
        let src = rgb(64, 8, |x, _| if x % 4 == 0 { [255; 3] } else { [0; 3] });
        let mut resizer = Resizer::new();
        let plain = resize(&mut resizer, src.clone(), whole((64, 8)), (16, 2)).unwrap();
        let linear = resize_linear(&mut resizer, src, whole((64, 8)), (16, 2)).unwrap();
        let mean =
            |p: &Pixels| p.buf.iter().map(|&v| f64::from(v)).sum::<f64>() / p.buf.len() as f64;
        assert!((mean(&plain) - 64.0).abs() < 4.0, "{}", mean(&plain));
        assert!((mean(&linear) - 137.0).abs() < 6.0, "{}", mean(&linear));
        // Flat colour stays the same colour, alpha too.
        let flat = Pixels {
            buf: [200u8, 100, 50, 180].repeat(40 * 40),
            width: 40,
            height: 40,
            alpha: true,
        };
        let crop = Rect {
            x: 0.0,
            y: 0.0,
            w: 40.0,
            h: 40.0,
        };
        let out = resize_linear(&mut resizer, flat, crop, (7, 7)).unwrap();
        for px in out.buf.chunks_exact(4) {
            assert!(
                px.iter()
                    .zip([200u8, 100, 50, 180])
                    .all(|(a, b)| a.abs_diff(b) <= 1),
                "{px:?}"
            );
        }
    }

    #[test]
    fn resize_keeps_flat_colour() {
        let src = rgb(64, 32, |_, _| [10, 200, 30]);
        let out = resize(&mut Resizer::new(), src, whole((64, 32)), (16, 8)).unwrap();
        assert_eq!((out.width, out.height), (16, 8));
        assert!(out.buf.chunks(3).all(|p| p == [10, 200, 30]));
    }

    #[test]
    fn crop_selects_the_region() {
        // Left half red, right half blue; cropping the right half gives blue only.
        let src = rgb(
            64,
            32,
            |x, _| if x < 32 { [255, 0, 0] } else { [0, 0, 255] },
        );
        let right = Rect {
            x: 32.0,
            y: 0.0,
            w: 32.0,
            h: 32.0,
        };
        let out = resize(&mut Resizer::new(), src, right, (8, 8)).unwrap();
        // The Lanczos kernel may reach a pixel past the crop edge (seamless crops), so the
        // edge column is allowed a little red; everything is still clearly blue.
        assert!(
            out.buf.chunks(3).all(|p| p[2] > 220 && p[0] < 30),
            "{:?}",
            &out.buf[..12]
        );
        assert!(out
            .buf
            .chunks(3)
            .skip(2)
            .take(4)
            .all(|p| p[2] > 250 && p[0] < 5));
    }

    #[test]
    fn premultiplied_alpha_has_no_dark_fringe() {
        // Opaque white next to fully transparent black: resized edge stays white, not grey.
        let mut buf = Vec::new();
        for _y in 0..8 {
            for x in 0..16 {
                buf.extend_from_slice(if x < 8 {
                    &[255, 255, 255, 255]
                } else {
                    &[0, 0, 0, 0]
                });
            }
        }
        let src = Pixels {
            buf,
            width: 16,
            height: 8,
            alpha: true,
        };
        let out = resize(&mut Resizer::new(), src, whole((16, 8)), (5, 2)).unwrap();
        for px in out.buf.chunks(4) {
            if px[3] > 10 {
                assert!(px[0] > 245, "dark fringe: {px:?}");
            }
        }
    }
}
