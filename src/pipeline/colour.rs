//! Colour management: every decoded image leaves the decoder in sRGB.
//!
//! Decoders hand over the colour description they found in the file ([`Profile`]); [`to_srgb`]
//! converts the decoded pixels in place, on the smallest pixels that allow it (after the
//! shrink-on-load, before the resize), alpha untouched.

use super::Pixels;

/// The colour description a decoder found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// An embedded ICC profile, as stored.
    Icc(Vec<u8>),
    /// Coding-independent code points (ITU-T H.273): AVIF/HEIF `colr nclx`, PNG `cICP`.
    Cicp { primaries: u8, transfer: u8 },
}

/// Convert `px` from `profile` to sRGB in place (alpha untouched). No profile means sRGB; a
/// profile that cannot be parsed or converted is ignored with a log line, never a failure.
pub fn to_srgb(px: &mut Pixels, profile: Option<&Profile>) {
    // The conversion itself lands with issue 12's colour management.
    let _ = (px, profile);
}
