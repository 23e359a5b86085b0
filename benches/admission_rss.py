#!/usr/bin/env python3
"""Peak memory of imgfn under 16 simultaneous requests for 100-megapixel originals.

A 10000x10000 PNG (generated here, not committed) is the worst case for memory: PNG has no
shrink-on-load, so each decode holds 300 MB of RGB. The release server runs with 16 workers
so that only the memory budget (IMGFN_MEMORY_BUDGET_MIB) stands between 16 requests and 16 full
decodes at once. Each setting is run once; the script prints peak RSS (VmHWM) and statuses.

  cargo build --release && python3 benches/admission_rss.py
"""
import concurrent.futures
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "target", "bench-data")
BIG = os.path.join(DATA, "100mp.png")


def make_big_png() -> None:
    if os.path.exists(BIG):
        return
    import numpy as np
    from PIL import Image

    os.makedirs(DATA, exist_ok=True)
    y, x = np.mgrid[0:10000, 0:10000]
    rgb = np.stack([(x // 40) % 256, (y // 40) % 256, ((x + y) // 80) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(BIG, compress_level=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def run(budget: int) -> dict:
    port = free_port()
    env = dict(os.environ, IMGFN_LOG="warn", IMGFN_WORKERS="16", IMGFN_MEMORY_BUDGET_MIB=str(budget),
               IMGFN_QUEUE_TIMEOUT_MS="3000", IMGFN_MAX_SOURCE_PIXELS="100000000")
    proc = subprocess.Popen([os.path.join(ROOT, "target/release/imgfn"), "serve", "--root", DATA,
                             "--addr", f"127.0.0.1:{port}"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(get, [f"http://127.0.0.1:{port}/100mp.png?w={400 + i}&fmt=jpeg"
                                           for i in range(16)]))
        elapsed = time.time() - started
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        return {"budget_mib": budget, "peak_rss_mib": hwm / 1024,
                "ok": statuses.count(200), "503": statuses.count(503),
                "other": [s for s in statuses if s not in (200, 503)], "seconds": elapsed}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    make_big_png()
    print("| memory budget | peak RSS | 200 | 503 | other | wall |")
    print("|---|---|---|---|---|---|")
    for budget in (768, 1_048_576):
        r = run(budget)
        label = f"{r['budget_mib']} MiB" + (" (default)" if budget == 768 else " (unbounded)")
        print(f"| {label} | {r['peak_rss_mib']:.0f} MiB | {r['ok']} | {r['503']} | {r['other']} | {r['seconds']:.1f} s |")


if __name__ == "__main__":
    main()
