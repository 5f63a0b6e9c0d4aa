"""How long a whole `kafkaops status -o json` process takes, all sources healthy and one hung.

Run: .venv/bin/python benchmarks/status.py [--rows 100000] [--runs 7]

Starts a throwaway PostgreSQL (scripts/pgserver.py) with a backlog in every status, a real
Apache Kafka broker (scripts/kafka_broker.py) with the topics and their DLQ topics, and three
service instances on loopback (kafkaops/demo/service.py). Times the whole process, start-up
included, as cron or Nagios would run it.
Targets (issue 9): under 1 s with the database, the broker and three healthy instances; with one
instance that hangs, no more than app.timeout (2 s) + 1 s.
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
from contextlib import ExitStack
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import kafka_broker  # noqa: E402
import pgserver  # noqa: E402

from kafkaops.demo import service as fake_service  # noqa: E402

TARGET_HEALTHY_S = 1.0
APP_TIMEOUT_S = 2.0
TOPICS = ("casino.player.registered.v1", "casino.wallet.deposit.v1", "casino.loyalty.points-earned.v1")

FILL = """
INSERT INTO failed_kafka_events
  (event_id, topic, event_key, payload, headers, status, retry_count, last_error, error_type,
   created_at, updated_at, next_retry_at, resolved_at)
SELECT 'evt-' || n, (ARRAY[:t1, :t2, :t3])[1 + n % 3], 'player-' || (n % 1000), '{"n":' || n || '}', '{}',
       CASE WHEN n % 10 < 6 THEN 'RESOLVED' WHEN n % 10 < 9 THEN 'PENDING' ELSE 'DLQ' END,
       n % 5, 'Timeout after 30000 ms', 'org.apache.kafka.common.errors.TimeoutException',
       now() - interval '50 minutes' + n * interval '1 millisecond', now(), now() + (n % 7 - 3) * interval '1 minute',
       CASE WHEN n % 10 < 6 THEN now() - interval '1 minute' END
FROM generate_series(1, :rows) AS n
"""


def kafkaops_exe() -> str:
    return str(Path(sys.executable).parent / "kafkaops")


def timed(config: Path, runs: int) -> tuple[list[float], dict[str, object], int]:
    samples: list[float] = []
    doc: dict[str, object] = {}
    code = -1
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            [kafkaops_exe(), "status", "-o", "json"],
            env={**os.environ, "KAFKAOPS_CONFIG": str(config)},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        samples.append(time.perf_counter() - started)
        code = result.returncode
        doc = json.loads(result.stdout)
    return samples, doc, code


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ok = True
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        url = stack.enter_context(pgserver.postgres_server())
        broker = stack.enter_context(kafka_broker.start_broker(Path(tmp) / "kafka"))
        _create_topics(broker.bootstrap_servers)
        env = {**os.environ, "KAFKAOPS_DATABASE_URL": url}
        subprocess.run([kafkaops_exe(), "db", "init"], env=env, check=True, capture_output=True)
        _fill(url, args.rows)
        services = [stack.enter_context(fake_service.FakeService().healthy()) for _ in range(3)]
        config = Path(tmp) / "kafkaops.yaml"
        context = {
            "database": {"url": url},
            "kafka": {"bootstrap.servers": broker.bootstrap_servers},
            "app": {
                "instances": [{"name": f"pod-{n}", "url": s.url} for n, s in enumerate(services)],
                "stats_path": "/publisher/stats",
                "timeout": f"{APP_TIMEOUT_S:g}s",
            },
            "status": {"state_dir": str(Path(tmp) / "state")},
        }
        config.write_text(yaml.safe_dump({"current-context": "bench", "contexts": {"bench": context}}))
        timed(config, 2)  # warm the page cache and the broker's metadata
        floor = statistics.median(_import_floor() for _ in range(5))
        print(
            f"baseline: python importing SQLAlchemy, psycopg, confluent_kafka, prometheus_client: {floor * 1000:.0f} ms"
        )

        samples, doc, code = timed(config, args.runs)
        median = statistics.median(samples)
        passed = median < TARGET_HEALTHY_S and doc["status"] != "UNKNOWN"
        ok &= passed
        print(
            f"healthy: database ({args.rows:,} rows), broker, 3 instances: {median * 1000:6.0f} ms median of "
            f"{args.runs} (max {max(samples) * 1000:.0f} ms), status {doc['status']}, exit {code} "
            f"({'ok' if passed else 'OVER TARGET'}, target < {TARGET_HEALTHY_S * 1000:.0f} ms)"
        )

        for path in list(services[1].endpoints):
            services[1].endpoints[path].delay = 60  # hangs: accepts, never answers in time
        samples, doc, code = timed(config, max(3, args.runs // 2))
        worst = max(samples)
        limit = APP_TIMEOUT_S + 1
        unknown = [c["name"] for c in doc["checks"] if c["status"] == "UNKNOWN"]  # type: ignore[attr-defined, index]
        passed = worst <= limit and unknown == ["service pod-1"]
        ok &= passed
        print(
            f"one instance hung (app.timeout {APP_TIMEOUT_S:g}s): {worst * 1000:6.0f} ms worst of {len(samples)} "
            f"(median {statistics.median(samples) * 1000:.0f} ms), UNKNOWN: {', '.join(unknown)}, exit {code} "
            f"({'ok' if passed else 'OVER TARGET'}, target <= {limit * 1000:.0f} ms)"
        )
    return 0 if ok else 1


def _import_floor() -> float:
    """What the libraries status needs cost to import: the floor of any status run."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import sqlalchemy, psycopg, confluent_kafka.admin, prometheus_client.parser"],
        check=True,
    )
    return time.perf_counter() - started


def _create_topics(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [*TOPICS, *(f"{t}.dlq" for t in TOPICS[:2])]  # the third topic's DLQ is missing
    futures = admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1) for n in names])
    for future in futures.values():
        future.result(timeout=30)


def _fill(url: str, rows: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text(FILL), {"rows": rows, "t1": TOPICS[0], "t2": TOPICS[1], "t3": TOPICS[2]})
        conn.execute(sa.text("ANALYZE failed_kafka_events"))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
