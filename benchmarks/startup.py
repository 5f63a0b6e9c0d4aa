"""Start-up time of `kafkaops --help` and `kafkaops failed --help`: the median of N whole runs.

Run: .venv/bin/python benchmarks/startup.py [--runs 30]
Target (issue 2): under 150 ms median on the 2-core reference machine. A bare `python -c pass`
is timed in the same run as a baseline, since this machine's timings are noisy.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def median_ms(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    exe = shutil.which("kafkaops", path=str(Path(sys.executable).parent)) or "kafkaops"
    median_ms([exe, "--help"], 3)  # warm the page cache
    baseline = median_ms([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass            {baseline:7.1f} ms (baseline)")
    ok = True
    for argv in ([exe, "--help"], [exe, "failed", "--help"]):
        ms = median_ms(argv, args.runs)
        verdict = "ok" if ms < TARGET_MS else "OVER TARGET"
        ok &= ms < TARGET_MS
        print(
            f"{' '.join(['kafkaops', *argv[1:]]):25} {ms:7.1f} ms median of {args.runs} ({verdict}, target < {TARGET_MS:.0f} ms)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
