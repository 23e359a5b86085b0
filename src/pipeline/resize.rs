//! Pixel steps between decode and encode: SIMD resize (with crop), orientation, pad, flatten.
//!
//! The resize is `fast_image_resize` with Lanczos3. RGBA is resized premultiplied (the
//! crate's default `mul_div_alpha`), so transparent pixels never bleed dark fringes.

use super::geometry::{Orientation, Rect};
use super::Pixels;
use crate::error::{Error, Result};
use crate::params::Rgba;
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

/// Turn stored pixels into displayed pixels (rotation and flips of the EXIF orientation).
pub fn orient(p: Pixels, o: Orientation) -> Result<Pixels> {
    use image::imageops;
    if o == Orientation::NORMAL {
        return Ok(p);
    }
    fn apply<P: image::Pixel + 'static>(
        img: image::ImageBuffer<P, Vec<P::Subpixel>>,
        o: u8,
    ) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
        match o {
            2 => imageops::flip_horizontal(&img),
            3 => imageops::rotate180(&img),
            4 => imageops::flip_vertical(&img),
            5 => imageops::flip_horizontal(&imageops::rotate90(&img)),
            6 => imageops::rotate90(&img),
            7 => imageops::flip_vertical(&imageops::rotate90(&img)),
            8 => imageops::rotate270(&img),
            _ => img,
        }
    }
    let bad = || Error::Internal("orient: buffer size mismatch".into());
    let (buf, width, height) = if p.alpha {
        let out = apply(
            image::RgbaImage::from_raw(p.width, p.height, p.buf).ok_or_else(bad)?,
            o.exif(),
        );
        let (w, h) = out.dimensions();
        (out.into_raw(), w, h)
    } else {
        let out = apply(
            image::RgbImage::from_raw(p.width, p.height, p.buf).ok_or_else(bad)?,
            o.exif(),
        );
        let (w, h) = out.dimensions();
        (out.into_raw(), w, h)
    };
    Ok(Pixels {
        buf,
        width,
        height,
        alpha: p.alpha,
    })
}

/// Place `p` at `offset` on a `canvas` filled with `bg` (for `fit=pad`).
pub fn pad(p: Pixels, canvas: (u32, u32), offset: (u32, u32), bg: Rgba) -> Pixels {
    if canvas == (p.width, p.height) {
        return p;
    }
    let alpha = p.alpha || !bg.is_opaque();
    let channels = if alpha { 4 } else { 3 };
    let src_channels = if p.alpha { 4 } else { 3 };
    let fill = &bg.0[..channels];
    let mut buf: Vec<u8> = fill
        .iter()
        .copied()
        .cycle()
        .take(canvas.0 as usize * canvas.1 as usize * channels)
        .collect();
    let row_len = canvas.0 as usize * channels;
    for y in 0..p.height as usize {
        let src_row =
            &p.buf[y * p.width as usize * src_channels..][..p.width as usize * src_channels];
        let dst_start = (y + offset.1 as usize) * row_len + offset.0 as usize * channels;
        let dst_row = &mut buf[dst_start..dst_start + p.width as usize * channels];
        if channels == src_channels {
            dst_row.copy_from_slice(src_row);
        } else {
            // RGB image on a translucent background: opaque pixels.
            for (d, s) in dst_row.chunks_exact_mut(4).zip(src_row.chunks_exact(3)) {
                d[..3].copy_from_slice(s);
                d[3] = 255;
            }
        }
    }
    Pixels {
        buf,
        width: canvas.0,
        height: canvas.1,
        alpha,
    }
}

/// Composite RGBA over an opaque `bg` into RGB (for formats without alpha).
pub fn flatten(p: Pixels, bg: Rgba) -> Pixels {
    if !p.alpha {
        return p;
    }
    let mut out = Vec::with_capacity(p.buf.len() / 4 * 3);
    for px in p.buf.chunks_exact(4) {
        let a = u32::from(px[3]);
        for (&v, &b) in px[..3].iter().zip(&bg.0[..3]) {
            out.push(((u32::from(v) * a + u32::from(b) * (255 - a) + 127) / 255) as u8);
        }
    }
    Pixels {
        buf: out,
        width: p.width,
        height: p.height,
        alpha: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        let mut buf = Vec::new();
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

    fn at(p: &Pixels, x: u32, y: u32) -> &[u8] {
        let c = if p.alpha { 4 } else { 3 };
        &p.buf[((y * p.width + x) as usize) * c..][..c]
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

    #[test]
    fn orientation_6_rotates_clockwise() {
        // Stored 2x1: [A B]. Rotated 90° clockwise for display: A on top, B below.
        let src = rgb(2, 1, |x, _| if x == 0 { [1, 1, 1] } else { [2, 2, 2] });
        let out = orient(src, Orientation::from_exif(6)).unwrap();
        assert_eq!((out.width, out.height), (1, 2));
        assert_eq!(at(&out, 0, 0), [1, 1, 1]);
        assert_eq!(at(&out, 0, 1), [2, 2, 2]);
    }

    #[test]
    fn pad_and_flatten() {
        let src = rgb(2, 2, |_, _| [0, 0, 0]);
        let out = pad(src, (4, 2), (1, 0), Rgba([255, 0, 0, 255]));
        assert_eq!(at(&out, 0, 0), [255, 0, 0]);
        assert_eq!(at(&out, 1, 0), [0, 0, 0]);
        assert_eq!(at(&out, 3, 1), [255, 0, 0]);
        let half = Pixels {
            buf: vec![0, 0, 0, 0, 0, 0, 0, 255],
            width: 2,
            height: 1,
            alpha: true,
        };
        let flat = flatten(half, Rgba([255, 0, 0, 255]));
        assert_eq!(flat.buf, vec![255, 0, 0, 0, 0, 0]);
    }
}
