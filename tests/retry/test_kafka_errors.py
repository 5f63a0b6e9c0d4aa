"""Whose fault each Kafka error is, as a retry pass acts on it: the event's fault counts an
attempt, the environment's does not; a DLQ out of reach or too small leaves the row as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.cluster import ApiKey
from tests.helpers.events import event
from tests.helpers.retry import INVALID_RECORD, NOT_LEADER_FOR_PARTITION, configure, due_rows, statuses
from tests.helpers.topics import consume


def test_invalid_timestamp_is_the_environment_not_the_event(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, breaker_threshold=100)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_request_errors(ApiKey.Produce, *[INVALID_TIMESTAMP] * 50)
    database.insert([event(i) for i in range(5)])
    before = database.rows()
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["resolved"], summary["rescheduled"], summary["aborted"]) == (0, 0, 5)
    assert "5x INVALID_TIMESTAMP" in result.stderr
    assert database.rows() == before  # no attempt counted, no error recorded


@pytest.mark.slow
def test_an_unreachable_dlq_leaves_the_row_pending_as_it_was(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="2s")
    embedded_kafka.create_topic("refused")
    embedded_kafka.refuse_produce("refused", INVALID_RECORD)
    embedded_kafka.partition_set_leader("refused.dlq", 0, -1)  # leaderless: the DLQ send times out
    database.insert([event(1, topic="refused", retry_count=4, last_error="before", error_type="E")])
    before = database.rows()
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["dlq"], summary["dlq_failed"], summary["aborted"]) == (0, 0, 1)
    assert "CRITICAL" not in result.stderr
    assert database.rows() == before  # PENDING, retry_count 4, never DLQ_FAILED


@pytest.mark.slow
def test_a_record_too_large_for_its_dlq_is_not_advised_a_requeue(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, max_retries=1)
    embedded_kafka.create_topic("big")
    embedded_kafka.create_topic("big.dlq")
    embedded_kafka.refuse_produce("big", INVALID_RECORD)
    embedded_kafka.refuse_produce("big.dlq", MESSAGE_TOO_LARGE)  # the DLQ's answer
    database.insert([event(1, topic="big")])
    result = cli("retry")
    assert result.exit_code == 1
    [row] = database.rows()
    assert row["status"] == "DLQ_FAILED"
    assert "requeue when the DLQ is writable" not in result.stderr
    assert "CRITICAL: 1 event(s) are too large for their DLQ topic and are now DLQ_FAILED" in result.stderr
    assert "a requeue would only fail again" in result.stderr


@pytest.mark.kafka
def test_a_topic_name_kafka_refuses_is_not_advised_a_requeue(
    pg_database: Any, kafka_bootstrap: str, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose topic has a space (or no topic at all) ended DLQ_FAILED with "requeue when the
    DLQ is writable": its DLQ topic's name is refused as well, so a requeue can only fail again."""
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=1)
    pg_database.insert([event(1, topic="casino player registered"), event(2, topic="")])
    result = cli("retry")
    assert result.exit_code == 1
    assert statuses(pg_database) == {"DLQ_FAILED": 2}
    assert "requeue when the DLQ is writable" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("CRITICAL:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "CRITICAL: 2 event(s) have no topic, or one Kafka refuses as a name (and their DLQ topic with it), "
        "and are now DLQ_FAILED: id "
    )
    assert "a requeue would only fail again" in lines[0]
    assert sorted(lines[0].split("id ")[1].split(" (")[0].split(", ")) == ["1", "2"]


@pytest.mark.slow
def test_transient_produce_errors_still_resolve_every_row_once(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_request_errors(ApiKey.Produce, NOT_LEADER_FOR_PARTITION, NOT_LEADER_FOR_PARTITION)
    due_rows(database, 50)
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 50
    records = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=50)
    assert sorted(json.loads(r.value)["eventId"] for r in records) == sorted(f"evt-{i}" for i in range(50))
    assert {r["retry_count"] for r in database.rows()} == {0}


def test_a_produce_error_on_one_topic_counts_attempts_for_that_topic_only(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("ok")
    embedded_kafka.create_topic("refused")
    embedded_kafka.refuse_produce("refused", INVALID_RECORD)
    database.insert([event(i, topic="ok" if i % 2 else "refused") for i in range(20)])
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1, result.stderr  # records the broker will never accept
    assert json.loads(result.stdout)["permanent"] == 10
    rows = database.rows()
    assert {(r["topic"], r["status"], r["retry_count"]) for r in rows} == {
        ("ok", "RESOLVED", 0),
        ("refused", "PENDING", 1),
    }


INVALID_TIMESTAMP = 32


MESSAGE_TOO_LARGE = 10
