"""Whose fault a Kafka error is (kafkaops.kafka.faults), and what retry and replay do about each kind:
the event's fault counts an attempt, the environment's counts none and tries again later, and
kafkaops' own configuration's (a missing ACL) counts none and stops the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from kafkaops.demo.cluster import ApiKey, EmbeddedKafka
from kafkaops.kafka import faults
from kafkaops.kafka.errors import authorization_error, principal
from kafkaops.kafka.faults import Fault
from tests.conftest import Cli, TestDatabase
from tests.helpers.config import write_config
from tests.helpers.dlq import produce, read_all
from tests.helpers.events import event

FAST = {"socket.connection.setup.timeout.ms": "1000", "reconnect.backoff.max.ms": "200"}
J = "org.apache.kafka.common.errors."


# -- the table ----------------------------------------------------------------------------------


def test_every_code_in_the_table_is_a_librdkafka_error_name() -> None:
    # A name librdkafka never reports (Java's INVALID_TOPIC_EXCEPTION) would never match.
    unknown = [name for name in faults.ERRORS if not isinstance(getattr(KafkaError, name, None), int)]
    assert unknown == []
    for name in faults.ERRORS:
        assert KafkaError(getattr(KafkaError, name)).name() == name


@pytest.mark.parametrize(
    ("code", "fault", "java"),
    [
        ("MSG_SIZE_TOO_LARGE", Fault.EVENT, J + "RecordTooLargeException"),
        ("RECORD_LIST_TOO_LARGE", Fault.EVENT, J + "RecordBatchTooLargeException"),
        ("TOPIC_EXCEPTION", Fault.EVENT, J + "InvalidTopicException"),
        ("UNKNOWN_TOPIC_OR_PART", Fault.EVENT, J + "UnknownTopicOrPartitionException"),
        ("INVALID_RECORD", Fault.EVENT, J + "InvalidRecordException"),
        ("INVALID_MSG", Fault.ENVIRONMENT, J + "CorruptRecordException"),
        ("_TRANSPORT", Fault.ENVIRONMENT, "KafkaError._TRANSPORT"),
        ("_MSG_TIMED_OUT", Fault.ENVIRONMENT, J + "TimeoutException"),
        ("NOT_LEADER_FOR_PARTITION", Fault.ENVIRONMENT, J + "NotLeaderOrFollowerException"),
        ("INVALID_TIMESTAMP", Fault.ENVIRONMENT, J + "InvalidTimestampException"),
        ("PRODUCER_FENCED", Fault.ENVIRONMENT, J + "ProducerFencedException"),
        ("TOPIC_AUTHORIZATION_FAILED", Fault.CONFIGURATION, J + "TopicAuthorizationException"),
        ("CLUSTER_AUTHORIZATION_FAILED", Fault.CONFIGURATION, J + "ClusterAuthorizationException"),
        ("GROUP_AUTHORIZATION_FAILED", Fault.CONFIGURATION, J + "GroupAuthorizationException"),
        (
            "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
            Fault.CONFIGURATION,
            J + "TransactionalIdAuthorizationException",
        ),
        ("SASL_AUTHENTICATION_FAILED", Fault.CONFIGURATION, J + "SaslAuthenticationException"),
        ("_AUTHENTICATION", Fault.CONFIGURATION, "KafkaError._AUTHENTICATION"),
        # Not listed: never the event's fault, so never a step toward the DLQ.
        ("UNSUPPORTED_FOR_MESSAGE_FORMAT", Fault.ENVIRONMENT, "KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT"),
        ("NO_DELIVERY_REPORT", Fault.ENVIRONMENT, "KafkaError.NO_DELIVERY_REPORT"),
    ],
)
def test_each_code_has_one_fault_and_java_class(code: str, fault: Fault, java: str) -> None:
    assert faults.fault_of(code) is fault
    assert faults.is_event_fault(code) is (fault is Fault.EVENT)
    assert faults.is_configuration_fault(code) is (fault is Fault.CONFIGURATION)
    assert faults.java_exception(code) == java


def test_no_code_is_no_fault_of_the_event() -> None:
    assert faults.fault_of(None) is Fault.ENVIRONMENT
    assert not faults.is_event_fault(None) and not faults.is_unreachable(None)


@pytest.mark.parametrize(
    ("question", "yes", "no"),
    [
        (faults.is_unreachable, ["_TRANSPORT", "_RESOLVE", "REQUEST_TIMED_OUT"], ["INVALID_TIMESTAMP"]),
        (faults.is_vague, ["_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT"], ["_RESOLVE"]),
        (
            faults.is_definite,
            [
                "_ALL_BROKERS_DOWN",
                "_AUTHENTICATION",
                "SASL_AUTHENTICATION_FAILED",
                "TOPIC_AUTHORIZATION_FAILED",
            ],
            ["_TRANSPORT", "_TIMED_OUT"],
        ),
        (faults.is_settling, ["NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE"], ["_TRANSPORT"]),
        (faults.is_fenced, ["_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"], ["FENCED_INSTANCE_ID"]),
        (faults.is_rejected_credentials, ["_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"], ["_SSL"]),
        (
            faults.is_too_large,
            ["MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"],
            ["INVALID_RECORD"],
        ),
        # librdkafka's name for Kafka's INVALID_TOPIC_EXCEPTION is TOPIC_EXCEPTION.
        (faults.is_invalid_topic, ["TOPIC_EXCEPTION"], ["INVALID_TOPIC_EXCEPTION", "UNKNOWN_TOPIC_OR_PART"]),
    ],
)
def test_the_questions_callers_ask(question: Any, yes: list[str], no: list[str]) -> None:
    assert [code for code in yes if not question(code)] == []
    assert [code for code in no if question(code)] == []


@pytest.mark.parametrize(
    ("code", "name", "operation", "principal", "line", "acl"),
    [
        (
            "TOPIC_AUTHORIZATION_FAILED",
            "casino.wallet.deposit.v1",
            "Write",
            "User:svc-kafkaops",
            "Write on topic casino.wallet.deposit.v1 denied to User:svc-kafkaops",
            "--allow-principal User:svc-kafkaops --operation Write --topic casino.wallet.deposit.v1",
        ),
        (
            "GROUP_AUTHORIZATION_FAILED",
            "kafkaops-replay.orders.dlq",
            None,
            None,
            "Read on group kafkaops-replay.orders.dlq denied to the configured principal",
            "--allow-principal User:<principal> --operation Read --group kafkaops-replay.orders.dlq",
        ),
        (
            "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
            "kafkaops-replay.orders.dlq",
            None,
            "User:a",
            "Write on transactional id kafkaops-replay.orders.dlq denied to User:a",
            "--operation Write --transactional-id kafkaops-replay.orders.dlq",
        ),
        (
            "CLUSTER_AUTHORIZATION_FAILED",
            None,
            "IdempotentWrite",
            "User:a",
            "IdempotentWrite on the cluster denied to User:a",
            "--operation IdempotentWrite --cluster",
        ),
        (
            "TOPIC_AUTHORIZATION_FAILED",
            None,
            "Write",
            None,
            "Write on a topic denied to the configured principal",
            "",
        ),
    ],
)
def test_a_denial_names_operation_resource_and_principal(
    code: str, name: str | None, operation: str | None, principal: str | None, line: str, acl: str
) -> None:
    assert faults.denial(code, name=name, operation=operation, principal=principal) == line
    assert acl in faults.acl_hint(code, name=name, operation=operation, principal=principal)


def test_the_principal_is_the_configured_sasl_username() -> None:
    assert principal({"sasl.username": "svc-kafkaops", "sasl.password": "s3cret"}) == "User:svc-kafkaops"
    assert principal({"bootstrap.servers": "b:9092"}) is None
    error = authorization_error(
        "TOPIC_AUTHORIZATION_FAILED",
        {"sasl.username": "svc", "sasl.password": "s3cret"},
        name="t",
        operation="Write",
    )
    assert error.exit_status == 1
    assert error.message == "Write on topic t denied to User:svc (TOPIC_AUTHORIZATION_FAILED)"
    assert "s3cret" not in error.message + (error.hint or "")


# -- retry: each kind of fault through a pass on the embedded cluster ---------------------------


def configure(
    db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: str, **kafka_props: str
) -> None:
    path = write_config(
        tmp_path / "kafkaops.yaml",
        db,
        kafka={"bootstrap.servers": bootstrap, **FAST, **kafka_props},
        retry={"delivery_timeout": "3s", "max_retries": 2},
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))


@pytest.fixture
def sqlite_database(make_database: Any) -> TestDatabase:
    db: TestDatabase = make_database("sqlite")
    db.init()
    return db


@pytest.mark.parametrize(
    "code", ["INVALID_RECORD", "MSG_SIZE_TOO_LARGE", "POLICY_VIOLATION", "TOPIC_EXCEPTION"]
)
@pytest.mark.slow
def test_the_events_fault_counts_an_attempt(
    code: str,
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(sqlite_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("orders")
    embedded_kafka.refuse_produce("orders", getattr(KafkaError, code))
    sqlite_database.insert([event(1, topic="orders")])
    result = cli("retry")
    # A record the broker will never accept is flagged at this first attempt, and the pass exits 1.
    assert result.exit_code == (1 if faults.is_permanent(code) else 0), result.stderr
    assert ("PERMANENT: 1 event(s)" in result.stderr) is faults.is_permanent(code)
    [row] = sqlite_database.rows()
    assert (row["status"], row["retry_count"], row["error_type"]) == (
        "PENDING",
        1,
        faults.java_exception(code),
    )
    assert row["next_retry_at"] is not None


@pytest.mark.parametrize("code", ["INVALID_TIMESTAMP", "UNSUPPORTED_FOR_MESSAGE_FORMAT"])
@pytest.mark.slow
def test_the_environments_fault_counts_no_attempt(
    code: str,
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(sqlite_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("orders")
    embedded_kafka.refuse_produce("orders", getattr(KafkaError, code))
    sqlite_database.insert([event(1, topic="orders")])
    before = sqlite_database.rows()
    result = cli("retry")
    assert result.exit_code == 1
    assert f"1 claimed row(s) left PENDING, no attempt counted: transport errors (1x {code})" in result.stderr
    assert sqlite_database.rows() == before


@pytest.mark.parametrize(
    "code",
    [
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
    ],
)
@pytest.mark.slow
def test_a_denied_permission_stops_the_pass_and_touches_no_row(
    code: str,
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(sqlite_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    for topic in ("orders", "orders.dlq", "ok"):
        embedded_kafka.create_topic(topic)
    embedded_kafka.refuse_produce("orders", getattr(KafkaError, code))
    # On its last attempt: a missing ACL charged to the events would send them to the DLQ.
    sqlite_database.insert(
        [event(n, topic="orders", retry_count=1, last_error="before", error_type="E") for n in range(3)]
        + [event(10, topic="ok")]
    )
    before = {r["id"]: r for r in sqlite_database.rows() if r["topic"] == "orders"}
    result = cli("retry")
    assert result.exit_code == 1
    [line, hint] = result.stderr.splitlines()
    denied = {
        "TOPIC_AUTHORIZATION_FAILED": "Write on topic orders",
        "CLUSTER_AUTHORIZATION_FAILED": "IdempotentWrite on the cluster",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": "Write on a transactional id",
        "GROUP_AUTHORIZATION_FAILED": "Read on a group",
    }[code]
    writing = "" if code == "TOPIC_AUTHORIZATION_FAILED" else " writing to orders"
    assert line == (
        f"Error: {denied} denied to the configured principal ({code}){writing}: retry pass stopped in "
        "batch 1; 3 row(s) left as they were, no attempt counted"
    )
    assert "kafka-acls" in hint
    after = {r["id"]: r for r in sqlite_database.rows()}
    assert {i: after[i] for i in before} == before  # attempts, status, next_retry_at: as they were
    assert [r["status"] for r in after.values() if r["topic"] == "ok"] == ["RESOLVED"]
    assert read_all(embedded_kafka.bootstrap_servers, "orders.dlq") == []


def test_a_denied_write_names_the_configured_principal(
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sasl.* is read by librdkafka only with a SASL security.protocol; the line still says who.
    configure(
        sqlite_database,
        tmp_path,
        monkeypatch,
        embedded_kafka.bootstrap_servers,
        **{"sasl.username": "svc-kafkaops"},
    )
    embedded_kafka.create_topic("casino.wallet.deposit.v1")
    embedded_kafka.refuse_produce("casino.wallet.deposit.v1", KafkaError.TOPIC_AUTHORIZATION_FAILED)
    sqlite_database.insert([event(1, topic="casino.wallet.deposit.v1")])
    before = sqlite_database.rows()
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: Write on topic casino.wallet.deposit.v1 denied to User:svc-kafkaops (TOPIC_AUTHORIZATION_FAILED): "
        "retry pass stopped in batch 1; 1 row(s) left as they were, no attempt counted",
        "Hint: grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:svc-kafkaops "
        "--operation Write --topic casino.wallet.deposit.v1",
    ]
    assert sqlite_database.rows() == before


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("INVALID_RECORD", "CRITICAL: 1 event(s) could not be sent to the DLQ and are now DLQ_FAILED"),
        (
            "MSG_SIZE_TOO_LARGE",
            "CRITICAL: 1 event(s) are too large for their DLQ topic and are now DLQ_FAILED",
        ),
        ("TOPIC_EXCEPTION", "CRITICAL: 1 event(s) have no topic, or one Kafka refuses as a name"),
    ],
)
@pytest.mark.slow
def test_a_dlq_refusing_the_record_says_whether_a_requeue_can_help(
    code: str,
    line: str,
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(sqlite_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    for topic in ("orders", "orders.dlq"):
        embedded_kafka.create_topic(topic)
    embedded_kafka.refuse_produce("orders", KafkaError.INVALID_RECORD)
    embedded_kafka.refuse_produce("orders.dlq", getattr(KafkaError, code))
    sqlite_database.insert([event(1, topic="orders", retry_count=1)])
    result = cli("retry")
    assert result.exit_code == 1
    assert line in result.stderr
    assert ("a requeue would only fail again" in result.stderr) is (code != "INVALID_RECORD")
    [row] = sqlite_database.rows()
    assert (row["status"], row["retry_count"]) == ("DLQ_FAILED", 2)


@pytest.mark.slow
def test_a_denied_dlq_write_leaves_the_exhausted_row_as_it_was(
    sqlite_database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(sqlite_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    for topic in ("orders", "orders.dlq"):
        embedded_kafka.create_topic(topic)
    embedded_kafka.refuse_produce("orders", KafkaError.INVALID_RECORD)  # the event's fault...
    embedded_kafka.refuse_produce("orders.dlq", KafkaError.TOPIC_AUTHORIZATION_FAILED)  # ...its DLQ denied
    sqlite_database.insert([event(1, topic="orders", retry_count=1, last_error="before", error_type="E")])
    before = sqlite_database.rows()
    result = cli("retry")
    assert result.exit_code == 1
    assert (
        "Error: Write on topic orders.dlq denied to the configured principal (TOPIC_AUTHORIZATION_FAILED)"
        in result.stderr
    )
    assert "DLQ_FAILED" not in result.stderr and "transport errors" not in result.stderr
    assert sqlite_database.rows() == before  # not DLQ_FAILED, no attempt counted


# -- replay: a denial stops the run, the transaction aborted ------------------------------------


@pytest.mark.slow
def test_a_denied_write_stops_the_replay_and_a_rerun_replays_exactly_once(cli: Cli) -> None:
    with EmbeddedKafka(topics={"orders": 1, "orders.dlq": 1}) as cluster:
        bootstrap = cluster.bootstrap_servers
        produce(bootstrap, "orders.dlq", [(f"k{n}", f"v{n}", None) for n in range(3)])
        cluster.push_request_errors(ApiKey.Produce, KafkaError.TOPIC_AUTHORIZATION_FAILED)
        result = cli("-b", bootstrap, "dlq", "replay", "orders.dlq", "--yes", "--commit-timeout", "5")
        assert result.exit_code == 1
        assert (
            "Error: Write on topic orders denied to the configured principal (TOPIC_AUTHORIZATION_FAILED): "
            "the transaction was aborted and nothing of it is visible; replay stopped (a rerun resumes)"
        ) in result.stderr
        assert "aborted 3 times" not in result.stderr
        assert read_all(bootstrap, "orders", isolation="read_uncommitted") == []
        again = cli("-b", bootstrap, "dlq", "replay", "orders.dlq", "--yes")
        assert again.exit_code == 0, again.stderr
        assert [m.value() for m in read_all(bootstrap, "orders")] == [b"v0", b"v1", b"v2"]


def test_permanent_errors_are_the_records_own_for_good() -> None:
    """What the broker gives a record it will never accept; a policy or a timeout is not."""
    from kafkaops.kafka.faults import is_permanent, permanent_error_types

    assert all(
        is_permanent(c) for c in ("MSG_SIZE_TOO_LARGE", "INVALID_RECORD", "_UNKNOWN_TOPIC", "TOPIC_EXCEPTION")
    )
    assert not any(is_permanent(c) for c in ("POLICY_VIOLATION", "_MSG_TIMED_OUT", "INVALID_TIMESTAMP", None))
    assert "org.apache.kafka.common.errors.RecordTooLargeException" in permanent_error_types()


def test_a_row_stored_with_an_unknown_topic_is_not_called_permanent() -> None:
    """The attempt that met it is flagged; the row is not refused a requeue for it: its topic may
    have been created since (the demo's round-completed rows are)."""
    from kafkaops.kafka.faults import is_permanent, permanent_error_types

    assert is_permanent("_UNKNOWN_TOPIC")
    assert "org.apache.kafka.common.errors.UnknownTopicOrPartitionException" not in permanent_error_types()
