//! `sharpen=SIGMA`: an unsharp mask of the output, SIGMA in output pixels (0.3 to 10).
//!
//! `out = in + (in - blur(in, SIGMA))`, per colour channel, rounded and clamped: Pillow's
//! `UnsharpMask(radius=SIGMA, percent=100, threshold=0)`, and what peers apply to thumbnails
//! after a downscale has softened them. Alpha is kept as it is.

use super::{blur, Effect};
use crate::error::Result;
use crate::params::Transform;
use crate::pipeline::Pixels;

/// The sharpen step when the transform asks for one, for a resized image of `size`.
pub fn plan(t: &Transform, size: (u32, u32)) -> Option<Effect> {
    let sigma = t.sharpen?.pixels();
    Some(Effect::new(
        "sharpen",
        sigma,
        unsharp,
        SCRATCH_BYTES_PER_PIXEL,
        size,
    ))
}

/// Sharpen `px` with an unsharp mask of Gaussian `sigma` and amount 1.
pub fn unsharp(px: Pixels, sigma: f32) -> Result<Pixels> {
    let blurred = blur::gaussian(px.clone(), sigma)?;
    let channels = if px.alpha { 4 } else { 3 };
    let mut out = px;
    for (p, b) in out
        .buf
        .chunks_exact_mut(channels)
        .zip(blurred.buf.chunks_exact(channels))
    {
        for c in 0..3 {
            let v = 2 * i16::from(p[c]) - i16::from(b[c]);
            p[c] = v.clamp(0, 255) as u8;
        }
    }
    Ok(out)
}

/// Bytes [`unsharp`] holds besides its input and output, per pixel: the blurred copy and
/// the blur's own scratch.
pub const SCRATCH_BYTES_PER_PIXEL: u64 = 4 + blur::SCRATCH_BYTES_PER_PIXEL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_gets_steeper_and_flat_areas_stay() {
        let (w, h) = (16u32, 4u32);
        let buf: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| if x < 8 { [60u8; 3] } else { [180u8; 3] }))
            .collect();
        let px = Pixels {
            buf,
            width: w,
            height: h,
            alpha: false,
        };
        let out = unsharp(px.clone(), 1.0).unwrap();
        let row: Vec<u8> = out.buf[..(w as usize) * 3]
            .iter()
            .step_by(3)
            .copied()
            .collect();
        assert_eq!(row[0], 60, "flat far from the edge: {row:?}");
        assert_eq!(row[15], 180, "flat far from the edge: {row:?}");
        assert!(
            row[7] < 60 && row[8] > 180,
            "overshoot at the edge: {row:?}"
        );
    }
}
