#!/usr/bin/env python3
"""Cold gallery page on every core: one server, its cache empty, asked for every thumbnail
of a gallery page at once, the way a browser loads one.

usage: gallery_load.py --impl imgfn|sharp|thumbor --server 'CMD with {port} {root}' --root DIR
                       --warmup FILE [--set gallery] [--widths 320,640] [--formats webp,jpeg] [--inflight 16]
                       [--port N] [--cpus 0,1] [--json]

Each run starts the server fresh (so nothing is cached), waits until it listens, sends one
untimed warm-up request for a file outside the set (the process is warm, its cache is not),
then requests every (original, width, format) of the photos in DIR/SET over `--inflight`
keep-alive connections at once, and stops the server. Reported: wall time from the first
request to the last byte, p50/p99 latency, the bytes, and the peak RSS (VmHWM) of the
server's process tree. Every response must be a 200 image of the asked width.
"""
import argparse
import http.client
import json
import os
import queue
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

URLS = {
    "imgfn": "/{file}?w={w}&fmt={fmt}&q=80",
    "sharp": "/{file}?w={w}&fmt={fmt}",
    "thumbor": "/unsafe/{w}x0/filters:format({fmt}):quality(80)/{file}",
}


def wait_port(port, proc, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not listen")


def tree(pid):
    """pid and all its descendants (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def peak_rss_kb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def image_width(body):
    """Width of a JPEG or WebP body (enough to check the answer)."""
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        kind = body[12:16]
        if kind == b"VP8 ":
            return struct.unpack("<H", body[26:28])[0] & 0x3FFF
        if kind == b"VP8L":
            b = body[21:25]
            return 1 + (b[0] | ((b[1] & 0x3F) << 8))
        if kind == b"VP8X":
            return 1 + int.from_bytes(body[24:27], "little")
    if body[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(body):
            if body[i] != 0xFF:
                i += 1
                continue
            m = body[i + 1]
            if m in (0xC0, 0xC1, 0xC2):
                return struct.unpack(">H", body[i + 7:i + 9])[0]
            i += 2 + struct.unpack(">H", body[i + 2:i + 4])[0]
    return None


def run(a):
    files = sorted(f"{a.set}/{f}" for f in os.listdir(os.path.join(a.root, a.set))
                   if not f.startswith("."))
    jobs = [(f, w, fmt) for f in files for w in a.widths for fmt in a.formats]
    cmd = a.server.format(port=a.port, root=a.root)
    env = dict(os.environ)
    pin = ["taskset", "-c", a.cpus] if a.cpus else []
    proc = subprocess.Popen(pin + shlex.split(cmd), stdout=subprocess.DEVNULL,
                            stderr=open(a.log, "ab") if a.log else subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        wait_port(a.port, proc)
        tmpl = URLS[a.impl]
        # Warm the process, not its cache: a file outside the set.
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
        conn.request("GET", tmpl.format(file=a.warmup, w=200, fmt="jpeg"))
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"warm-up answered {r.status}")
        conn.close()
        q = queue.Queue()
        for j in jobs:
            q.put(j)
        lat, errors, total_bytes = [], [], [0]
        lock = threading.Lock()
        start = threading.Barrier(a.inflight + 1)

        def worker():
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=300)
            start.wait()
            while True:
                try:
                    f, w, fmt = q.get_nowait()
                except queue.Empty:
                    break
                t0 = time.perf_counter()
                try:
                    c.request("GET", tmpl.format(file=f, w=w, fmt=fmt))
                    resp = c.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append(f"{f} {w} {fmt}: {e}")
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=300)
                    continue
                dt = (time.perf_counter() - t0) * 1000
                width = image_width(body)
                with lock:
                    if resp.status != 200 or width != w:
                        errors.append(f"{f} {w} {fmt}: status {resp.status}, width {width}")
                    lat.append(dt)
                    total_bytes[0] += len(body)
            c.close()

        threads = [threading.Thread(target=worker) for _ in range(a.inflight)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = (time.perf_counter() - t0) * 1000
        rss = peak_rss_kb(proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if errors:
        raise SystemExit(f"{a.impl}: {len(errors)} bad answers, e.g. {errors[:3]}")
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))]
    return {"requests": len(jobs), "originals": len(files), "inflight": a.inflight,
            "wall_ms": round(wall, 1), "p50_ms": round(pick(50), 1), "p99_ms": round(pick(99), 1),
            "mean_ms": round(statistics.mean(lat), 1), "bytes": total_bytes[0], "rss_kb": rss}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--impl", required=True, choices=sorted(URLS))
    p.add_argument("--server", required=True)
    p.add_argument("--root", required=True, help="the folder the server serves ({root} in --server)")
    p.add_argument("--set", default="gallery", help="subfolder of --root holding the page's originals")
    p.add_argument("--warmup", required=True, help="a file under --root outside --set, for warm-up")
    p.add_argument("--widths", default="320,640")
    p.add_argument("--formats", default="webp,jpeg")
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--port", type=int, default=18090)
    p.add_argument("--cpus", default="")
    p.add_argument("--log", default="")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    a.widths = [int(x) for x in a.widths.split(",")]
    a.formats = a.formats.split(",")
    r = run(a)
    if not a.json:
        print(f"{a.impl}: {r['requests']} requests in {r['wall_ms']:.0f} ms, p50 {r['p50_ms']} ms, "
              f"p99 {r['p99_ms']} ms, peak RSS {r['rss_kb'] / 1024:.0f} MiB", file=sys.stderr)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
