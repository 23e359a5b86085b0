#!/usr/bin/env bash
# The one test command (README). On a fresh Debian machine with the Rust toolchain it installs
# what the tests need, starts the real components they talk to, and runs lint and the suite:
#   - apt: nasm (SIMD assembly of libjpeg-turbo and rav1e), libavif-bin (avifdec decodes our
#     AVIF output independently), curl, chromium + chromium-driver (the gallery's browser test)
#   - crates.io: Garage, a real S3-compatible server, on 127.0.0.1 (scripts/garage.sh)
#   - PyPI: cargo-lambda (the Lambda runtime emulator) and cfn-lint (template.yaml)
# Safe to re-run; installs are skipped when present. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
step() { echo "==> $*"; }

need=()
command -v nasm >/dev/null || need+=(nasm)
command -v avifdec >/dev/null || need+=(libavif-bin)
command -v curl >/dev/null || need+=(curl)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY_SCRIPTS=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PATH:$PY_SCRIPTS:$HOME/.local/bin"
if ! command -v cargo-lambda >/dev/null || ! command -v cfn-lint >/dev/null \
  || ! python3 -c 'import cfnlint' 2>/dev/null; then
  step "pip install cargo-lambda cfn-lint"
  python3 -m pip install -q --disable-pip-version-check cargo-lambda cfn-lint
fi
scripts/garage.sh install

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --locked --features nasm -- -D warnings
step "cfn-lint template.yaml"
cfn-lint template.yaml
step "template tests (tests/template_test.py)"
python3 tests/template_test.py

step "build"
cargo test --locked --features nasm --no-run --quiet
cargo build --locked --features nasm --quiet --bin imgfn

# Real components, stopped whatever happens.
LAMBDA_PID=
cleanup() {
  if [ -n "$LAMBDA_PID" ]; then kill -- "-$LAMBDA_PID" 2>/dev/null || true; fi
  scripts/garage.sh stop || true
}
trap cleanup EXIT

step "start Garage (S3 on 127.0.0.1:3900)"
eval "$(scripts/garage.sh start)"

step "start cargo lambda watch (Function URLs on 127.0.0.1:9000)"
export IMGFN_TEST_LAMBDA_URL=http://127.0.0.1:9000/lambda-url/imgfn
export IMGFN_TEST_LAMBDA_PREFIX=lambda/
IMGFN_BUCKET=$IMGFN_TEST_BUCKET IMGFN_PREFIX=$IMGFN_TEST_LAMBDA_PREFIX IMGFN_S3_PATH_STYLE=true \
  IMGFN_MAX_RESPONSE_BYTES=200000 IMGFN_UPLOAD_TOKEN=test-upload-token-0123456789 \
  setsid cargo lambda watch --features nasm --invoke-address 127.0.0.1 --invoke-port 9000 --ignore-changes \
  >target/lambda-watch.log 2>&1 &
LAMBDA_PID=$!
# Ready when the function itself answers (a JSON 404 for a missing key).
for i in $(seq 1 150); do
  if curl -s --max-time 60 "$IMGFN_TEST_LAMBDA_URL/ready-check" | grep -q '"not_found"'; then break; fi
  [ "$i" -lt 150 ] || { echo "cargo lambda watch did not start" >&2; tail -20 target/lambda-watch.log >&2; exit 1; }
  sleep 1
done

step "cargo test"
cargo test --locked --features nasm "$@"

# Bounded fuzzing: always in CI, locally when FUZZ_SECONDS is set (it builds a sanitizer
# copy of the crate, several minutes the first time).
if [ "${CI:-}" = true ] || [ -n "${FUZZ_SECONDS:-}" ]; then
  step "fuzz (${FUZZ_SECONDS:-60}s per target)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
