#!/usr/bin/env python3
"""Times gallery listing pages (`GET /_/gallery.json`) of a running-from-scratch imgfn.

Called by benches/listing/run.sh (see its header); standard library only.

    measure.py --imgfn BIN --runs N --label NAME --keys FILE -- <imgfn serve arguments>

For each `placeholders` setting and each page (the first, the fiftieth of 100 items), N times:
start a fresh `imgfn serve`, wait until it answers, time the page as its first listing
request (cold), then the same request again (warm), and stop it. Prints one JSON line per
(page, placeholders) with the medians and the server's RSS growth over the cold request.
"""
import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imgfn", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--label", required=True)
    ap.add_argument("--keys", required=True, help="every listed key, one a line")
    ap.add_argument("--placeholders", default="0,1")
    ap.add_argument("serve", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    serve = [x for x in a.serve if x != "--"]
    keys = sorted(open(a.keys, encoding="utf-8").read().split("\n")[:-1], key=lambda k: k.encode())
    limit = 100
    pages = {1: None, 50: keys[49 * limit - 1]}
    for placeholders in a.placeholders.split(","):
        for page, after in pages.items():
            query = f"limit={limit}&placeholders={placeholders}"
            if after is not None:
                cursor = base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")
                query += f"&cursor={cursor}"
            cold, warm, grew = [], [], []
            for _ in range(a.runs):
                port = free_port()
                log = open(os.environ.get("LISTING_LOG", "/dev/null"), "ab")
                proc = subprocess.Popen(
                    [a.imgfn, "serve", "--addr", f"127.0.0.1:{port}", *serve],
                    stdout=log, stderr=log)
                try:
                    base = f"http://127.0.0.1:{port}"
                    for _ in range(600):
                        try:
                            urllib.request.urlopen(f"{base}/_/gallery.js", timeout=5).read()
                            break
                        except OSError:
                            if proc.poll() is not None:
                                sys.exit(f"imgfn exited: {proc.returncode}")
                            time.sleep(0.05)
                    before = rss_kib(proc.pid)
                    t, body = get(f"{base}/_/gallery.json?{query}")
                    grew.append(rss_kib(proc.pid) - before)
                    items = body["items"]
                    want = keys[(page - 1) * limit:page * limit]
                    got = [i["key"] for i in items]
                    if got != want:
                        sys.exit(f"page {page}: got {got[:3]}... want {want[:3]}...")
                    if placeholders == "1" and any(i.get("thumbhash") is None for i in items):
                        sys.exit(f"page {page}: an item without a placeholder")
                    cold.append(t)
                    t, _ = get(f"{base}/_/gallery.json?{query}")
                    warm.append(t)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            print(json.dumps({
                "label": a.label,
                "page": page,
                "placeholders": placeholders == "1",
                "runs": a.runs,
                "cold_ms": round(statistics.median(cold) * 1000, 1),
                "warm_ms": round(statistics.median(warm) * 1000, 1),
                "cold_all_ms": [round(x * 1000, 1) for x in cold],
                "warm_all_ms": [round(x * 1000, 1) for x in warm],
                "rss_growth_kib": statistics.median(grew),
            }), flush=True)


if __name__ == "__main__":
    main()
