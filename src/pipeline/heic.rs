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
