"""The Kafka layer (kafkaops.kafka: client, errors, metadata) against Kafka speaking the real
protocol over TCP: the embedded cluster, and (marked ``kafka``) the real broker of
tests/helpers/broker_fixtures.py.

Client building, log routing, one-line secret-free errors within their deadlines, and each
metadata helper. Nothing here mocks the Kafka client.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kafkaops.common.errors import (
    ConfigError,
    ExitStatus,
    KafkaClientError,
    KafkaUnavailableError,
    NotFoundError,
)
from kafkaops.demo.cluster import EmbeddedKafka
from kafkaops.kafka import client as kafka
from kafkaops.kafka.errors import kafka_errors, translate_error
from kafkaops.kafka.metadata import check_reachable, committed_offsets, topic_metadata, watermarks
from tests.helpers.broker_fixtures import NewTopicFactory

SECRET = "s3cr3t-value"
# How late a deadline may be met: client teardown and scheduling on a loaded 2-core box.
MARGIN = 0.75


def sasl_props(bootstrap: str) -> dict[str, str]:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "svc-kafkaops",
        "sasl.password": SECRET,
    }


@pytest.fixture
def cluster() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(brokers=3, topics={"orders": 3}) as started:
        yield started


@pytest.fixture
def props(cluster: EmbeddedKafka) -> dict[str, str]:
    return {"bootstrap.servers": cluster.bootstrap_servers}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def produce(props: dict[str, str], topic: str, per_partition: dict[int, int]) -> None:
    client = kafka.producer(props)
    for partition, count in per_partition.items():
        for n in range(count):
            client.produce(topic, b"%d" % n, partition=partition)
    assert client.flush(5) == 0


# -- building clients -----------------------------------------------------------------------


def test_properties_are_stringified_and_keyword_overrides_become_dotted(
    props: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # librdkafka dumps its effective configuration with debug=conf: read it back from the logs.
    with caplog.at_level(logging.DEBUG, logger=kafka.LIBRDKAFKA_LOGGER):
        client = kafka.consumer(props, debug="conf", fetch_wait_max_ms=123, enable_partition_eof=True)
        client.poll(0.1)
        client.close()
    conf = caplog.text
    assert "fetch.wait.max.ms = 123" in conf
    assert "enable.partition.eof = true" in conf
    assert "enable.auto.commit = false" in conf
    assert "auto.offset.reset = smallest" in conf  # librdkafka's spelling of earliest
    assert "group.id = kafkaops-" in conf
    assert "client.id = kafkaops" in conf


@pytest.mark.parametrize(
    ("configured", "effective"),
    [
        ({}, ("reconnect.backoff.ms = 20",)),
        ({"reconnect.backoff.ms": "250"}, ("reconnect.backoff.ms = 250",)),
        # A maximum below kafkaops' default wins: librdkafka would refuse the pair.
        ({"reconnect.backoff.max.ms": "5"}, ("reconnect.backoff.ms = 5", "reconnect.backoff.max.ms = 5")),
    ],
)
def test_first_reconnect_backoff_is_short_unless_configured(
    props: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    configured: dict[str, str],
    effective: tuple[str, ...],
) -> None:
    with caplog.at_level(logging.DEBUG, logger=kafka.LIBRDKAFKA_LOGGER):
        client = kafka.consumer({**props, **configured}, debug="conf")
        client.poll(0.1)
        client.close()
    for line in effective:
        assert line in caplog.text


def test_consumer_group_id_wins_and_throwaway_groups_are_unique(props: dict[str, str]) -> None:
    assert committed_offsets(props, "payments", "orders") == {0: None, 1: None, 2: None}
    first, second = kafka.consumer(props), kafka.consumer(props)
    try:
        assert first.consumer_group_metadata() != second.consumer_group_metadata()
    finally:
        first.close()
        second.close()


def test_bad_property_is_a_config_error_without_secrets() -> None:
    with pytest.raises(ConfigError) as raised:
        kafka.producer({**sasl_props("127.0.0.1:9"), "no.such.property": "x"})
    assert "no.such.property" in raised.value.message
    assert SECRET not in raised.value.message
    assert raised.value.exit_status == ExitStatus.USAGE


def test_error_cb_is_remembered_logged_and_chained(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[KafkaError] = []
    client = kafka.producer({"bootstrap.servers": f"127.0.0.1:{closed_port}"}, error_cb=seen.append)
    assert kafka.last_error(client) is None
    with caplog.at_level(logging.DEBUG, logger="kafkaops.kafka"):
        deadline = time.monotonic() + 3
        while kafka.last_error(client) is None and time.monotonic() < deadline:
            client.poll(0.1)
    error = kafka.last_error(client)
    assert error is not None and error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
    assert seen and seen[-1] is error
    assert any(
        r.name == "kafkaops.kafka.client" and "Connection refused" in r.getMessage() for r in caplog.records
    )
    librdkafka_lines = [r for r in caplog.records if r.name == kafka.LIBRDKAFKA_LOGGER]
    assert librdkafka_lines and all(r.levelno == logging.DEBUG for r in librdkafka_lines)
    assert any("FAIL" in r.getMessage() for r in librdkafka_lines)


@pytest.mark.slow
def test_librdkafka_never_writes_to_stderr(closed_port: int) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        from kafkaops.kafka import client as kafka
        from kafkaops.kafka.metadata import check_reachable
        from kafkaops.common.errors import KafkaopsError
        logging.basicConfig(level=logging.WARNING)  # what a CLI without -v would do
        props = {{"bootstrap.servers": "127.0.0.1:{closed_port}", "sasl.password": "{SECRET}"}}
        producer = kafka.producer(props, message_timeout_ms=1000)
        producer.produce("t", b"x")
        producer.flush(1.5)
        consumer = kafka.consumer(props)
        consumer.subscribe(["t"])
        consumer.poll(0.5)
        consumer.close()
        try:
            check_reachable(props, timeout=1.0)
        except KafkaopsError as exc:
            print(type(exc).__name__, exc.message)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"KafkaUnavailableError cannot reach Kafka at 127.0.0.1:{closed_port}: ")
    assert SECRET not in done.stdout


# -- errors ----------------------------------------------------------------------------------


def test_unreachable_bootstrap_is_one_line_within_deadline_and_hides_secrets(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = f"127.0.0.1:{closed_port}"
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaUnavailableError) as raised:
        check_reachable({**sasl_props(bootstrap), "debug": "security,conf,broker"}, timeout=1.0)
    assert time.monotonic() - started < 1.0 + MARGIN
    message = raised.value.message
    assert message.startswith(f"cannot reach Kafka at {bootstrap}: ")
    assert "Connection refused" in message
    assert "\n" not in message
    assert SECRET not in message and SECRET not in str(raised.value.hint)
    # The SASL settings reached librdkafka (it picked the PLAIN provider), the password did not leak.
    assert "SASL mechanism PLAIN" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("setup_ms", "timeout", "reason"),
    [
        # The stage it stalled in, once the configured setup timeout (1 s) has passed...
        (1000, 2.0, r"Connection setup timed out in state APIVERSION_QUERY \(after \d+ms in state \w+\)"),
        # ...or plain silence when the deadline comes first.
        (None, 0.5, r"no answer within 0.5s"),
    ],
)
@pytest.mark.slow
def test_silent_broker_fails_within_deadline(
    silent_port: int, setup_ms: int | None, timeout: float, reason: str
) -> None:
    # librdkafka would wait for this broker (accepts TCP, never answers) forever.
    props = {"bootstrap.servers": f"127.0.0.1:{silent_port}", "socket.connection.setup.timeout.ms": setup_ms}
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError) as raised:
        check_reachable(props, timeout=timeout)
    assert time.monotonic() - started < timeout + MARGIN
    assert re.fullmatch(rf"cannot reach Kafka at 127\.0\.0\.1:{silent_port}: {reason}", raised.value.message)


@pytest.mark.slow
def test_slow_broker_is_reachable_within_deadline(cluster: EmbeddedKafka, props: dict[str, str]) -> None:
    # The mock answers ApiVersions in two round trips, then Metadata: three 0.4 s trips.
    cluster.set_rtt(-1, 400)
    assert check_reachable(props, timeout=3.0).broker_count == 3


def test_unresolvable_host_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=r"nonexistent\.invalid"):
        check_reachable({"bootstrap.servers": "nonexistent.invalid:9092"}, timeout=3.0)
    assert time.monotonic() - started < 3.0 + MARGIN


def test_translate_error_classifies_and_redacts() -> None:
    source = sasl_props("broker-1:9092")
    leak = f"SASL failed for password {SECRET}"

    unavailable = translate_error(KafkaError(KafkaError._TRANSPORT, leak), source, action="produce")
    assert isinstance(unavailable, KafkaUnavailableError)
    assert (
        unavailable.message == "cannot reach Kafka at broker-1:9092 to produce: SASL failed for password ****"
    )

    for code in (
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._MSG_TIMED_OUT,
    ):
        assert isinstance(translate_error(KafkaException(KafkaError(code)), source), KafkaUnavailableError)

    refused = translate_error(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), source)
    assert isinstance(refused, KafkaClientError) and not isinstance(refused, KafkaUnavailableError)
    assert refused.message == "access to a topic denied to User:svc-kafkaops (TOPIC_AUTHORIZATION_FAILED)"
    assert refused.hint == (
        "grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal User:svc-kafkaops "
        "--operation <operation> --topic <topic>"
    )

    auth = translate_error(KafkaError(KafkaError._AUTHENTICATION, leak), source)
    assert isinstance(auth, KafkaClientError) and "rejected the credentials" in auth.message
    assert SECRET not in auth.message


def test_kafka_errors_context_translates_client_failures(props: dict[str, str]) -> None:
    consumer = kafka.consumer(props)
    with (
        pytest.raises(KafkaClientError, match=r"failed to commit: .*No offset stored"),
        kafka_errors(consumer, "commit"),
    ):
        consumer.commit(asynchronous=False)
    consumer.close()


# -- helpers ---------------------------------------------------------------------------------


def test_check_reachable_describes_the_cluster(props: dict[str, str]) -> None:
    info = check_reachable(props, timeout=2.0)
    assert info.bootstrap_servers == props["bootstrap.servers"]
    assert info.cluster_id
    assert info.broker_count == 3
    assert [b.id for b in info.brokers] == [1, 2, 3]
    assert all(b.host == "127.0.0.1" and b.port > 0 for b in info.brokers)
    assert info.controller_id == 1
    assert info.topic_count == 1


def test_topic_metadata_lists_partitions_and_leaders(cluster: EmbeddedKafka, props: dict[str, str]) -> None:
    topic = topic_metadata(props, "orders")
    assert topic.name == "orders" and topic.partition_count == 3
    assert [p.id for p in topic.partitions] == [0, 1, 2]
    assert all(p.leader in (1, 2, 3) and p.leader in p.replicas for p in topic.partitions)

    client = kafka.admin(props)
    assert topic_metadata(client, "orders") == topic


def test_unknown_topic_is_not_found_and_not_auto_created(props: dict[str, str]) -> None:
    with pytest.raises(NotFoundError, match=r"topic 'ghost' does not exist on Kafka at 127\.0\.0\.1:"):
        topic_metadata(props, "ghost")
    with pytest.raises(NotFoundError):
        watermarks(props, "ghost")
    with pytest.raises(NotFoundError):
        committed_offsets(props, "payments", "ghost")
    assert check_reachable(props, timeout=2.0).topic_count == 1  # still only "orders"


def test_watermarks_per_partition(props: dict[str, str]) -> None:
    assert watermarks(props, "orders") == {0: (0, 0), 1: (0, 0), 2: (0, 0)}
    produce(props, "orders", {0: 3, 2: 1})
    assert watermarks(props, "orders") == {0: (0, 3), 1: (0, 0), 2: (0, 1)}

    consumer = kafka.consumer(props)
    try:
        assert watermarks(consumer, "orders", timeout=2.0) == {0: (0, 3), 1: (0, 0), 2: (0, 1)}
    finally:
        consumer.close()


@pytest.mark.slow
def test_watermarks_of_an_unreachable_cluster_fail_within_deadline(closed_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=r"^cannot reach Kafka at 127\.0\.0\.1:"):
        watermarks({"bootstrap.servers": f"127.0.0.1:{closed_port}"}, "orders", timeout=1.0)
    assert time.monotonic() - started < 1.0 + MARGIN


def test_committed_offsets_per_partition(props: dict[str, str]) -> None:
    produce(props, "orders", {0: 5, 1: 2})
    committer = kafka.consumer(props, group_id="payments")
    committer.commit(
        offsets=[TopicPartition("orders", 0, 4), TopicPartition("orders", 1, 2)], asynchronous=False
    )
    committer.close()

    assert committed_offsets(props, "payments", "orders") == {0: 4, 1: 2, 2: None}
    assert committed_offsets(props, "nobody", "orders") == {0: None, 1: None, 2: None}


# -- the real broker (tests/helpers/broker_fixtures.py) -------------------------------------------------


@pytest.mark.kafka
def test_helpers_against_a_real_broker(kafka_bootstrap: str, new_topic: NewTopicFactory) -> None:
    props = {"bootstrap.servers": kafka_bootstrap}
    info = check_reachable(props, timeout=10.0)
    assert info.cluster_id and info.broker_count >= 1
    assert info.controller_id in {b.id for b in info.brokers}  # KRaft names a live broker

    topic = new_topic(partitions=2)
    layout = topic_metadata(props, topic)
    assert [p.id for p in layout.partitions] == [0, 1]
    assert all(p.leader is not None and p.leader in p.isrs for p in layout.partitions)

    produce(props, topic, {0: 3, 1: 1})
    assert watermarks(props, topic, timeout=10.0) == {0: (0, 3), 1: (0, 1)}

    group = f"g-{uuid.uuid4().hex[:12]}"
    assert committed_offsets(props, group, topic, timeout=10.0) == {0: None, 1: None}
    committer = kafka.consumer(props, group_id=group)
    committer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    committer.close()
    assert committed_offsets(props, group, topic, timeout=10.0) == {0: 2, 1: None}


@pytest.mark.kafka
def test_unknown_topic_is_not_auto_created_by_a_real_broker(kafka_bootstrap: str) -> None:
    # The test broker runs with auto.create.topics.enable=true, like many clusters do.
    props = {"bootstrap.servers": kafka_bootstrap}
    ghost = f"ghost-{uuid.uuid4().hex[:12]}"
    with pytest.raises(NotFoundError, match=ghost):
        topic_metadata(props, ghost, timeout=10.0)
    with pytest.raises(NotFoundError):
        watermarks(props, ghost, timeout=10.0)
    with pytest.raises(NotFoundError):
        committed_offsets(props, "payments", ghost, timeout=10.0)
    assert ghost not in kafka.admin(props).list_topics(timeout=10).topics
