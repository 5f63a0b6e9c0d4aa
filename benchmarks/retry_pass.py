"""Throughput and peak memory of one `kafkaops retry` pass over a backlog of due rows.

Run: .venv/bin/python benchmarks/retry_pass.py [--rows 100000] [--memory-rows 1000000] [--no-embedded]

Starts a throwaway PostgreSQL (scripts/pgserver.py) and a real Apache Kafka broker
(scripts/kafka_broker.py), fills `failed_kafka_events` with due PENDING rows (~300-byte JSON
payloads, 3 headers, 1,000 keys) and times the whole `kafkaops retry` process (start-up
included), reading its peak RSS from the kernel. Then the same against the embedded cluster,
for comparison, and a larger backlog to show that memory does not grow with it.
Targets (issue 4): >= 10,000 rows/s for 100,000 rows on the real broker; peak memory for
1,000,000 rows <= 1.2x that for 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import kafka_broker  # noqa: E402
import pgserver  # noqa: E402

TARGET_ROWS_PER_S = 10_000
MEMORY_RATIO = 1.2

FILL = """
INSERT INTO failed_kafka_events
  (event_id, topic, event_key, payload, headers, status, retry_count, last_error, error_type,
   created_at, updated_at, next_retry_at)
SELECT 'evt-' || n, :topic, 'player-' || (n % 1000),
       '{"eventId":"evt-' || n || '","eventTimestamp":"2026-11-27T10:00:00Z","brandId":"casino-1",'
       || '"userId":"user-' || (n % 1000) || '","metadata":{"source":"bench","version": 1},'
       || '"payload":{"points":' || n || ',"reason":"game_win","source":"slots","note":"'
       || repeat('x', 120) || '"}}',
       '{"eventType":"LoyaltyPointsEarned","traceparent":"00-' || md5(n::text) || '-01","schema":"v1"}',
       'PENDING', 0, 'Timeout after 30000 ms', 'org.apache.kafka.common.errors.TimeoutException',
       now() - interval '2 hours' + n * interval '1 millisecond', now() - interval '1 hour', CASE WHEN :unscheduled THEN NULL ELSE now() - interval '1 minute' END
FROM generate_series(1, :rows) AS n
"""


def kafkaops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "kafkaops")
    return subprocess.run(
        [exe, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )


def fill(url: str, rows: int, topic: str, *, unscheduled: bool = False) -> None:
    """`rows` due PENDING rows; `unscheduled`: with next_retry_at null (due since stored)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE failed_kafka_events"))
        conn.execute(sa.text(FILL), {"rows": rows, "topic": topic, "unscheduled": unscheduled})
        conn.execute(sa.text("ANALYZE failed_kafka_events"))
    engine.dispose()


def timed_pass(env: dict[str, str]) -> tuple[dict[str, object], float, float]:
    """(summary, seconds, peak RSS in MiB) of one whole `kafkaops retry` process."""
    exe = str(Path(sys.executable).parent / "kafkaops")
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", exe, "retry", "-o", "json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"retry pass failed ({result.returncode}): {result.stderr}")
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout), seconds, peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--memory-rows", type=int, default=1_000_000, help="larger backlog for the memory check (0: skip)"
    )
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded-cluster comparison")
    args = parser.parse_args()
    ok = True
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        url = stack.enter_context(pgserver.postgres_server())
        broker = stack.enter_context(kafka_broker.start_broker(Path(tmp) / "kafka"))
        topic = "casino.loyalty.points-earned.v1"
        env = {"KAFKAOPS_DATABASE_URL": url, "KAFKAOPS_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        init = kafkaops("db", "init", env=env)
        if init.returncode != 0:
            raise SystemExit(init.stderr)

        fill(url, args.rows, topic)
        summary, seconds, rss = timed_pass(env)
        rate = int(summary["resolved"]) / seconds  # type: ignore[call-overload]
        ok &= rate >= TARGET_ROWS_PER_S and summary["resolved"] == args.rows
        print(
            f"real broker   {args.rows:>9,} rows: {seconds:6.2f} s  {rate:9,.0f} rows/s  peak RSS {rss:6.1f} MiB"
            f"  ({'ok' if rate >= TARGET_ROWS_PER_S else 'BELOW TARGET'}, target >= {TARGET_ROWS_PER_S:,} rows/s)"
        )

        fill(url, args.rows, topic, unscheduled=True)
        summary, seconds, _ = timed_pass(env)
        rate = int(summary["resolved"]) / seconds  # type: ignore[call-overload]
        ok &= rate >= TARGET_ROWS_PER_S
        print(
            f"real broker   {args.rows:>9,} rows never scheduled (next_retry_at null): {seconds:6.2f} s  {rate:9,.0f} rows/s"
        )

        if not args.no_embedded:
            from kafkaops.demo.cluster import EmbeddedKafka

            with EmbeddedKafka(topics={topic: 1}) as cluster:
                fill(url, args.rows, topic)
                embedded_env = {**env, "KAFKAOPS_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}
                summary, seconds, _ = timed_pass(embedded_env)
                rate = int(summary["resolved"]) / seconds  # type: ignore[call-overload]
                print(
                    f"embedded      {args.rows:>9,} rows: {seconds:6.2f} s  {rate:9,.0f} rows/s  (comparison)"
                )

        if args.memory_rows:
            fill(url, args.memory_rows, topic)
            summary, seconds, big_rss = timed_pass(env)
            rate = int(summary["resolved"]) / seconds  # type: ignore[call-overload]
            ratio = big_rss / rss
            ok &= ratio <= MEMORY_RATIO
            print(
                f"real broker   {args.memory_rows:>9,} rows: {seconds:6.2f} s  {rate:9,.0f} rows/s  peak RSS {big_rss:6.1f} MiB"
                f"  ({ratio:.2f}x the {args.rows:,}-row pass; {'ok' if ratio <= MEMORY_RATIO else 'OVER'}, target <= {MEMORY_RATIO}x)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
