#!/usr/bin/env bash
# The README's run command: the fast build of imgfn, serving testdata/ (or what the arguments
# say) at http://127.0.0.1:8080/.
#
#   ./scripts/serve.sh [serve options, e.g. --root ~/Pictures --addr 127.0.0.1:9000]
#   ./scripts/serve.sh --build-only   # the same build, not run (benches/compare/run.sh uses it)
#
# On Debian it first installs what the fast build needs (a C toolchain for libjpeg-turbo and
# libwebp, and nasm, which assembles libjpeg-turbo's SIMD and rav1e/rav1d's kernels), so the
# first build is the one BENCHMARKS.md measures: `cargo run --release --features nasm`.
# Without nasm, libjpeg-turbo silently builds its plain-C fallback (full-size JPEG work about
# 2.4x slower) and cargo keeps that build after nasm is installed; when this script installs
# nasm it also rebuilds that one crate. Plain `cargo run --release -- serve` still works
# anywhere; build.rs and the startup log line say loudly when a SIMD path is off.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

installed_nasm=0
if command -v dpkg-query >/dev/null; then
  need=()
  for pkg in gcc g++ make pkg-config nasm; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "==> apt-get install ${need[*]} (what the fast build needs)" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
    [[ " ${need[*]} " == *" nasm "* ]] && installed_nasm=1
  fi
elif ! command -v nasm >/dev/null; then
  echo "warning: not Debian and no nasm on PATH: install nasm for the SIMD build" \
    "(without it JPEG work is about 2.4x slower)" >&2
fi
if [ "$installed_nasm" = 1 ]; then
  # A libjpeg-turbo built earlier without nasm would be kept by cargo: rebuild it.
  cargo clean --release -p mozjpeg-sys >/dev/null 2>&1 || true
fi
features=()
command -v nasm >/dev/null && features=(--features nasm)
if [ "${1:-}" = --build-only ]; then
  exec cargo build --release "${features[@]}"
fi
exec cargo run --release "${features[@]}" -- serve "$@"
