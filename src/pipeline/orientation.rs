//! Orientation: the 8 ways to turn and mirror an image (the dihedral group D4, which is
//! exactly EXIF's orientations 1..=8), with composition, so that a user's rotation or flip
//! composes with the source's EXIF tag into one transform applied once, on the small output.
//!
//! Each element is held as its EXIF value and acts on pixel coordinates through a signed
//! permutation matrix (`x` right, `y` down, origin at the image centre); composing two is
//! multiplying their matrices.

use super::geometry::Rect;

/// A transform from stored to displayed pixels: EXIF orientation 1..=8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orientation(u8);

impl Default for Orientation {
    fn default() -> Self {
        Orientation::identity()
    }
}

/// Row-major 2x2 matrix taking a stored (centred) coordinate to its displayed one, indexed by
/// EXIF value - 1.
const MATRICES: [[i8; 4]; 8] = [
    [1, 0, 0, 1],   // 1: as stored
    [-1, 0, 0, 1],  // 2: mirrored left-right
    [-1, 0, 0, -1], // 3: turned 180°
    [1, 0, 0, -1],  // 4: mirrored top-bottom
    [0, 1, 1, 0],   // 5: transposed (mirrored along the main diagonal)
    [0, -1, 1, 0],  // 6: turned 90° clockwise
    [0, -1, -1, 0], // 7: transversed (mirrored along the other diagonal)
    [0, 1, -1, 0],  // 8: turned 270° clockwise
];

impl Orientation {
    /// EXIF 1: the stored pixels are the displayed ones.
    pub const NORMAL: Orientation = Orientation(1);

    pub const fn identity() -> Orientation {
        Orientation::NORMAL
    }

    /// Mirror left-right (EXIF 2).
    pub const fn flip_h() -> Orientation {
        Orientation(2)
    }

    /// Mirror top-bottom (EXIF 4).
    pub const fn flip_v() -> Orientation {
        Orientation(4)
    }

    /// Turn clockwise by `degrees` (0, 90, 180 or 270, modulo 360); `None` for other angles.
    pub const fn rotate(degrees: u32) -> Option<Orientation> {
        match degrees % 360 {
            0 => Some(Orientation(1)),
            90 => Some(Orientation(6)),
            180 => Some(Orientation(3)),
            270 => Some(Orientation(8)),
            _ => None,
        }
    }

    /// From the EXIF tag value; anything outside 1..=8 is treated as 1, as browsers do.
    pub fn from_exif(v: u8) -> Orientation {
        if (1..=8).contains(&v) {
            Orientation(v)
        } else {
            Orientation::NORMAL
        }
    }

    pub fn exif(self) -> u8 {
        self.0
    }

    /// All 8 orientations, EXIF order.
    pub fn all() -> impl Iterator<Item = Orientation> {
        (1..=8).map(Orientation)
    }

    fn matrix(self) -> [i8; 4] {
        MATRICES[usize::from(self.0 - 1)]
    }

    fn from_matrix(m: [i8; 4]) -> Orientation {
        // Products and transposes of these matrices are among them: D4 is closed.
        let i = MATRICES.iter().position(|&x| x == m).unwrap_or(0);
        Orientation(i as u8 + 1)
    }

    /// `self` first, then `next`: what a user's `rot`/`flip` does to an EXIF-oriented source.
    #[must_use]
    pub fn then(self, next: Orientation) -> Orientation {
        next.compose(self)
    }

    /// `self ∘ first`: `first` applied, then `self` (the mathematical order).
    #[must_use]
    pub fn compose(self, first: Orientation) -> Orientation {
        let [a, b, c, d] = self.matrix();
        let [e, f, g, h] = first.matrix();
        Orientation::from_matrix([a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h])
    }

    /// The transform that undoes `self` (the transpose: these matrices are orthogonal).
    #[must_use]
    pub fn inverse(self) -> Orientation {
        let [a, b, c, d] = self.matrix();
        Orientation::from_matrix([a, c, b, d])
    }

    /// Orientations 5..=8 swap width and height.
    pub fn swaps_axes(self) -> bool {
        self.matrix()[0] == 0
    }

    /// Displayed size of a stored image of `stored` size.
    pub fn display_size(self, stored: (u32, u32)) -> (u32, u32) {
        if self.swaps_axes() {
            (stored.1, stored.0)
        } else {
            stored
        }
    }

    /// Map a rectangle in displayed coordinates to the stored image of `stored` size.
    pub fn crop_to_stored(self, r: Rect, stored: (u32, u32)) -> Rect {
        let (w, h) = (f64::from(stored.0), f64::from(stored.1));
        let flip_x = |x: f64, len: f64| w - x - len;
        let flip_y = |y: f64, len: f64| h - y - len;
        match self.0 {
            2 => Rect {
                x: flip_x(r.x, r.w),
                ..r
            },
            3 => Rect {
                x: flip_x(r.x, r.w),
                y: flip_y(r.y, r.h),
                ..r
            },
            4 => Rect {
                y: flip_y(r.y, r.h),
                ..r
            },
            // Transposed family: displayed x runs along stored y and vice versa.
            5 => Rect {
                x: r.y,
                y: r.x,
                w: r.h,
                h: r.w,
            },
            6 => Rect {
                x: r.y,
                y: flip_y(r.x, r.w),
                w: r.h,
                h: r.w,
            },
            7 => Rect {
                x: flip_x(r.y, r.h),
                y: flip_y(r.x, r.w),
                w: r.h,
                h: r.w,
            },
            8 => Rect {
                x: flip_x(r.y, r.h),
                y: r.x,
                w: r.h,
                h: r.w,
            },
            _ => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::steps::orient::orient;
    use crate::pipeline::Pixels;

    fn all() -> Vec<Orientation> {
        Orientation::all().collect()
    }

    #[test]
    fn group_laws_hold_for_all_elements() {
        let id = Orientation::identity();
        for a in all() {
            assert_eq!(a.then(id), a);
            assert_eq!(id.then(a), a);
            assert_eq!(a.then(a.inverse()), id, "{a:?}");
            assert_eq!(a.inverse().then(a), id, "{a:?}");
            assert_eq!(a.inverse().inverse(), a);
            for b in all() {
                assert_eq!(a.then(b), b.compose(a));
                // The axes swap when exactly one of the two swaps them.
                assert_eq!(a.then(b).swaps_axes(), a.swaps_axes() != b.swaps_axes());
                for c in all() {
                    assert_eq!(a.then(b).then(c), a.then(b.then(c)), "{a:?} {b:?} {c:?}");
                }
            }
        }
        // Closed, and every element distinct: a Cayley table row is a permutation.
        for a in all() {
            let mut row: Vec<u8> = all().iter().map(|&b| a.then(b).exif()).collect();
            row.sort_unstable();
            assert_eq!(row, (1..=8).collect::<Vec<_>>(), "{a:?}");
        }
        // Not commutative: turning then mirroring is not mirroring then turning.
        let r90 = Orientation::rotate(90).unwrap();
        assert_ne!(
            r90.then(Orientation::flip_h()),
            Orientation::flip_h().then(r90)
        );
    }

    #[test]
    fn constructors_are_the_exif_orientations() {
        let r = |d| Orientation::rotate(d).unwrap();
        assert_eq!(Orientation::identity().exif(), 1);
        assert_eq!(Orientation::default(), Orientation::NORMAL);
        assert_eq!(Orientation::flip_h().exif(), 2);
        assert_eq!(r(180).exif(), 3);
        assert_eq!(Orientation::flip_v().exif(), 4);
        assert_eq!(r(90).then(Orientation::flip_h()).exif(), 5);
        assert_eq!(r(90).exif(), 6);
        assert_eq!(r(90).then(Orientation::flip_v()).exif(), 7);
        assert_eq!(r(270).exif(), 8);
        assert_eq!(r(0), Orientation::identity());
        assert_eq!(r(450), r(90));
        assert_eq!(Orientation::rotate(45), None);
        assert_eq!(r(90).then(r(90)), r(180));
        assert_eq!(r(90).then(r(270)), r(0));
        assert_eq!(r(90).inverse(), r(270));
        assert_eq!(Orientation::flip_h().then(Orientation::flip_v()), r(180));
        assert_eq!(Orientation::from_exif(0), Orientation::NORMAL);
        assert_eq!(Orientation::from_exif(9), Orientation::NORMAL);
        for v in 1..=8 {
            assert_eq!(Orientation::from_exif(v).exif(), v);
        }
    }

    /// 3x2 pixels, each a distinct value: any wrong turn or mirror moves some value.
    fn asymmetric() -> Pixels {
        Pixels {
            buf: (0u8..6).flat_map(|i| [i, 10 + i, 20 + i]).collect(),
            width: 3,
            height: 2,
            alpha: false,
        }
    }

    #[test]
    fn composition_is_applying_one_pixel_transform_then_the_other() {
        for o in all() {
            for user in all() {
                let twice = orient(orient(asymmetric(), o).unwrap(), user).unwrap();
                let once = orient(asymmetric(), o.then(user)).unwrap();
                assert_eq!(once, twice, "EXIF {o:?} then {user:?}");
            }
            // Each element moves the pixels its own way, and its inverse puts them back.
            let shown = orient(asymmetric(), o).unwrap();
            assert_eq!((shown.width, shown.height), o.display_size((3, 2)), "{o:?}");
            assert_eq!(orient(shown, o.inverse()).unwrap(), asymmetric(), "{o:?}");
        }
        let distinct: std::collections::HashSet<Vec<u8>> = all()
            .into_iter()
            .map(|o| orient(asymmetric(), o).unwrap().buf)
            .collect();
        assert_eq!(distinct.len(), 8);
    }

    #[test]
    fn pixel_transform_is_the_image_crates_exif_orientation() {
        // The reference: the image crate applying the EXIF tag to the same pixels.
        for o in all() {
            let mut want = image::DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(3, 2, asymmetric().buf).unwrap(),
            );
            want.apply_orientation(image::metadata::Orientation::from_exif(o.exif()).unwrap());
            let got = orient(asymmetric(), o).unwrap();
            assert_eq!(
                (got.width, got.height, got.buf),
                (want.width(), want.height(), want.to_rgb8().into_raw()),
                "{o:?}"
            );
        }
    }

    #[test]
    fn crop_maps_back_to_stored_pixels() {
        // A stored 40x20 image, displayed 20x40 under orientation 6 (rotated 90° clockwise).
        let stored = (40, 20);
        let o6 = Orientation::from_exif(6);
        assert_eq!(o6.display_size(stored), (20, 40));
        // The displayed top strip (rows 0..10) comes from the stored left columns 0..10.
        let r = Rect {
            x: 0.0,
            y: 0.0,
            w: 20.0,
            h: 10.0,
        };
        assert_eq!(
            o6.crop_to_stored(r, stored),
            Rect {
                x: 0.0,
                y: 0.0,
                w: 10.0,
                h: 20.0
            }
        );
        // Displayed left half (x 0..10) comes from the stored bottom rows (y 10..20).
        let left = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 40.0,
        };
        assert_eq!(o6.crop_to_stored(left, stored).y, 10.0);
        // Orientation 8: displayed top comes from the stored right columns.
        let o8 = Orientation::from_exif(8);
        assert_eq!(o8.crop_to_stored(r, stored).x, 30.0);
        assert_eq!(Orientation::identity().crop_to_stored(r, stored), r);
    }

    #[test]
    fn crop_to_stored_agrees_with_the_pixel_transform() {
        // Every displayed rectangle of a 5x3 image of distinct pixels, under each of the 8
        // orientations (as `orient` applies them), must hold exactly the pixels of the stored
        // rectangle that `crop_to_stored` names.
        let (sw, sh) = (5u32, 3u32);
        let stored = Pixels {
            buf: (0..sw * sh).flat_map(|i| [i as u8; 3]).collect(),
            width: sw,
            height: sh,
            alpha: false,
        };
        let pixels = |img: &Pixels, r: Rect| {
            let mut v = Vec::new();
            for y in r.y as u32..(r.y + r.h) as u32 {
                for x in r.x as u32..(r.x + r.w) as u32 {
                    v.push(img.buf[((y * img.width + x) * 3) as usize]);
                }
            }
            v.sort_unstable();
            v
        };
        for o in all() {
            let shown = orient(stored.clone(), o).unwrap();
            let (dw, dh) = o.display_size((sw, sh));
            assert_eq!((shown.width, shown.height), (dw, dh), "{o:?}");
            for (x, y) in (0..dw).flat_map(|x| (0..dh).map(move |y| (x, y))) {
                for (w, h) in (1..=dw - x).flat_map(|w| (1..=dh - y).map(move |h| (w, h))) {
                    let r = Rect {
                        x: f64::from(x),
                        y: f64::from(y),
                        w: f64::from(w),
                        h: f64::from(h),
                    };
                    let s = o.crop_to_stored(r, (sw, sh));
                    assert!(
                        s.x >= 0.0 && s.y >= 0.0 && s.x + s.w <= 5.0 && s.y + s.h <= 3.0,
                        "{o:?}: {r:?} -> {s:?}"
                    );
                    assert_eq!(
                        pixels(&shown, r),
                        pixels(&stored, s),
                        "{o:?}: {r:?} -> {s:?}"
                    );
                }
            }
        }
    }
}
