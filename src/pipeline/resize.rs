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
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(mid.0),
            h: f64::from(mid.1),
        };
        return convolve(resizer, &shrunk, whole, size, FilterType::Lanczos3);
    }
    let whole = crop.x == 0.0
        && crop.y == 0.0
        && crop.w == f64::from(src.width)
        && crop.h == f64::from(src.height);
    if whole && size == (src.width, src.height) {
        return Ok(src);
    }
    convolve(resizer, &src, crop, size, FilterType::Lanczos3)
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
    fn resize_keeps_flat_colour() {
        let src = rgb(64, 32, |_, _| [10, 200, 30]);
        let full = Rect {
            x: 0.0,
            y: 0.0,
            w: 64.0,
            h: 32.0,
        };
        let out = resize(&mut Resizer::new(), src, full, (16, 8)).unwrap();
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
        let full = Rect {
            x: 0.0,
            y: 0.0,
            w: 16.0,
            h: 8.0,
        };
        let out = resize(&mut Resizer::new(), src, full, (5, 2)).unwrap();
        for px in out.buf.chunks(4) {
            if px[3] > 10 {
                assert!(px[0] > 245, "dark fringe: {px:?}");
            }
        }
    }
}
