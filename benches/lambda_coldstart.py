#!/usr/bin/env python3
"""Cold start of imgfn on the real Lambda runtime path, measured with a local Runtime API.

The release binary is started exactly as Lambda starts a custom runtime: no arguments,
AWS_LAMBDA_RUNTIME_API pointing at this script's own implementation of the Runtime API
(next / response / error). Originals come from the Garage S3 server (scripts/garage.sh).

  init     = process spawn -> the runtime's first GET /invocation/next (config, tracing,
             SDK client: all the work done before the first event)
  first    = first event handed out -> its streamed response fully received
  fifth    = the same for the fifth event (a warm instance)

Each event is a Function URL (payload 2.0) GET of a different original at w=200, fmt=webp,
so every one is a cache miss with an S3 HEAD + GET, decode, resize and encode.

  eval "$(scripts/garage.sh start)" && python3 benches/lambda_coldstart.py [--runs 10]

With --secrets, cold starts alternate between the plain environment and a Secrets Manager
secret (IMGFN_SECRETS_ID: signing keys and upload token) read through a stand-in of AWS's
Parameters and Secrets extension served here on loopback (same endpoint, token header and
GetSecretValue JSON as the real one; --extension-delay-ms adds the latency of the extension's
own call to Secrets Manager, which only an AWS account can measure). The events are then signed.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["small.jpg", "orient-3.jpg", "orient-5.jpg", "orient-6.jpg", "orient-8.jpg"]
PREFIX = "coldstart/"
SECRET_ID = "arn:aws:secretsmanager:us-east-1:000000000000:secret:imgfn/coldstart-AbCdEf"
SESSION_TOKEN = "coldstart-session-token"
KEY_ID, KEY_SECRET = "k1", "coldstart-signing-secret-0001"
SECRET = json.dumps({"signing_keys": f"{KEY_ID}:{KEY_SECRET}",
                     "upload_token": "coldstart-upload-token-0001"})


def signed(path: str, query: str) -> str:
    """`query` with imgfn's `sig` (README, Signed URLs) for `path`."""
    mac = hmac.new(KEY_SECRET.encode(), f"{path}?{query}".encode(), hashlib.sha256).digest()
    return f"{query}&sig={KEY_ID}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def extension_handler(delay_s: float):
    """AWS's Parameters and Secrets extension, stood in for: GET /secretsmanager/get."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            ok = (self.path.startswith("/secretsmanager/get?")
                  and self.headers.get("X-Aws-Parameters-Secrets-Token") == SESSION_TOKEN)
            time.sleep(delay_s)
            body = json.dumps({"ARN": SECRET_ID, "Name": "imgfn/coldstart",
                               "SecretString": SECRET, "VersionId": "v"}).encode()
            if not ok:
                body = b"bad request"
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def event(key: str, query: str) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/" + key,
        "rawQueryString": query,
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "accept": "*/*"},
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": "GET", "path": "/" + key, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


class Runtime:
    """State of one cold start: events to hand out and the times things happened."""

    def __init__(self, events):
        self.events = list(events)
        self.first_next = None
        self.sent = {}
        self.done = {}
        self.status = {}
        self.errors = []
        self.finished = threading.Event()


def handler_for(rt: Runtime):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            now = time.perf_counter()
            if rt.first_next is None:
                rt.first_next = now
            if not rt.events:
                rt.finished.set()
                time.sleep(3600)  # the process is killed before this returns
                return
            i, ev = len(rt.sent), rt.events.pop(0)
            body = json.dumps(ev).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{i}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:us-east-1:000000000000:function:imgfn")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            rt.sent[i] = time.perf_counter()
            self.wfile.write(body)

        def do_POST(self):
            body = self.read_body()
            now = time.perf_counter()
            parts = self.path.split("/")
            if "invocation" in parts and parts[-1] == "response":
                i = int(parts[-2].split("-")[1])
                rt.done[i] = now
                # Streaming: a JSON prelude, 8 NUL bytes, then the raw body.
                prelude = body.split(b"\0" * 8, 1)[0]
                rt.status[i] = json.loads(prelude).get("statusCode")
            else:
                rt.errors.append((self.path, body[:300]))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(endpoint: str, bucket: str) -> None:
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    for f in FILES:
        subprocess.run(
            ["curl", "-sf", "-X", "PUT", "--aws-sigv4", "aws:amz:garage:s3", "--user", f"{key}:{secret}",
             "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--data-binary", f"@{ROOT}/testdata/{f}",
             f"{endpoint}/{bucket}/{PREFIX}{f}"],
            check=True,
        )


def cold_start(binary: str, bucket: str, extension_port=None) -> dict:
    query = "w=200&fmt=webp"
    rt = Runtime(event(f, signed("/" + f, query) if extension_port else query) for f in FILES)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(rt))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
               AWS_LAMBDA_FUNCTION_NAME="imgfn",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_LOG_STREAM_NAME="coldstart",
               AWS_LAMBDA_LOG_GROUP_NAME="coldstart",
               IMGFN_BUCKET=bucket, IMGFN_PREFIX=PREFIX, IMGFN_S3_PATH_STYLE="true",
               IMGFN_LOG="warn")
    if extension_port:
        env.update(IMGFN_SECRETS_ID=SECRET_ID, AWS_SESSION_TOKEN=SESSION_TOKEN,
                   PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension_port))
    spawned = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = rt.finished.wait(60)
    proc.kill()
    _, stderr = proc.communicate()
    server.shutdown()
    server.server_close()
    if not ok or rt.errors or len(rt.done) != len(FILES):
        raise SystemExit(f"cold start failed: errors={rt.errors} stderr={stderr[-500:]!r}")
    if any(s != 200 for s in rt.status.values()):
        raise SystemExit(f"non-200 responses: {rt.status}")
    return {
        "init_ms": (rt.first_next - spawned) * 1e3,
        "first_ms": (rt.done[0] - rt.sent[0]) * 1e3,
        "fifth_ms": (rt.done[4] - rt.sent[4]) * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/imgfn"))
    ap.add_argument("--secrets", action="store_true",
                    help="alternate plain-environment and secret-reading cold starts")
    ap.add_argument("--extension-delay-ms", type=float, default=0.0)
    args = ap.parse_args()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3")
    bucket = os.environ.get("IMGFN_TEST_BUCKET")
    if not endpoint or not bucket:
        raise SystemExit('start Garage first: eval "$(scripts/garage.sh start)"')
    upload(endpoint, bucket)
    modes = {"plain environment": None}
    if args.secrets:
        port = free_port()
        ext = ThreadingHTTPServer(("127.0.0.1", port),
                                  extension_handler(args.extension_delay_ms / 1e3))
        ext.daemon_threads = True
        threading.Thread(target=ext.serve_forever, daemon=True).start()
        modes[f"secret via extension (+{args.extension_delay_ms:g} ms)"] = port
    runs = {name: [] for name in modes}
    for _ in range(args.runs):  # alternating, so drift in the machine's load hits both
        for name, port in modes.items():
            runs[name].append(cold_start(args.binary, bucket, port))
    print(f"| mode | cold starts | init (spawn -> ready) | first request | fifth request | first / fifth |")
    print(f"|---|---|---|---|---|---|")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"| {name} | {len(rs)} | {med['init_ms']:.1f} ms | {med['first_ms']:.1f} ms | "
              f"{med['fifth_ms']:.1f} ms | {med['first_ms'] / med['fifth_ms']:.2f} |")
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
