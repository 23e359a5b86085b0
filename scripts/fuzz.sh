#!/usr/bin/env bash
# Bounded fuzzing of the two attack surfaces: request text (params) and source bytes (decode).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on this stable toolchain.
# Every file in fuzz/regressions/<target>/ (crashes found earlier) is replayed first; a new
# crash fails the run and leaves its input in fuzz/artifacts/<target>/ to be added there.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
for target in params decode; do
  echo "==> fuzz $target: regressions, then ${SECS}s"
  files=()
  for f in fuzz/regressions/"$target"/*; do
    if [ -f "$f" ] && [ "$(basename "$f")" != README ]; then files+=("$f"); fi
  done
  if [ ${#files[@]} -gt 0 ]; then
    cargo fuzz run --fuzz-dir fuzz "$target" "${files[@]}" -- -runs=0
  fi
  mkdir -p "target/fuzz-corpus/$target"
  log="target/fuzz-$target.log"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "target/fuzz-corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log" >&2
    echo "fuzz $target found a failure: its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
done
