//! Build-time checks of the SIMD paths, so a slow build is never a silent one.
//!
//! On x86 the fast build needs `nasm`: libjpeg-turbo's SIMD (mozjpeg-sys) is assembled with it,
//! and so are rav1e's and rav1d's kernels (the `nasm` feature). mozjpeg-sys decides once,
//! when it is first built: without `nasm` it builds its plain-C fallback (about 2.4x slower on
//! full-size JPEG work) with one easily missed warning, and cargo never rebuilds it when
//! `nasm` appears later. This script reads what mozjpeg-sys really built (`WITH_SIMD` in the
//! `jconfig.h` it exports through `DEP_JPEG_INCLUDE`), then:
//! - SIMD built: nothing to say;
//! - no SIMD and no `nasm`: a loud warning, and the script watches the PATH directories, so
//!   installing `nasm` re-runs it;
//! - no SIMD although `nasm` is installed now (the stale-cache trap): the build fails and says
//!   how to rebuild mozjpeg-sys. `IMGFN_ALLOW_NO_SIMD=1` lets it through on purpose.
//!
//! What it finds is passed to the binary (`IMGFN_BUILD_JPEG_SIMD`), whose startup log line
//! names every SIMD path in use (src/simd.rs).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IMGFN_ALLOW_NO_SIMD");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let jpeg_simd = jpeg_simd_built();
    println!(
        "cargo:rustc-env=IMGFN_BUILD_JPEG_SIMD={}",
        match jpeg_simd {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown",
        }
    );
    if !matches!(arch.as_str(), "x86_64" | "x86") {
        // aarch64 (the Lambda build): libjpeg-turbo's and rav1e's NEON need no nasm.
        return ExitCode::SUCCESS;
    }
    let nasm_feature = env::var_os("CARGO_FEATURE_NASM").is_some();
    let allow = env::var("IMGFN_ALLOW_NO_SIMD").is_ok_and(|v| v == "1");
    match (jpeg_simd, nasm_version()) {
        (Some(false), Some(version)) if !allow => {
            eprintln!(
                "\nerror: libjpeg-turbo (the mozjpeg-sys crate) was built WITHOUT SIMD, before \
                 nasm was installed ({version} is installed now), and cargo will not rebuild it \
                 by itself. Full-size JPEG work would be about 2.4x slower.\n\
                 Rebuild it once with:\n\n    cargo clean -p mozjpeg-sys{}\n\n\
                 then build again (scripts/serve.sh does this for you). To build the slow \
                 library on purpose, set IMGFN_ALLOW_NO_SIMD=1.\n",
                if env::var("PROFILE").is_ok_and(|p| p == "release") {
                    " --release"
                } else {
                    ""
                }
            );
            return ExitCode::FAILURE;
        }
        (Some(false), None) => {
            warn(
                "nasm is not installed: libjpeg-turbo was built WITHOUT SIMD, and full-size \
                 JPEG work is about 2.4x slower. Use `scripts/serve.sh` (it installs nasm and \
                 builds the fast build), or `apt-get install nasm` then `cargo clean -p \
                 mozjpeg-sys` and build with `--features nasm`.",
            );
            watch_path_dirs();
        }
        _ => {}
    }
    if !nasm_feature {
        warn(
            "built without `--features nasm`: rav1e's and rav1d's x86 assembly are off, so \
             AVIF encoding and decoding are about 2.5x slower. `scripts/serve.sh` builds with it.",
        );
    }
    ExitCode::SUCCESS
}

fn warn(message: &str) {
    println!("cargo:warning=SLOW BUILD: {message}");
}

/// Whether mozjpeg-sys compiled libjpeg-turbo's SIMD: its generated `jconfig.h` defines
/// `WITH_SIMD` then. `None` when it cannot be told (the header was not found).
fn jpeg_simd_built() -> Option<bool> {
    let dirs = env::var_os("DEP_JPEG_INCLUDE")?;
    env::split_paths(&dirs)
        .map(|dir| dir.join("jconfig.h"))
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.lines().any(|l| l.trim() == "#define WITH_SIMD 1"))
}

/// `nasm -v`'s first line, if a usable nasm is on PATH (mozjpeg-sys refuses 0.x versions).
fn nasm_version() -> Option<String> {
    let out = Command::new("nasm").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim().to_string();
    (out.status.success() && !line.contains("NASM version 0.")).then_some(line)
}

/// Re-run when a program is added to any PATH directory (a directory's mtime changes when an
/// entry is added), so that installing nasm is noticed at the next build.
fn watch_path_dirs() {
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = env::split_paths(&path)
        .filter(|d| d.is_absolute() && Path::new(d).is_dir())
        .collect();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
}
