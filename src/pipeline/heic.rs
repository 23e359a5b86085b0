//! HEIC decoding: the HEVC items of a HEIF file through libheif (LGPL, with libde265), behind
//! the `heic` cargo feature because it links the system libheif (`libheif-dev` at build
//! time). No permissively licensed pure-Rust HEVC decoder exists. Without the feature a HEIC
//! original is a 415 that names the feature.

use super::heif::Heif;
use super::Pixels;
use crate::error::{Error, Result};

/// Bytes libheif holds while decoding, besides the coded data and the returned pixels: its
/// YCbCr image of the whole grid (up to 16 bits, three planes) and its RGB(A) conversion.
pub fn decoder_bytes(heif: &Heif) -> u64 {
    let (w, h) = heif.image.size;
    let px = u64::from(w) * u64::from(h);
    px * 6 + px * 4
}

#[cfg(not(feature = "heic"))]
pub fn decode(_file: &[u8], _heif: &Heif) -> Result<Pixels> {
    Err(Error::UnsupportedFormat(
        "this build has no HEIC decoder (build imgfn with `--features heic`, which needs libheif)"
            .into(),
    ))
}

#[cfg(feature = "heic")]
pub fn decode(file: &[u8], heif: &Heif) -> Result<Pixels> {
    libheif::decode(file, heif)
}

/// The few libheif calls imgfn makes, each object released by its owner's `Drop`.
#[cfg(feature = "heic")]
mod libheif {
    use super::{Error, Heif, Pixels, Result};
    use libheif_sys as lh;
    use std::ffi::CStr;

    struct Context(*mut lh::heif_context);
    impl Drop for Context {
        fn drop(&mut self) {
            // SAFETY: allocated by `heif_context_alloc`, freed once.
            unsafe { lh::heif_context_free(self.0) }
        }
    }
    struct Handle(*mut lh::heif_image_handle);
    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: returned by libheif, released once.
            unsafe { lh::heif_image_handle_release(self.0) }
        }
    }
    struct Image(*mut lh::heif_image);
    impl Drop for Image {
        fn drop(&mut self) {
            // SAFETY: returned by `heif_decode_image`, released once.
            unsafe { lh::heif_image_release(self.0) }
        }
    }
    struct Options(*mut lh::heif_decoding_options);
    impl Drop for Options {
        fn drop(&mut self) {
            // SAFETY: allocated by `heif_decoding_options_alloc`, freed once.
            unsafe { lh::heif_decoding_options_free(self.0) }
        }
    }

    fn check(e: lh::heif_error) -> Result<()> {
        if e.code == lh::heif_error_code_heif_error_Ok {
            return Ok(());
        }
        let message = if e.message.is_null() {
            String::new()
        } else {
            // SAFETY: libheif's error messages are static NUL-terminated strings.
            unsafe { CStr::from_ptr(e.message) }
                .to_string_lossy()
                .into_owned()
        };
        let detail = format!("heic: libheif error {}.{}: {message}", e.code, e.subcode);
        Err(match e.code {
            lh::heif_error_code_heif_error_Unsupported_feature
            | lh::heif_error_code_heif_error_Unsupported_filetype => {
                Error::UnsupportedFormat(detail)
            }
            _ => Error::corrupt(detail),
        })
    }

    /// The primary image as stored (libheif composes the grid; `irot`/`imir` are left to
    /// the plan, as for EXIF orientation), 8-bit RGB, or RGBA when the header found alpha.
    pub fn decode(file: &[u8], heif: &Heif) -> Result<Pixels> {
        let (w, h) = heif.image.size;
        let alpha = heif.alpha.is_some();
        // SAFETY: every pointer passed below is either checked non-null or owned by a guard
        // above; `file` outlives the context that reads it without copying.
        unsafe {
            let ctx = Context(lh::heif_context_alloc());
            if ctx.0.is_null() {
                return Err(Error::Internal("libheif: no context".into()));
            }
            // libheif refuses images wider or taller than what the header weighed (its grid
            // check refuses a side equal to the limit: one more).
            let side = i32::try_from(w.max(h).saturating_add(1)).unwrap_or(i32::MAX);
            lh::heif_context_set_maximum_image_size_limit(ctx.0, side);
            check(lh::heif_context_read_from_memory_without_copy(
                ctx.0,
                file.as_ptr().cast(),
                file.len(),
                std::ptr::null(),
            ))?;
            let mut handle = std::ptr::null_mut();
            check(lh::heif_context_get_primary_image_handle(
                ctx.0,
                &mut handle,
            ))?;
            let handle = Handle(handle);
            let options = Options(lh::heif_decoding_options_alloc());
            if options.0.is_null() {
                return Err(Error::Internal("libheif: no decoding options".into()));
            }
            (*options.0).ignore_transformations = 1;
            (*options.0).convert_hdr_to_8bit = 1;
            let chroma = if alpha {
                lh::heif_chroma_heif_chroma_interleaved_RGBA
            } else {
                lh::heif_chroma_heif_chroma_interleaved_RGB
            };
            let mut image = std::ptr::null_mut();
            check(lh::heif_decode_image(
                handle.0,
                &mut image,
                lh::heif_colorspace_heif_colorspace_RGB,
                chroma,
                options.0,
            ))?;
            let image = Image(image);
            let channel = lh::heif_channel_heif_channel_interleaved;
            let (iw, ih) = (
                lh::heif_image_get_width(image.0, channel),
                lh::heif_image_get_height(image.0, channel),
            );
            if (i64::from(iw), i64::from(ih)) != (i64::from(w), i64::from(h)) {
                return Err(Error::corrupt(format!(
                    "heic: libheif decoded {iw}x{ih}, the header says {w}x{h}"
                )));
            }
            let mut stride = 0;
            let plane = lh::heif_image_get_plane_readonly(image.0, channel, &mut stride);
            let channels = if alpha { 4 } else { 3 };
            let row = w as usize * channels;
            if plane.is_null() || (stride as usize) < row {
                return Err(Error::corrupt("heic: libheif returned no pixels"));
            }
            let mut buf = Vec::with_capacity(row * h as usize);
            for y in 0..h as usize {
                // SAFETY: libheif's plane holds `h` rows of `stride` bytes, each with at
                // least `row` bytes of pixels.
                let line = std::slice::from_raw_parts(plane.add(y * stride as usize), row);
                buf.extend_from_slice(line);
            }
            Ok(Pixels {
                buf,
                width: w,
                height: h,
                alpha,
            })
        }
    }
}
