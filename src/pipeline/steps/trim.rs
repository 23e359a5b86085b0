//! `trim`: find the content inside a border of one colour, in the decoded pixels.
//!
//! Not a pixel step: it only measures. The plan is then made again from the box it finds
//! (`Plan::see` in `plan.rs`), so that `w`, `h`, `fit` and `gravity` apply to the trimmed
//! image and the resize crops the border away with no extra copy.

use crate::params::{Rgba, Trim};
use crate::pipeline::geometry::Rect;
use crate::pipeline::Pixels;

/// What the timings call the search.
pub const NAME: &str = "trim";

/// The smallest box of `area` (in `px`'s coordinates) holding every pixel that differs from
/// the border colour by more than the threshold, in `px`'s coordinates; `None` when all of
/// `area` is border (the caller keeps the image whole) or `area` is empty.
///
/// The border colour is the trim's, else the colour of `area`'s top-left pixel. A pixel is
/// border when no channel (alpha included) differs by more than the threshold, or when it
/// and the border colour are both fully transparent, whatever their colour channels hold.
pub fn content_box(px: &Pixels, area: Rect, trim: Trim) -> Option<Rect> {
    let (x0, y0, x1, y1) = bounds(px, area)?;
    let bpp = if px.alpha { 4 } else { 3 };
    let stride = px.width as usize * bpp;
    let pixel = |x: usize, y: usize| -> [u8; 4] {
        let i = y * stride + x * bpp;
        match px.buf.get(i..i + bpp) {
            Some(&[r, g, b, a]) => [r, g, b, a],
            Some(&[r, g, b]) => [r, g, b, 255],
            // Out of the buffer (a decoder that returned fewer rows): count it as border.
            _ => [0; 4],
        }
    };
    let Rgba(border) = trim.colour.unwrap_or(Rgba(pixel(x0, y0)));
    let threshold = trim.threshold;
    let is_border = |p: [u8; 4]| {
        (p[3] == 0 && border[3] == 0) || (0..4).all(|c| p[c].abs_diff(border[c]) <= threshold)
    };
    let row_has_content =
        |y: usize, xs: std::ops::Range<usize>| xs.into_iter().any(|x| !is_border(pixel(x, y)));
    let top = (y0..y1).find(|&y| row_has_content(y, x0..x1))?;
    // A content row exists, so these searches succeed; the fallbacks keep them total.
    let bottom = (top..y1)
        .rev()
        .find(|&y| row_has_content(y, x0..x1))
        .unwrap_or(top);
    let col_has_content = |x: usize| (top..=bottom).any(|y| !is_border(pixel(x, y)));
    let left = (x0..x1).find(|&x| col_has_content(x)).unwrap_or(x0);
    let right = (left..x1)
        .rev()
        .find(|&x| col_has_content(x))
        .unwrap_or(left);
    Some(Rect {
        x: left as f64,
        y: top as f64,
        w: (right + 1 - left) as f64,
        h: (bottom + 1 - top) as f64,
    })
}

/// `area` as whole pixels inside `px`: (x0, y0, x1, y1), ends exclusive; `None` if empty.
fn bounds(px: &Pixels, area: Rect) -> Option<(usize, usize, usize, usize)> {
    let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as usize;
    let x0 = clamp(area.x.floor(), px.width);
    let y0 = clamp(area.y.floor(), px.height);
    let x1 = clamp((area.x + area.w).ceil(), px.width);
    let y1 = clamp((area.y + area.h).ceil(), px.height);
    (x0 < x1 && y0 < y1).then_some((x0, y0, x1, y1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A `w`x`h` RGBA image of `bg` with a `fg` rectangle at (x, y, rw, rh).
    fn framed(
        (w, h): (u32, u32),
        bg: [u8; 4],
        fg: [u8; 4],
        (x, y, rw, rh): (u32, u32, u32, u32),
    ) -> Pixels {
        let mut buf = Vec::with_capacity((w * h * 4) as usize);
        for j in 0..h {
            for i in 0..w {
                let inside = i >= x && i < x + rw && j >= y && j < y + rh;
                buf.extend_from_slice(if inside { &fg } else { &bg });
            }
        }
        Pixels {
            buf,
            width: w,
            height: h,
            alpha: true,
        }
    }

    fn whole(px: &Pixels) -> Rect {
        Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(px.width),
            h: f64::from(px.height),
        }
    }

    fn trim(threshold: u8, colour: Option<[u8; 4]>) -> Trim {
        Trim {
            threshold,
            colour: colour.map(Rgba),
        }
    }

    fn rect(x: f64, y: f64, w: f64, h: f64) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn finds_the_content_inside_a_uniform_border() {
        let px = framed((40, 30), [255; 4], [10, 20, 30, 255], (5, 7, 20, 10));
        assert_eq!(
            content_box(&px, whole(&px), trim(10, None)),
            Some(rect(5.0, 7.0, 20.0, 10.0))
        );
    }

    #[test]
    fn threshold_decides_what_is_border() {
        // A near-white frame (250) around a near-white box (240) around black.
        let mut px = framed(
            (30, 30),
            [250, 250, 250, 255],
            [240, 240, 240, 255],
            (5, 5, 20, 20),
        );
        let inner = framed((30, 30), [0; 4], [0, 0, 0, 255], (10, 10, 10, 10));
        for j in 10..20usize {
            for i in 10..20usize {
                let k = (j * 30 + i) * 4;
                px.buf[k..k + 4].copy_from_slice(&inner.buf[k..k + 4]);
            }
        }
        let all = whole(&px);
        assert_eq!(
            content_box(&px, all, trim(5, None)),
            Some(rect(5.0, 5.0, 20.0, 20.0))
        );
        assert_eq!(
            content_box(&px, all, trim(10, None)),
            Some(rect(10.0, 10.0, 10.0, 10.0))
        );
    }

    #[test]
    fn the_given_colour_wins_over_the_corner() {
        // Red corner strip on the top row, white elsewhere, a dark box: trimming white keeps
        // the strip; trimming the corner's red keeps everything below it.
        let mut px = framed((20, 20), [255; 4], [0, 0, 0, 255], (8, 8, 4, 4));
        px.buf[0..4].copy_from_slice(&[255, 0, 0, 255]);
        let all = whole(&px);
        assert_eq!(
            content_box(&px, all, trim(0, Some([255; 4]))),
            Some(rect(0.0, 0.0, 12.0, 12.0))
        );
        assert_eq!(
            content_box(&px, all, trim(0, None)),
            Some(rect(0.0, 0.0, 20.0, 20.0))
        );
    }

    #[test]
    fn transparent_border_whatever_its_colour_channels() {
        let mut px = framed((16, 16), [0, 0, 0, 0], [9, 9, 9, 255], (3, 4, 5, 6));
        // Transparent pixels with other colour channels are border all the same.
        px.buf[4..8].copy_from_slice(&[200, 100, 50, 0]);
        assert_eq!(
            content_box(&px, whole(&px), trim(0, None)),
            Some(rect(3.0, 4.0, 5.0, 6.0))
        );
    }

    #[test]
    fn all_border_or_empty_is_none() {
        let px = framed((8, 8), [7; 4], [7; 4], (0, 0, 8, 8));
        assert_eq!(content_box(&px, whole(&px), trim(0, None)), None);
        assert_eq!(
            content_box(&px, rect(3.0, 3.0, 0.0, 5.0), trim(0, None)),
            None
        );
        assert_eq!(
            content_box(&px, rect(9.0, 9.0, 5.0, 5.0), trim(0, None)),
            None
        );
    }

    #[test]
    fn only_looks_inside_the_area() {
        // Content at (2,2); an area that starts after it sees only border.
        let px = framed((20, 20), [255; 4], [0, 0, 0, 255], (2, 2, 2, 2));
        assert_eq!(
            content_box(&px, rect(5.0, 5.0, 15.0, 15.0), trim(0, None)),
            None
        );
        assert_eq!(
            content_box(&px, rect(1.0, 1.0, 10.0, 10.0), trim(0, None)),
            Some(rect(2.0, 2.0, 2.0, 2.0))
        );
    }

    #[test]
    fn rgb_pixels_are_opaque() {
        let rgba = framed((10, 6), [255; 4], [0, 0, 0, 255], (2, 1, 3, 2));
        let px = Pixels {
            buf: rgba.buf.chunks(4).flat_map(|p| p[..3].to_vec()).collect(),
            alpha: false,
            ..rgba
        };
        assert_eq!(
            content_box(&px, whole(&px), trim(0, Some([255, 255, 255, 255]))),
            Some(rect(2.0, 1.0, 3.0, 2.0))
        );
    }

    proptest! {
        /// The box is exactly the drawn rectangle, inside the area, for any placement.
        #[test]
        fn box_is_the_drawn_rectangle(
            (w, h) in (1u32..40, 1u32..40),
            r in (0u32..40, 0u32..40, 1u32..40, 1u32..40),
            threshold in 0u8..100,
        ) {
            let (x, y) = (r.0 % w, r.1 % h);
            let (rw, rh) = (r.2.min(w - x), r.3.min(h - y));
            let px = framed((w, h), [200, 200, 200, 255], [0, 0, 0, 255], (x, y, rw, rh));
            let got = content_box(&px, whole(&px), trim(threshold, Some([200, 200, 200, 255])));
            prop_assert_eq!(got, Some(rect(f64::from(x), f64::from(y), f64::from(rw), f64::from(rh))));
        }
    }
}
