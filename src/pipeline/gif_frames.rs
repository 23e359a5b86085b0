//! A GIF's block structure, read before any decoder allocates: the logical screen (canvas)
//! and every image descriptor (frame). The `image` crate reports the canvas size, but the
//! `gif` decoder allocates each frame at the size its own descriptor claims, so a 1x1 canvas
//! with a 14500x14500 frame would be weighed as one pixel and decoded as 200 megapixels.
//! Frames must lie within the canvas and nothing may be 0 pixels wide or high.

use crate::error::{Error, Result};

fn le16(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(*b.get(i)?) | u32::from(*b.get(i + 1)?) << 8)
}

/// Skip a chain of data sub-blocks starting at `i`; the offset after its terminator (or the
/// end of the data when it is truncated).
fn skip_sub_blocks(b: &[u8], mut i: usize) -> usize {
    while let Some(&n) = b.get(i) {
        i += 1;
        if n == 0 {
            return i;
        }
        i += usize::from(n);
    }
    b.len()
}

/// What the frames of a GIF are, from its blocks alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GifLayout {
    pub canvas: (u32, u32),
    pub frames: u32,
    /// The largest frame, in pixels.
    pub largest_frame: u64,
    /// The sum of the frames' delays (Graphic Control Extensions), in milliseconds.
    pub duration_ms: u64,
    /// How many times the animation plays: 1 without a NETSCAPE2.0 loop extension, its
    /// count + 1 with one (GIF counts the repeats), `None` for ever (a count of 0).
    pub plays: Option<u32>,
}

/// Walk the blocks of a GIF. A truncated file or one with an unknown block ends the walk:
/// what was read is checked, and the decoder reports the rest.
pub fn layout(b: &[u8]) -> Result<GifLayout> {
    let sw = le16(b, 6).ok_or_else(|| Error::corrupt("gif: no logical screen"))?;
    let sh = le16(b, 8).ok_or_else(|| Error::corrupt("gif: no logical screen"))?;
    if sw == 0 || sh == 0 {
        return Err(Error::corrupt(format!("gif: the canvas is {sw}x{sh}")));
    }
    let packed = b.get(10).copied().unwrap_or(0);
    let mut i = 13;
    if packed & 0x80 != 0 {
        i += 3 << ((packed & 7) + 1);
    }
    let mut layout = GifLayout {
        canvas: (sw, sh),
        frames: 0,
        largest_frame: 0,
        duration_ms: 0,
        plays: Some(1),
    };
    let mut looped = false;
    while let Some(&block) = b.get(i) {
        match block {
            0x3B => break,
            0x21 => {
                match (b.get(i + 1), b.get(i + 2)) {
                    // Graphic Control Extension: the delay of the next frame, in 1/100 s.
                    (Some(0xF9), Some(4..)) => {
                        layout.duration_ms += u64::from(le16(b, i + 4).unwrap_or(0)) * 10;
                    }
                    // Application Extension: the first NETSCAPE2.0 loop count counts, as
                    // in browsers.
                    (Some(0xFF), Some(11))
                        if !looped
                            && b.get(i + 3..i + 14) == Some(b"NETSCAPE2.0")
                            && b.get(i + 14..i + 16) == Some(&[3, 1]) =>
                    {
                        looped = true;
                        layout.plays = match le16(b, i + 16) {
                            Some(0) => None,
                            Some(n) => Some(n + 1),
                            None => Some(1),
                        };
                    }
                    _ => {}
                }
                i = skip_sub_blocks(b, i + 2);
            }
            0x2C => {
                let (Some(left), Some(top), Some(w), Some(h), Some(&flags)) = (
                    le16(b, i + 1),
                    le16(b, i + 3),
                    le16(b, i + 5),
                    le16(b, i + 7),
                    b.get(i + 9),
                ) else {
                    break;
                };
                layout.frames += 1;
                if w == 0 || h == 0 {
                    return Err(Error::corrupt(format!(
                        "gif: frame {} is {w}x{h}",
                        layout.frames
                    )));
                }
                if left + w > sw || top + h > sh {
                    return Err(Error::limit(
                        "gif_frame_within_canvas",
                        format!(
                            "GIF frame {} ({w}x{h} at {left},{top}) is larger than its {sw}x{sh} canvas",
                            layout.frames
                        ),
                    ));
                }
                layout.largest_frame = layout.largest_frame.max(u64::from(w) * u64::from(h));
                i += 10;
                if flags & 0x80 != 0 {
                    i += 3 << ((flags & 7) + 1);
                }
                // The LZW minimum code size, then the image data.
                i = skip_sub_blocks(b, i + 1);
            }
            _ => break,
        }
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif(screen: (u16, u16), frames: &[(u16, u16, u16, u16)]) -> Vec<u8> {
        let mut v = b"GIF89a".to_vec();
        v.extend_from_slice(&screen.0.to_le_bytes());
        v.extend_from_slice(&screen.1.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0]);
        for &(l, t, w, h) in frames {
            v.push(0x2C);
            for x in [l, t, w, h] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&[0, 2, 2, 0x4C, 0x01, 0]);
        }
        v.push(0x3B);
        v
    }

    #[test]
    fn frames_must_fit_the_canvas() {
        let ok = layout(&gif((10, 10), &[(0, 0, 10, 10), (2, 2, 8, 8)])).unwrap();
        assert_eq!((ok.frames, ok.largest_frame), (2, 100));
        assert_eq!((ok.duration_ms, ok.plays), (0, Some(1)));
        let e = layout(&gif((1, 1), &[(0, 0, 14500, 14500)])).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.to_string().contains("gif_frame_within_canvas"), "{e}");
        assert!(layout(&gif((10, 10), &[(0, 0, 10, 10), (5, 0, 6, 1)])).is_err());
        assert!(layout(&gif((0, 0), &[])).is_err());
        assert!(layout(&gif((4, 4), &[(0, 0, 0, 4)])).is_err());
    }

    #[test]
    fn the_real_fixture_reads() {
        let b = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/animated.gif"
        ))
        .unwrap();
        let l = layout(&b).unwrap();
        assert!(l.frames > 1, "{l:?}");
    }

    #[test]
    fn delays_and_loop_count_are_read() {
        let mut v = b"GIF89a\x04\0\x04\0\0\0\0".to_vec();
        // NETSCAPE2.0, 2 repeats: 3 plays.
        v.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x02\0\0");
        for delay in [7u8, 25] {
            v.extend_from_slice(&[0x21, 0xF9, 4, 0, delay, 0, 0, 0]);
            v.extend_from_slice(&[0x2C, 0, 0, 0, 0, 4, 0, 4, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        v.push(0x3B);
        let l = layout(&v).unwrap();
        assert_eq!((l.frames, l.duration_ms, l.plays), (2, 320, Some(3)));
        let i = v.windows(3).position(|w| w == [3, 1, 2]).unwrap();
        v[i + 2] = 0;
        assert_eq!(layout(&v).unwrap().plays, None);
    }
}
