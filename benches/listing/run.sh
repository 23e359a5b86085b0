#!/usr/bin/env bash
# Gallery listing benchmark (issue 13, "listing at scale"): how long `GET /_/gallery.json`
# takes for the first and the fiftieth page (100 items each) of a 100,000-file folder and of a
# 10,000-object bucket (Garage on loopback), cold and warm, with and without placeholders.
#
#   bash benches/listing/run.sh
#
# What it does:
#   - builds nothing: it times target/release/imgfn (or $IMGFN), the binary the README's
#     `scripts/serve.sh --build-only` produces; run that first.
#   - writes the folder under target/bench-listing/ (100 folders of 1,000 PNGs of 16x12 px,
#     8 distinct byte strings under 100,000 names, about 1 s) and deletes it afterwards;
#   - starts its own Garage (scripts/garage.sh, free ports, fresh keys, in
#     target/bench-listing/garage) and uploads 10,000 of those files with the aws CLI (32
#     requests at once), then stops it;
#   - for each (store, placeholders, page), RUNS times: a fresh `imgfn serve`, the page as its
#     first listing request ("cold": the folder index or the S3 listing and every header read
#     and placeholder happen in it; the OS page cache is warm, the files were just written),
#     then the same request again ("warm": the folder index, dimensions and placeholders are
#     cached, the S3 listing call is not); the median of RUNS is printed as a Markdown table.
#     RSS growth is the server's VmRSS after the cold request minus before it.
#
# Knobs (environment): RUNS=5, IMGFN=target/release/imgfn, PLACEHOLDERS=0,1 (`placeholders=`
# values), STORES="folder bucket", GALLERY=public (`--gallery`; `true` for a build from
# before the gallery modes), KEEP=1 keeps target/bench-listing/.
# Raw results: target/bench-listing/results.jsonl.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

RUNS=${RUNS:-5}
IMGFN=${IMGFN:-$ROOT/target/release/imgfn}
PLACEHOLDERS=${PLACEHOLDERS:-0,1}
STORES=${STORES:-folder bucket}
GALLERY=${GALLERY:-public}
WORK=$ROOT/target/bench-listing
export GARAGE_DIR=$WORK/garage
unset GARAGE_S3_PORT

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
[ -x "$IMGFN" ] || { log "no $IMGFN: run scripts/serve.sh --build-only first"; exit 1; }
command -v aws >/dev/null || { log "the aws CLI is needed to fill the bucket"; exit 1; }

cleanup() {
  scripts/garage.sh stop >/dev/null 2>&1 || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK/folder" "$WORK/bucket" "$GARAGE_DIR"
}
trap cleanup EXIT
rm -rf "$WORK/folder" "$WORK/bucket" "$GARAGE_DIR"
mkdir -p "$WORK"

log "writing 100,000 files under $WORK/folder"
python3 - "$WORK" <<'PY'
import os, struct, sys, zlib
work = sys.argv[1]
def png(rgb):
    w, h = 16, 12
    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
images = [png(((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)) for i in range(8)]
for store, dirs in (("folder", 100), ("bucket", 10)):
    keys = []
    for d in range(dirs):
        os.makedirs(f"{work}/{store}/d{d:03}", exist_ok=True)
        for i in range(1000):
            key = f"d{d:03}/img-{i:05}.png"
            with open(f"{work}/{store}/{key}", "wb") as f:
                f.write(images[(d + i) % 8])
            keys.append(key)
    with open(f"{work}/{store}.keys", "w") as f:
        f.write("".join(k + "\n" for k in keys))
PY

if [[ " $STORES " == *" bucket "* ]]; then
log "starting Garage"
eval "$(scripts/garage.sh start)"
BUCKET=$IMGFN_TEST_BUCKET
cat > "$WORK/aws-config" <<CFG
[default]
region = $AWS_REGION
s3 =
    max_concurrent_requests = 32
    addressing_style = path
CFG
log "uploading 10,000 objects to s3://$BUCKET/"
AWS_CONFIG_FILE=$WORK/aws-config AWS_DEFAULT_REGION=$AWS_REGION \
  aws --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --recursive --quiet \
  "$WORK/bucket" "s3://$BUCKET/"
fi

RES=$WORK/results.jsonl
: > "$RES"
export LISTING_LOG=$WORK/imgfn.log
if [[ " $STORES " == *" folder "* ]]; then
  log "folder: $RUNS runs per row"
  python3 "$HERE/measure.py" --imgfn "$IMGFN" --runs "$RUNS" --label "folder, 100,000 files" \
    --keys "$WORK/folder.keys" --placeholders "$PLACEHOLDERS" -- \
    --root "$WORK/folder" --gallery "$GALLERY" | tee -a "$RES"
fi
if [[ " $STORES " == *" bucket "* ]]; then
  log "bucket: $RUNS runs per row"
  python3 "$HERE/measure.py" --imgfn "$IMGFN" --runs "$RUNS" --label "bucket, 10,000 objects" \
    --keys "$WORK/bucket.keys" --placeholders "$PLACEHOLDERS" -- \
    --bucket "$BUCKET" --s3-path-style true --gallery "$GALLERY" | tee -a "$RES"
fi

python3 - "$RES" "$RUNS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n| store | page (100 items) | placeholders | cold, ms | warm, ms | RSS growth (cold), MiB |")
print("|---|---|---|---:|---:|---:|")
for r in rows:
    page = "first" if r["page"] == 1 else "fiftieth"
    print(f"| {r['label']} | {page} | {'yes' if r['placeholders'] else 'no'} "
          f"| {r['cold_ms']} | {r['warm_ms']} | {r['rss_growth_kib'] / 1024:.1f} |")
print(f"\nMedians of {sys.argv[2]} runs; cold = first listing request of a fresh server.")
PY
