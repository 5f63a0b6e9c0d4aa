"""Proof that the test broker (tests/helpers/broker_fixtures.py) is fit for exactly-once testing.

Everything here talks to the real broker with confluent_kafka directly, not through
kafkaops: if one of these fails, the kafkaops tests built on the broker cannot be trusted,
whatever they report. Covered: exact bytes/key/headers round trip, read_committed vs
read_uncommitted visibility of committed and aborted transactions, consumer offsets
committed inside a transaction, producer fencing by transactional.id, and the
``scripts/kafka-broker run`` command line.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from tests.helpers.broker_fixtures import NewTopicFactory

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
TXN_TIMEOUT = 30.0


def _read(
    bootstrap: str,
    topic: str,
    *,
    isolation: str,
    until: Callable[[list[Message]], bool],
    timeout: float = 20.0,
) -> list[Message]:
    """Read ``topic``'s partition 0 from the beginning until ``until(messages)`` holds.

    A deadline rather than end-of-partition: commit/abort markers are written by the
    coordinator after EndTxn returns, so "end of partition" for read_committed can still be
    short of the transaction just committed.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    messages: list[Message] = []
    try:
        # assign(), not subscribe(): no rebalance to wait for, and no offsets are committed.
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while not until(messages):
            if time.monotonic() > deadline:
                values = [m.value() for m in messages]
                raise AssertionError(f"{isolation} read of {topic} timed out; got {values!r}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            messages.append(msg)
    finally:
        consumer.close()
    return messages


def _values(messages: list[Message]) -> list[bytes | None]:
    return [m.value() for m in messages]


def _transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(TXN_TIMEOUT)
    return producer


def test_round_trip_keeps_exact_bytes_key_and_headers(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = new_topic()
    value = bytes(range(256)) + b"\x00\r\n\xff trailing"
    key = b"\x00key\xff"
    # Repeated names, binary, empty and null values: headers are an ordered multimap.
    headers: list[tuple[str, str | bytes | None]] = [
        ("h", b"1"),
        ("h", b"2"),
        ("bin", b"\x00\xff"),
        ("empty", b""),
        ("null", None),
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    reports: list[tuple[KafkaError | None, Message]] = []
    producer.produce(
        topic, value=value, key=key, headers=headers, on_delivery=lambda e, m: reports.append((e, m))
    )
    producer.produce(topic, value=None, key=b"tombstone", on_delivery=lambda e, m: reports.append((e, m)))
    assert producer.flush(15) == 0
    assert [err for err, _ in reports] == [None, None]

    first, tombstone = _read(
        kafka_bootstrap, topic, isolation="read_committed", until=lambda ms: len(ms) >= 2
    )
    assert first.value() == value
    assert first.key() == key
    assert first.headers() == headers
    assert first.offset() == reports[0][1].offset()
    assert tombstone.value() is None
    assert tombstone.key() == b"tombstone"
    assert tombstone.headers() is None


def test_read_committed_hides_aborted_records_that_reached_the_log(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = new_topic()
    producer = _transactional_producer(kafka_bootstrap, f"txn-{uuid.uuid4().hex}")

    producer.begin_transaction()
    producer.produce(topic, b"c1")
    producer.produce(topic, b"c2")
    producer.commit_transaction(TXN_TIMEOUT)

    producer.begin_transaction()
    producer.produce(topic, b"a1")
    producer.produce(topic, b"a2")
    # abort_transaction() purges what is still queued; flush first so the aborted records
    # are really in the log and it is the abort marker that hides them.
    assert producer.flush(15) == 0
    producer.abort_transaction(TXN_TIMEOUT)

    producer.begin_transaction()
    producer.produce(topic, b"c3")
    producer.commit_transaction(TXN_TIMEOUT)

    # c3 lies after the aborted batch, so waiting for it proves the reader went past it.
    committed = _read(
        kafka_bootstrap, topic, isolation="read_committed", until=lambda ms: b"c3" in _values(ms)
    )
    assert _values(committed) == [b"c1", b"c2", b"c3"]

    uncommitted = _read(kafka_bootstrap, topic, isolation="read_uncommitted", until=lambda ms: len(ms) >= 5)
    assert _values(uncommitted) == [b"c1", b"c2", b"a1", b"a2", b"c3"]


def test_send_offsets_to_transaction_commits_group_offsets_atomically(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, sink = new_topic(name_prefix="in"), new_topic(name_prefix="out")
    plain = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(3):
        plain.produce(source, f"in-{n}".encode())
    assert plain.flush(15) == 0

    group = f"g-{uuid.uuid4().hex[:12]}"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        # subscribe() like the real pipeline, so the offsets go in with a live generation.
        consumer.subscribe([source])
        consumed: list[Message] = []
        deadline = time.monotonic() + 30
        while len(consumed) < 3:
            assert time.monotonic() < deadline, f"consumed only {_values(consumed)!r}"
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                consumed.append(msg)

        producer = _transactional_producer(kafka_bootstrap, f"txn-{uuid.uuid4().hex}")
        metadata = consumer.consumer_group_metadata()

        # An aborted transaction must take its offsets with it.
        producer.begin_transaction()
        producer.produce(sink, b"never")
        producer.send_offsets_to_transaction([TopicPartition(source, 0, 1)], metadata, TXN_TIMEOUT)
        producer.abort_transaction(TXN_TIMEOUT)
        (after_abort,) = consumer.committed([TopicPartition(source, 0)], timeout=15)
        assert after_abort.offset == OFFSET_INVALID

        producer.begin_transaction()
        for msg in consumed:
            producer.produce(sink, msg.value())
        positions = consumer.position([TopicPartition(source, 0)])
        assert positions[0].offset == 3
        producer.send_offsets_to_transaction(positions, metadata, TXN_TIMEOUT)
        producer.commit_transaction(TXN_TIMEOUT)

        (after_commit,) = consumer.committed([TopicPartition(source, 0)], timeout=15)
        assert after_commit.offset == 3
    finally:
        consumer.close()

    output = _read(kafka_bootstrap, sink, isolation="read_committed", until=lambda ms: len(ms) >= 3)
    assert _values(output) == [b"in-0", b"in-1", b"in-2"]


def test_new_producer_with_same_transactional_id_fences_the_old_one(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = new_topic()
    transactional_id = f"fence-{uuid.uuid4().hex}"

    zombie = _transactional_producer(kafka_bootstrap, transactional_id)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie")
    assert zombie.flush(15) == 0

    successor = _transactional_producer(kafka_bootstrap, transactional_id)

    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(TXN_TIMEOUT)
    error: KafkaError = raised.value.args[0]
    assert error.fatal(), error
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED), error

    successor.begin_transaction()
    successor.produce(topic, b"fresh")
    successor.commit_transaction(TXN_TIMEOUT)

    visible = _read(
        kafka_bootstrap, topic, isolation="read_committed", until=lambda ms: b"fresh" in _values(ms)
    )
    assert _values(visible) == [b"fresh"]


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no line on stdout within {timeout}s")
    return proc.stdout.readline().decode()


def test_kafka_broker_cli_runs_and_stops_cleanly_on_sigterm(kafka_libs: Path, tmp_path: Path) -> None:
    stderr_path = tmp_path / "kafka-broker.err"
    # The same interpreter as the tests, so the CLI's readiness probe has confluent_kafka.
    env = dict(os.environ, KAFKAOPS_PYTHON=sys.executable)
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "kafka-broker"), "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    try:
        line = _read_line(proc, timeout=90)
        match = re.fullmatch(r"bootstrap\.servers=(127\.0\.0\.1):(\d+)\n", line)
        assert match, f"unexpected line {line!r}; stderr:\n{stderr_path.read_text()}"
        host, port = match.group(1), int(match.group(2))

        admin = AdminClient({"bootstrap.servers": f"{host}:{port}"})
        brokers = admin.list_topics(timeout=10).brokers
        assert [(b.host, b.port) for b in brokers.values()] == [(host, port)]
        pid_match = re.search(r"pid (\d+)", stderr_path.read_text())
        assert pid_match, stderr_path.read_text()
        jvm_pid = int(pid_match.group(1))

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()  # the broker's parent-death signal then stops the JVM too
            proc.wait()

    # Nothing left behind: the JVM has exited and the port no longer answers.
    with pytest.raises(ProcessLookupError):
        os.kill(jvm_pid, 0)
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=2):
        pass
    assert "stopped" in stderr_path.read_text()
