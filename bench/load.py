"""Bounded load test of a real `rag serve` with locust (headless), JSON to stdout.

    python bench/load.py --index DIR [--users 10] [--seconds 10] [--warmup 20]

Starts the server on a free port (rate limit off), warms it up, records its memory, runs
locust's users against ``/api/ask`` with unique questions, records memory again and prints
``{"requests", "errors", "p50_ms", "p95_ms", "p99_ms", "rss_warm_mb", "rss_end_mb", ...}``.
``make soak`` runs 50 users for 60 s; the test suite 10 users for 10 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def _post(url: str, question: str) -> None:
    req = urllib.request.Request(url + "api/ask", data=json.dumps({"question": question}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20, help="questions asked before memory is first measured")
    args = ap.parse_args()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "RAG_INDEX_DIR": args.index, "RAG_RATE_LIMIT": "0", "RAG_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(url + "healthz", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.5)
        for i in range(args.warmup):  # warm-up: lazy set-up and first allocations are not the steady state
            _post(url, f"warm-up question {i} KT 컨소시엄?")
        rss_warm = _rss_mb(server.pid)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = str(Path(tmp) / "run")
            subprocess.run([sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
                            "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
                            "--host", url.rstrip("/"), "--csv", prefix, "--only-summary", "--loglevel", "ERROR"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(prefix + "_stats.csv", encoding="utf-8") as fh:
                row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
        rss_end = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = {
        "users": args.users, "seconds": args.seconds,
        "requests": int(row["Request Count"]), "errors": int(row["Failure Count"]),
        "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"]),
        "requests_per_s": round(float(row["Requests/s"]), 2),
        "rss_warm_mb": rss_warm, "rss_end_mb": rss_end, "rss_growth": round(rss_end / rss_warm - 1, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
