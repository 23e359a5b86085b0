#!/usr/bin/env bash
# Bounded fuzzing of the attack surfaces: request text (params), source bytes (decode), and the
# DC-only JPEG decoder checked against libjpeg's own 1/8 decode (jpeg_dc_diff).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]                 default 60 (what CI runs, via scripts/test.sh)
#   scripts/fuzz.sh 900                                  a longer local run: 15 minutes per target
#   FUZZ_TARGETS="decode jpeg_dc_diff" scripts/fuzz.sh 300   only some targets
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on this stable toolchain.
# Every file in fuzz/regressions/<target>/ (failures found earlier) is replayed first. Then each
# target runs from its seeds (fuzz/seeds/<target>/, regenerated for jpeg_dc_diff by
# fuzz/make_seeds.py) plus the corpus kept in target/fuzz-corpus/<target>/, with the dictionary
# fuzz/dict/images.dict for the byte-level targets. A single input taking more than 10 s is a
# failure (hang), so is one using more than 2 GB.
# After each target one line goes to the log and to target/fuzz-report.txt:
#   fuzz decode: 123456 execs in 60 s (2057/s), peak RSS 312 MB, corpus 421
# A failure prints the failing input as base64 (CI's clone is thrown away), leaves it in
# fuzz/artifacts/<target>/ and exits 1; keep it as fuzz/regressions/<target>/<descriptive-name>.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
case $SECS in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac
TARGETS=${FUZZ_TARGETS:-params decode jpeg_dc_diff}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
DICT="$PWD/fuzz/dict/images.dict"
REPORT=target/fuzz-report.txt
LIMITS=(-timeout=10 -rss_limit_mb=2048)
mkdir -p target
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') ${SECS}s per target: $TARGETS" >>"$REPORT"

# The value of libFuzzer's final `stat::NAME: value` line in a log.
final_stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -1; }

for target in $TARGETS; do
  case $target in
    params) extra=() ;;
    decode | jpeg_dc_diff) extra=(-dict="$DICT") ;;
    *) echo "unknown fuzz target: $target (have: params decode jpeg_dc_diff)" >&2; exit 2 ;;
  esac
  echo "==> fuzz $target: build, regressions, then ${SECS}s"
  cargo fuzz build --fuzz-dir fuzz "$target"

  files=()
  for f in fuzz/regressions/"$target"/*; do
    if [ -f "$f" ] && [ "$(basename "$f")" != README ]; then files+=("$f"); fi
  done
  if [ ${#files[@]} -gt 0 ]; then
    if ! cargo fuzz run --fuzz-dir fuzz "$target" "${files[@]}" -- -runs=0 "${LIMITS[@]}"; then
      echo "fuzz $target: an input in fuzz/regressions/$target/ fails again (output above)" >&2
      exit 1
    fi
  fi

  mkdir -p "target/fuzz-corpus/$target" "fuzz/seeds/$target" "fuzz/artifacts/$target"
  log="target/fuzz-$target.log"
  stamp="target/fuzz-$target.started"
  touch "$stamp"
  status=0
  started=$SECONDS
  cargo fuzz run --fuzz-dir fuzz "$target" "target/fuzz-corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$SECS" "${LIMITS[@]}" -max_len=262144 -print_final_stats=1 \
    ${extra[@]+"${extra[@]}"} >"$log" 2>&1 || status=$?

  execs=$(final_stat number_of_executed_units "$log")
  rate=$(final_stat average_exec_per_sec "$log")
  rss=$(final_stat peak_rss_mb "$log")
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ -z "$secs" ]; then # no "Done" line when it stopped at a failure: time to it
    if [ "${rate:-0}" -gt 0 ]; then secs=$((execs / rate)); else secs=$((SECONDS - started)); fi
  fi
  corpus=$(grep -ao 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true) # -a: the log holds raw dictionary bytes
  line="fuzz $target: ${execs:-?} execs in ${secs} s (${rate:-?}/s), peak RSS ${rss:-?} MB, corpus ${corpus:-?}"
  [ "$status" -eq 0 ] || line="$line, FAILED (exit $status)"
  echo "$line"
  echo "$line" >>"$REPORT"

  if [ "$status" -ne 0 ]; then
    tail -60 "$log" >&2
    found=0
    while IFS= read -r f; do
      case $(basename "$f") in crash-* | leak-* | timeout-* | oom-*) ;; *) continue ;; esac
      found=1
      echo "fuzz $target failing input $f ($(wc -c <"$f") bytes), base64:" >&2
      base64 -w0 "$f" >&2
      echo >&2
      echo "  replay: cargo fuzz run --fuzz-dir fuzz $target $f" >&2
      echo "  keep:   echo '<base64 above>' | base64 -d > fuzz/regressions/$target/<what-it-is>" >&2
    done < <(find "fuzz/artifacts/$target" -type f -newer "$stamp" | sort)
    [ "$found" -eq 1 ] || echo "fuzz $target failed without leaving an input (see $log)" >&2
    exit 1
  fi
done
