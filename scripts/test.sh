#!/usr/bin/env bash
# The one test command (README): installs what the tests need, then lint + the whole suite.
# Works on a fresh Debian machine with the Rust toolchain; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: nasm (SIMD assembly of libjpeg-turbo and rav1e), avifdec (the tests decode
# our AVIF output with libavif, independently of our encoder).
need=()
command -v nasm >/dev/null || need+=(nasm)
command -v avifdec >/dev/null || need+=(libavif-bin)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked "$@"
