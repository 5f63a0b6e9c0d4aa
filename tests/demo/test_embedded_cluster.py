"""EmbeddedKafka over real TCP: data round-trips, every fault it injects, its CLI, its limits.

The limit tests pin down what the module docstring promises is missing; if a librdkafka
upgrade makes one fail, the mock grew the feature and the docstring should say so.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from kafkaops.common.errors import KafkaUnavailableError
from kafkaops.demo.cluster import ApiKey, EmbeddedKafka, EmbeddedKafkaError
from kafkaops.kafka import client as kafka
from kafkaops.kafka.errors import translate_error
from kafkaops.kafka.metadata import check_reachable, committed_offsets, topic_metadata

Delivery = tuple[KafkaError | None, Message | None]


def deliver(client: Producer, topic: str, value: bytes, timeout: float = 5.0, **kwargs: Any) -> Delivery:
    """Produce one message and wait for its delivery report."""
    reports: list[Delivery] = []
    client.produce(topic, value, on_delivery=lambda err, msg: reports.append((err, msg)), **kwargs)
    client.flush(timeout)
    assert reports, "no delivery report within the timeout"
    return reports[0]


def read_all(props: dict[str, str], topic: str, partition: int = 0, **overrides: Any) -> list[Message]:
    """Every message of one partition, from the start up to the end seen now."""
    consumer = kafka.consumer(props, enable_partition_eof=True, **overrides)
    consumer.assign([TopicPartition(topic, partition, 0)])
    messages: list[Message] = []
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                return messages
            assert error is None, error
            messages.append(msg)
    finally:
        consumer.close()
    raise AssertionError(f"did not reach the end of {topic}[{partition}]")


@pytest.fixture
def three_brokers() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(brokers=3, topics={"t": 3}) as cluster:
        yield cluster


def test_import_has_no_side_effects_and_stays_light() -> None:
    code = (
        "import sys, kafkaops.demo.cluster, kafkaops.kafka.client, kafkaops.kafka.metadata\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('confluent_kafka', 'typer', 'rich')]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_brokers_listen_on_loopback_tcp(three_brokers: EmbeddedKafka) -> None:
    addresses = three_brokers.bootstrap_servers.split(",")
    assert len(addresses) == 3
    for address in addresses:
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        socket.create_connection((host, int(port)), timeout=1).close()
    assert check_reachable({"bootstrap.servers": addresses[0]}, timeout=2).broker_count == 3


@pytest.mark.slow
def test_produce_and_consume_exact_bytes_key_and_headers(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("orders", partitions=2)
    value = bytes(range(256)) + b"\x00tail"
    headers = [("eventType", b"PlayerRegistered"), ("binary", b"\x00\xff"), ("eventType", b"twice")]

    error, msg = deliver(
        kafka.producer(embedded_props), "orders", value, key=b"k\x00ey", headers=headers, partition=1
    )

    assert error is None and msg is not None
    [got] = read_all(embedded_props, "orders", partition=1)
    assert got.value() == value
    assert got.key() == b"k\x00ey"
    assert got.headers() == headers
    assert read_all(embedded_props, "orders", partition=0) == []


@pytest.mark.slow
def test_broker_down_fails_delivery_and_reachability_then_recovers(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("t")
    client = kafka.producer(embedded_props, message_timeout_ms=1000)
    assert deliver(client, "t", b"before")[0] is None

    embedded_kafka.broker_down()
    error, _ = deliver(client, "t", b"during")
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT
    assert isinstance(translate_error(error, client), KafkaUnavailableError)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=r"^cannot reach Kafka at 127\.0\.0\.1:\d+: "):
        check_reachable(embedded_props, timeout=1.0)
    assert time.monotonic() - started < 1.5

    embedded_kafka.broker_up()
    assert check_reachable(embedded_props, timeout=5.0).broker_count == 1
    client.list_topics(timeout=5)  # the old client reconnects on its own backoff schedule
    assert deliver(client, "t", b"after")[0] is None
    assert [m.value() for m in read_all(embedded_props, "t")] == [b"before", b"after"]


@pytest.mark.slow
def test_one_broker_down_leaves_the_others_serving(three_brokers: EmbeddedKafka) -> None:
    props = {"bootstrap.servers": three_brokers.bootstrap_servers}
    three_brokers.broker_down(2)
    info = check_reachable(props, timeout=2.0)
    assert [b.id for b in info.brokers] == [1, 3]  # like Kafka, metadata lists live brokers only
    client = kafka.producer(props, message_timeout_ms=1000)
    assert deliver(client, "t", b"to 1", partition=0)[0] is None  # leaders: partition p on p+1
    error, _ = deliver(client, "t", b"to 2", partition=1)
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT


@pytest.mark.slow
def test_idempotent_producer_delivers_once_through_not_leader_errors(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("t")
    client = kafka.producer(embedded_props, enable_idempotence=True)
    client.list_topics(timeout=5)  # connect first, so the injected errors hit Produce

    not_leader = KafkaError.NOT_LEADER_FOR_PARTITION
    embedded_kafka.push_request_errors(ApiKey.Produce, not_leader, not_leader)
    error, msg = deliver(client, "t", b"exactly once", timeout=10)

    assert error is None and msg is not None
    assert [m.value() for m in read_all(embedded_props, "t")] == [b"exactly once"]


def test_cleared_request_errors_are_not_served(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("t")
    client = kafka.producer(embedded_props, message_timeout_ms=2000, retries=0)
    client.list_topics(timeout=5)
    embedded_kafka.push_request_errors(ApiKey.Produce, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    embedded_kafka.clear_request_errors(ApiKey.Produce)
    assert deliver(client, "t", b"clean")[0] is None


def test_topic_error_fails_delivery_with_that_code(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("locked")
    embedded_kafka.topic_error("locked", KafkaError.TOPIC_AUTHORIZATION_FAILED)
    error, _ = deliver(kafka.producer(embedded_props, message_timeout_ms=2000), "locked", b"x")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    embedded_kafka.topic_error("locked", 0)
    assert deliver(kafka.producer(embedded_props), "locked", b"y")[0] is None


def test_set_rtt_delays_responses(embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]) -> None:
    embedded_kafka.create_topic("t")
    client = kafka.producer(embedded_props)
    deliver(client, "t", b"warm up")

    embedded_kafka.set_rtt(1, 400)
    started = time.monotonic()
    deliver(client, "t", b"slow")
    assert time.monotonic() - started >= 0.35

    embedded_kafka.set_rtt(-1, 0)
    started = time.monotonic()
    deliver(client, "t", b"fast")
    assert time.monotonic() - started < 0.35


@pytest.mark.slow
def test_broker_request_errors_delay_or_fail_one_kind_of_request(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("t")
    client = kafka.producer(embedded_props)
    client.list_topics(timeout=5)
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, (KafkaError.NOT_LEADER_FOR_PARTITION, 400))

    started = time.monotonic()
    assert deliver(client, "t", b"slow ack")[0] is None  # refused after 400 ms, then retried
    assert time.monotonic() - started >= 0.35
    started = time.monotonic()
    check_reachable(embedded_props, timeout=2.0)  # other requests are not slowed
    assert time.monotonic() - started < 0.35
    assert [m.value() for m in read_all(embedded_props, "t")] == [b"slow ack"]
    with pytest.raises(EmbeddedKafkaError, match="broker 9"):
        embedded_kafka.push_broker_request_errors(9, ApiKey.Produce, (0, 10))


def test_partition_leader_can_move(three_brokers: EmbeddedKafka) -> None:
    props = {"bootstrap.servers": three_brokers.bootstrap_servers}
    three_brokers.partition_set_leader("t", 0, 3)
    assert topic_metadata(props, "t").partitions[0].leader == 3
    three_brokers.partition_set_leader("t", 0, -1)
    assert topic_metadata(props, "t").partitions[0].leader is None


def test_bad_calls_raise_and_closed_cluster_refuses_use() -> None:
    with pytest.raises(EmbeddedKafkaError, match="create topic 'bad'"):
        EmbeddedKafka(topics={"bad": 0})
    with EmbeddedKafka(brokers=2) as two, pytest.raises(EmbeddedKafkaError, match="factor from 1 to 2"):
        two.create_topic("wide", replication_factor=3)
    cluster = EmbeddedKafka()
    with pytest.raises(EmbeddedKafkaError, match="broker 7"):
        cluster.set_rtt(7, 10)
    cluster.close()
    cluster.close()  # idempotent
    assert cluster.closed and "closed" in repr(cluster)
    with pytest.raises(EmbeddedKafkaError, match="closed"):
        cluster.create_topic("t")
    with pytest.raises(EmbeddedKafkaError, match="at least 1"):
        EmbeddedKafka(brokers=0)


def test_closing_stops_the_listeners() -> None:
    with EmbeddedKafka() as cluster:
        host, port = cluster.bootstrap_servers.rsplit(":", 1)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()


# -- python -m kafkaops.demo.cluster ------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_module_serves_until_signalled(signum: signal.Signals) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafkaops.demo.cluster",
            "--brokers",
            "2",
            "--topic",
            "orders:3",
            "--topic",
            "audit",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()  # arrives because the module flushes it
        assert line.startswith("bootstrap.servers=127.0.0.1:")
        props = {"bootstrap.servers": line.split("=", 1)[1]}
        assert len(props["bootstrap.servers"].split(",")) == 2
        assert topic_metadata(props, "orders").partition_count == 3
        assert topic_metadata(props, "audit").partition_count == 1
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=10)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert "Traceback" not in stderr


def test_module_rejects_a_bad_topic_spec() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kafkaops.demo.cluster", "--topic", "orders:zero"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "NAME[:PARTITIONS]" in done.stderr and "Traceback" not in done.stderr


# -- the limits the module docstring states ---------------------------------------------


def test_limit_create_topics_is_not_answered(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    client = kafka.admin(embedded_props)  # kept referenced: a freed client cancels its futures
    futures = client.create_topics([NewTopic("made", 1, 1)], request_timeout=2)
    with pytest.raises(KafkaException) as raised:
        futures["made"].result(timeout=5)
    assert raised.value.args[0].code() == KafkaError._UNSUPPORTED_FEATURE


def test_producing_auto_creates_a_topic_with_four_partitions(embedded_props: dict[str, str]) -> None:
    assert deliver(kafka.producer(embedded_props), "fresh", b"x")[0] is None
    assert topic_metadata(embedded_props, "fresh").partition_count == 4


def _transactional(props: dict[str, str], txn_id: str) -> Producer:
    client = kafka.producer(props, transactional_id=txn_id)
    client.init_transactions(5)
    return client


@pytest.mark.slow
def test_limit_transactional_offsets_and_aborts_and_fencing(
    embedded_kafka: EmbeddedKafka, embedded_props: dict[str, str]
) -> None:
    embedded_kafka.create_topic("in")
    embedded_kafka.create_topic("out")
    deliver(kafka.producer(embedded_props), "in", b"input")
    group = f"g-{uuid.uuid4().hex[:8]}"
    reader: Consumer = kafka.consumer(embedded_props, group_id=group)
    reader.subscribe(["in"])
    assert _poll_one(reader).value() == b"input"
    txn = _transactional(embedded_props, "txn-1")

    # Offsets sent with the transaction are not stored for the group.
    txn.begin_transaction()
    txn.produce("out", b"committed-1")
    txn.send_offsets_to_transaction([TopicPartition("in", 0, 1)], reader.consumer_group_metadata(), 5)
    txn.commit_transaction(5)
    reader.close()
    assert committed_offsets(embedded_props, group, "in") == {0: None}

    # Aborted records are shown to read_committed consumers.
    txn.begin_transaction()
    txn.produce("out", b"aborted")
    txn.flush(5)
    txn.abort_transaction(5)
    seen = read_all(embedded_props, "out", isolation_level="read_committed")
    assert [m.value() for m in seen] == [b"committed-1", b"aborted"]

    # A second producer with the same transactional.id does not fence the first.
    _transactional(embedded_props, "txn-1")
    txn.begin_transaction()
    txn.produce("out", b"zombie")
    txn.commit_transaction(5)


def _poll_one(consumer: Consumer) -> Message:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            return msg
    raise AssertionError("no message")
