"""`kafkaops retry` on a real broker that refuses whole message sets: a compacted topic given one
NULL key, a topic whose `max.message.bytes` is below librdkafka's batch, a topic that refuses
every record's timestamp. Only a record refused alone for its own fault counts an attempt.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.retry.publish import Publisher
from tests.helpers.broker_fixtures import _wait_for_topic
from tests.helpers.config import write_config
from tests.helpers.events import NOW, event
from tests.helpers.topics import consume

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

# The broker accepts a timestamp only from the very millisecond it validates the record in:
# whatever kafkaops sends (CreateTime, now) is refused, as a host clock off would have it.
REFUSES_TIMESTAMPS = {"message.timestamp.before.max.ms": "0", "message.timestamp.after.max.ms": "0"}

TopicFactory = Callable[..., str]


@pytest.fixture
def topic_with(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """``topic_with(config, partitions=1, *, name=None) -> str``: a fresh topic with these
    topic configs."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def factory(config: dict[str, str], partitions: int = 1, *, name: str | None = None) -> str:
        name = name or f"iso-{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config)],
            operation_timeout=30,
        )
        futures[name].result(timeout=30)
        _wait_for_topic(admin, name, partitions, time.monotonic() + 30)
        created.append(name)
        return name

    yield factory
    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)


def configure(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: str, **retry: Any) -> None:
    path = write_config(
        tmp_path / "kafkaops.yaml",
        db,
        kafka={"bootstrap.servers": bootstrap},
        retry={"delivery_timeout": "10s", **retry},
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))


def rows_by_status(db: Any) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in db.rows():
        grouped.setdefault(row["status"], []).append(row)
    return grouped


def make_due(db: Any) -> None:
    """The clock moves on: every rescheduled row is due again."""
    t = db.table
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(t).where(t.c.status == "PENDING").values(next_retry_at=NOW - timedelta(days=1))
        )


def test_one_null_key_on_a_compacted_topic_charges_only_its_own_row(
    pg_database: Any,
    kafka_bootstrap: str,
    topic_with: TopicFactory,
    cli: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    topic = topic_with({"cleanup.policy": "compact"}, partitions=2)
    dlq = topic_with({}, name=f"{topic}.dlq")
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=2)
    guilty = 137
    pg_database.insert(
        [event(i, topic=topic, event_key=None if i == guilty else f"k{i}") for i in range(300)]
    )

    result = cli("retry", "-o", "json")

    assert result.exit_code == 1, result.stderr  # the guilty record, refused alone: PERMANENT
    summary = json.loads(result.stdout)
    assert (summary["resolved"], summary["rescheduled"], summary["dlq"], summary["permanent"]) == (
        299,
        1,
        0,
        1,
    )
    [refusal] = summary["set_refusals"]
    assert refusal["topic"] == topic and refusal["error"] == "INVALID_RECORD"
    assert (refusal["charged"], refusal["not_charged"], refusal["cause"]) == (1, 0, "event")
    assert refusal["resolved"] == refusal["rows"] - 1
    assert "were refused alone and counted an attempt" in result.stderr
    status = rows_by_status(pg_database)
    [pending] = status["PENDING"]
    assert (pending["event_id"], pending["retry_count"]) == (f"evt-{guilty}", 1)
    assert pending["error_type"] == "org.apache.kafka.common.errors.InvalidRecordException"
    assert {r["retry_count"] for r in status["RESOLVED"]} == {0}

    make_due(pg_database)
    result = cli("retry", "-o", "json")  # the second attempt is the last: to the DLQ, alone

    assert result.exit_code == 0, result.stderr
    status = rows_by_status(pg_database)
    assert (len(status["RESOLVED"]), [r["event_id"] for r in status["DLQ"]]) == (299, [f"evt-{guilty}"])
    on_topic = consume(kafka_bootstrap, topic, expect=299)
    assert sorted(json.loads(r.value)["eventId"] for r in on_topic) == sorted(
        f"evt-{i}" for i in range(300) if i != guilty
    )
    [dead] = consume(kafka_bootstrap, dlq, expect=1)
    assert json.loads(dead.value)["eventId"] == f"evt-{guilty}"


def test_sets_are_sized_to_the_topics_max_message_bytes(
    pg_database: Any,
    kafka_bootstrap: str,
    topic_with: TopicFactory,
    cli: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    topic = topic_with({"max.message.bytes": "20000"}, partitions=2)
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    big = 250
    payload = json.dumps({"blob": "x" * 300})  # 400 rows: about 140 kB, seven times the limit
    pg_database.insert(
        [
            event(i, topic=topic, payload=payload if i != big else json.dumps({"blob": "x" * 30_000}))
            for i in range(400)
        ]
    )

    result = cli("retry", "-o", "json")

    assert result.exit_code == 1, result.stderr  # the big record, refused alone: PERMANENT
    summary = json.loads(result.stdout)
    assert (summary["resolved"], summary["rescheduled"], summary["permanent"]) == (399, 1, 1)
    [refusal] = summary["set_refusals"]  # sets sized to the limit: only the big record refused
    assert (refusal["rows"], refusal["charged"], refusal["cause"]) == (1, 1, "event")
    status = rows_by_status(pg_database)
    [pending] = status["PENDING"]  # over the limit on its own: its own fault
    assert (pending["event_id"], pending["retry_count"]) == (f"evt-{big}", 1)
    assert pending["error_type"] == "org.apache.kafka.common.errors.RecordTooLargeException"
    assert {r["retry_count"] for r in status["RESOLVED"]} == {0}
    assert len(consume(kafka_bootstrap, topic, expect=399)) == 399


def test_without_the_topics_limit_refused_sets_are_split_until_they_fit(
    kafka_bootstrap: str, topic_with: TopicFactory
) -> None:
    """What a pass falls back to when it may not describe the topic: librdkafka's own batch,
    refused as too large, then smaller sets, each record written once."""
    from confluent_kafka import Producer

    topic = topic_with({"max.message.bytes": "20000"})
    conf = {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    producers: list[Producer] = []

    def make(**overrides: Any) -> Producer:
        producers.append(Producer({**conf, **overrides}))
        return producers[-1]

    publisher = Publisher(make(), make)  # no set_bytes: the limit is unknown
    records = [
        (topic, json.dumps({"n": i, "blob": "x" * 200}).encode(), f"k{i}".encode(), []) for i in range(300)
    ]
    try:
        results = publisher.publish(records, timeout=20)
    finally:
        for producer in producers:
            producer.flush(5)
    assert results == [None] * 300
    refusal = publisher.refusals[topic]
    assert (refusal.code, refusal.rows, refusal.resolved, refusal.cause) == (
        "MSG_SIZE_TOO_LARGE",
        300,
        300,
        "batch",
    )
    on_topic = consume(kafka_bootstrap, topic, expect=300)
    assert sorted(json.loads(r.value)["n"] for r in on_topic) == list(range(300))


def test_a_refused_timestamp_never_counts_an_attempt(
    pg_database: Any,
    kafka_bootstrap: str,
    topic_with: TopicFactory,
    cli: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    refusing = topic_with(REFUSES_TIMESTAMPS, partitions=2)
    healthy = topic_with({})
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=2)
    pg_database.insert([event(i, topic=refusing if i % 3 else healthy) for i in range(300)])

    for _ in range(4):  # more passes than max_retries
        result = cli("retry", "-o", "json")
        assert result.exit_code == 1, result.stderr  # rows left PENDING: the pass did not complete
        summary = json.loads(result.stdout)
        [refusal] = summary["set_refusals"]
        assert (refusal["topic"], refusal["charged"], refusal["cause"]) == (refusing, 0, "environment")
        assert f"of topic {refusing} sent alone (" in result.stderr
        assert "this host's clock, or the topic's message.timestamp.* settings" in result.stderr
        assert summary["dlq"] == summary["dlq_failed"] == summary["rescheduled"] == 0

    status = rows_by_status(pg_database)
    assert set(status) <= {"PENDING", "RESOLVED"}
    assert {r["topic"] for r in status["RESOLVED"]} >= {healthy}
    assert len([r for r in status["RESOLVED"] if r["topic"] == healthy]) == 100
    assert {r["retry_count"] for r in status["PENDING"]} == {0}
    assert {r["last_error"] for r in status["PENDING"]} == {None}
    assert len(status["PENDING"]) >= 190  # a record may slip through in the millisecond it was sent
