"""What a rerun with nothing changed costs, against the cold run, measured in one go.

    .venv/bin/python bench/warm_cold.py [--config bench.yaml]

Runs `ragvft bench` twice on a fresh, empty artifact cache (a temporary RAGVFT_CACHE): cold (builds
the base model, trains the adapters, generates every answer), then warm (the same config again).
Prints both wall times and the ratio (goal: 5% or less). The embedded default takes about 6 minutes
cold on 2 CPU cores.

Measured here (2 CPU cores, bench.yaml): fresh clone cold 377.0 s, warm 8.8 s (2.3%); this script,
with other work on the machine during the cold run: cold 584.7 s, warm 7.1 s (1.2%).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "--config", str(config)],
        cwd=ROOT,
        env=env,
        check=False,  # the gate's exit code is not this benchmark's business
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "bench.yaml")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragvft-warmcold-") as cache:
        env = dict(os.environ, RAGVFT_CACHE=cache)
        cold = run(args.config.resolve(), env)
        warm = run(args.config.resolve(), env)
    print(f"cold {cold:.1f} s   warm {warm:.1f} s   warm/cold {warm / cold:.1%}  (goal <= 5%)")


if __name__ == "__main__":
    main()
