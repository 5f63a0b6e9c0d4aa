"""The journal of the commands that write to Kafka: a retry pass, a DLQ replay (the source
offsets it moved over, per partition, and its transactions) and dlq ensure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.config import write_config
from tests.helpers.dlq import dlq_pair, json_records, produce
from tests.helpers.events import event
from tests.helpers.retry import configure


def _entries(cli: Any) -> list[dict[str, Any]]:
    listed = cli("audit", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_a_retry_pass_is_journaled_with_its_counts(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    database.insert([event(n) for n in range(4)])
    done = cli("retry", "--batch-size", "2")
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(cli)
    assert (entry["command"], entry["outcome"], entry["rows"]) == ("retry", "ok", 4)
    assert entry["selection"] == {"batch_size": 2}
    assert (entry["details"]["claimed"], entry["details"]["resolved"]) == (4, 4)


@pytest.mark.kafka
def test_a_replay_journals_the_offsets_it_moved_over_and_its_commits(
    configured: Any, cli: Any, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    target, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=2)
    produce(kafka_bootstrap, dlq, json_records(target, 6))
    done = cli("-b", kafka_bootstrap, "dlq", "replay", dlq, "--batch-size", "2", "--yes")
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(cli)
    assert (entry["command"], entry["outcome"], entry["rows"]) == ("dlq replay", "ok", 6)
    assert entry["selection"]["source"] == dlq
    details = entry["details"]
    moved = {p: end - (start or 0) for p, (start, end) in details["offsets"].items()}
    assert sum(moved.values()) == 6
    assert details["commits"] >= 3 and details["replayed"] == 6


@pytest.mark.kafka
def test_dlq_ensure_journals_the_topics_it_created(
    configured: Any, cli: Any, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source = new_topic(1)
    done = cli("-b", kafka_bootstrap, "dlq", "ensure", source)
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(cli)
    assert (entry["command"], entry["outcome"], entry["rows"]) == ("dlq ensure", "ok", 1)
    assert entry["details"]["created"] == [f"{source}.dlq"]


@pytest.mark.kafka
def test_without_a_database_audit_file_is_the_journal(
    cli: Any,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = tmp_path / "audit.jsonl"
    config = write_config(
        tmp_path / "k.yaml", kafka={"bootstrap.servers": kafka_bootstrap}, audit={"file": str(journal)}
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    source = new_topic(1)
    assert cli("dlq", "ensure", source).exit_code == 0
    intent, outcome = (json.loads(line) for line in journal.read_text().splitlines())
    assert (intent["command"], intent["entry"], outcome["outcome"]) == ("dlq ensure", None, "ok")


def _topic_config(database: Any, tmp_path: Path, bootstrap: str, **audit: Any) -> Path:
    return write_config(
        tmp_path / "kafkaops.yaml",
        database,
        kafka={"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000},
        audit=audit,
    )


@pytest.mark.kafka
def test_audit_topic_gets_each_entrys_intent_then_its_outcome_never_a_payload(
    database: Any,
    cli: Any,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    from tests.helpers.dlq import read_all

    database.init()
    journal = new_topic(name_prefix="kafkaops-audit")
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG", str(_topic_config(database, tmp_path, kafka_bootstrap, topic=journal))
    )
    database.insert([event(n, status="DLQ_FAILED", payload='{"secret-payload": 1}') for n in range(3)])
    done = cli("failed", "requeue", "--yes")
    assert done.exit_code == 0, done.stderr
    records = read_all(kafka_bootstrap, journal)
    docs = [json.loads(m.value()) for m in records]
    assert [(d["event"], d["command"]) for d in docs] == [
        ("intent", "failed requeue"),
        ("outcome", "failed requeue"),
    ]
    (entry,) = _entries(cli)
    assert docs[0]["entry"] == docs[1]["entry"] == entry["id"]
    assert (docs[1]["outcome"], docs[1]["exit_code"], docs[1]["rows"]) == ("ok", 0, 3)
    assert records[0].key() == records[1].key()  # one partition for an entry's two records
    assert all(b"secret-payload" not in m.value() for m in records)


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_a_journal_topic_that_cannot_be_written_stops_the_command_before_it_acts(
    database: Any, cli: Any, kafka_bootstrap: str, tmp_path: Path, monkeypatch: Any
) -> None:
    database.init()
    missing = "kafkaops-audit-missing-topic"  # never created, and never auto-created
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG", str(_topic_config(database, tmp_path, kafka_bootstrap, topic=missing))
    )
    database.insert([event(n, status="DLQ_FAILED") for n in range(2)])
    refused = cli("failed", "requeue", "--yes")
    assert refused.exit_code == 1, refused.stderr
    (error,) = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith(f"Error: cannot write the audit journal (topic {missing}: it does not exist")
    assert error.endswith("nothing was done")
    assert {r["status"] for r in database.rows()} == {"DLQ_FAILED"}

    monkeypatch.setenv(
        "KAFKAOPS_CONFIG",
        str(_topic_config(database, tmp_path, kafka_bootstrap, topic=missing, required=False)),
    )
    lenient = cli("failed", "requeue", "--yes")
    assert lenient.exit_code == 0, lenient.stderr
    assert f"acting without an audit record: topic {missing}" in lenient.stderr
    assert {r["status"] for r in database.rows()} == {"PENDING"}


def test_a_bad_audit_topic_name_is_a_config_error(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "kafkaops.yaml"
    path.write_text("current-context: t\ncontexts:\n  t:\n    audit: {topic: 'no spaces allowed'}\n")
    path.chmod(0o600)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    shown = cli("config", "show")
    assert shown.exit_code == 2
    assert "audit.topic must be a Kafka topic name" in shown.stderr
