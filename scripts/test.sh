#!/usr/bin/env bash
# The one test command (README). On a fresh Debian 12 machine with only the Rust toolchain it
# installs what the tests need, starts the real components they talk to, and runs lint and the
# suite:
#   - apt: CA certificates, a C/C++ toolchain, make and pkg-config (mozjpeg, libwebp), nasm
#     (SIMD assembly of libjpeg-turbo and rav1e), libavif-bin (avifdec decodes our AVIF output
#     independently), libheif-dev (the `heic` feature links libheif), libjxl-tools (cjxl and
#     djxl: testdata/inputs/make_new_inputs.py makes the JPEG XL inputs and their references),
#     libjpeg-turbo-progs (cjpeg, jpegtran: testdata/jpeg/progressive/make.sh, the progressive
#     bench), curl, python3 +
#     python3-venv, chromium + chromium-driver (the browser test)
#   - registry.npmjs.org: the axe-core tarball (pinned, sha512 checked), without npm
#   - crates.io: Garage, a real S3-compatible server, on 127.0.0.1 (scripts/garage.sh)
#   - PyPI, into a virtual environment under target/ (Debian's python3 refuses a system-wide
#     `pip install`, PEP 668): cargo-lambda (the Lambda runtime emulator) and cfn-lint; checkov
#     and aws-sam-cli (`sam validate --lint`) in two more (their pins conflict)
# Under CI=true (or LAMBDA_ARTEFACT=1) it then builds the x86_64 Lambda artefact as deployed
# and starts it through a local Runtime API; under CI=true (or FUZZ_SECONDS) it fuzzes.
# Every run uses free loopback ports and fresh keys, and checks that the servers it started
# are the ones answering. Safe to re-run; installs are skipped when present. Extra arguments
# go to `cargo test`. Plain `cargo test` runs the tests that need none of these and skips the
# others loudly; here every tier runs, and a skipped test is a failure (IMGFN_TEST_REQUIRE_ALL).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# Each step says when it started (seconds since this command began), so that a slow CI run
# shows where its time went.
step() { echo "==> [$(date -u +%H:%M:%S), ${SECONDS}s] $*"; }
die() { echo "scripts/test.sh: $*" >&2; exit 1; }
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p"; then echo "$p"; return; fi
  done
  die "no free loopback port"
}
# The first of these programs on PATH.
first_of() { local c; for c in "$@"; do command -v "$c" && return; done; return 1; }

# A fresh clone gains nothing from incremental compilation, and its cache would about double
# target/ (the CI run of 2026-11-29 ran out of disk while building).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
step "disk: $(df -h . | awk 'NR==2 {print $4 " free of " $2}')"

if command -v dpkg-query >/dev/null; then
  need=()
  for pkg in ca-certificates gcc g++ make pkg-config nasm libavif-bin libheif-dev libjxl-tools libjpeg-turbo-progs curl python3 python3-venv \
    chromium chromium-driver colord-data icc-profiles-free libgs-common; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    step "apt-get install ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
  fi
else
  echo "warning: not Debian; install a C/C++ toolchain, make, pkg-config, nasm, avifdec, curl," \
    "python3 with venv, Chromium and chromedriver yourself" >&2
fi
# The one feature set of every cargo command below (one build, no rebuilds between them): the
# assembly that needs nasm, and HEIC originals through the system libheif.
FEATURES=nasm,heic
CHROMIUM=$(first_of chromium chromium-browser google-chrome) || die "Chromium not found"
CHROMEDRIVER=$(first_of chromedriver) || die "chromedriver not found"
export IMGFN_TEST_CHROMIUM=$CHROMIUM IMGFN_TEST_CHROMEDRIVER=$CHROMEDRIVER

# axe-core, the browser tests' accessibility checker (npm `axe-core`, MPL-2.0), without npm:
# the registry's tarball of the pinned version, checked against the sha512 the registry
# publishes for it (`dist.integrity`), and only axe.min.js (with its licence) kept.
AXE_VERSION=4.14.1
AXE_SHA512=FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_DIR=target/axe-core-$AXE_VERSION
if [ ! -f "$AXE_DIR/axe.min.js" ]; then
  step "axe-core $AXE_VERSION from registry.npmjs.org (sha512 checked)"
  mkdir -p target
  AXE_TGZ=target/axe-core-$AXE_VERSION.tgz
  curl -sfL -o "$AXE_TGZ" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz" \
    || die "could not download axe-core $AXE_VERSION"
  got=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$AXE_TGZ")
  [ "$got" = "$AXE_SHA512" ] || { rm -f "$AXE_TGZ"; die "axe-core $AXE_VERSION: sha512 $got is not the pinned $AXE_SHA512"; }
  mkdir -p "$AXE_DIR"
  tar -xzf "$AXE_TGZ" -C "$AXE_DIR" --strip-components=1 package/axe.min.js package/LICENSE
  rm -f "$AXE_TGZ"
fi
export IMGFN_TEST_AXE=$PWD/$AXE_DIR/axe.min.js

VENV=target/venv
if ! cmp -s scripts/test-requirements.txt "$VENV/requirements.txt"; then
  step "python3 -m venv $VENV; pip install -r scripts/test-requirements.txt"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r scripts/test-requirements.txt
  cp scripts/test-requirements.txt "$VENV/requirements.txt"
fi
# The template's other two checkers, each in a venv of its own: their pins cannot share one
# (scripts/test-requirements-{checkov,sam}.txt say why).
for tool in checkov sam; do
  reqs=scripts/test-requirements-$tool.txt
  dir=target/venv-$tool
  if ! cmp -s "$reqs" "$dir/requirements.txt"; then
    step "python3 -m venv $dir; pip install -r $reqs"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
    cp "$reqs" "$dir/requirements.txt"
  fi
done
export PATH="$PWD/$VENV/bin:$PATH"
# Pillow, the independent reference of the pixel tests (tests/reference.py).
export IMGFN_TEST_PYTHON="$PWD/$VENV/bin/python"
step "Garage"
scripts/garage.sh install

step "cargo fmt --check"
cargo fmt --all -- --check
step "cfn-lint template.yaml"
cfn-lint template.yaml
# Offline: a region, no credentials, no telemetry (it then never touches the network).
step "sam validate --lint"
(cd target && env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 venv-sam/bin/sam validate --lint -t ../template.yaml)
# checkov evaluates Conditions with the parameters' defaults, so it runs twice: as deployed by
# default, and with CloudFront, WAF and the template's own secret on. Every finding is fixed
# or skipped in the template with its reason; --skip-download keeps it offline.
step "checkov template.yaml (defaults; CloudFront + WAF + secret)"
CHECKOV="target/venv-checkov/bin/checkov --framework cloudformation --compact --quiet --skip-download"
$CHECKOV -f template.yaml
"$VENV/bin/python" scripts/template-variant.py EnableCloudFront=true EnableWaf=true \
  SigningKeys=k1:checkov-variant-key0 UploadToken=checkov-variant-token \
  <template.yaml >target/template-all-on.yaml
$CHECKOV -f target/template-all-on.yaml
step "template tests (tests/template_test.py)"
"$VENV/bin/python" tests/template_test.py

# Clippy and the build in one pass. `cargo clippy` is `cargo check` with clippy-driver (rustc
# plus the lints) wrapping the compiler for this package only (RUSTC_WORKSPACE_WRAPPER, its
# arguments in CLIPPY_ARGS); the same wrapper on the test build of every target lints exactly
# what `cargo clippy --all-targets -- -D warnings` lints, and compiles the dependencies once
# rather than once for clippy's check and again for the tests (that check alone took 10.3
# minutes of a CI-like run on 2026-12-01). Every cargo command of the suite below runs with it (the
# wrapper is part of cargo's cache key: without it, imgfn would be compiled again).
CLIPPY_DRIVER="$(rustc --print sysroot)/bin/clippy-driver"
[ -x "$CLIPPY_DRIVER" ] || die "clippy-driver not found (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER=$CLIPPY_DRIVER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
step "build, linted by clippy (-D warnings, every target)"
cargo test --locked --features "$FEATURES" --all-targets --no-run --quiet
# The server binary the integration tests start (CARGO_BIN_EXE_imgfn), built just above; the
# Lambda tier below runs it too.
IMGFN_BIN=target/debug/imgfn
[ -x "$IMGFN_BIN" ] || die "the test build left no $IMGFN_BIN"

# Real components, stopped whatever happens.
LAMBDA_PID=
FUNCTION_PID=
cleanup() {
  if [ -n "$FUNCTION_PID" ]; then kill -- "-$FUNCTION_PID" 2>/dev/null || true; fi
  if [ -n "$LAMBDA_PID" ]; then kill -- "-$LAMBDA_PID" 2>/dev/null || true; fi
  scripts/garage.sh stop || true
}
trap cleanup EXIT

step "start Garage (S3 on a free loopback port, fresh keys)"
eval "$(scripts/garage.sh start)"
echo "    $AWS_ENDPOINT_URL_S3"

LAMBDA_PORT=$(free_port)
export IMGFN_TEST_LAMBDA_URL=http://127.0.0.1:$LAMBDA_PORT/lambda-url/imgfn
export IMGFN_TEST_LAMBDA_PREFIX=lambda-$(hex 4)/
export IMGFN_TEST_LAMBDA_UPLOAD_TOKEN=test-upload-$(hex 16)
step "start cargo lambda watch's Runtime API and Function URLs (127.0.0.1:$LAMBDA_PORT), then the function"
# The function is ready, and is the one started here, when it serves an object that exists
# only under this run's prefix of this run's fresh Garage.
curl -sf -o /dev/null -X PUT --aws-sigv4 "aws:amz:garage:s3" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" --data-binary @testdata/small.jpg \
  "$AWS_ENDPOINT_URL_S3/$IMGFN_TEST_BUCKET/${IMGFN_TEST_LAMBDA_PREFIX}ready-check.jpg" \
  || die "could not store the Lambda's ready-check object in Garage"
# cargo-lambda's emulator with `--only-lambda-apis`: its Runtime API and Function URL router,
# with the function started here, from the binary the tests were built with. Left to start
# the function itself, `cargo lambda watch` builds it with `cargo build`, whose features
# (without the dev-dependencies') differ from the test build's: most of the tree compiled a
# second time. The function polls the Runtime API at `.rt/imgfn`, which is what
# `/lambda-url/imgfn/...` invokes.
setsid cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 \
  --invoke-port "$LAMBDA_PORT" >target/lambda-watch.log 2>&1 &
LAMBDA_PID=$!
for i in $(seq 1 100); do
  port_free "$LAMBDA_PORT" || break
  kill -0 "$LAMBDA_PID" 2>/dev/null || { tail -20 target/lambda-watch.log >&2; die "cargo lambda watch exited"; }
  [ "$i" -lt 100 ] || { tail -20 target/lambda-watch.log >&2; die "cargo lambda watch did not listen"; }
  sleep 0.2
done
AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$LAMBDA_PORT/.rt/imgfn AWS_LAMBDA_FUNCTION_NAME=imgfn \
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=4096 \
  IMGFN_BUCKET=$IMGFN_TEST_BUCKET IMGFN_PREFIX=$IMGFN_TEST_LAMBDA_PREFIX IMGFN_S3_PATH_STYLE=true \
  IMGFN_MAX_RESPONSE_BYTES=200000 IMGFN_UPLOAD_TOKEN=$IMGFN_TEST_LAMBDA_UPLOAD_TOKEN \
  setsid "$IMGFN_BIN" >target/lambda-function.log 2>&1 &
FUNCTION_PID=$!
for i in $(seq 1 60); do
  if curl -s --max-time 30 "$IMGFN_TEST_LAMBDA_URL/ready-check.jpg?fmt=json" \
    | grep -q '"width":640'; then break; fi
  kill -0 "$LAMBDA_PID" 2>/dev/null || { tail -20 target/lambda-watch.log >&2; die "cargo lambda watch exited"; }
  kill -0 "$FUNCTION_PID" 2>/dev/null || { tail -20 target/lambda-function.log >&2; die "the function exited"; }
  [ "$i" -lt 60 ] || { tail -20 target/lambda-watch.log target/lambda-function.log >&2; die "the function did not answer"; }
  sleep 1
done

# Every tier's tools are running now: a test that would skip for want of one fails instead
# (tests/api/support/tier.rs), so this command cannot pass having silently tested less.
export IMGFN_TEST_REQUIRE_ALL=1
if [ "${TEST_RUNNER:-}" = nextest ]; then
  # The same suite, one process per test (the turn locks are files, so they still hold).
  command -v cargo-nextest >/dev/null || die "TEST_RUNNER=nextest: cargo install cargo-nextest"
  step "cargo nextest run"
  cargo nextest run --locked --features "$FEATURES" --no-fail-fast "$@"
else
  step "cargo test"
  cargo test --locked --features "$FEATURES" "$@"
fi

# The Lambda artefact, built as it is deployed and started as Lambda starts it: always in CI,
# locally when LAMBDA_ARTEFACT=1. `cargo lambda build --release --x86-64 --features nasm`
# (zig from PyPI), the zip checked against Lambda's limits, then three cold starts of the
# zip's own bootstrap through a local Runtime API over this run's Garage, each answering five
# requests with 200. A second optimised build of the whole tree: in CI without the release
# profile's fat LTO (CI_LIGHT=1, scripts/lambda-build.sh), which alone took 14.5 minutes of
# the CI run that overran its limit on 2026-11-30; LAMBDA_ARTEFACT=1 builds it as deployed.
if [ "${CI:-}" = true ] || [ "${LAMBDA_ARTEFACT:-}" = 1 ]; then
  light=${CI_LIGHT:-}
  if [ "${CI:-}" = true ]; then light=${CI_LIGHT:-1}; fi
  step "Lambda artefact (${light:+CI_LIGHT=$light }scripts/lambda-build.sh x86-64)"
  # A build of its own, so not linted again.
  CI_LIGHT=$light env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS scripts/lambda-build.sh x86-64
  step "its cold start through a local Runtime API (benches/lambda_coldstart.py --runs 3)"
  # The zip's own bootstrap, as Lambda unpacks it (zipfile keeps no mode bits: chmod).
  rm -rf target/lambda/unzipped
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    target/lambda/imgfn/bootstrap.zip target/lambda/unzipped
  chmod +x target/lambda/unzipped/bootstrap
  python3 benches/lambda_coldstart.py --binary target/lambda/unzipped/bootstrap --runs 3 \
    >target/lambda-coldstart.txt
  head -3 target/lambda-coldstart.txt
  # A fresh clone reuses none of it: its disk goes to the fuzz build next.
  if [ "${CI:-}" = true ]; then rm -rf target/x86_64-unknown-linux-gnu; fi
  step "disk: $(df -h . | awk 'NR==2 {print $4 " free of " $2}')"
fi

# Bounded fuzzing: always in CI, locally when FUZZ_SECONDS is set (it builds a sanitizer
# copy of the crate, several minutes the first time).
if [ "${CI:-}" = true ] || [ -n "${FUZZ_SECONDS:-}" ]; then
  step "fuzz (${FUZZ_SECONDS:-60}s per target)"
  env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
step "done"
