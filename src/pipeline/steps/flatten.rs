//! The flatten step: composite transparent pixels over an opaque colour, for formats without
//! alpha (JPEG).

use super::Context;
use crate::error::Result;
use crate::params::Rgba;
use crate::pipeline::Pixels;

/// Composite over `background` (opaque; in a plan only when the output format has no alpha
/// and the image may have some).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flatten {
    pub background: Rgba,
}

impl Flatten {
    pub const NAME: &'static str = "flatten";

    pub fn run(&self, px: Pixels, _: &mut Context) -> Result<Pixels> {
        Ok(flatten(px, self.background))
    }

    /// None: the RGB copy replaces its RGBA input.
    pub fn scratch_bytes(&self) -> u64 {
        0
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

    #[test]
    fn composites_over_the_background() {
        // Transparent, opaque black, half-transparent white.
        let px = Pixels {
            buf: vec![0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 128],
            width: 3,
            height: 1,
            alpha: true,
        };
        let flat = flatten(px, Rgba([255, 0, 0, 255]));
        assert!(!flat.alpha);
        assert_eq!(flat.buf, vec![255, 0, 0, 0, 0, 0, 255, 128, 128]);
        let opaque = Pixels {
            buf: vec![1, 2, 3],
            width: 1,
            height: 1,
            alpha: false,
        };
        assert_eq!(flatten(opaque.clone(), Rgba([255, 0, 0, 255])), opaque);
    }
}
