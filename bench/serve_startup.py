"""How long `rag serve` takes from start to its first answer. Prints one JSON object.

    .venv/bin/python bench/serve_startup.py [--index index] [--runs 3]

Starts the server as a user would (a fresh process), polls ``/healthz`` and then
asks one question through ``POST /api/ask``; reports the seconds until the
server was healthy and until the first answer arrived, per run and the median.
Build the index first (``rag index``). Not a test: the numbers depend on the
machine and its load, which is reported too (load averages before and after the runs).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

QUESTION = "KT 컨소시엄에 참여한 공공기관은?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return int(r.status)


def one_run(index: str, timeout: float) -> dict[str, float]:
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--index", index],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    healthy = answered = first_answer = cpu = 0.0
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        healthy = time.perf_counter() - t0
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        if healthy:
            t1 = time.perf_counter()
            if _post(base + "/api/ask", {"question": QUESTION}) == 200:
                answered = time.perf_counter() - t0
                first_answer = time.perf_counter() - t1
                cpu = _cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if not answered:
        raise SystemExit(f"server did not answer within {timeout} s (is the index at {index} built?)")
    return {"healthy_s": round(healthy, 2), "first_answer_s": round(answered, 2),
            "answer_latency_s": round(first_answer, 2), "server_cpu_s": round(cpu, 2)}


def _cpu_seconds(pid: int) -> float:
    """CPU time the server used so far: close to its wall time on an idle machine (start-up is serial)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default="index")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=180)
    args = p.parse_args()
    load_before = _loadavg()
    runs = [one_run(args.index, args.timeout) for _ in range(args.runs)]
    print(json.dumps({
        "benchmark": "serve_startup", "question": QUESTION, "runs": runs,
        "median_first_answer_s": statistics.median(r["first_answer_s"] for r in runs),
        "median_healthy_s": statistics.median(r["healthy_s"] for r in runs),
        "median_server_cpu_s": statistics.median(r["server_cpu_s"] for r in runs),
        "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
        "loadavg_before": load_before, "loadavg_after": _loadavg(),
    }, ensure_ascii=False))


def _loadavg() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine slows start-up (it is CPU-bound)."""
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
