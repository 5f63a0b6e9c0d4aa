"""What kafkaops says when the cluster denies its principal something, on the embedded cluster's
injected errors: the denial names the operation, the resource and the principal, at once; a
topic the principal may not describe is "not authorized", never missing; reading a DLQ topic
needs no Group ACL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kafkaops.demo.cluster import ApiKey, EmbeddedKafka
from tests.conftest import Cli, TestDatabase
from tests.helpers.config import write_config
from tests.helpers.dlq import json_records, produce
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
USER = "svc-kafkaops"


@pytest.fixture
def sqlite_database(make_database):  # type: ignore[no-untyped-def]
    db: TestDatabase = make_database("sqlite")
    db.init()
    return db


def configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: str, db: TestDatabase | None = None
) -> None:
    # sasl.* is read by librdkafka only with a SASL security.protocol; the denial still names it.
    path = write_config(
        tmp_path / "kafkaops.yaml",
        db,
        kafka={"bootstrap.servers": bootstrap, **FAST_CLIENT, "sasl.username": USER},
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("Error:", "Hint:"))]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_dlq_list_and_tail_need_no_group_acl(
    embedded_kafka: EmbeddedKafka, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read-only consumer has a throwaway group.id (confluent-kafka insists) it never uses:
    # the coordinator refusing that group is none of the read's business.
    embedded_kafka.create_topic("orders")
    embedded_kafka.create_topic("orders.dlq")
    produce(embedded_kafka.bootstrap_servers, "orders.dlq", json_records("orders", 3))
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.push_request_errors(ApiKey.FindCoordinator, *[GROUP_AUTHORIZATION_FAILED] * 200)

    listed = cli("dlq", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert "None" not in listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["topic"] == "orders.dlq" and row["messages"] == 3
    assert row["replay_pending"] is None  # the replay group may not be described: unknown

    tailed = cli("dlq", "tail", "orders.dlq", "-o", "jsonl")
    assert tailed.exit_code == 0, tailed.stderr
    assert len(tailed.stdout.splitlines()) == 3


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_denied_read_of_a_dlq_names_read_on_the_topic_and_the_principal(
    embedded_kafka: EmbeddedKafka, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded_kafka.create_topic("orders.dlq")
    produce(embedded_kafka.bootstrap_servers, "orders.dlq", json_records("orders", 2))
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.push_request_errors(ApiKey.Fetch, *[TOPIC_AUTHORIZATION_FAILED] * 200)
    started = time.monotonic()
    result = cli("dlq", "tail", "orders.dlq")
    assert result.exit_code == 1
    assert time.monotonic() - started < 8
    assert error_lines(result.stderr) == [
        f"Error: Read on topic orders.dlq denied to User:{USER} (TOPIC_AUTHORIZATION_FAILED)",
        f"Hint: grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:{USER} "
        "--operation Read --topic orders.dlq",
    ]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_replay_whose_group_is_denied_stops_at_once_naming_the_group(
    embedded_kafka: EmbeddedKafka, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A consumer's committed() only times out ("Local: Timed out") when the coordinator
    # refuses the group; the plan asks through the admin client, which is told.
    embedded_kafka.create_topic("orders")
    embedded_kafka.create_topic("orders.dlq")
    produce(embedded_kafka.bootstrap_servers, "orders.dlq", json_records("orders", 2))
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.push_request_errors(ApiKey.FindCoordinator, *[GROUP_AUTHORIZATION_FAILED] * 200)
    started = time.monotonic()
    result = cli("dlq", "replay", "orders.dlq", "--dry-run", "-o", "json")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    group = "kafkaops-replay.orders.dlq"
    line = f"Read on group {group} denied to User:{USER} (GROUP_AUTHORIZATION_FAILED)"
    assert error_lines(result.stderr) == [
        f"Error: {line}",
        f"Hint: grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:{USER} "
        f"--operation Read --group {group}",
    ]
    document = json.loads(result.stdout)
    assert document["error"] == line
    assert document["complete"] is False and document["replayed"] == 0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_dlq_topic_the_principal_may_not_describe_is_not_authorized_never_missing(
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A broker leaves topics the principal may not describe out of a listing (the embedded
    # cluster lists them with the error); asked by name, it answers TOPIC_AUTHORIZATION_FAILED.
    embedded_kafka.create_topic("orders")
    embedded_kafka.create_topic("orders.dlq")
    embedded_kafka.topic_error("orders.dlq", TOPIC_AUTHORIZATION_FAILED)
    sqlite_database.insert([event(1, topic="orders")])
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, sqlite_database)

    status = cli("status", "-o", "json")
    doc = json.loads(status.stdout)
    check = next(c for c in doc["checks"] if c["name"] == "dlq_topics")
    assert check["message"] == (
        f"not authorized to describe DLQ topic(s): orders.dlq: Describe denied to User:{USER}"
    )
    assert check["next_step"] == (
        f"grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:{USER} "
        "--operation Describe --topic orders.dlq"
    )
    (topic,) = [d for d in doc["dlq_topics"] if d["dlq_topic"] == "orders.dlq"]
    assert topic["denied"] is True and topic["exists"] is False

    listed = cli("dlq", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "No DLQ topics that this principal may describe" in listed.stderr
    assert "not authorized to describe its DLQ topic orders.dlq" in listed.stderr
    assert "no DLQ topic" not in listed.stderr.replace("No DLQ topics", "")
    assert "MISSING" not in listed.stdout + listed.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_ensure_of_a_source_the_principal_may_not_describe_says_so_not_does_not_exist(
    embedded_kafka: EmbeddedKafka, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded_kafka.create_topic("orders")
    embedded_kafka.topic_error("orders", TOPIC_AUTHORIZATION_FAILED)
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    result = cli("dlq", "ensure", "orders")
    assert result.exit_code == 1, result.stderr
    assert error_lines(result.stderr) == [
        f"Error: not authorized to describe topic 'orders': Describe on topic orders denied to User:{USER} "
        "(TOPIC_AUTHORIZATION_FAILED)",
        f"Hint: grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:{USER} "
        "--operation Describe --topic orders",
    ]
    assert "does not exist" not in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_status_names_the_dlq_topic_whose_offsets_were_denied(
    embedded_kafka: EmbeddedKafka, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded_kafka.create_topic("orders.dlq")
    configure(tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.push_request_errors(ApiKey.ListOffsets, *[TOPIC_AUTHORIZATION_FAILED] * 50)
    doc = json.loads(cli("status", "-o", "json").stdout)
    assert doc["kafka"]["offsets_error"] == (
        f"Describe on topic orders.dlq denied to User:{USER} (TOPIC_AUTHORIZATION_FAILED)"
    )
