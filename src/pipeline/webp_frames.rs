//! An animated WebP's chunk structure, read before any decoder allocates: the canvas (VP8X),
//! the loop count (ANIM) and every frame (ANMF), each of which must lie within the canvas.
//! A still WebP has none of these and reads as `None`.

use crate::error::{Error, Result};

fn le24(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(*b.get(i)?) | u32::from(*b.get(i + 1)?) << 8 | u32::from(*b.get(i + 2)?) << 16)
}

fn le32(b: &[u8], i: usize) -> Option<u32> {
    Some(le24(b, i)? | u32::from(*b.get(i + 3)?) << 24)
}

/// What the frames of an animated WebP are, from its chunks alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebpLayout {
    pub canvas: (u32, u32),
    pub frames: u32,
    /// The sum of the frames' durations, in milliseconds.
    pub duration_ms: u64,
    /// How many times the animation plays; `None` for ever (a loop count of 0).
    pub plays: Option<u32>,
}

/// Walk the chunks of a WebP. `None` unless the VP8X header flags an animation; a truncated
/// file ends the walk (the decoder reports it).
pub fn layout(b: &[u8]) -> Result<Option<WebpLayout>> {
    // RIFF header (12 bytes), then the VP8X chunk: its flags, then the canvas size - 1.
    if b.get(12..16) != Some(b"VP8X") {
        return Ok(None);
    }
    let flags = b.get(20).copied().unwrap_or(0);
    if flags & 0x02 == 0 {
        return Ok(None);
    }
    let (Some(cw), Some(ch)) = (le24(b, 24), le24(b, 27)) else {
        return Err(Error::corrupt("webp: truncated VP8X chunk"));
    };
    let (cw, ch) = (cw + 1, ch + 1);
    let mut layout = WebpLayout {
        canvas: (cw, ch),
        frames: 0,
        duration_ms: 0,
        plays: None,
    };
    let mut i = 12usize;
    while let (Some(fourcc), Some(size)) = (b.get(i..i + 4), le32(b, i + 4)) {
        let body = i + 8;
        match fourcc {
            b"ANIM" => {
                layout.plays = match b.get(body + 4..body + 6) {
                    Some(&[lo, hi]) => match u32::from(u16::from_le_bytes([lo, hi])) {
                        0 => None,
                        n => Some(n),
                    },
                    _ => None,
                };
            }
            b"ANMF" => {
                let fields = (
                    le24(b, body),
                    le24(b, body + 3),
                    le24(b, body + 6),
                    le24(b, body + 9),
                    le24(b, body + 12),
                );
                let (Some(x), Some(y), Some(w), Some(h), Some(duration)) = fields else {
                    break;
                };
                layout.frames += 1;
                let (x, y, w, h) = (u64::from(x) * 2, u64::from(y) * 2, w + 1, h + 1);
                if x + u64::from(w) > u64::from(cw) || y + u64::from(h) > u64::from(ch) {
                    return Err(Error::limit(
                        "webp_frame_within_canvas",
                        format!(
                            "WebP frame {} ({w}x{h} at {x},{y}) is larger than its {cw}x{ch} canvas",
                            layout.frames
                        ),
                    ));
                }
                layout.duration_ms += u64::from(duration);
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        i = body
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
    Ok(Some(layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = fourcc.to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn u24(v: u32) -> [u8; 3] {
        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
    }

    fn webp(canvas: (u32, u32), loops: u16, frames: &[(u32, u32, u32, u32, u32)]) -> Vec<u8> {
        let mut vp8x = vec![0x02, 0, 0, 0];
        vp8x.extend_from_slice(&u24(canvas.0 - 1));
        vp8x.extend_from_slice(&u24(canvas.1 - 1));
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &vp8x));
        let mut anim = vec![0, 0, 0, 0];
        anim.extend_from_slice(&loops.to_le_bytes());
        body.extend(chunk(b"ANIM", &anim));
        for &(x, y, w, h, d) in frames {
            let mut f = Vec::new();
            for v in [x / 2, y / 2, w - 1, h - 1, d] {
                f.extend_from_slice(&u24(v));
            }
            f.push(0);
            body.extend(chunk(b"ANMF", &f));
        }
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend(body);
        v
    }

    #[test]
    fn frames_durations_and_loops_are_read() {
        let l = layout(&webp((10, 8), 3, &[(0, 0, 10, 8, 100), (2, 2, 8, 6, 250)]))
            .unwrap()
            .unwrap();
        assert_eq!(l.canvas, (10, 8));
        assert_eq!((l.frames, l.duration_ms, l.plays), (2, 350, Some(3)));
        let forever = layout(&webp((4, 4), 0, &[(0, 0, 4, 4, 10)]))
            .unwrap()
            .unwrap();
        assert_eq!(forever.plays, None);
    }

    #[test]
    fn frames_must_fit_the_canvas() {
        let e = layout(&webp((4, 4), 0, &[(2, 0, 4, 4, 10)])).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.to_string().contains("webp_frame_within_canvas"), "{e}");
    }

    #[test]
    fn stills_and_the_real_fixture() {
        assert_eq!(layout(b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0").unwrap(), None);
        let b = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/animated.webp"
        ));
        if let Ok(b) = b {
            let l = layout(&b).unwrap().expect("animated");
            assert!(l.frames > 1, "{l:?}");
        }
    }
}
