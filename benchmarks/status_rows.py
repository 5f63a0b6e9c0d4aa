"""How long `kafkaops status -o json` takes on a table of 10,000,000 rows, 9,990,000 RESOLVED.

Run: .venv/bin/python benchmarks/status_rows.py [--rows 10000000] [--unresolved 10000] [--runs 5]

Starts a throwaway PostgreSQL (scripts/pgserver.py), fills `failed_kafka_events` with
`INSERT ... SELECT generate_series` (indexes built after the load, then ANALYZE, as autovacuum
would), and times whole `kafkaops status -o json` processes (database only), start-up included:
with the unresolved rows' index `db init` creates, and without it. The baseline in the same
run: the same SQL through psql (one process per run, as the status process is one), and the
single aggregate scan status read before the index.
Target (issue 21): under 1 s with the index.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import pgserver  # noqa: E402

TARGET_S = 1.0
TOPICS = ("casino.player.registered.v1", "casino.wallet.deposit.v1", "casino.loyalty.points-earned.v1")

# Unresolved rows first (ids 1..unresolved): PENDING 80 %, DLQ 15 %, DLQ_FAILED 5 %.
FILL = """
INSERT INTO failed_kafka_events
  (event_id, topic, event_key, payload, headers, status, retry_count, last_error, error_type,
   created_at, updated_at, next_retry_at, resolved_at)
SELECT 'evt-' || n, (ARRAY['{t1}', '{t2}', '{t3}'])[1 + n % 3], 'player-' || (n % 1000), '{{"n":' || n || '}}', '{{}}',
       CASE WHEN n > {unresolved} THEN 'RESOLVED' WHEN n % 20 < 16 THEN 'PENDING'
            WHEN n % 20 < 19 THEN 'DLQ' ELSE 'DLQ_FAILED' END,
       n % 5, 'Timeout after 30000 ms', 'org.apache.kafka.common.errors.TimeoutException',
       now() - interval '365 days' + n * interval '3 seconds', now(),
       CASE WHEN n <= {unresolved} THEN now() + (n % 7 - 3) * interval '1 minute' END,
       CASE WHEN n > {unresolved} THEN now() - interval '1 minute' END
FROM generate_series(1, {rows}) AS n
"""

# What `status` asks now (kafkaops/db/table_counts.py), as one psql script.
STATUS_SQL = """
BEGIN READ ONLY;
SELECT status, topic, count(*), min(created_at), max(created_at),
       sum(CASE WHEN status = 'PENDING' AND (next_retry_at IS NULL OR next_retry_at <= now()) THEN 1 ELSE 0 END)
  FROM failed_kafka_events WHERE status != 'RESOLVED' GROUP BY status, topic;
SELECT pg_relation_size(to_regclass('failed_kafka_events'));
SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i WHERE i.indrelid = to_regclass('failed_kafka_events');
EXPLAIN (FORMAT JSON) SELECT 1 FROM failed_kafka_events;
ROLLBACK;
"""

# What `status` asked before: one aggregate scan of the whole table.
SCAN_SQL = """
SELECT status, topic, count(*), min(created_at), max(coalesce(resolved_at, updated_at)),
       sum(CASE WHEN status = 'PENDING' AND (next_retry_at IS NULL OR next_retry_at <= now()) THEN 1 ELSE 0 END)
  FROM failed_kafka_events GROUP BY status, topic;
"""


def kafkaops_exe() -> str:
    return str(Path(sys.executable).parent / "kafkaops")


def timed_status(config: Path, runs: int, *args: str) -> tuple[list[float], dict[str, object]]:
    samples: list[float] = []
    doc: dict[str, object] = {}
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            [kafkaops_exe(), "status", "-o", "json", *args],
            env={**os.environ, "KAFKAOPS_CONFIG": str(config)},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        samples.append(time.perf_counter() - started)
        doc = json.loads(result.stdout)
    return samples, doc


def timed_psql(url: str, sql: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            ["psql", "-X", "-q", "-d", url, "-v", "ON_ERROR_STOP=1"],
            input=sql,
            text=True,
            capture_output=True,
            check=True,
            timeout=300,
        )
        samples.append(time.perf_counter() - started)
    return samples


def psql(url: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-d", url, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, timeout=3600
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--unresolved", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with pgserver.postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KAFKAOPS_DATABASE_URL": url}
        subprocess.run([kafkaops_exe(), "db", "init"], env=env, check=True, capture_output=True)
        index = "ix_failed_kafka_events_unresolved"
        statement = subprocess.run(
            [kafkaops_exe(), "db", "check"], env=env, check=True, capture_output=True, text=True
        ).stderr
        assert "index" not in statement, statement
        started = time.perf_counter()
        psql(url, f"DROP INDEX {index}; DROP INDEX ix_failed_kafka_events_status_next_retry_at")
        fill = FILL.format(
            rows=args.rows, unresolved=args.unresolved, t1=TOPICS[0], t2=TOPICS[1], t3=TOPICS[2]
        )
        psql(url, fill)
        psql(
            url,
            "CREATE INDEX ix_failed_kafka_events_status_next_retry_at ON failed_kafka_events (status, next_retry_at)",
        )
        psql(url, "VACUUM ANALYZE failed_kafka_events")
        print(
            f"filled {args.rows:,} rows ({args.unresolved:,} not RESOLVED) in {time.perf_counter() - started:.0f} s"
        )

        config = Path(tmp) / "kafkaops.yaml"
        context = {
            "database": {"url": url},
            "status": {"state_dir": str(Path(tmp) / "state"), "timeout": "60s"},
        }
        config.write_text(yaml.safe_dump({"current-context": "bench", "contexts": {"bench": context}}))
        check = (
            subprocess.run(
                [kafkaops_exe(), "db", "check"],
                env={**os.environ, "KAFKAOPS_CONFIG": str(config)},
                capture_output=True,
                text=True,
                check=True,
            )
            .stderr.splitlines()[-1]
            .strip()
        )
        print(f"db check advises: {check}")

        # Without the index first (what a service's own table starts with), then with it.
        timed_status(config, 1)  # warm the page cache
        samples, doc = timed_status(config, args.runs)
        db = doc["database"]
        assert isinstance(db, dict)
        print(
            f"status -o json, no index:   {statistics.median(samples) * 1000:6.0f} ms median of {args.runs} "
            f"(missing_index said: {'yes' if db['missing_index'] else 'NO'})"
        )
        psql(url, check)
        timed_status(config, 1)
        samples, doc = timed_status(config, args.runs)
        median = statistics.median(samples)
        db = doc["database"]
        assert isinstance(db, dict)
        counts = db["counts"]
        assert isinstance(counts, dict)
        passed = median < TARGET_S and not db["missing_index"] and db["resolved_estimated"]
        print(
            f"status -o json, with index: {median * 1000:6.0f} ms median of {args.runs} (max {max(samples) * 1000:.0f} ms); "
            f"RESOLVED ~{counts['RESOLVED']:,} ({'ok' if passed else 'OVER TARGET'}, target < {TARGET_S * 1000:.0f} ms)"
        )
        baseline = timed_psql(url, STATUS_SQL, args.runs)
        print(
            f"baseline: the same SQL in psql: {statistics.median(baseline) * 1000:6.0f} ms median of {args.runs}"
        )
        scan = timed_psql(url, SCAN_SQL, max(1, args.runs // 2))
        print(f"before: the one aggregate scan in psql: {statistics.median(scan) * 1000:6.0f} ms")
        samples, doc = timed_status(config, max(1, args.runs // 2), "--exact")
        print(f"status -o json --exact:     {statistics.median(samples) * 1000:6.0f} ms")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
