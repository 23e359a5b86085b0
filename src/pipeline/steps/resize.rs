//! The resize step: crop the planned region out of the decoded pixels and resize it to the
//! planned size (the Lanczos3 core is [`pipeline::resize`](crate::pipeline::resize)).

use super::Context;
use crate::error::Result;
use crate::pipeline::geometry::Rect;
use crate::pipeline::{resize, Pixels};

/// Crop `region` (in stored pixels of a source of `stored` size) and resize it to `size`.
/// Always in a plan: it is what holds the output to the planned size, whatever the decoder
/// returned, and it returns its input untouched when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resize {
    pub region: Rect,
    pub stored: (u32, u32),
    /// DCT scale denominator the source is decoded at (1 unless JPEG).
    pub shrink: u32,
    pub size: (u32, u32),
    /// In linear light, through 16-bit intermediates (`lin=1`).
    pub linear: bool,
}

impl Resize {
    pub const NAME: &'static str = "resize";

    pub fn run(&self, px: Pixels, cx: &mut Context) -> Result<Pixels> {
        // The decoder may have shrunk the image (DCT scaling rounds sizes up): rescale the crop.
        let (sx, sy) = (
            f64::from(px.width) / f64::from(self.stored.0),
            f64::from(px.height) / f64::from(self.stored.1),
        );
        let r = self.region;
        let crop = Rect {
            x: r.x * sx,
            y: r.y * sy,
            w: (r.w * sx).min(f64::from(px.width)),
            h: (r.h * sy).min(f64::from(px.height)),
        };
        if self.linear {
            resize::resize_linear(cx.resizer, px, crop, self.size)
        } else {
            resize::resize(cx.resizer, px, crop, self.size)
        }
    }

    /// The resizer's intermediate (output width by the decoded crop height) and, for a large
    /// reduction, the box-filtered image Lanczos3 starts from; in linear light all of it at
    /// 16 bits, plus the 16-bit copy of the decoded image and of the output.
    pub fn scratch_bytes(&self) -> u64 {
        let scratch = self.scratch_bytes_8bit();
        if !self.linear {
            return scratch;
        }
        let shrink = u64::from(self.shrink.max(1));
        let decoded = (u64::from(self.stored.0).div_ceil(shrink))
            * (u64::from(self.stored.1).div_ceil(shrink));
        scratch * 2 + decoded * 8 + pixels(self.size) * 8
    }

    fn scratch_bytes_8bit(&self) -> u64 {
        let shrink = f64::from(self.shrink);
        let crop_h = (self.region.h / shrink).ceil() as u64 + 1;
        let decoded_crop = Rect {
            x: 0.0,
            y: 0.0,
            w: self.region.w / shrink,
            h: self.region.h / shrink,
        };
        match resize::preshrink(decoded_crop, self.size) {
            Some(mid) => pixels(mid) * 4 + u64::from(mid.0) * crop_h * 4,
            None => u64::from(self.size.0) * crop_h * 4,
        }
    }
}

fn pixels((w, h): (u32, u32)) -> u64 {
    u64::from(w) * u64::from(h)
}
