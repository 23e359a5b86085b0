//! Test tiers: the tools a test needs beyond the folder backend, and the one loud skip.
//!
//! `cargo test` alone runs the unit tests and every integration test that needs only the
//! folder backend. A test that needs more starts with `crate::needs!(Garage, ...)`: when a
//! tool is absent it prints one `SKIPPED (...)` line on the real stderr (past libtest's
//! capture, so it shows in a passing run) and returns. `scripts/test.sh` starts every tool
//! and sets `IMGFN_TEST_REQUIRE_ALL=1`, under which a skip is a failure instead.

use std::io::Write;

/// The variable under which a skip fails the test (set by scripts/test.sh).
pub const REQUIRE_ALL: &str = "IMGFN_TEST_REQUIRE_ALL";

/// A tool some tests need, detected by the environment scripts/test.sh sets or on `PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The S3-compatible server scripts/test.sh starts (`scripts/garage.sh start` exports
    /// `IMGFN_TEST_BUCKET` and `AWS_ENDPOINT_URL_S3`).
    Garage,
    /// The `cargo lambda watch` scripts/test.sh starts (`IMGFN_TEST_LAMBDA_URL`).
    LambdaEmulator,
    /// `cargo lambda` itself, for tests that start an emulator of their own.
    CargoLambda,
    /// Chromium and chromedriver (`IMGFN_TEST_CHROMIUM`/`IMGFN_TEST_CHROMEDRIVER` or `PATH`).
    Chromium,
    /// libavif's `avifdec`, the independent decoder of our AVIF output.
    Avifdec,
    /// Python with Pillow (`IMGFN_TEST_PYTHON`, else `python3`): the independent reference of
    /// the pixel tests (tests/reference.py).
    Pillow,
    /// The same Python with pyvips (and the libvips of pyvips-binary): libvips' attention
    /// crop, the reference of `gravity=auto` (tests/api/attention.rs).
    Pyvips,
    /// Debian's ICC profiles (`colord-data`, `icc-profiles-free`, `libgs-common`): the
    /// profiles the colour tests embed (tests/api/colour.rs).
    IccProfiles,
    /// axe-core's `axe.min.js` (`IMGFN_TEST_AXE`; scripts/test.sh downloads the pinned
    /// tarball from the npm registry and checks its sha512): the browser tests' accessibility
    /// checker.
    Axe,
}

impl Tier {
    /// What to tell a reader who wants this tier to run.
    fn needs(self) -> &'static str {
        match self {
            Tier::Garage => "needs Garage: run scripts/test.sh",
            Tier::LambdaEmulator => {
                "needs the Lambda emulator (cargo lambda watch): run scripts/test.sh"
            }
            Tier::CargoLambda => "needs cargo lambda: run scripts/test.sh",
            Tier::Chromium => "needs Chromium and chromedriver: run scripts/test.sh",
            Tier::Avifdec => "needs avifdec (libavif-bin): run scripts/test.sh",
            Tier::Pillow => "needs Python with Pillow: run scripts/test.sh",
            Tier::Pyvips => "needs Python with pyvips: run scripts/test.sh",
            Tier::IccProfiles => {
                "needs colord-data, icc-profiles-free and libgs-common: run scripts/test.sh"
            }
            Tier::Axe => "needs axe-core (IMGFN_TEST_AXE): run scripts/test.sh",
        }
    }

    /// `None` when the tool is there, else why it is considered absent.
    fn absence(self) -> Option<String> {
        match self {
            Tier::Garage => unset("IMGFN_TEST_BUCKET").or_else(|| unset("AWS_ENDPOINT_URL_S3")),
            Tier::LambdaEmulator => unset("IMGFN_TEST_LAMBDA_URL"),
            Tier::CargoLambda => not_on_path(&["cargo-lambda"]),
            Tier::Chromium => tool(
                "IMGFN_TEST_CHROMIUM",
                &["chromium", "chromium-browser", "google-chrome"],
            )
            .or_else(|| tool("IMGFN_TEST_CHROMEDRIVER", &["chromedriver"])),
            Tier::Avifdec => not_on_path(&["avifdec"]),
            Tier::Pillow => python_lacks("PIL"),
            Tier::Pyvips => python_lacks("pyvips"),
            Tier::IccProfiles => [
                "/usr/share/color/icc/colord/ProPhotoRGB.icc",
                "/usr/share/color/icc/Gray.icc",
                "/usr/share/color/icc/ghostscript/default_cmyk.icc",
            ]
            .into_iter()
            .find(|p| !std::path::Path::new(p).is_file())
            .map(|p| format!("no {p}")),
            Tier::Axe => unset("IMGFN_TEST_AXE").or_else(|| {
                let path = std::env::var_os("IMGFN_TEST_AXE").unwrap_or_default();
                (!std::path::Path::new(&path).is_file())
                    .then(|| format!("IMGFN_TEST_AXE={} is not a file", path.to_string_lossy()))
            }),
        }
    }
}

/// `None` when the tests' Python (`IMGFN_TEST_PYTHON`, else `python3`) imports `module`.
fn python_lacks(module: &str) -> Option<String> {
    let python = super::python();
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("{python} cannot import {module}"))
}

fn unset(var: &str) -> Option<String> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => None,
        _ => Some(format!("{var} unset")),
    }
}

fn tool(var: &str, names: &[&str]) -> Option<String> {
    unset(var)?;
    not_on_path(names).map(|why| format!("{var} unset and {why}"))
}

fn not_on_path(names: &[&str]) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        names.iter().any(|name| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    (!found).then(|| format!("no {} on PATH", names.join(" or ")))
}

/// The running test's name: libtest names each test's thread after it; `module` (the
/// caller's `module_path!()`) stands in when the test runs on the main thread.
fn test_name(module: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => module.strip_prefix("api::").unwrap_or(module).to_string(),
    }
}

/// True when one of `tiers` is absent: the test must return. Prints the skip loudly, or
/// panics when scripts/test.sh requires every tier.
pub fn skip_unless(tiers: &[Tier], module: &str) -> bool {
    let Some((tier, why)) = tiers.iter().find_map(|&t| t.absence().map(|why| (t, why))) else {
        return false;
    };
    let test = test_name(module);
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| v == "1") {
        panic!(
            "{test} was skipped ({}; {why}) but scripts/test.sh requires every tier \
             ({REQUIRE_ALL}=1)",
            tier.needs()
        );
    }
    // Straight to the process's stderr: `eprintln!` would be captured for a passing test.
    let line = format!("SKIPPED ({}): {test} [{why}]\n", tier.needs());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    true
}

/// Return from the calling test, loudly, unless every named [`Tier`] is present:
/// `crate::needs!(Garage, Avifdec);`
#[macro_export]
macro_rules! needs {
    ($($tier:ident),+ $(,)?) => {
        if $crate::support::tier::skip_unless(
            &[$($crate::support::tier::Tier::$tier),+],
            module_path!(),
        ) {
            return;
        }
    };
}
