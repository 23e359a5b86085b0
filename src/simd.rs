//! The SIMD paths this binary runs with, named in the startup log line, so a slow build is
//! seen where it runs, not only in a build log (build.rs checks the same at build time).

use std::fmt;

/// Which SIMD each codec and the resize core use in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simd {
    /// libjpeg-turbo (decode and encode): its SIMD was compiled in and this CPU has it.
    pub jpeg: bool,
    /// rav1e (AVIF encoding) and rav1d (AVIF decoding): their hand-written assembly.
    pub av1_asm: bool,
    /// libwebp's intrinsics, fixed at compile time ("sse2" on x86_64, "neon" on aarch64).
    pub webp: &'static str,
    /// fast_image_resize's best CPU extension here, detected at run time.
    pub resize: &'static str,
}

impl Simd {
    /// What this binary was built with and this CPU offers.
    pub fn detect() -> Simd {
        Simd {
            jpeg: jpeg_simd(),
            av1_asm: cfg!(any(target_arch = "aarch64", feature = "nasm")),
            webp: if cfg!(target_arch = "x86_64") {
                "sse2"
            } else if cfg!(target_arch = "aarch64") {
                "neon"
            } else {
                "none"
            },
            resize: resize_extension(),
        }
    }

    /// Whether a path that the fast build has is missing (the startup line then warns).
    pub fn degraded(&self) -> bool {
        !self.jpeg || !self.av1_asm || self.resize == "none"
    }

    /// Log the paths once at startup: info when all are on, a warning naming what is off.
    pub fn log(&self) {
        if self.degraded() {
            tracing::warn!(
                simd = %self,
                build_jpeg_simd = env!("IMGFN_BUILD_JPEG_SIMD"),
                "SLOW BUILD: some SIMD paths are off (scripts/serve.sh builds the fast build)"
            );
        } else {
            tracing::info!(simd = %self, "SIMD paths");
        }
    }
}

impl fmt::Display for Simd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "OFF" };
        write!(
            f,
            "libjpeg-turbo={} rav1e/rav1d-asm={} libwebp={} fast_image_resize={}",
            on(self.jpeg),
            on(self.av1_asm),
            self.webp,
            self.resize
        )
    }
}

fn resize_extension() -> &'static str {
    use fast_image_resize::CpuExtensions;
    match CpuExtensions::default() {
        CpuExtensions::None => "none",
        #[cfg(target_arch = "x86_64")]
        CpuExtensions::Sse4_1 => "sse4.1",
        #[cfg(target_arch = "x86_64")]
        CpuExtensions::Avx2 => "avx2",
        #[cfg(target_arch = "aarch64")]
        CpuExtensions::Neon => "neon",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// libjpeg-turbo's own answer: whether its SIMD inverse DCT will be used in this process
/// (compiled in, and supported by this CPU). The plain-C build's `jsimd_none.c` answers 0.
fn jpeg_simd() -> bool {
    extern "C" {
        fn jsimd_can_idct_islow() -> std::os::raw::c_int;
    }
    // SAFETY: `jsimd_can_idct_islow` is a global function of the libjpeg-turbo that
    // mozjpeg-sys links statically (simd/*/jsimd.c, or jsimd_none.c without SIMD), takes no
    // arguments and only reads the CPU's features (once, into a static) before answering.
    unsafe { jsimd_can_idct_islow() != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_answer_agrees_with_the_build() {
        let simd = Simd::detect();
        // The build script read mozjpeg-sys's jconfig.h; the library answers for itself.
        match env!("IMGFN_BUILD_JPEG_SIMD") {
            "on" => assert!(simd.jpeg || !cfg!(target_arch = "x86_64")),
            "off" => assert!(!simd.jpeg),
            _ => {}
        }
        let line = simd.to_string();
        assert!(line.starts_with("libjpeg-turbo="), "{line}");
        assert!(line.contains("fast_image_resize="), "{line}");
    }
}
