"""`kafkaops retry` beside the service's own retry job, on one table.

`casino.retry.claim=none` is the runbook's job as written: it reads due rows without a lock, so
it publishes a row a kafkaops pass has claimed (kafkaops publishes it too: two copies), and its
save, made from what it read before, waits for kafkaops' commit and then replaces what kafkaops
wrote. `skip-locked` claims with `@Lock(PESSIMISTIC_WRITE)` and a lock timeout of -2 (Hibernate's
FOR NO KEY UPDATE SKIP LOCKED): it passes over rows kafkaops holds and kafkaops over rows it
holds, so together they publish every event once.

The service's own dead-letter sends (after casino.retry.max-retries attempts) are read back here
too: `dlq tail` decodes what it writes and `failed` counts the row as DLQ.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from kafkaops.audit.table import create_audit_table
from kafkaops.common.clock import now as utcnow
from kafkaops.common.signature import error_signature
from kafkaops.config.settings import DatabaseSettings, Overrides, load_settings
from kafkaops.db.connections import Connections
from kafkaops.db.engine import create_engine
from kafkaops.retry.job import claim_due_events, to_record
from kafkaops.retry.publish import publish
from kafkaops.retry.schedule import RetrySchedule
from kafkaops.retry.settle import Settlement, settle_batch
from tests.service.harness import Service, records_of, running_service, wait_until

pytestmark = [pytest.mark.service, pytest.mark.kafka, pytest.mark.timeout(300)]

# The service's job every second, in small batches, so that it meets kafkaops' passes.
JOB = {
    "casino.retry.interval": "1s",
    "casino.retry.batch-size": "10",
    # Two attempts a second apart, then <topic>.dlq (the DLQ test).
    "casino.retry.max-retries": "2",
    "casino.retry.schedule": "1s",
}
# Sessions waiting for a row lock, other than the test's own and kafkaops'.
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


class Setup:
    """One running service with its own database, and kafkaops configured for both."""

    def __init__(self, service: Service, database_url: str, bootstrap: str, workdir: Path) -> None:
        self.service = service
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.engine = create_engine(database_url)
        self.config = workdir / "kafkaops.yaml"
        context = {"database": {"url": database_url}, "kafka": {"bootstrap.servers": bootstrap}}
        self.config.write_text(yaml.safe_dump({"current-context": "svc", "contexts": {"svc": context}}))
        create_audit_table(self.engine, DatabaseSettings(url=database_url))  # as `kafkaops db init` would

    def connections(self) -> Connections:
        return Connections(load_settings(Overrides(config_path=str(self.config))))

    def insert(
        self, topic: str, count: int, *, due_in: timedelta = timedelta(0), conn: sa.Connection | None = None
    ) -> list[str]:
        """`count` PENDING rows of the service's shape, due `due_in` from now: their event ids.
        Committed at once, or with `conn`'s transaction."""
        now = utcnow()
        ids = [str(uuid.uuid4()) for _ in range(count)]
        rows = [
            {
                "event_id": event_id,
                "topic": topic,
                "event_key": f"user-{n}",
                "payload": json.dumps({"eventId": event_id, "userId": f"user-{n}"}),
                "headers": json.dumps({"eventId": event_id, "eventType": topic, "source": "casino-events"}),
                "created_at": now,
                "next_retry_at": now + due_in,
            }
            for n, event_id in enumerate(ids)
        ]
        with contextlib.nullcontext(conn) if conn is not None else self.engine.begin() as into:
            into.execute(
                sa.text(
                    "INSERT INTO failed_kafka_events (event_id, topic, event_key, payload, headers, status,"
                    " retry_count, last_error, error_type, created_at, updated_at, next_retry_at)"
                    " VALUES (:event_id, :topic, :event_key, :payload, :headers, 'PENDING', 0,"
                    " 'timed out', 'org.apache.kafka.common.errors.TimeoutException', :created_at,"
                    " :created_at, :next_retry_at)"
                ),
                rows,
            )
        return ids

    def rows(self, topic: str) -> dict[str, dict[str, Any]]:
        """The topic's rows by event id."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.text("SELECT * FROM failed_kafka_events WHERE topic = :t"), {"t": topic})
            return {r.event_id: dict(r._mapping) for r in result}

    def lock_waiters(self, application: str | None = None) -> int:
        """Sessions (of `application`: kafkaops, PostgreSQL JDBC Driver) waiting for a lock."""
        query = LOCK_WAITERS + (" AND application_name = :app" if application else "")
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), {"app": application}).scalar_one())

    def retry_successes(self, topic: str) -> int:
        """kafka.retry.success{topic}: the rows the service's job published."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.service.get("/actuator/prometheus")[1].decode()
        return int(
            sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "kafka_retry_success_total" and s.labels.get("topic") == topic
            )
        )

    def event_ids_on(self, topic: str) -> list[str]:
        return [json.loads(value)["eventId"] for value, _ in records_of(self.bootstrap, topic)]


@pytest.fixture(scope="class")
def setup(
    request: pytest.FixtureRequest,
    service_jar: Path,
    new_database: Any,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    claim = request.cls.CLAIM
    workdir = tmp_path_factory.mktemp(f"coexist-{claim}")
    database_url = new_database()
    with running_service(
        service_jar,
        database_url=database_url,
        bootstrap=kafka_bootstrap,
        workdir=workdir,
        properties={**JOB, "casino.retry.claim": claim},
    ) as service:
        setup = Setup(service, database_url, kafka_bootstrap, workdir)
        try:
            yield setup
        finally:
            setup.engine.dispose()


ROWS = 600
JDBC = "PostgreSQL JDBC Driver"  # the service's sessions
# `kafkaops retry` passes one after another, each with small batches, until a pass started
# after argv[2] seconds finds nothing due.
RETRY_LOOP = """
import json, subprocess, sys, time
quiet_after = time.monotonic() + float(sys.argv[2])
argv = [sys.executable, "-m", "kafkaops", "retry", "--batch-size", "5", "--config", sys.argv[1], "-o", "json"]
while True:
    started = time.monotonic()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    if json.loads(out)["claimed"] == 0 and started > quiet_after:
        break
"""


def all_resolved(setup: Setup, topic: str) -> dict[str, dict[str, Any]] | None:
    rows = setup.rows(topic)
    return rows if {r["status"] for r in rows.values()} == {"RESOLVED"} else None


def create_topic(bootstrap: str, name: str, **config: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=1, replication_factor=-1, config=config)
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=30)
    return name


def new_topic_name(prefix: str) -> str:
    return f"casino.{prefix}-{uuid.uuid4().hex[:8]}.v1"


class KafkaopsClaim:
    """A kafkaops pass stopped between its claim and its settle: the rows it claimed stay
    locked (claim_due_events, SELECT ... FOR UPDATE SKIP LOCKED) until `settle()` publishes
    them through kafkaops' producer and commits their settle."""

    def __init__(self, setup: Setup, conn: sa.Connection, conns: Connections, events: list[Any]) -> None:
        self.setup, self.conn, self.conns, self.events = setup, conn, conns, events

    def settle(self) -> datetime:
        """Publish and settle RESOLVED as a pass does; the settle's time."""
        producer = self.conns.producer()
        results = publish(producer, [to_record(e) for e in self.events], timeout=30)
        assert results == [None] * len(self.events), results
        settled_at = utcnow()
        settlement = Settlement(resolved=[e.id for e in self.events])
        schedule = RetrySchedule([timedelta(minutes=1)])
        settle_batch(self.conn, self.conns.table, settlement, now=settled_at, schedule=schedule)
        self.conn.commit()
        return settled_at


def kafkaops_claim(
    setup: Setup, conns: Connections, conn: sa.Connection, topic: str, *, ahead: timedelta
) -> KafkaopsClaim:
    """kafkaops' own claim of the topic's rows, made `ahead` early: they are locked before the
    service sees them due."""
    conn.execute(sa.text("SET lock_timeout = '20s'"))  # the test's session never waits for ever
    events = claim_due_events(conn, conns.table, now=utcnow() + ahead, limit=100, topic=topic)
    return KafkaopsClaim(setup, conn, conns, events)


class TestRunbookJob:
    """claim=none: the runbook's job, no row locks."""

    CLAIM = "none"

    def test_it_publishes_a_row_kafkaops_claimed_and_overwrites_its_settle(self, setup: Setup) -> None:
        topic = create_topic(setup.bootstrap, new_topic_name("coexist-none"))
        (event_id,) = setup.insert(topic, 1, due_in=timedelta(seconds=3))
        conns = setup.connections()
        try:
            with conns.engine.connect() as conn:
                held = kafkaops_claim(setup, conns, conn, topic, ahead=timedelta(seconds=5))
                assert [e.payload for e in held.events] == [setup.rows(topic)[event_id]["payload"]]
                # Due for the service now: it reads the row as if nobody held it and publishes it...
                wait_until(
                    lambda: setup.event_ids_on(topic) == [event_id],
                    timeout=30,
                    what="the service's job to publish the row kafkaops holds",
                )
                # ...and its save waits for kafkaops' lock.
                wait_until(lambda: setup.lock_waiters() == 1, timeout=10, what="the service's save to wait")
                assert setup.rows(topic)[event_id]["status"] == "PENDING"
                settled_at = held.settle()
        finally:
            conns.close()
        # kafkaops published the row it claimed: the event is on the topic twice.
        assert setup.event_ids_on(topic) == [event_id, event_id]
        # The service's save lands after kafkaops' commit and replaces it with what it read and
        # decided before: kafkaops' settle (its resolved_at and updated_at) is lost.
        wait_until(lambda: setup.lock_waiters() == 0, timeout=10, what="the service's save to land")
        row = setup.rows(topic)[event_id]
        assert row["status"] == "RESOLVED"
        assert row["resolved_at"] < settled_at and row["updated_at"] < settled_at


class TestSkipLockedJob:
    """claim=skip-locked: @Lock(PESSIMISTIC_WRITE) with lock timeout -2 (SKIP LOCKED)."""

    CLAIM = "skip-locked"

    def test_it_skips_a_row_kafkaops_claimed(self, setup: Setup) -> None:
        topic = create_topic(setup.bootstrap, new_topic_name("coexist-locked"))
        (held_id,) = setup.insert(topic, 1, due_in=timedelta(seconds=2))
        # Due a second after the held row: once the job has published it, it has passed the
        # held row over (its claim takes every due row, in id order).
        (later_id,) = setup.insert(topic, 1, due_in=timedelta(seconds=3))
        conns = setup.connections()
        try:
            with conns.engine.connect() as conn:
                held = kafkaops_claim(setup, conns, conn, topic, ahead=timedelta(seconds=2, milliseconds=500))
                assert len(held.events) == 1
                wait_until(
                    lambda: setup.rows(topic)[later_id]["status"] == "RESOLVED",
                    timeout=30,
                    what="the service's job to resolve the row due later",
                )
                assert setup.event_ids_on(topic) == [later_id]
                assert setup.rows(topic)[held_id]["status"] == "PENDING"
                assert setup.lock_waiters() == 0  # skipped, not waited for
                settled_at = held.settle()
        finally:
            conns.close()
        time.sleep(2.5)  # two more runs of the job: it leaves what kafkaops settled alone
        assert sorted(setup.event_ids_on(topic)) == sorted([later_id, held_id])
        row = setup.rows(topic)[held_id]
        assert (row["status"], row["resolved_at"], row["updated_at"]) == ("RESOLVED", settled_at, settled_at)

    def test_kafkaops_passes_beside_the_job_publish_each_event_once(self, setup: Setup) -> None:
        topic = create_topic(setup.bootstrap, new_topic_name("coexist-load"))
        loops: list[subprocess.Popen[str]] = []
        with setup.engine.connect() as gate:
            # The rows appear when the gate's lock goes: two kafkaops passes (each run in a loop
            # until one finds nothing due) and the service's job wait for it at their claim, so
            # all three start on the same rows at once.
            gate.execute(sa.text("LOCK TABLE failed_kafka_events IN ACCESS EXCLUSIVE MODE"))
            # Due since before the gate: a claim waiting behind it asks for rows due by the time
            # it started, which may be a moment before these were written.
            event_ids = setup.insert(topic, ROWS, due_in=timedelta(seconds=-5), conn=gate)
            loops += [
                subprocess.Popen(
                    [sys.executable, "-c", RETRY_LOOP, str(setup.config), "4"],
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            wait_until(
                lambda: setup.lock_waiters("kafkaops") == 2 and setup.lock_waiters(JDBC) == 1,
                timeout=30,
                what="both passes and the service's job to wait at their claim",
            )
            gate.commit()
        for proc in loops:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        rows = wait_until(lambda: all_resolved(setup, topic), timeout=60, what="every row RESOLVED")
        on_topic = setup.event_ids_on(topic)
        assert sorted(on_topic) == sorted(event_ids)  # every event once, none twice
        assert len(rows) == ROWS and {r["retry_count"] for r in rows.values()} == {0}
        # Both took part: the service's job resolved some rows, the passes the others.
        by_service = setup.retry_successes(topic)
        print(f"service resolved {by_service} of {ROWS}")
        assert 0 < by_service < ROWS, by_service

    def test_its_own_dlq_records_decode_and_failed_counts_them(self, setup: Setup, cli: Any) -> None:
        # The topic takes no record of the event's size: every attempt is refused, so after
        # casino.retry.max-retries (2) the job sends the event to <topic>.dlq itself.
        topic = create_topic(setup.bootstrap, new_topic_name("coexist-dlq"), **{"max.message.bytes": "64"})
        dlq = create_topic(setup.bootstrap, f"{topic}.dlq")
        (event_id,) = setup.service.publish(topic, 1)
        wait_until(
            lambda: event_id in setup.rows(topic) and setup.rows(topic)[event_id]["status"] == "DLQ",
            timeout=60,
            what="the service's job to dead-letter the event",
        )
        row = setup.rows(topic)[event_id]
        assert row["retry_count"] == 2
        assert row["error_type"] == "org.apache.kafka.common.errors.RecordTooLargeException"

        (record,) = records_of(setup.bootstrap, dlq)
        value, headers = record
        assert json.loads(value)["eventId"] == event_id
        # The service's headers: the event's own, then Spring's names for where and why (no
        # partition, offset or timestamp: the event never reached its topic; none of
        # kafkaops' own failed-event id or retry count).
        assert list(headers) == [
            "eventId",
            "eventType",
            "source",
            "kafka_dlt-original-topic",
            "kafka_dlt-exception-fqcn",
            "kafka_dlt-exception-message",
        ]
        result = cli("dlq", "tail", dlq, "--config", str(setup.config), "-n", "1", "-o", "json")
        assert result.exit_code == 0, result.stderr
        (tailed,) = json.loads(result.stdout)
        assert tailed["value"]["eventId"] == event_id
        assert tailed["origin"] == {"topic": topic, "partition": None, "offset": None, "timestamp": None}
        assert tailed["error"] == {
            "class": "org.apache.kafka.common.errors.RecordTooLargeException",
            "wrapper": None,
            "message": row["last_error"],
            "signature": error_signature(row["last_error"]),
        }

        result = cli("failed", "--config", str(setup.config), "--topic", topic, "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert {r["status"]: r["count"] for r in json.loads(result.stdout)} == {"DLQ": 1}
