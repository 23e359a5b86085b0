#!/usr/bin/env bash
# Side-by-side benchmark: imgfn versus sharp (libvips), thumbor, nginx and its own floors.
#
#   bash benches/compare/run.sh
#
# Installs its own tools (sharp from npm into benches/compare/scratch/; libvips-tools, nginx,
# wrk, time, libavif-bin, libjpeg-turbo-progs and the lomiri-wallpapers photos from apt;
# pillow, numpy and thumbor from PyPI into venvs under scratch/), builds imgfn as the
# README's scripts/serve.sh does (`cargo build --release --features nasm`), runs W1-W9 and
# issue 16's goal workloads G1-G6, and prints Markdown tables, also written to
# benches/compare/results.md. Raw results: benches/compare/scratch/results.jsonl.
#
# Knobs (environment):
#   ROUNDS=5        alternating rounds per workload (imgfn batch, sharp batch, ...)
#   N_LARGE=5       iterations per batch for the 20 MP workloads (W1-W3, W6)
#   N_SMALL=10      iterations per batch for W4, W5
#   WARMUP=1        untimed sharp iterations per batch (imgfn's --repeat has none)
#   RSS_RUNS=3      one-job processes per side for W7
#   W8_ROUNDS=2     alternating 10 s wrk runs per server for W8
#   W9_RUNS=20      spawns per variant for W9
#   G_ROUNDS=15     alternating rounds per goal workload (G1-G5: issue 16's table)
#   G6_ROUNDS=15    rounds of the cold-gallery run (imgfn, sharp, thumbor each)
#   THUMBOR_VERSION thumbor from PyPI for G6 (default 7.8.0)
#   BENCH_CPU=0     core that imgfn, node/sharp, nginx are pinned to (taskset -c)
#   LOAD_CPU=1      core wrk is pinned to in W8 (unpinned on a 1-core machine)
#   SHARP_VERSION   default: newest 0.35.x on npm (else newest stable)
#   IMGFN=path      binary to bench (default target/release/imgfn)
#   SKIP_BUILD=1    do not run cargo build
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

SCRATCH=$HERE/scratch
OUT=$SCRATCH/out
RES=$SCRATCH/results.jsonl
ROUNDS=${ROUNDS:-5}
N_LARGE=${N_LARGE:-5}
N_SMALL=${N_SMALL:-10}
WARMUP=${WARMUP:-1}
RSS_RUNS=${RSS_RUNS:-3}
W8_ROUNDS=${W8_ROUNDS:-2}
W9_RUNS=${W9_RUNS:-20}
G_ROUNDS=${G_ROUNDS:-15}
G6_ROUNDS=${G6_ROUNDS:-15}
THUMBOR_VERSION=${THUMBOR_VERSION:-7.8.0}
BENCH_CPU=${BENCH_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
IMGFN=${IMGFN:-$ROOT/target/release/imgfn}
IMGFN_PORT=18080
NGINX_PORT=18081
export SCRATCH

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$SCRATCH" "$OUT"
START_TS=$(date +%s)

# ---------------------------------------------------------------- tools
need_apt=()
command -v vipsthumbnail >/dev/null || need_apt+=(libvips-tools)
command -v nasm >/dev/null || need_apt+=(nasm)  # full-speed x86 build of imgfn (SIMD JPEG, rav1e asm)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v avifdec >/dev/null || need_apt+=(libavif-bin)
command -v jpegtran >/dev/null || need_apt+=(libjpeg-turbo-progs)  # the baseline goal photo
python3 -c 'import venv' 2>/dev/null || need_apt+=(python3-venv)   # thumbor's venv
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v curl >/dev/null || need_apt+=(curl)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# Pillow and numpy for quality.py and prepare_photos.py, in a venv of their own (Debian's
# python3 refuses a system-wide pip install, PEP 668).
PYV=$SCRATCH/py-venv
if ! "$PYV/bin/python" -c 'import PIL, numpy' 2>/dev/null; then
  log "pip install pillow numpy into $PYV"
  python3 -m venv "$PYV" >&2
  "$PYV/bin/pip" install -q --disable-pip-version-check pillow numpy >&2
fi
export PATH="$PYV/bin:$PATH"  # `python3` below is the venv's

if [ -z "${SHARP_VERSION:-}" ]; then
  SHARP_VERSION=$(npm view sharp versions --json 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      const v = JSON.parse(s).filter(x => /^\d+\.\d+\.\d+$/.test(x));
      const key = x => x.split(".").map(Number);
      const cmp = (a, b) => { const p = key(a), q = key(b); for (let i = 0; i < 3; i++) if (p[i] !== q[i]) return p[i] - q[i]; return 0; };
      v.sort(cmp);
      const m = v.filter(x => x.startsWith("0.35."));
      console.log((m.length ? m : v).pop());
    });' || true)
fi
have_sharp=$(node -e 'try { console.log(require(process.argv[1] + "/node_modules/sharp/package.json").version) } catch { console.log("") }' "$SCRATCH")
if [ -z "$SHARP_VERSION" ]; then
  [ -n "$have_sharp" ] || die "cannot resolve a sharp version (npm view failed) and none installed"
  log "npm view failed; using the installed sharp $have_sharp"
  SHARP_VERSION=$have_sharp
fi
if [ "$have_sharp" != "$SHARP_VERSION" ]; then
  log "npm install --prefix $SCRATCH sharp@$SHARP_VERSION"
  npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error "sharp@$SHARP_VERSION" >&2
fi
SHARP_INFO=$(node "$HERE/sharp_bench.mjs" --versions)
log "sharp/libvips/node: $SHARP_INFO"

# ---------------------------------------------------------------- imgfn
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # The README's build (scripts/serve.sh: nasm installed, `cargo build --release --features
  # nasm`), so what is measured is what a newcomer's first command builds.
  log "scripts/serve.sh --build-only (may take a while on a cold target/)"
  "$ROOT/scripts/serve.sh" --build-only >&2
fi
[ -x "$IMGFN" ] || die "$IMGFN not found (build failed?)"
"$IMGFN" transform --help 2>&1 | grep -q -- '--repeat' \
  || die "$IMGFN transform has no --repeat: this imgfn predates the bench interface"

# ---------------------------------------------------------------- helpers
PIN=(taskset -c "$BENCH_CPU")
NPROC=$(nproc)
if [ "$NPROC" -ge 2 ]; then LOAD_PIN=(taskset -c "$LOAD_CPU"); else LOAD_PIN=(); fi
SHARP_ENV=(env VIPS_CONCURRENCY=1 UV_THREADPOOL_SIZE=1)

: > "$RES"
: > "$SCRATCH/imgfn.log"; : > "$SCRATCH/sharp.log"; : > "$SCRATCH/startup.log"; : > "$SCRATCH/imgfn-serve.log"

# jget JSON KEY -> value (empty if missing)
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

# record W IMPL ROUND JSON: append one tagged line to results.jsonl
record() {
  local json=$4
  [[ $json == \{* ]] || die "$1 $2: not a JSON object: $json"
  printf '{"w":"%s","impl":"%s","round":%s,%s\n' "$1" "$2" "$3" "${json#\{}" >> "$RES"
}

# last JSON line of a command's stdout; its stderr goes to a log file
json_of() {
  local logf=$1; shift
  local out
  if ! out=$("$@" 2>>"$logf"); then
    log "command failed: $*"; tail -n 20 "$logf" >&2; exit 1
  fi
  out=$(printf '%s\n' "$out" | grep '^{' | tail -n 1 || true)
  [ -n "$out" ] || { log "no JSON from: $*"; tail -n 20 "$logf" >&2; exit 1; }
  printf '%s' "$out"
}

# bench_imgfn W ROUND N OUTPUT ARGS...
bench_imgfn() {
  local w=$1 r=$2 n=$3 o=$4; shift 4
  local j
  j=$(json_of "$SCRATCH/imgfn.log" "${PIN[@]}" "$IMGFN" transform "$@" -o "$o" --repeat "$n")
  record "$w" imgfn "$r" "$j"
  log "  $w round $r/$ROUNDS imgfn: median $(jget "$j" median_ms) ms, $(jget "$j" bytes) bytes"
}
# bench_sharp W IMPL ROUND N OUTPUT ARGS...
bench_sharp() {
  local w=$1 impl=$2 r=$3 n=$4 o=$5; shift 5
  local j
  j=$(json_of "$SCRATCH/sharp.log" "${SHARP_ENV[@]}" "${PIN[@]}" node "$HERE/sharp_bench.mjs" \
      "$@" -o "$o" --repeat "$n" --warmup "$WARMUP")
  record "$w" "$impl" "$r" "$j"
  log "  $w round $r/$ROUNDS $impl: median $(jget "$j" median_ms) ms, $(jget "$j" bytes) bytes"
}

# bench_decode_floor W ROUND INPUT: imgfn's 1/8 decode alone (the floor of a thumbnail job)
bench_decode_floor() {
  local j
  j=$(json_of "$SCRATCH/imgfn.log" "${PIN[@]}" "$IMGFN" transform "$3" --decode-only --shrink 8 \
      -o "$OUT/$1.decode.bin" --repeat "$N_LARGE")
  record "$1" imgfn-decode "$2" "$j"
  log "  $1 round $2 decode-only 1/8: median $(jget "$j" median_ms) ms"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT PID
  local i
  for i in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

# ---------------------------------------------------------------- machine info
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -qv '^??' && echo '+dirty' || true)
python3 - "$SHARP_INFO" "$GIT_REV$GIT_DIRTY" "$ROUNDS" "$N_LARGE" "$N_SMALL" "$WARMUP" "$BENCH_CPU" \
  "$G_ROUNDS" "$G6_ROUNDS" "$("$IMGFN" simd 2>/dev/null || true)" >> "$RES" <<'EOF'
import json, os, platform, subprocess, sys, time
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
mem = "?"
try:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"; break
except OSError:
    pass
def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
import PIL, numpy
print(json.dumps({"w": "meta", "impl": "meta", "round": 0,
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": os.cpu_count(), "cpu": cpu, "mem": mem,
    "kernel": platform.release(), "load": os.getloadavg()[0], "versions": json.loads(sys.argv[1]),
    "imgfn_rev": sys.argv[2], "rustc": ver(["rustc", "--version"]),
    "vipsthumbnail": ver(["vips", "--version"]), "pillow": PIL.__version__, "numpy": numpy.__version__,
    "rounds": int(sys.argv[3]), "n_large": int(sys.argv[4]), "n_small": int(sys.argv[5]),
    "warmup": int(sys.argv[6]), "cpu_pin": sys.argv[7], "g_rounds": int(sys.argv[8]),
    "g6_rounds": int(sys.argv[9]), "simd": sys.argv[10]}))
EOF
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date), load $(cut -d' ' -f1 /proc/loadavg)"

# ---------------------------------------------------------------- W1 + W6 (+ info rows)
L=testdata/large.jpg
log "W1 large.jpg -> 400w JPEG q80 (+ W6 decode-only floor, + sharp fastShrinkOnLoad:false)"
for r in $(seq 1 "$ROUNDS"); do
  bench_imgfn W1 "$r" "$N_LARGE" "$OUT/w1.imgfn.jpg" "$L" --w 400 --fmt jpeg --q 80
  bench_sharp W1 sharp "$r" "$N_LARGE" "$OUT/w1.sharp.jpg" --in "$L" --w 400 --fmt jpeg --q 80
  bench_decode_floor W6 "$r" "$L"
  bench_sharp W1 sharp-nofast "$r" "$N_LARGE" "$OUT/w1.sharp-nofast.jpg" --in "$L" --w 400 --fmt jpeg --q 80 --no-fast-shrink
done

# vipsthumbnail (system libvips) as a whole process, for information only
log "info: vipsthumbnail (system libvips) W1, whole process incl. start-up"
for r in $(seq 1 "$ROUNDS"); do
  t0=$(date +%s%N)
  VIPS_CONCURRENCY=1 "${PIN[@]}" vipsthumbnail "$L" --size 400x -o "$OUT/w1.vipsthumbnail.jpg[Q=80,strip]"
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000 ))
  record W1 vipsthumbnail-process "$r" "{\"runs\":1,\"median_ms\":$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))),\"bytes\":$(stat -c %s "$OUT/w1.vipsthumbnail.jpg")}"
done

# ---------------------------------------------------------------- W2-W5
log "W2 large.jpg -> 400w WebP q80"
for r in $(seq 1 "$ROUNDS"); do
  bench_imgfn W2 "$r" "$N_LARGE" "$OUT/w2.imgfn.webp" "$L" --w 400 --fmt webp --q 80
  bench_sharp W2 sharp "$r" "$N_LARGE" "$OUT/w2.sharp.webp" --in "$L" --w 400 --fmt webp --q 80
done

log "W3 large.jpg -> 400w AVIF (both at their default quality)"
for r in $(seq 1 "$ROUNDS"); do
  bench_imgfn W3 "$r" "$N_LARGE" "$OUT/w3.imgfn.avif" "$L" --w 400 --fmt avif
  bench_sharp W3 sharp "$r" "$N_LARGE" "$OUT/w3.sharp.avif" --in "$L" --w 400 --fmt avif
done

log "W4 medium.jpg -> 1200w JPEG q80"
for r in $(seq 1 "$ROUNDS"); do
  bench_imgfn W4 "$r" "$N_SMALL" "$OUT/w4.imgfn.jpg" testdata/medium.jpg --w 1200 --fmt jpeg --q 80
  bench_sharp W4 sharp "$r" "$N_SMALL" "$OUT/w4.sharp.jpg" --in testdata/medium.jpg --w 1200 --fmt jpeg --q 80
done

log "W5 alpha.png -> 400w WebP (default quality 80)"
for r in $(seq 1 "$ROUNDS"); do
  bench_imgfn W5 "$r" "$N_SMALL" "$OUT/w5.imgfn.webp" testdata/alpha.png --w 400 --fmt webp
  bench_sharp W5 sharp "$r" "$N_SMALL" "$OUT/w5.sharp.webp" --in testdata/alpha.png --w 400 --fmt webp
done

# ---------------------------------------------------------------- quality W1-W5
log "quality: PSNR against Pillow LANCZOS of the full original"
quality() { # W ORIGINAL IMGFN_OUT SHARP_OUT [more outputs with labels]
  local w=$1 orig=$2; shift 2
  local labels=$1; shift
  log "  $w"
  local j
  j=$(python3 "$HERE/quality.py" "$orig" "$@" --labels "$labels" --json)
  record "$w" quality 0 "$j"
}
quality W1 "$L" imgfn,sharp,sharp-nofast,vipsthumbnail "$OUT/w1.imgfn.jpg" "$OUT/w1.sharp.jpg" "$OUT/w1.sharp-nofast.jpg" "$OUT/w1.vipsthumbnail.jpg"
quality W2 "$L" imgfn,sharp "$OUT/w2.imgfn.webp" "$OUT/w2.sharp.webp"
quality W3 "$L" imgfn,sharp "$OUT/w3.imgfn.avif" "$OUT/w3.sharp.avif"
quality W4 testdata/medium.jpg imgfn,sharp "$OUT/w4.imgfn.jpg" "$OUT/w4.sharp.jpg"
quality W5 testdata/alpha.png imgfn,sharp "$OUT/w5.imgfn.webp" "$OUT/w5.sharp.webp"

# ---------------------------------------------------------------- W7 peak RSS
log "W7 peak RSS of one W1 job per process (/usr/bin/time -v)"
maxrss() { sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$1"; }
for r in $(seq 1 "$RSS_RUNS"); do
  /usr/bin/time -v -o "$SCRATCH/time.imgfn.txt" "${PIN[@]}" "$IMGFN" transform "$L" --w 400 --fmt jpeg --q 80 \
    -o "$OUT/w7.imgfn.jpg" >/dev/null 2>>"$SCRATCH/imgfn.log"
  kb=$(maxrss "$SCRATCH/time.imgfn.txt")
  record W7 imgfn "$r" "{\"rss_kb\":$kb}"
  "${SHARP_ENV[@]}" /usr/bin/time -v -o "$SCRATCH/time.sharp.txt" "${PIN[@]}" node "$HERE/sharp_bench.mjs" \
    --in "$L" --w 400 --fmt jpeg --q 80 --repeat 1 --warmup 0 -o "$OUT/w7.sharp.jpg" >/dev/null 2>>"$SCRATCH/sharp.log"
  kb2=$(maxrss "$SCRATCH/time.sharp.txt")
  record W7 sharp "$r" "{\"rss_kb\":$kb2}"
  log "  W7 run $r/$RSS_RUNS: imgfn $kb KiB, node+sharp $kb2 KiB"
done

# ---------------------------------------------------------------- W8 warm-cache throughput
log "W8 warm-cache throughput: imgfn serve vs nginx serving the same bytes (both taskset -c $BENCH_CPU, wrk on ${LOAD_PIN[*]:-any core})"
port_free "$IMGFN_PORT" || die "port $IMGFN_PORT is in use"
port_free "$NGINX_PORT" || die "port $NGINX_PORT is in use"
# Request logs off, as nginx runs with access_log off.
IMGFN_LOG=warn "${PIN[@]}" "$IMGFN" serve --addr "127.0.0.1:$IMGFN_PORT" --root testdata >>"$SCRATCH/imgfn-serve.log" 2>&1 &
IMGFN_SERVE_PID=$!
BG_PIDS+=("$IMGFN_SERVE_PID")
wait_port "$IMGFN_PORT" "$IMGFN_SERVE_PID" || { tail -n 20 "$SCRATCH/imgfn-serve.log" >&2; die "imgfn serve did not listen"; }
THUMB_PATH='/small.jpg?w=200&fmt=webp'
WWW=$SCRATCH/www
mkdir -p "$WWW"
curl -sSf -o "$WWW/thumb.webp" "http://127.0.0.1:$IMGFN_PORT$THUMB_PATH"
hit=$(curl -sSf -D - -o /dev/null "http://127.0.0.1:$IMGFN_PORT$THUMB_PATH" | tr -d '\r' | grep -i '^server-timing' || true)
log "  warmed $THUMB_PATH: $(stat -c %s "$WWW/thumb.webp") bytes; 2nd response $hit"

NGX=$SCRATCH/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
cat > "$NGX/nginx.conf" <<EOF
# Written by benches/compare/run.sh: one worker serving one static file.
user root;
worker_processes 1;
daemon off;
master_process on;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    types { image/webp webp; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WWW;
        location / { }
    }
}
EOF
"${PIN[@]}" "$NGINX_BIN" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" &
NGINX_PID=$!
BG_PIDS+=("$NGINX_PID")
wait_port "$NGINX_PORT" "$NGINX_PID" || { tail -n 20 "$NGX/logs/error.log" >&2; die "nginx did not listen"; }
curl -sSf -o "$OUT/w8.nginx.webp" "http://127.0.0.1:$NGINX_PORT/thumb.webp"
cmp -s "$OUT/w8.nginx.webp" "$WWW/thumb.webp" || die "nginx does not serve the same bytes"

run_wrk() { # IMPL ROUND URL
  local f="$SCRATCH/wrk.$1.$2.txt"
  "${LOAD_PIN[@]}" wrk -t1 -c32 -d10s --latency "$3" > "$f"
  local rps non2xx
  rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$f")
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$f")
  [ -n "$rps" ] || { cat "$f" >&2; die "wrk printed no Requests/sec"; }
  [ -z "$non2xx" ] || { cat "$f" >&2; die "wrk saw $non2xx non-2xx responses from $1"; }
  local p50 p99
  p50=$(awk '$1=="50%"{print $2}' "$f"); p99=$(awk '$1=="99%"{print $2}' "$f")
  record W8 "$1" "$2" "{\"rps\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"pinned\":\"${PIN[*]}\"}"
  log "  W8 round $2/$W8_ROUNDS $1: $rps req/s (p50 $p50, p99 $p99)"
}
for r in $(seq 1 "$W8_ROUNDS"); do
  run_wrk imgfn "$r" "http://127.0.0.1:$IMGFN_PORT$THUMB_PATH"
  run_wrk nginx "$r" "http://127.0.0.1:$NGINX_PORT/thumb.webp"
done
kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true
kill "$IMGFN_SERVE_PID" 2>/dev/null || true; wait "$IMGFN_SERVE_PID" 2>/dev/null || true
BG_PIDS=()
log "  stopped imgfn serve and nginx"

# ---------------------------------------------------------------- W9 cold start
log "W9 cold start: $W9_RUNS spawns per variant (imgfn pinned to cpu $BENCH_CPU)"
j=$(json_of "$SCRATCH/startup.log" python3 "$HERE/startup.py" --bin "$IMGFN" --root testdata \
    --runs "$W9_RUNS" --cpu "$BENCH_CPU" --log "$SCRATCH/imgfn-serve.log" --json)
record W9 imgfn 0 "$j"
tail -n 2 "$SCRATCH/startup.log" >&2 || true

# ---------------------------------------------------------------- G: issue 16's goals
# Photos the tuning set never used (prepare_photos.py), G_ROUNDS alternating rounds each.
log "G: goal workloads on photos outside testdata/ ($G_ROUNDS rounds)"
PH=$SCRATCH/photos
if [ ! -f "$PH/4mp-progressive.jpg" ] || [ "$(ls "$PH/gallery" 2>/dev/null | wc -l)" -ne 50 ]; then
  mkdir -p "$SCRATCH/debs" "$PH"
  if [ ! -d "$SCRATCH/debs/x/usr/share/backgrounds" ]; then
    log "  apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 (real photos, CC-BY/CC0)"
    (cd "$SCRATCH/debs" && apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 >&2)
    for d in "$SCRATCH"/debs/*.deb; do dpkg-deb -x "$d" "$SCRATCH/debs/x"; done
  fi
  python3 "$HERE/prepare_photos.py" "$SCRATCH/debs/x/usr/share/backgrounds" "$PH"
fi
B15=$PH/baseline-15mp.jpg; P16=$PH/progressive-16mp.jpg; M4=$PH/4mp.jpg; RGBA=$PH/rgba.png
M4P=$PH/4mp-progressive.jpg
for r in $(seq 1 "$G_ROUNDS"); do
  bench_imgfn G1 "$r" "$N_LARGE" "$OUT/g1.imgfn.jpg" "$B15" --w 400 --fmt jpeg --q 80
  bench_sharp G1 sharp "$r" "$N_LARGE" "$OUT/g1.sharp.jpg" --in "$B15" --w 400 --fmt jpeg --q 80
  bench_decode_floor G1 "$r" "$B15"
  bench_imgfn G1w "$r" "$N_LARGE" "$OUT/g1w.imgfn.webp" "$B15" --w 400 --fmt webp --q 80
  bench_sharp G1w sharp "$r" "$N_LARGE" "$OUT/g1w.sharp.webp" --in "$B15" --w 400 --fmt webp --q 80
  bench_imgfn G2 "$r" "$N_LARGE" "$OUT/g2.imgfn.jpg" "$P16" --w 400 --fmt jpeg --q 80
  bench_sharp G2 sharp "$r" "$N_LARGE" "$OUT/g2.sharp.jpg" --in "$P16" --w 400 --fmt jpeg --q 80
  bench_imgfn G3 "$r" "$N_SMALL" "$OUT/g3.imgfn.jpg" "$M4" --w 1200 --fmt jpeg --q 80
  bench_imgfn G3f "$r" "$N_SMALL" "$OUT/g3.imgfn-faithful.jpg" "$M4" --w 1200 --fmt jpeg --q 80 \
    --shrink-on-load faithful
  bench_imgfn G3fast "$r" "$N_SMALL" "$OUT/g3.imgfn-fast.jpg" "$M4" --w 1200 --fmt jpeg --q 80 \
    --shrink-on-load fast
  bench_sharp G3 sharp "$r" "$N_SMALL" "$OUT/g3.sharp.jpg" --in "$M4" --w 1200 --fmt jpeg --q 80
  bench_imgfn G3p "$r" "$N_SMALL" "$OUT/g3p.imgfn.jpg" "$M4P" --w 1200 --fmt jpeg --q 80
  bench_sharp G3p sharp "$r" "$N_SMALL" "$OUT/g3p.sharp.jpg" --in "$M4P" --w 1200 --fmt jpeg --q 80
  bench_imgfn G4 "$r" "$N_LARGE" "$OUT/g4.imgfn.avif" "$B15" --w 400 --fmt avif
  bench_sharp G4 sharp "$r" "$N_LARGE" "$OUT/g4.sharp.avif" --in "$B15" --w 400 --fmt avif
  bench_imgfn G5 "$r" "$N_SMALL" "$OUT/g5.imgfn.webp" "$RGBA" --w 400 --fmt webp --q 80
  bench_sharp G5 sharp "$r" "$N_SMALL" "$OUT/g5.sharp.webp" --in "$RGBA" --w 400 --fmt webp --q 80
done
quality G1 "$B15" imgfn,sharp "$OUT/g1.imgfn.jpg" "$OUT/g1.sharp.jpg"
quality G1w "$B15" imgfn,sharp "$OUT/g1w.imgfn.webp" "$OUT/g1w.sharp.webp"
quality G2 "$P16" imgfn,sharp "$OUT/g2.imgfn.jpg" "$OUT/g2.sharp.jpg"
quality G3 "$M4" imgfn,imgfn-faithful,imgfn-fast,sharp "$OUT/g3.imgfn.jpg" "$OUT/g3.imgfn-faithful.jpg" \
  "$OUT/g3.imgfn-fast.jpg" "$OUT/g3.sharp.jpg"
quality G4 "$B15" imgfn,sharp "$OUT/g4.imgfn.avif" "$OUT/g4.sharp.avif"
quality G5 "$RGBA" imgfn,sharp "$OUT/g5.imgfn.webp" "$OUT/g5.sharp.webp"
# The resize's fidelity alone, without a lossy encoder: PNG output, every shrink mode, at the
# G3 size and at the thumbnail sizes of G1 and of the gallery (where fast and balanced differ).
shrink_fidelity() { # W INPUT WIDTH
  local w=$1 in=$2 width=$3 m files=()
  for m in balanced fast faithful; do
    "$IMGFN" transform "$in" --w "$width" --fmt png --shrink-on-load "$m" -o "$OUT/$w.imgfn-$m.png" 2>>"$SCRATCH/imgfn.log"
    files+=("$OUT/$w.imgfn-$m.png")
  done
  node "$HERE/sharp_bench.mjs" --in "$in" --w "$width" --fmt png --repeat 1 --warmup 0 -o "$OUT/$w.sharp.png" >/dev/null
  quality "$w" "$in" imgfn,imgfn-fast,imgfn-faithful,sharp "${files[@]}" "$OUT/$w.sharp.png"
}
shrink_fidelity G3png "$M4" 1200
shrink_fidelity G1png "$B15" 400
shrink_fidelity G1png1328 "$B15" 1328    # exactly 4x: fast takes 1/4, sharp and balanced 1/2
shrink_fidelity G2png "$P16" 640

# PSNR at equal bytes: both encoders over a quality ladder (untimed); report.py reads
# imgfn's PSNR at the bytes of sharp's default output off imgfn's curve.
rd() { # W INPUT WIDTH FMT Q...
  local w=$1 in=$2 width=$3 fmt=$4; shift 4
  local labels="" files=() q ext=$fmt
  [ "$fmt" = jpeg ] && ext=jpg
  for q in "$@"; do
    "$IMGFN" transform "$in" --w "$width" --fmt "$fmt" --q "$q" -o "$OUT/rd.$w.imgfn.q$q.$ext" 2>>"$SCRATCH/imgfn.log"
    node "$HERE/sharp_bench.mjs" --in "$in" --w "$width" --fmt "$fmt" --q "$q" --repeat 1 --warmup 0 \
      -o "$OUT/rd.$w.sharp.q$q.$ext" >/dev/null
    labels+="imgfn-q$q,sharp-q$q,"; files+=("$OUT/rd.$w.imgfn.q$q.$ext" "$OUT/rd.$w.sharp.q$q.$ext")
  done
  quality "RD$w" "$in" "${labels%,}" "${files[@]}"
}
log "rate-distortion ladders (PSNR at equal bytes)"
rd G1 "$B15" 400 jpeg 50 65 80 90
rd G1w "$B15" 400 webp 50 65 80 90
rd G2 "$P16" 400 jpeg 50 65 80 90
rd G3 "$M4" 1200 jpeg 50 65 80 90
rd G4 "$B15" 400 avif 30 40 50 60 70 80
rd G5 "$RGBA" 400 webp 50 65 80 90

# ---------------------------------------------------------------- G6 cold gallery, all cores
# 50 originals x 2 widths x 2 formats, 16 requests in flight, each server started fresh per
# round on every core; peers with their usual deployment defaults (sharp: libvips threads =
# cores, libuv pool of 4; thumbor: one process per core, no result storage).
log "G6 cold gallery: 200 requests, 16 in flight, all $(nproc) cores, $G6_ROUNDS rounds"
TH_VENV=$SCRATCH/thumbor-venv
if [ ! -x "$TH_VENV/bin/thumbor" ]; then
  log "  pip install thumbor==$THUMBOR_VERSION into $TH_VENV"
  python3 -m venv "$TH_VENV" >&2
  "$TH_VENV/bin/pip" install -q --disable-pip-version-check "thumbor==$THUMBOR_VERSION" >&2
fi
THUMBOR_INFO=$("$TH_VENV/bin/pip" show thumbor 2>/dev/null | sed -n 's/^Version: //p')
cat > "$SCRATCH/thumbor.conf" <<CONF
# Written by benches/compare/run.sh: originals from a folder, nothing cached between runs.
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = '$PH'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
ALLOW_UNSAFE_URL = True
QUALITY = 80
RESPECT_ORIENTATION = True
AUTO_WEBP = False
MAX_WIDTH = 0
MAX_HEIGHT = 0
CONF
G6_PORT=18090
for r in $(seq 1 "$G6_ROUNDS"); do
  for impl in imgfn sharp thumbor; do
    case $impl in
      imgfn) cmd="env IMGFN_LOG=warn $IMGFN serve --addr 127.0.0.1:{port} --root {root}" ;;
      sharp) cmd="env SCRATCH=$SCRATCH node $HERE/sharp_server.mjs --root {root} --port {port}" ;;
      thumbor) cmd="$TH_VENV/bin/thumbor -p {port} -i 127.0.0.1 -c $SCRATCH/thumbor.conf --processes 0 -l error" ;;
    esac
    j=$(json_of "$SCRATCH/gallery.log" python3 "$HERE/gallery_load.py" --impl "$impl" --server "$cmd" \
        --root "$PH" --set gallery --warmup warm.jpg --inflight 16 --port "$G6_PORT" \
        --log "$SCRATCH/gallery-$impl.log" --json)
    record G6 "$impl" "$r" "$j"
    log "  G6 round $r/$G6_ROUNDS $impl: wall $(jget "$j" wall_ms) ms, p50 $(jget "$j" p50_ms), p99 $(jget "$j" p99_ms), RSS $(( $(jget "$j" rss_kb) / 1024 )) MiB"
  done
done
printf '{"w":"G6meta","impl":"meta","round":0,"thumbor":"%s"}\n' "$THUMBOR_INFO" >> "$RES"

# ---------------------------------------------------------------- report
log "total bench time $(( $(date +%s) - START_TS )) s"
python3 "$HERE/report.py" "$RES" "$HERE/results.md"
