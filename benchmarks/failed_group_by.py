"""`kafkaops failed --group-by last_error -o json` against the same GROUP BY typed into psql.

Run: .venv/bin/python benchmarks/failed_group_by.py [--rows 5000000] [--small-rows 500000] [--runs 5]

Starts a throwaway PostgreSQL (scripts/pgserver.py), fills `failed_kafka_events` with `--rows`
rows (200 distinct error messages, four statuses), then times whole processes, start-up
included, side by side in one run: psql running the query kafkaops runs (counts, oldest and
newest created_at per group, largest first), and kafkaops. Peak RSS of the kafkaops process is
read for `--rows` and for `--small-rows`, to show that memory does not grow with the table.
Targets (issue 2): kafkaops within 1.5x of psql; peak memory independent of row count.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import pgserver  # noqa: E402

TARGET_RATIO = 1.5
MEMORY_RATIO = 1.2
QUERY = (
    "SELECT last_error, count(*) AS count, min(created_at) AS oldest_created_at, "
    "max(created_at) AS newest_created_at FROM failed_kafka_events GROUP BY last_error "
    "ORDER BY count(*) DESC, last_error"
)
FILL = """
INSERT INTO failed_kafka_events
  (event_id, topic, event_key, payload, headers, status, retry_count, last_error, error_type, created_at, updated_at)
SELECT 'evt-' || n, 'casino.topic.' || (n %% 5), 'player-' || (n %% 1000),
       '{"eventId":"evt-' || n || '","payload":{"points":' || n || '}}', NULL,
       (ARRAY['PENDING','RESOLVED','DLQ','DLQ_FAILED'])[1 + n %% 4], n %% 6,
       'Error ' || (n %% 200) || ': Timeout after 30000 ms while publishing to casino.topic',
       'org.apache.kafka.common.errors.TimeoutException',
       now() - (n %% 100000) * interval '1 second', now()
FROM generate_series(1, %(rows)s) AS n
"""


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one whole process, output discarded."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {result.stderr}")
    return seconds, int(result.stderr.strip().splitlines()[-1])


def fill(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE failed_kafka_events")
        conn.execute(FILL, {"rows": rows})  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE failed_kafka_events")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql is not installed (make deps installs PostgreSQL)")
    kafkaops = str(Path(sys.executable).parent / "kafkaops")
    with pgserver.postgres_server() as url:
        # As installed: pip compiles the bytecode once; with PYTHONDONTWRITEBYTECODE set, every
        # start would otherwise compile all of kafkaops again (~0.15 s, growing with the code).
        compileall.compile_dir(ROOT / "kafkaops", quiet=1)
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {**environ, "KAFKAOPS_DATABASE_URL": url}
        subprocess.run([kafkaops, "db", "init"], env=env, check=True, capture_output=True)
        memory: dict[int, int] = {}
        ok = True
        for rows in (args.small_rows, args.rows):
            started = time.perf_counter()
            fill(url, rows)
            print(f"filled {rows:,} rows in {time.perf_counter() - started:.1f} s")
            run_timed([kafkaops, "failed", "--group-by", "last_error", "-o", "json"], env)  # warm the cache
            psql_times, kafkaops_times, peaks = [], [], []
            for _ in range(args.runs):  # interleaved, so both see the same machine
                psql_times.append(run_timed([psql, url, "-X", "-q", "-A", "-t", "-c", QUERY], env)[0])
                seconds, peak = run_timed([kafkaops, "failed", "--group-by", "last_error", "-o", "json"], env)
                kafkaops_times.append(seconds)
                peaks.append(peak)
            p, k = statistics.median(psql_times), statistics.median(kafkaops_times)
            memory[rows] = max(peaks)
            ratio = k / p
            if rows == args.rows:
                ok &= ratio <= TARGET_RATIO
            print(
                f"{rows:>10,} rows: psql {p * 1000:7.0f} ms, kafkaops {k * 1000:7.0f} ms "
                f"(median of {args.runs}): {ratio:.2f}x, peak RSS {memory[rows] / 1024:.1f} MiB"
            )
        growth = memory[args.rows] / memory[args.small_rows]
        ok &= growth <= MEMORY_RATIO
        print(
            f"kafkaops is {ratio:.2f}x psql at {args.rows:,} rows "
            f"(target <= {TARGET_RATIO}x); peak RSS at {args.rows:,} rows is {growth:.2f}x that at "
            f"{args.small_rows:,} (target <= {MEMORY_RATIO}x)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
