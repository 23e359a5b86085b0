//! AVIF decoding: each AV1 item of the HEIF container (`heif`) through rav1d, the Rust port
//! of dav1d, then YUV to 8-bit RGB(A) here: 8/10/12-bit, 4:2:0/4:2:2/4:4:4/monochrome, the
//! matrix and range of `colr nclx` (else of the AV1 sequence header), grid tiles placed and
//! cropped, the alpha auxiliary attached (un-premultiplied when the file says `prem`).
//!
//! A frame whose size differs from its `ispe` is refused: admission weighed the `ispe` size,
//! so a bitstream claiming more must not be decoded. rav1d runs on the calling thread (one
//! thread, one frame of delay) with a frame-size limit taken from the header.

use super::heif::{Coded, Heif, Image, Nclx};
use super::Pixels;
use crate::error::{Error, Result};
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// Bytes rav1d holds while decoding a tile of `px` pixels, besides the coded data: the
/// picture (up to three 16-bit planes) and as much again for its per-frame state (measured
/// below that on 8- and 10-bit 4:4:4 frames).
pub fn decoder_bytes(tile_px: u64) -> u64 {
    tile_px * 12
}

/// Decode `heif`'s primary image (AV1) to 8-bit RGB, or RGBA when it has alpha.
pub fn decode(file: &[u8], heif: &Heif) -> Result<Pixels> {
    let (w, h) = heif.image.size;
    let alpha = heif.alpha.is_some();
    let channels = if alpha { 4 } else { 3 };
    let mut px = Pixels {
        buf: vec![0; w as usize * h as usize * channels],
        width: w,
        height: h,
        alpha,
    };
    let mut decoder = Decoder::new(heif.image.tile_size())?;
    place(
        file,
        &heif.image,
        &mut decoder,
        &mut px,
        |frame, out, x0, y0| frame.to_rgb(heif.nclx, out, x0, y0),
    )?;
    if let Some(a) = &heif.alpha {
        let mut decoder = Decoder::new(a.tile_size())?;
        place(file, a, &mut decoder, &mut px, |frame, out, x0, y0| {
            frame.to_alpha(out, x0, y0);
            Ok(())
        })?;
        if heif.premultiplied {
            unpremultiply(&mut px.buf);
        }
    }
    Ok(px)
}

/// Decode each tile of `image` and hand it to `write` at its place in `out`.
fn place(
    file: &[u8],
    image: &Image,
    decoder: &mut Decoder,
    out: &mut Pixels,
    mut write: impl FnMut(&Frame, &mut Pixels, u32, u32) -> Result<()>,
) -> Result<()> {
    let (tw, th) = image.tile_size();
    for (i, tile) in image.tiles.iter().enumerate() {
        let frame = decoder.decode(file, tile)?;
        let (col, row) = (i as u32 % image.columns, i as u32 / image.columns);
        write(&frame, out, col * tw, row * th)?;
    }
    Ok(())
}

/// A rav1d context, closed on drop.
struct Decoder {
    ctx: Option<Dav1dContext>,
}

impl Decoder {
    fn new((w, h): (u32, u32)) -> Result<Decoder> {
        let mut s = MaybeUninit::<Dav1dSettings>::uninit();
        // SAFETY: `s` is valid to write a `Dav1dSettings` to; `dav1d_default_settings`
        // initialises every field.
        let mut s = unsafe {
            dav1d::dav1d_default_settings(NonNull::new_unchecked(s.as_mut_ptr()));
            s.assume_init()
        };
        s.n_threads = 1;
        s.max_frame_delay = 1;
        // No log lines on stderr: our error says what failed.
        // SAFETY: no callback and no cookie: rav1d then logs nothing.
        s.logger = unsafe { rav1d::include::dav1d::dav1d::Dav1dLogger::new(None, None) };
        // Frames larger than the header's tile are refused before rav1d allocates them.
        s.frame_size_limit = w.saturating_mul(h).max(1);
        let mut ctx = None;
        // SAFETY: both pointers are valid for the call; `ctx` receives the context.
        let r = unsafe {
            dav1d::dav1d_open(Some(NonNull::from(&mut ctx)), Some(NonNull::from(&mut s)))
        };
        if r.0 != 0 || ctx.is_none() {
            return Err(Error::Internal(format!("rav1d: open failed ({})", r.0)));
        }
        Ok(Decoder { ctx })
    }

    /// Decode one coded item to its frame, which must be exactly `tile.size`.
    fn decode(&mut self, file: &[u8], tile: &Coded) -> Result<Frame> {
        let bytes = tile.data(file);
        let mut data = Dav1dData::default();
        // SAFETY: `data` is valid to write to; on success `ptr` is an allocation of
        // `bytes.len()` bytes owned by `data`.
        let ptr = unsafe { dav1d::dav1d_data_create(Some(NonNull::from(&mut data)), bytes.len()) };
        if ptr.is_null() {
            return Err(Error::corrupt("avif: empty or unallocatable AV1 item"));
        }
        // SAFETY: `ptr` is a fresh allocation of `bytes.len()` bytes, not aliased.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        let result = self.send_and_get(&mut data);
        if data.sz > 0 {
            // SAFETY: `data` was created by `dav1d_data_create` and is still referenced.
            unsafe { dav1d::dav1d_data_unref(Some(NonNull::from(&mut data))) };
        }
        let frame = result?;
        let (w, h) = (frame.pic.p.w, frame.pic.p.h);
        if (w as i64, h as i64) != (i64::from(tile.size.0), i64::from(tile.size.1)) {
            return Err(Error::corrupt(format!(
                "avif: the AV1 frame is {w}x{h}, its ispe says {}x{}",
                tile.size.0, tile.size.1
            )));
        }
        Ok(frame)
    }

    fn send_and_get(&mut self, data: &mut Dav1dData) -> Result<Frame> {
        const EAGAIN: i32 = -(libc_eagain());
        let mut got = None;
        // A bounded number of rounds: each either consumes data or yields a picture.
        for _ in 0..64 {
            if data.sz == 0 {
                break;
            }
            // SAFETY: the context is open and `data` is a valid, owned Dav1dData.
            let r = unsafe { dav1d::dav1d_send_data(self.ctx, Some(NonNull::from(&mut *data))) };
            match r.0 {
                0 => {}
                EAGAIN => {
                    if let Some(f) = self.picture()? {
                        got.get_or_insert(f);
                    }
                }
                e => return Err(av1_error(e)),
            }
        }
        if let Some(f) = got {
            return Ok(f);
        }
        self.picture()?
            .ok_or_else(|| Error::corrupt("avif: the AV1 item holds no frame"))
    }

    fn picture(&mut self) -> Result<Option<Frame>> {
        let mut pic = Dav1dPicture::default();
        // SAFETY: the context is open; `pic` is valid to write to.
        let r = unsafe { dav1d::dav1d_get_picture(self.ctx, Some(NonNull::from(&mut pic))) };
        match r.0 {
            0 => Ok(Some(Frame { pic })),
            e if e == -(libc_eagain()) => Ok(None),
            e => Err(av1_error(e)),
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from `dav1d_open` and is closed once (it becomes `None`).
        unsafe { dav1d::dav1d_close(Some(NonNull::from(&mut self.ctx))) };
    }
}

const fn libc_eagain() -> i32 {
    11 // EAGAIN on Linux (x86_64 and aarch64), as rav1d returns it
}

fn av1_error(code: i32) -> Error {
    if code == -12 {
        // ENOMEM: rav1d refused an allocation (or a frame over the size limit)
        return Error::corrupt("avif: the AV1 frame is larger than its header says");
    }
    Error::corrupt(format!("avif: invalid AV1 data (error {code})"))
}

/// A decoded picture, released on drop.
struct Frame {
    pic: Dav1dPicture,
}

impl Drop for Frame {
    fn drop(&mut self) {
        // SAFETY: `pic` was filled by `dav1d_get_picture` and is released once.
        unsafe { dav1d::dav1d_picture_unref(Some(NonNull::from(&mut self.pic))) };
    }
}

/// YUV to RGB constants: (Kr, Kb) of the matrix, or `None` for identity (GBR).
fn matrix_coefficients(matrix: u16) -> Option<(f32, f32)> {
    Some(match matrix {
        0 => return None,
        1 => (0.2126, 0.0722),
        4 => (0.30, 0.11),
        7 => (0.212, 0.087),
        9 | 10 => (0.2627, 0.0593),
        // 5, 6 (BT.601) and unspecified: libavif's default too.
        _ => (0.299, 0.114),
    })
}

impl Frame {
    fn bpc(&self) -> u32 {
        self.pic.p.bpc as u32
    }

    /// Plane `i`'s sample at (x, y) (coordinates within the plane).
    #[inline]
    fn sample(&self, plane: usize, x: usize, y: usize) -> u16 {
        let stride = self.pic.stride[plane.min(1)];
        let Some(base) = self.pic.data[plane] else {
            return 0;
        };
        let base = base.as_ptr() as *const u8;
        // SAFETY: rav1d's picture planes hold `h` rows (chroma: subsampled) of `stride`
        // bytes each, and callers stay within the plane's width and height.
        unsafe {
            if self.bpc() > 8 {
                let row = base.offset(y as isize * stride) as *const u16;
                *row.add(x)
            } else {
                *base.offset(y as isize * stride).add(x) as u16
            }
        }
    }

    fn subsampling(&self) -> (bool, bool) {
        match self.pic.p.layout {
            DAV1D_PIXEL_LAYOUT_I420 => (true, true),
            DAV1D_PIXEL_LAYOUT_I422 => (true, false),
            _ => (false, false),
        }
    }

    /// The AV1 sequence header's (matrix, full range).
    fn seq_colour(&self) -> (u16, bool) {
        match self.pic.seq_hdr {
            // SAFETY: `seq_hdr` points at the header the picture holds a reference to.
            Some(s) => unsafe {
                let s = s.as_ref();
                (s.mtrx as u16, s.color_range != 0)
            },
            None => (2, false),
        }
    }

    /// Write this frame's RGB into `out` at (x0, y0), cropped to `out`.
    fn to_rgb(&self, nclx: Option<Nclx>, out: &mut Pixels, x0: u32, y0: u32) -> Result<()> {
        let (seq_matrix, seq_full) = self.seq_colour();
        let (matrix, full) = nclx.map_or((seq_matrix, seq_full), |n| {
            // nclx "unspecified" defers to the bitstream.
            (
                if n.matrix == 2 { seq_matrix } else { n.matrix },
                n.full_range,
            )
        });
        let depth = self.bpc();
        let max = ((1u32 << depth) - 1) as f32;
        let scale = (1u32 << (depth - 8)) as f32;
        let (y_off, y_range, c_range) = if full {
            (0.0, max, max)
        } else {
            (16.0 * scale, 219.0 * scale, 224.0 * scale)
        };
        let mid = (1u32 << (depth - 1)) as f32;
        let mono = self.pic.p.layout == DAV1D_PIXEL_LAYOUT_I400;
        let (sx, sy) = self.subsampling();
        let (fw, fh) = (self.pic.p.w as u32, self.pic.p.h as u32);
        let (cw, ch) = (
            if sx { fw.div_ceil(2) } else { fw },
            if sy { fh.div_ceil(2) } else { fh },
        );
        let kk = matrix_coefficients(matrix);
        let channels = if out.alpha { 4 } else { 3 };
        let w = fw.min(out.width - x0);
        let h = fh.min(out.height - y0);
        // Chroma at a luma position, bilinear between centre-sited chroma samples (libavif's
        // "bilinear" upsampling).
        let chroma = |plane: usize, x: u32, y: u32| -> f32 {
            let pos = |v: u32, sub: bool, n: u32| -> (u32, u32, f32) {
                if !sub {
                    return (v, v, 0.0);
                }
                // Luma v sits at chroma coordinate (v - 0.5) / 2.
                let c = (v as f32 - 0.5) / 2.0;
                let c0 = c.floor();
                let t = c - c0;
                let i0 = (c0.max(0.0) as u32).min(n - 1);
                let i1 = ((c0 + 1.0).max(0.0) as u32).min(n - 1);
                (i0, i1, t)
            };
            let (x0, x1, tx) = pos(x, sx, cw);
            let (y0, y1, ty) = pos(y, sy, ch);
            let s = |x: u32, y: u32| f32::from(self.sample(plane, x as usize, y as usize));
            let top = s(x0, y0) * (1.0 - tx) + s(x1, y0) * tx;
            let bottom = s(x0, y1) * (1.0 - tx) + s(x1, y1) * tx;
            top * (1.0 - ty) + bottom * ty
        };
        let to8 = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
        for y in 0..h {
            let row = ((y0 + y) as usize * out.width as usize + x0 as usize) * channels;
            for x in 0..w {
                let luma = (f32::from(self.sample(0, x as usize, y as usize)) - y_off) / y_range;
                let rgb = if mono {
                    [luma; 3]
                } else {
                    match kk {
                        // Identity: Y = G, U = B, V = R, all scaled as luma.
                        None => {
                            let c = |p| (chroma(p, x, y) - y_off) / y_range;
                            [c(2), luma, c(1)]
                        }
                        Some((kr, kb)) => {
                            let cb = (chroma(1, x, y) - mid) / c_range;
                            let cr = (chroma(2, x, y) - mid) / c_range;
                            let r = luma + 2.0 * (1.0 - kr) * cr;
                            let b = luma + 2.0 * (1.0 - kb) * cb;
                            let g = (luma - kr * r - kb * b) / (1.0 - kr - kb);
                            [r, g, b]
                        }
                    }
                };
                let o = row + x as usize * channels;
                out.buf[o] = to8(rgb[0]);
                out.buf[o + 1] = to8(rgb[1]);
                out.buf[o + 2] = to8(rgb[2]);
                if channels == 4 {
                    out.buf[o + 3] = 255;
                }
            }
        }
        Ok(())
    }

    /// Write this (monochrome) frame's luma as the alpha of `out` at (x0, y0).
    fn to_alpha(&self, out: &mut Pixels, x0: u32, y0: u32) {
        let (_, full) = self.seq_colour();
        let depth = self.bpc();
        let max = ((1u32 << depth) - 1) as f32;
        let scale = (1u32 << (depth - 8)) as f32;
        let (off, range) = if full {
            (0.0, max)
        } else {
            (16.0 * scale, 219.0 * scale)
        };
        let (fw, fh) = (self.pic.p.w as u32, self.pic.p.h as u32);
        let w = fw.min(out.width - x0);
        let h = fh.min(out.height - y0);
        for y in 0..h {
            let row = ((y0 + y) as usize * out.width as usize + x0 as usize) * 4;
            for x in 0..w {
                let a = (f32::from(self.sample(0, x as usize, y as usize)) - off) / range;
                out.buf[row + x as usize * 4 + 3] = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Colour stored multiplied by alpha, back to straight colour.
fn unpremultiply(rgba: &mut [u8]) {
    for p in rgba.chunks_exact_mut(4) {
        let a = u16::from(p[3]);
        if a == 0 || a == 255 {
            continue;
        }
        for c in &mut p[..3] {
            *c = ((u16::from(*c) * 255 + a / 2) / a).min(255) as u8;
        }
    }
}
