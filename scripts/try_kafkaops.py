"""`make run`: kafkaops' main job on an embedded Kafka and a SQLite file, nothing else installed.

Starts librdkafka's mock cluster in this process, stores a small backlog of failed events in
.demo/events.db the way the service would (one topic the cluster refuses, to show rescheduling),
then runs the commands an operator would, printing each one first. Everything it starts stops
when it ends.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPIC_AUTHORIZATION_FAILED = 29

ERRORS = [
    ("Timeout after 30012 ms for id 8f1c2a9e", "org.apache.kafka.common.errors.TimeoutException"),
    ("Timeout after 30007 ms for id 77ab0c1d", "org.apache.kafka.common.errors.TimeoutException"),
    (
        "Expiring 12 record(s) for casino.player.registered.v1-0:120001 ms has passed",
        "org.apache.kafka.common.errors.TimeoutException",
    ),
    (
        "Circuit breaker 'kafka' is OPEN and does not permit further calls",
        "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
    ),
]


def seed(url: str) -> None:
    import sqlalchemy as sa

    from kafkaops.config import DatabaseSettings
    from kafkaops.connections import create_engine
    from kafkaops.schema import build_table

    table = build_table(DatabaseSettings(url=url))
    now = datetime.now(timezone.utc)
    rows = []
    for n in range(40):
        topic = (
            "casino.player.registered.v1",
            "casino.wallet.deposit.v1",
            "casino.loyalty.points-earned.v1",
        )[n % 3]
        error, error_type = ERRORS[n % len(ERRORS)]
        created = now - timedelta(minutes=90 - n)
        rows.append(
            {
                "event_id": f"evt-{n:04d}",
                "topic": topic,
                "event_key": f"player-{n % 6}",
                "payload": json.dumps(
                    {"eventId": f"evt-{n:04d}", "brandId": "casino-1", "payload": {"points": n}}
                ),
                "headers": json.dumps({"eventType": topic.split(".")[1]}),
                "status": "PENDING",
                # A few wallet events are on their last attempt: the refused topic sends them
                # to its DLQ, for the `dlq` commands below.
                "retry_count": 4 if topic == "casino.wallet.deposit.v1" and n % 4 == 1 else n % 3,
                "last_error": error,
                "error_type": error_type,
                "created_at": created,
                "updated_at": created,
                "next_retry_at": None if n % 4 else created + timedelta(minutes=1),
            }
        )
    rows[7]["status"] = rows[8]["status"] = "DLQ_FAILED"
    rows[9]["status"] = "DLQ"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.delete(table))
        conn.execute(sa.insert(table), rows)
    engine.dispose()


def kafkaops(*args: str, env: dict[str, str]) -> None:
    print(f"\n$ kafkaops {shlex.join(args)}", flush=True)
    exe = Path(sys.executable).parent / "kafkaops"
    subprocess.run([str(exe), *args], env=env, check=False)


def main() -> int:
    from kafkaops.embedded import EmbeddedKafka

    demo = ROOT / ".demo"
    demo.mkdir(exist_ok=True)
    url = f"sqlite:///{demo / 'events.db'}"
    topics = {
        "casino.player.registered.v1": 3,
        "casino.wallet.deposit.v1": 3,
        "casino.loyalty.points-earned.v1": 3,
    }
    from fake_service import FakeService, health_body

    with (
        EmbeddedKafka(topics={**topics, **{f"{t}.dlq": 1 for t in topics}}) as cluster,
        FakeService().healthy() as service,
    ):
        # The cluster refuses one topic, as a broker with a missing ACL would.
        cluster.topic_error("casino.wallet.deposit.v1", TOPIC_AUTHORIZATION_FAILED)
        # The service's actuator (a stand-in on loopback), for `kafkaops status`.
        service.set_json("/actuator/health/kafka", health_body(pending=38, dlq_failed=2))
        config = demo / "kafkaops.yaml"
        config.write_text(
            json.dumps(
                {
                    "contexts": {
                        "demo": {
                            "app": {"instances": [{"name": "casino-api", "url": service.url}]},
                            "status": {"state_dir": str(demo / "state")},
                        }
                    }
                }
            )
        )
        env = {
            **os.environ,
            "KAFKAOPS_CONFIG": str(config),
            "KAFKAOPS_DATABASE_URL": url,
            "KAFKAOPS_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        }
        print(f"Embedded Kafka at {cluster.bootstrap_servers}; failed events in {demo / 'events.db'}")
        kafkaops("db", "init", env=env)
        seed(url)
        kafkaops("status", env=env)
        kafkaops("failed", env=env)
        kafkaops("failed", "--group-by", "topic,error_signature", "--status", "PENDING", env=env)
        kafkaops("retry", "--dry-run", "--limit", "5", env=env)
        kafkaops("-v", "retry", env=env)
        service.set_json("/actuator/health/kafka", health_body(pending=13, dlq_failed=2))
        kafkaops("status", env=env)
        kafkaops("status", "-o", "nagios", env=env)
        kafkaops("failed", "--group-by", "topic,status", env=env)
        kafkaops("failed", "list", "--status", "DLQ_FAILED", env=env)
        kafkaops("failed", "requeue", "--yes", env=env)
        kafkaops("failed", env=env)
        # The DLQ side: what the retry pass sent there, then replay it once the topic is fixed.
        kafkaops("dlq", "list", env=env)
        kafkaops("dlq", "tail", "casino.wallet.deposit.v1.dlq", "-n", "2", env=env)
        print("\n(the wallet topic's ACL is fixed: the embedded cluster stops refusing it)")
        cluster.topic_error("casino.wallet.deposit.v1", 0)
        kafkaops("dlq", "replay", "casino.wallet.deposit.v1.dlq", "--dry-run", env=env)
        kafkaops("dlq", "replay", "casino.wallet.deposit.v1.dlq", "--yes", env=env)
        kafkaops("dlq", "tail", "casino.wallet.deposit.v1", "-n", "1", env=env)
        print(
            "\nNote: the embedded cluster runs replay's transactions but does not store the offsets\n"
            "committed with them, so `dlq list` would still count these records as pending; on a\n"
            "real broker a second replay finds nothing left (tests/test_dlq_replay.py)."
        )
    print("\nDone. Point kafkaops at your own database and brokers: see README.md, Configuration.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
