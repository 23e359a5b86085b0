//! The pad step (`fit=pad`): place the oriented image on a canvas of the requested size,
//! filled with the background colour.

use super::Context;
use crate::error::Result;
use crate::params::Rgba;
use crate::pipeline::Pixels;

/// Place the image at `offset` on a `canvas` of `background` (in a plan only when the canvas
/// is larger than the image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pad {
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
    pub background: Rgba,
}

impl Pad {
    pub const NAME: &'static str = "pad";

    pub fn run(&self, px: Pixels, _: &mut Context) -> Result<Pixels> {
        Ok(pad(px, self.canvas, self.offset, self.background))
    }

    /// None: the canvas is the output image, which replaces its input.
    pub fn scratch_bytes(&self) -> u64 {
        0
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p: &Pixels, x: u32, y: u32) -> &[u8] {
        let c = if p.alpha { 4 } else { 3 };
        &p.buf[((y * p.width + x) as usize) * c..][..c]
    }

    fn black(width: u32, height: u32) -> Pixels {
        Pixels {
            buf: vec![0; (width * height * 3) as usize],
            width,
            height,
            alpha: false,
        }
    }

    #[test]
    fn places_the_image_on_the_background() {
        let out = pad(black(2, 2), (4, 2), (1, 0), Rgba([255, 0, 0, 255]));
        assert_eq!((out.width, out.height, out.alpha), (4, 2, false));
        assert_eq!(at(&out, 0, 0), [255, 0, 0]);
        assert_eq!(at(&out, 1, 0), [0, 0, 0]);
        assert_eq!(at(&out, 2, 1), [0, 0, 0]);
        assert_eq!(at(&out, 3, 1), [255, 0, 0]);
    }

    #[test]
    fn a_translucent_background_makes_the_image_rgba() {
        let out = pad(black(1, 1), (1, 3), (0, 1), Rgba([0, 0, 255, 64]));
        assert!(out.alpha);
        assert_eq!(at(&out, 0, 0), [0, 0, 255, 64]);
        assert_eq!(at(&out, 0, 1), [0, 0, 0, 255]);
        assert_eq!(at(&out, 0, 2), [0, 0, 255, 64]);
    }
}
