//! The orient step: turn and mirror the resized pixels into their displayed orientation (EXIF
//! composed with the user's; see [`Orientation`]), on the small output rather than the source.

use super::Context;
use crate::error::{Error, Result};
use crate::pipeline::{Orientation, Pixels};

/// Apply `orientation` (in a plan only when it is not the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orient {
    pub orientation: Orientation,
}

impl Orient {
    pub const NAME: &'static str = "orient";

    pub fn run(&self, px: Pixels, _: &mut Context) -> Result<Pixels> {
        orient(px, self.orientation)
    }

    /// None: the turned copy replaces its input.
    pub fn scratch_bytes(&self) -> u64 {
        0
    }
}

/// Turn stored pixels into displayed pixels (the rotation and flips of `o`).
pub fn orient(p: Pixels, o: Orientation) -> Result<Pixels> {
    use image::imageops;
    if o == Orientation::identity() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_6_rotates_clockwise() {
        // Stored 2x1: [A B]. Rotated 90° clockwise for display: A on top, B below.
        let src = Pixels {
            buf: vec![1, 1, 1, 2, 2, 2],
            width: 2,
            height: 1,
            alpha: false,
        };
        let out = orient(src, Orientation::from_exif(6)).unwrap();
        assert_eq!((out.width, out.height), (1, 2));
        assert_eq!(out.buf, vec![1, 1, 1, 2, 2, 2]);
        let rgba = Pixels {
            buf: vec![1, 1, 1, 9, 2, 2, 2, 8],
            width: 2,
            height: 1,
            alpha: true,
        };
        let out = orient(rgba, Orientation::rotate(270).unwrap()).unwrap();
        assert_eq!((out.width, out.height, out.alpha), (1, 2, true));
        assert_eq!(out.buf, vec![2, 2, 2, 8, 1, 1, 1, 9]);
    }

    #[test]
    fn a_mismatched_buffer_is_an_error_not_a_panic() {
        let short = Pixels {
            buf: vec![0; 5],
            width: 2,
            height: 1,
            alpha: false,
        };
        assert!(orient(short, Orientation::flip_h()).is_err());
    }
}
