#!/usr/bin/env bash
# A real S3-compatible server (Garage) on 127.0.0.1 for the tests and for local development.
#   scripts/garage.sh install   cargo install garage (once; about 8 min cold on 2 cores)
#   scripts/garage.sh start     start a fresh single-node server; prints `export` lines
#   scripts/garage.sh stop      stop it
#   scripts/garage.sh restart   start it again with its data (after a stop)
# GARAGE_DIR selects an instance (tests run a second one). Each start picks free loopback ports
# (or GARAGE_S3_PORT, +1 RPC, +3 admin) and fresh random keys, so a leftover server can never
# answer for this one: it is ready only when a listing signed with the new keys succeeds.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE_VERSION=2.5.0
DIR=${GARAGE_DIR:-target/garage}
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
export GARAGE_DEFAULT_BUCKET=${GARAGE_BUCKET:-imgfn-test}

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
# Nothing accepts connections on this loopback port.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A fresh instance: ports (S3, S3+1 RPC, S3+3 admin) and keys, kept in $DIR/instance for restart.
new_instance() {
  local port=${GARAGE_S3_PORT:-}
  if [ -z "$port" ]; then
    for _ in $(seq 1 100); do
      port=$((20000 + (RANDOM % 2500) * 16))
      if port_free "$port" && port_free $((port + 1)) && port_free $((port + 3)); then break; fi
      port=
    done
    [ -n "$port" ] || { echo "garage.sh: no free loopback port found" >&2; exit 1; }
  fi
  cat > "$DIR/instance" <<VARS
PORT=$port
GARAGE_DEFAULT_ACCESS_KEY=GK$(hex 12)
GARAGE_DEFAULT_SECRET_KEY=$(hex 32)
VARS
}

load_instance() {
  [ -f "$DIR/instance" ] || { echo "garage.sh: no instance in $DIR (run start)" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$DIR/instance"
  RPC_PORT=$((PORT + 1))
  ADMIN_PORT=$((PORT + 3))
  export GARAGE_DEFAULT_ACCESS_KEY GARAGE_DEFAULT_SECRET_KEY
}

garage_bin() {
  if command -v garage >/dev/null && garage --version 2>/dev/null | grep -q "v$GARAGE_VERSION"; then
    command -v garage
  elif [ -x "$HOME/.cargo/bin/garage" ]; then
    echo "$HOME/.cargo/bin/garage"
  fi
}

install() {
  if [ -z "$(garage_bin)" ]; then
    echo "==> cargo install garage@$GARAGE_VERSION (one-time, several minutes)" >&2
    # Only what these scripts use: the sqlite metadata engine (garage.toml below), without
    # LMDB, K2V or the Prometheus metrics; optimised at level 1, which is plenty for a test
    # server and compiles faster than the default 3. 8 min on 2 cores (2026-12-01).
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
      cargo install "garage@$GARAGE_VERSION" --locked --quiet \
      --no-default-features --features bundled-libs,sqlite
  fi
}

stop() {
  if [ -f "$DIR/pid" ]; then
    local pid
    pid=$(cat "$DIR/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # Graceful shutdown can take a while; a stopped server must really be gone.
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$DIR/pid"
  fi
}

start() {
  install
  stop
  rm -rf "$DIR"
  mkdir -p "$DIR/meta" "$DIR/data"
  new_instance
  load_instance
  write_config
  launch
}

restart() {
  stop
  load_instance
  launch
}

write_config() {
  cat > "$DIR/garage.toml" <<TOML
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML
}

launch() {
  for p in "$PORT" "$RPC_PORT" "$ADMIN_PORT"; do
    port_free "$p" || { echo "garage.sh: 127.0.0.1:$p is already in use (a leftover server?)" >&2; exit 1; }
  done
  "$(garage_bin)" -c "$DIR/garage.toml" server --single-node --default-bucket >"$DIR/log" 2>&1 &
  echo $! > "$DIR/pid"
  # Ready when a signed listing of the default bucket succeeds.
  for i in $(seq 1 150); do
    if curl -sf -o /dev/null --aws-sigv4 "aws:amz:garage:s3" \
         -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
         --user "$GARAGE_DEFAULT_ACCESS_KEY:$GARAGE_DEFAULT_SECRET_KEY" \
         "http://127.0.0.1:$PORT/$GARAGE_DEFAULT_BUCKET?list-type=2"; then
      break
    fi
    [ "$i" -lt 150 ] || { echo "garage did not become ready" >&2; tail -20 "$DIR/log" >&2; exit 1; }
    kill -0 "$(cat "$DIR/pid")" 2>/dev/null || { tail -20 "$DIR/log" >&2; exit 1; }
    sleep 0.2
  done
  cat <<ENV
export AWS_ACCESS_KEY_ID=$GARAGE_DEFAULT_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$GARAGE_DEFAULT_SECRET_KEY
export AWS_REGION=garage
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$PORT
export IMGFN_TEST_BUCKET=$GARAGE_DEFAULT_BUCKET
ENV
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  *) echo "usage: $0 install|start|stop|restart" >&2; exit 2 ;;
esac
