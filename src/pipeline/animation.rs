//! Animations: an animated GIF or WebP asked for as GIF or WebP stays animated.
//!
//! The frames are decoded one at a time, composed on the whole canvas by the `image` crate's
//! GIF and WebP decoders (disposal, partial frames, blending and transparency), each run
//! through the same plan's steps, and handed to an animated encoder as it comes: libwebp's
//! `WebPAnimEncoder` (which finds the changed rectangles again) or the `gif` crate (one
//! quantised palette per frame). Delays and the loop count are kept. Only one composed frame
//! and one resized frame are alive at a time besides what the encoder keeps; the limits on
//! frames and on pixels over all frames were checked from the header when the plan was made.

use super::plan::Plan;
use super::timings::{self, Timings};
use super::{colour, decode, encode, steps, Pixels, Settings, SourceFormat, SourceInfo};
use crate::error::{Error, Result};
use crate::params::OutputFormat;
use image::AnimationDecoder;
use std::io::Cursor;

/// Composed frames, each with its delay in milliseconds.
type Frames<'a> = Box<dyn Iterator<Item = Result<(Pixels, u32)>> + 'a>;

/// The frames of `bytes` (a GIF or WebP) as composed RGBA canvases, each with its delay in
/// milliseconds, the decoders allocating at most `max_alloc` bytes.
fn frames(bytes: &[u8], format: SourceFormat, max_alloc: u64) -> Result<Frames<'_>> {
    use image::ImageDecoder;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    let frames = match format {
        SourceFormat::Gif => {
            let mut d = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
                .map_err(decode::image_error)?;
            d.set_limits(limits).map_err(decode::image_error)?;
            d.into_frames()
        }
        // libwebp's own animation decoder: the `image` crate's (image-webp 0.2) does not
        // clear a disposed frame's rectangle, and leaves trails of every earlier frame.
        SourceFormat::Webp => return Ok(Box::new(webp_frames::WebpFrames::new(bytes)?)),
        other => {
            return Err(Error::Internal(format!(
                "{} is not an animation format",
                other.name()
            )))
        }
    };
    Ok(Box::new(frames.map(|frame| {
        let frame = frame.map_err(decode::image_error)?;
        let (num, den) = frame.delay().numer_denom_ms();
        let delay_ms = num.checked_div(den).unwrap_or(0);
        let img = frame.into_buffer();
        let (width, height) = img.dimensions();
        Ok((
            Pixels {
                buf: img.into_raw(),
                width,
                height,
                alpha: true,
            },
            delay_ms,
        ))
    })))
}

/// libwebp's `WebPAnimDecoder`: the reference composition of an animated WebP's frames
/// (disposal to transparent, blending, sub-frames). It holds two canvases, both within the
/// size the header announced and admission weighed.
mod webp_frames {
    use super::Pixels;
    use crate::error::{Error, Result};
    use libwebp_sys as sys;

    pub struct WebpFrames<'a> {
        dec: *mut sys::WebPAnimDecoder,
        canvas: (u32, u32),
        timestamp_ms: i32,
        /// The decoder reads the file in place: it must outlive the decoder.
        _bytes: std::marker::PhantomData<&'a [u8]>,
    }

    impl<'a> WebpFrames<'a> {
        pub fn new(bytes: &'a [u8]) -> Result<WebpFrames<'a>> {
            // SAFETY: a zeroed options struct is what the init call fills in.
            let mut opts: sys::WebPAnimDecoderOptions = unsafe { std::mem::zeroed() };
            // SAFETY: `opts` is valid and exclusively borrowed.
            let ok = unsafe {
                sys::WebPAnimDecoderOptionsInitInternal(
                    &mut opts,
                    sys::WEBP_DEMUX_ABI_VERSION as i32,
                )
            };
            if ok == 0 {
                return Err(Error::Internal("webp: decoder options init failed".into()));
            }
            opts.color_mode = sys::WEBP_CSP_MODE::MODE_RGBA;
            opts.use_threads = 0;
            let data = sys::WebPData {
                bytes: bytes.as_ptr(),
                size: bytes.len(),
            };
            // SAFETY: `data` points at `bytes`, which outlives the decoder (the lifetime
            // `'a`); the decoder is deleted in `Drop`.
            let dec = unsafe {
                sys::WebPAnimDecoderNewInternal(&data, &opts, sys::WEBP_DEMUX_ABI_VERSION as i32)
            };
            if dec.is_null() {
                return Err(Error::corrupt("webp: not a readable animation"));
            }
            // SAFETY: a zeroed info struct of integers, filled in by the call.
            let mut info: sys::WebPAnimInfo = unsafe { std::mem::zeroed() };
            let mut frames = WebpFrames {
                dec,
                canvas: (0, 0),
                timestamp_ms: 0,
                _bytes: std::marker::PhantomData,
            };
            // SAFETY: `dec` is a live decoder and `info` a valid struct.
            if unsafe { sys::WebPAnimDecoderGetInfo(dec, &mut info) } == 0 {
                return Err(Error::corrupt("webp: no animation info"));
            }
            frames.canvas = (info.canvas_width, info.canvas_height);
            Ok(frames)
        }
    }

    impl Iterator for WebpFrames<'_> {
        type Item = Result<(Pixels, u32)>;

        fn next(&mut self) -> Option<Self::Item> {
            // SAFETY: `dec` is a live decoder.
            if unsafe { sys::WebPAnimDecoderHasMoreFrames(self.dec) } == 0 {
                return None;
            }
            let mut buf: *mut u8 = std::ptr::null_mut();
            let mut timestamp = 0;
            // SAFETY: `dec` is live; on success libwebp points `buf` at its own canvas of
            // `canvas.0 * canvas.1 * 4` bytes, valid until the next call, copied out below.
            let ok = unsafe { sys::WebPAnimDecoderGetNext(self.dec, &mut buf, &mut timestamp) };
            if ok == 0 || buf.is_null() {
                return Some(Err(Error::corrupt("webp: a frame could not be decoded")));
            }
            let (w, h) = self.canvas;
            let len = w as usize * h as usize * 4;
            // SAFETY: see above: `len` bytes at `buf` belong to the decoder's canvas.
            let canvas = unsafe { std::slice::from_raw_parts(buf, len) }.to_vec();
            // libwebp reports when each frame ends; its delay is the difference.
            let delay = timestamp.saturating_sub(self.timestamp_ms).max(0) as u32;
            self.timestamp_ms = timestamp;
            Some(Ok((
                Pixels {
                    buf: canvas,
                    width: w,
                    height: h,
                    alpha: true,
                },
                delay,
            )))
        }
    }

    impl Drop for WebpFrames<'_> {
        fn drop(&mut self) {
            // SAFETY: the decoder was created non-null and is deleted once, here.
            unsafe { sys::WebPAnimDecoderDelete(self.dec) }
        }
    }
}

/// The ICC profile of a WebP (its `ICCP` chunk), read by the `image` crate's decoder.
fn webp_profile(bytes: &[u8]) -> Option<colour::Profile> {
    use image::ImageDecoder;
    let mut d = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).ok()?;
    d.icc_profile().ok().flatten().map(colour::Profile::Icc)
}

/// Render every frame of an animation with `plan` and encode them as one animated output.
/// Returns the bytes and the output size.
pub fn run(
    bytes: &[u8],
    info: &SourceInfo,
    plan: &Plan,
    settings: &Settings,
    resizer: &mut fast_image_resize::Resizer,
    timings: &mut Timings,
) -> Result<(Vec<u8>, (u32, u32))> {
    let limits = &settings.limits;
    let plays = info.animation.and_then(|a| a.plays);
    let mut frames = frames(bytes, info.format, info.decode_bytes(1))?;
    // An animated WebP's ICCP profile applies to every frame (GIF has none).
    let profile = match info.format {
        SourceFormat::Webp => webp_profile(bytes),
        _ => None,
    };
    let mut next = |timings: &mut Timings| {
        timings.accumulate(timings::DECODE, || {
            frames.next().map(|frame| {
                frame.map(|(mut px, delay)| {
                    colour::to_srgb(&mut px, profile.as_ref());
                    (px, delay)
                })
            })
        })
    };
    let Some(first) = next(timings) else {
        return Err(Error::corrupt(format!("{}: no frames", info.format.name())));
    };
    let (first, first_delay) = first?;
    // `trim` and `gravity=auto` look at the first frame; every frame then gets its plan.
    let (seen, first) = match plan.look {
        Some(_) => {
            let still = |_| Err(Error::Internal("an animation decodes at one scale".into()));
            let (seen, px) = plan.see(info, first, limits, timings, still)?;
            (Some(seen), px)
        }
        None => (None, first),
    };
    let plan = seen.as_ref().unwrap_or(plan);
    let steps = plan.steps();
    let mut cx = steps::Context { resizer };
    let mut render = |px: Pixels, timings: &mut Timings| -> Result<Pixels> {
        let mut px = px;
        for step in &steps {
            px = timings.accumulate(step.name(), || step.run(px, &mut cx))?;
        }
        Ok(px)
    };
    let out = render(first, timings)?;
    let size = (out.width, out.height);
    let mut encoder = Encoder::new(plan.format, size, plan.quality, plays)?;
    timings.accumulate(timings::ENCODE, || encoder.add(&out, first_delay))?;
    drop(out);
    while let Some(frame) = next(timings) {
        let (px, delay) = frame?;
        let out = render(px, timings)?;
        if (out.width, out.height) != size {
            return Err(Error::Internal(
                "animation frames of different sizes".into(),
            ));
        }
        timings.accumulate(timings::ENCODE, || encoder.add(&out, delay))?;
        limits.check_output_bytes(encoder.len())?;
    }
    let bytes = timings.accumulate(timings::ENCODE, || encoder.finish())?;
    limits.check_output_bytes(bytes.len())?;
    Ok((bytes, size))
}

/// An animated encoder fed one output frame at a time.
enum Encoder {
    Webp(webp_anim::WebpAnim),
    Gif(gif::Encoder<Vec<u8>>),
}

impl Encoder {
    fn new(
        format: OutputFormat,
        (w, h): (u32, u32),
        quality: u8,
        plays: Option<u32>,
    ) -> Result<Encoder> {
        match format {
            OutputFormat::Webp => Ok(Encoder::Webp(webp_anim::WebpAnim::new(
                (w, h),
                quality,
                plays,
            )?)),
            OutputFormat::Gif => {
                let side = |v: u32| {
                    u16::try_from(v).map_err(|_| {
                        Error::limit(
                            "max_output_side",
                            format!("a GIF is at most 65535 pixels wide and high, not {v}"),
                        )
                    })
                };
                let gif_err = |e: gif::EncodingError| Error::Internal(format!("gif encode: {e}"));
                let mut enc =
                    gif::Encoder::new(Vec::new(), side(w)?, side(h)?, &[]).map_err(gif_err)?;
                // GIF counts the repeats after the first play; no extension plays once.
                match plays {
                    None => enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?,
                    Some(1) => {}
                    Some(n) => {
                        let repeats = u16::try_from(n - 1).unwrap_or(u16::MAX);
                        enc.set_repeat(gif::Repeat::Finite(repeats))
                            .map_err(gif_err)?
                    }
                }
                Ok(Encoder::Gif(enc))
            }
            other => Err(Error::Internal(format!(
                "{} has no animated encoder",
                other.name()
            ))),
        }
    }

    fn add(&mut self, px: &Pixels, delay_ms: u32) -> Result<()> {
        match self {
            Encoder::Webp(w) => w.add(px, delay_ms),
            Encoder::Gif(enc) => {
                let mut rgba = encode::rgba(px).into_owned();
                let (w, h) = (px.width as u16, px.height as u16);
                let mut frame = gif::Frame::from_rgba_speed(w, h, &mut rgba, encode::GIF_SPEED);
                // GIF delays are in 1/100 s.
                frame.delay = u16::try_from((delay_ms + 5) / 10).unwrap_or(u16::MAX);
                // Every frame is the whole canvas: clear it first, so that transparent
                // pixels show the background and not the frame before.
                frame.dispose = gif::DisposalMethod::Background;
                enc.write_frame(&frame)
                    .map_err(|e| Error::Internal(format!("gif encode: {e}")))
            }
        }
    }

    /// Bytes written so far (the GIF encoder writes as it goes).
    fn len(&self) -> usize {
        match self {
            Encoder::Webp(_) => 0,
            Encoder::Gif(enc) => enc.get_ref().len(),
        }
    }

    fn finish(self) -> Result<Vec<u8>> {
        match self {
            Encoder::Webp(w) => w.finish(),
            Encoder::Gif(enc) => enc
                .into_inner()
                .map_err(|e| Error::Internal(format!("gif encode: {e}"))),
        }
    }
}

/// libwebp's animation encoder, fed frame by frame (the `webp` crate's wrapper keeps every
/// frame until the end, and panics on errors).
mod webp_anim {
    use super::Pixels;
    use crate::error::{Error, Result};
    use libwebp_sys as sys;

    pub struct WebpAnim {
        enc: *mut sys::WebPAnimEncoder,
        config: sys::WebPConfig,
        timestamp_ms: i32,
    }

    impl WebpAnim {
        pub fn new((w, h): (u32, u32), quality: u8, plays: Option<u32>) -> Result<WebpAnim> {
            let config = super::encode::webp_config(quality)?;
            // SAFETY: `WebPAnimEncoderOptions` is a C struct of integers, for which zero bytes
            // are valid; the init call then fills in libwebp's defaults.
            let mut opts: sys::WebPAnimEncoderOptions = unsafe { std::mem::zeroed() };
            // SAFETY: `opts` is a valid, exclusively borrowed options struct.
            let ok = unsafe {
                sys::WebPAnimEncoderOptionsInitInternal(&mut opts, sys::WEBP_MUX_ABI_VERSION as i32)
            };
            if ok == 0 {
                return Err(Error::Internal(
                    "webp: animation options init failed".into(),
                ));
            }
            // WebP's loop count is the number of plays; 0 plays for ever.
            opts.anim_params.loop_count = plays.map_or(0, |n| n.min(65_535) as i32);
            opts.anim_params.bgcolor = 0;
            let (wi, hi) = (
                i32::try_from(w).map_err(|_| Error::Internal("webp: too wide".into()))?,
                i32::try_from(h).map_err(|_| Error::Internal("webp: too high".into()))?,
            );
            // SAFETY: `opts` was initialised above; the encoder is freed in `Drop`.
            let enc = unsafe {
                sys::WebPAnimEncoderNewInternal(wi, hi, &opts, sys::WEBP_MUX_ABI_VERSION as i32)
            };
            if enc.is_null() {
                return Err(Error::Internal(
                    "webp: animation encoder init failed".into(),
                ));
            }
            Ok(WebpAnim {
                enc,
                config,
                timestamp_ms: 0,
            })
        }

        pub fn add(&mut self, px: &Pixels, delay_ms: u32) -> Result<()> {
            // SAFETY: a zeroed `WebPPicture` is what the init call expects to fill in.
            let mut pic: sys::WebPPicture = unsafe { std::mem::zeroed() };
            // SAFETY: `pic` is a valid, exclusively borrowed picture.
            if unsafe {
                sys::WebPPictureInitInternal(&mut pic, sys::WEBP_ENCODER_ABI_VERSION as i32)
            } == 0
            {
                return Err(Error::Internal("webp: picture init failed".into()));
            }
            pic.use_argb = 1;
            pic.width = px.width as i32;
            pic.height = px.height as i32;
            let channels = if px.alpha { 4 } else { 3 };
            let stride = (px.width * channels) as i32;
            // SAFETY: `px.buf` holds `height` rows of `stride` bytes (the `Pixels` layout);
            // libwebp copies them into memory the picture owns, freed below.
            let imported = unsafe {
                if px.alpha {
                    sys::WebPPictureImportRGBA(&mut pic, px.buf.as_ptr(), stride)
                } else {
                    sys::WebPPictureImportRGB(&mut pic, px.buf.as_ptr(), stride)
                }
            };
            // SAFETY: the encoder is alive (freed only in `Drop`); `pic` and `config` are
            // valid; libwebp copies what it keeps of the picture.
            let added = imported != 0
                && unsafe {
                    sys::WebPAnimEncoderAdd(self.enc, &mut pic, self.timestamp_ms, &self.config)
                } != 0;
            // SAFETY: `pic` was initialised; freeing an unimported picture is a no-op.
            unsafe { sys::WebPPictureFree(&mut pic) };
            if !added {
                return Err(Error::Internal(format!("webp animation: {}", self.error())));
            }
            self.timestamp_ms = self
                .timestamp_ms
                .saturating_add(i32::try_from(delay_ms).unwrap_or(i32::MAX));
            Ok(())
        }

        fn error(&self) -> String {
            // SAFETY: the encoder is alive; libwebp returns a NUL-terminated static string
            // or null.
            unsafe {
                let p = sys::WebPAnimEncoderGetError(self.enc);
                if p.is_null() {
                    "unknown error".into()
                } else {
                    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            }
        }

        pub fn finish(self) -> Result<Vec<u8>> {
            // SAFETY: a null frame at the end timestamp closes the last frame's duration.
            let closed = unsafe {
                sys::WebPAnimEncoderAdd(
                    self.enc,
                    std::ptr::null_mut(),
                    self.timestamp_ms,
                    std::ptr::null(),
                )
            };
            let mut data = sys::WebPData::default();
            // SAFETY: `data` is an empty `WebPData` that libwebp fills with memory it
            // allocates; it is copied out and freed with `WebPDataClear` below.
            let assembled =
                closed != 0 && unsafe { sys::WebPAnimEncoderAssemble(self.enc, &mut data) } != 0;
            if !assembled {
                return Err(Error::Internal(format!("webp animation: {}", self.error())));
            }
            // SAFETY: libwebp set `bytes` to `size` initialised bytes.
            let out = unsafe { std::slice::from_raw_parts(data.bytes, data.size) }.to_vec();
            // SAFETY: `data` holds libwebp's allocation, freed once.
            unsafe { sys::WebPDataClear(&mut data) };
            Ok(out)
        }
    }

    impl Drop for WebpAnim {
        fn drop(&mut self) {
            // SAFETY: the encoder was created non-null and is deleted once, here.
            unsafe { sys::WebPAnimEncoderDelete(self.enc) }
        }
    }
}
