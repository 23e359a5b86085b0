#!/usr/bin/env python3
"""W9 cold start of `imgfn serve`.

usage: startup.py [--bin target/release/imgfn] [--root testdata] [--runs 20]
                  [--cpu 0 | --cpu none] [--json] [--log FILE]

Each run spawns `BIN serve --addr 127.0.0.1:<free port> --root ROOT` (pinned to
CPU --cpu via sched_setaffinity in the child, so no extra exec of taskset is
timed) and measures:
  listen  spawn -> first successful TCP connect (connect polled in a tight loop,
          0.5 ms sleep between attempts);
  then five HTTP GETs of distinct, uncached URLs, each on its own fresh
  connection (the TCP connect happens before the clock starts), timing the 1st
  and the 5th from request sent to the last body byte read.
Two variants, each with its own `--runs` processes, alternated run by run:
  same-file  /small.jpg?w=201&fmt=jpeg ... w=205: the 1st request also reads the
             source from disk, the later ones may find it in the source cache;
  diff-file  /small.jpg, /orient-3.jpg, /orient-5.jpg, /orient-6.jpg,
             /orient-8.jpg at w=200&fmt=jpeg: every request fetches its source.
Prints medians (ms) of listen, first, fifth and first/fifth per variant, and
with --json one JSON line at the end.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time

SAME = [f"/small.jpg?w={w}&fmt=jpeg" for w in range(201, 206)]
DIFF = [f"/{n}?w=200&fmt=jpeg" for n in
        ("small.jpg", "orient-3.jpg", "orient-5.jpg", "orient-6.jpg", "orient-8.jpg")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    t1 = time.perf_counter()
    conn.close()
    if resp.status != 200 or not body:
        raise RuntimeError(f"GET {path}: HTTP {resp.status}, {len(body)} bytes")
    return (t1 - t0) * 1e3


def one_run(binary, root, cpu, urls, log):
    port = free_port()
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}", "--root", root],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            preexec_fn=pre)
    try:
        deadline = t0 + 10.0
        while True:
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", port))
                listen = (time.perf_counter() - t0) * 1e3
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{binary} serve exited with {proc.returncode}")
                if time.perf_counter() > deadline:
                    raise RuntimeError("server did not listen within 10 s")
                time.sleep(0.0005)
            finally:
                s.close()
        times = [timed_get(port, u) for u in urls]
        return listen, times[0], times[4]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summary(rows):
    listen = statistics.median(r[0] for r in rows)
    first = statistics.median(r[1] for r in rows)
    fifth = statistics.median(r[2] for r in rows)
    ratio = statistics.median(r[1] / r[2] for r in rows)
    return {"runs": len(rows), "listen_ms": round(listen, 3), "first_ms": round(first, 3),
            "fifth_ms": round(fifth, 3), "first_over_fifth": round(ratio, 3),
            "listen_max_ms": round(max(r[0] for r in rows), 3)}


def main(argv):
    opts = {"--bin": "target/release/imgfn", "--root": "testdata", "--runs": "20",
            "--cpu": "0", "--log": os.devnull}
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    while argv:
        k = argv.pop(0)
        if k not in opts or not argv:
            print(__doc__, file=sys.stderr)
            return 2
        opts[k] = argv.pop(0)
    runs = int(opts["--runs"])
    cpu = None if opts["--cpu"] == "none" else int(opts["--cpu"])
    results = {"same_file": [], "diff_file": []}
    with open(opts["--log"], "ab") as log:
        for i in range(runs):
            for name, urls in (("same_file", SAME), ("diff_file", DIFF)):
                results[name].append(one_run(opts["--bin"], opts["--root"], cpu, urls, log))
    out = {"pinned_cpu": cpu}
    for name, rows in results.items():
        s = summary(rows)
        out[name] = s
        print(f"  {name:<9} listen {s['listen_ms']:7.2f} ms (max {s['listen_max_ms']:.2f})"
              f"  first {s['first_ms']:7.2f} ms  fifth {s['fifth_ms']:7.2f} ms"
              f"  first/fifth {s['first_over_fifth']:.2f}  (medians of {s['runs']})",
              file=sys.stderr)
    if as_json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
