"""Judge client throughput: calls/s one request at a time and with bounded concurrency, against the
test server (tests/openai_server.py) with a fixed latency added to every request, in the same run.

    .venv/bin/python bench/judge_http.py [--n 200] [--latency 0.05] [--concurrency 16]

The added latency stands in for a judge model's time per answer, so the ratio shows how much of it
concurrency hides (goal: 8x or more at concurrency 16).

Measured here (2 CPU cores, busy with other work: load average about 5), defaults:
    concurrency  seconds  calls/s  x sequential
              1    11.38     17.6          1.0x
             16     1.16    173.0          9.8x
The client is CPU-bound at 16 (httpx spends about 4 ms of CPU per call here), hence short of 16x.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="prompts per run")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    from judges.http import HTTPJudge
    from tests.openai_server import serve

    prompts = [f"Is answer {i} supported by the passage?" for i in range(args.n)]
    print(f"prompts: {args.n}; added latency: {args.latency * 1000:.0f} ms per request")
    print(f"{'concurrency':>11} {'seconds':>8} {'calls/s':>8} {'x sequential':>13}")
    with serve(latency_s=args.latency) as server:
        reference = None
        for concurrency in (1, args.concurrency):
            client = HTTPJudge(server.url, "bench-judge", concurrency=concurrency)
            t0 = time.perf_counter()
            replies = client.complete(prompts)
            seconds = time.perf_counter() - t0
            failed = sum(r.text is None for r in replies)
            rate = args.n / seconds
            reference = reference or rate
            note = f"  ({failed} failed)" if failed else ""
            print(f"{concurrency:>11} {seconds:>8.2f} {rate:>8.1f} {rate / reference:>12.1f}x{note}")


if __name__ == "__main__":
    main()
