#!/usr/bin/env bash
# The Lambda artefact, built as it is deployed: `cargo lambda build --release` into
# target/lambda/imgfn/bootstrap.zip, then checked against Lambda's package limits.
#
#   scripts/lambda-build.sh [x86-64|arm64]      # default x86-64
#
# cargo-lambda (PyPI) cross-links with zig (the `ziglang` PyPI package it depends on), so the
# binary runs on Lambda's provided.al2023 whatever this machine's glibc is. x86_64 builds with
# `--features nasm` (libjpeg-turbo's SIMD and rav1e/rav1d's assembly; nasm from apt); arm64
# needs no nasm (NEON), but needs the aarch64-unknown-linux-gnu standard library (`rustup
# target add aarch64-unknown-linux-gnu`), which not every machine can install.
#
# CI_LIGHT=1 builds without cross-crate LTO (`lto = false`, 16 codegen units) instead of the
# release profile's fat LTO: the same code, features and package, each crate optimised at
# level 3 as deployed (9.4 min on 2 cores against 14.5 for fat LTO; a 14.1 MB zip against
# 12.0); the size check applies to both.
# scripts/test.sh runs it with CI_LIGHT=1 in CI (a fat-LTO build on top of the suite's and the
# fuzzers' builds pushed CI past its time limit), then starts the zip's bootstrap through
# benches/lambda_coldstart.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-x86-64}
die() { echo "scripts/lambda-build.sh: $*" >&2; exit 1; }

command -v cargo-lambda >/dev/null || die "cargo-lambda not on PATH (pip install cargo-lambda)"
features=()
case $ARCH in
  x86-64)
    command -v nasm >/dev/null || die "nasm not installed (apt-get install nasm): the x86_64 build needs it"
    features=(--features nasm)
    ;;
  arm64) ;;
  *) die "unknown architecture $ARCH (x86-64 or arm64)" ;;
esac
if [ "${CI_LIGHT:-}" = 1 ]; then
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
start=$(date +%s)
cargo lambda build --release "--$ARCH" "${features[@]}" --output-format zip --locked
zip=target/lambda/imgfn/bootstrap.zip
[ -f "$zip" ] || die "no $zip after the build"
zipped=$(stat -c %s "$zip")
unzipped=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
echo "lambda artefact ($ARCH${CI_LIGHT:+, CI_LIGHT: no cross-crate LTO}): $zip $zipped bytes zipped, $unzipped unzipped, built in $(( $(date +%s) - start )) s"
# Lambda's limits: 50 MB for a zip uploaded directly, 250 MB unzipped. Ours should stay far
# below: more than 30 MB zipped means something large was linked in by mistake.
[ "$zipped" -le $((30 * 1024 * 1024)) ] || die "the zip is $zipped bytes, over the 30 MiB this project allows itself"
[ "$unzipped" -le $((250 * 1000 * 1000)) ] || die "unzipped $unzipped bytes: over Lambda's 250 MB"
