"""One probe: connect, read the probe topic's metadata, write `count` small records with the
service's producer settings (acks=all, idempotence, batch.size and linger.ms), read them back,
and time each step. Everything runs under one deadline.

The probe topic is created only by `ensure_probe_topic` (`probe --ensure`), never implicitly:
the producer and every metadata request here are told not to auto-create it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from kafkaops.common.errors import KafkaAuthorizationError, KafkaopsError, NotFoundError
from kafkaops.kafka import faults
from kafkaops.kafka.client import consumer, kafka_error_of, producer
from kafkaops.kafka.errors import authorization_error, kafka_errors, translate_error
from kafkaops.kafka.errors import principal as principal_of
from kafkaops.kafka.metadata import check_topic_name, cluster_metadata, create_topics
from kafkaops.kafka.producer_settings import RUNBOOK_PRODUCER, SERVICE_PRODUCER
from kafkaops.probe.model import PROBE_TOPIC, ProbeResult

# What the read-back consumer waits for: the broker answers a fetch as soon as one record is
# there, so the end-to-end figure is the cluster's, not a fetch's idle wait.
_READER: dict[str, Any] = {
    "fetch.wait.max.ms": 10,
    "fetch.queue.backoff.ms": 0,
    "enable.partition.eof": False,
}
_DELIVERY_KEYS = ("message.timeout.ms", "delivery.timeout.ms")  # one setting, two names


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def missing_topic(topic: str) -> NotFoundError:
    return NotFoundError(
        f"probe topic {topic} does not exist (kafkaops creates it only when asked)",
        hint=f"create it: kafkaops probe --ensure{'' if topic == PROBE_TOPIC else f' --topic {topic}'}",
    )


def ensure_probe_topic(props: Mapping[str, Any], topic: str, *, timeout: float) -> bool:
    """Create `topic` unless it exists: one partition per broker (each broker leads one), with
    up to 3 replicas. True when it was created."""
    check_topic_name(topic)
    info, metadata, client = cluster_metadata(props, timeout)
    if topic in metadata.topics and metadata.topics[topic].error is None:
        return False
    brokers = max(1, info.broker_count)
    create_topics(client, {topic: (brokers, min(3, brokers))}, timeout=timeout)
    return True


def producer_settings(props: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the probe's producer publishes with that the runbook names: the config's
    batch.size and linger.ms, else the runbook's; acks=all and idempotence, as the service."""
    chosen = {k: _number(props.get(k, v)) for k, v in RUNBOOK_PRODUCER.items()}
    return {**SERVICE_PRODUCER, **chosen}


def _number(value: Any) -> Any:
    """A config value as the number it spells (the file's values are text); else as it is,
    for librdkafka to name when it refuses it."""
    text = str(value).strip()
    return int(text) if text.isdigit() else value


def run_probe(props: Mapping[str, Any], *, topic: str, count: int, timeout: float) -> ProbeResult:
    """Probe `topic` with `count` records within `timeout` seconds. Raises when it cannot
    probe (unreachable, topic missing, denied); a cluster that takes the records but does not
    acknowledge or return them is the result's `problem`, with what was measured."""
    check_topic_name(topic)
    started = time.monotonic()
    deadline = started + timeout
    result = ProbeResult(topic=topic, count=count, producer=producer_settings(props))
    _info, _metadata, client = cluster_metadata(props, timeout)
    result.connect_s = time.monotonic() - started
    asked = time.monotonic()
    with kafka_errors(client, f"read the metadata of {topic}"):
        metadata = client.list_topics(topic=topic, timeout=_left(deadline))
    result.metadata_s = time.monotonic() - asked
    partitions = _partitions(metadata, topic, props)
    result.problem = _replicas_problem(client, metadata, topic, deadline)
    if result.problem is None:
        _write_and_read(props, result, partitions, deadline)
    result.elapsed_s = time.monotonic() - started
    return result


def _partitions(metadata: Any, topic: str, props: Mapping[str, Any]) -> list[int]:
    found = metadata.topics.get(topic)
    code = found.error.name() if found is not None and found.error is not None else None
    if found is None or code == "UNKNOWN_TOPIC_OR_PART" or (code is None and not found.partitions):
        raise missing_topic(topic)
    if code is not None and faults.classify(code).resource is not None:
        raise authorization_error(code, props, name=topic, operation="Describe")
    if code is not None:
        raise translate_error(found.error, props, action=f"read the metadata of {topic}")
    return sorted(found.partitions)


def _replicas_problem(client: Any, metadata: Any, topic: str, deadline: float) -> str | None:
    """Why acks=all cannot succeed on a partition now, said before writing: no leader, or
    fewer in-sync replicas than min.insync.replicas (NOT_ENOUGH_REPLICAS)."""
    parts = metadata.topics[topic].partitions
    leaderless = sorted(n for n, p in parts.items() if p.leader < 0)
    if leaderless:
        return f"partition(s) {', '.join(map(str, leaderless))} of {topic} have no leader: nothing can be written there"
    min_isr = _min_insync(client, topic, deadline)
    short = sorted(
        (n, len(p.isrs)) for n, p in parts.items() if min_isr is not None and len(p.isrs) < min_isr
    )
    if not short:
        return None
    n, isr = short[0]
    more = f" (and {len(short) - 1} more partitions)" if len(short) > 1 else ""
    return (
        f"NOT_ENOUGH_REPLICAS: partition {n} of {topic} has {isr} in-sync replica(s), "
        f"min.insync.replicas is {min_isr}{more}: every acks=all write to it is refused, the service's too"
    )


def _min_insync(client: Any, topic: str, deadline: float) -> int | None:
    """The topic's min.insync.replicas; None when the cluster does not say (no DescribeConfigs
    permission, an old or partial implementation): the write then tells."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        future = client.describe_configs([resource], request_timeout=min(2.0, _left(deadline)))[resource]
        entry = future.result(timeout=min(2.0, _left(deadline))).get("min.insync.replicas")
        return int(entry.value) if entry is not None and entry.value is not None else None
    except (KafkaException, TimeoutError, ValueError, TypeError):
        return None


def _write_and_read(
    props: Mapping[str, Any], result: ProbeResult, partitions: list[int], deadline: float
) -> None:
    from confluent_kafka import TopicPartition

    run = uuid.uuid4().hex[:12].encode()
    reader = consumer(props, **_READER)
    try:
        starts = []
        for n in partitions:  # also sets up the reader's connection to each leader
            with kafka_errors(reader, f"read the end offsets of {result.topic}"):
                _low, high = reader.get_watermark_offsets(
                    TopicPartition(result.topic, n), timeout=_left(deadline)
                )
            starts.append(TopicPartition(result.topic, n, high))
        reader.assign(starts)
        sent: dict[int, float] = {}
        arrived: dict[int, float] = {}
        refused: list[Any] = []  # the read's denial (no Read on the topic), if any
        stop = threading.Event()
        thread = threading.Thread(target=_read_back, args=(reader, run, arrived, refused, stop), daemon=True)
        thread.start()
        try:
            errors = _produce(props, result, partitions, run, sent, deadline)
            while len(arrived) < result.acked and time.monotonic() < deadline and not refused:
                time.sleep(0.005)
        finally:
            stop.set()
            thread.join(2.0)
        if refused:
            raise authorization_error(refused[0].name(), props, name=result.topic, operation="Read")
        result.sent = len(sent)
        result.received = len(arrived)
        result.end_to_end_s = [arrived[n] - sent[n] for n in arrived if n in sent]
    finally:
        reader.close()
    if errors:
        _delivery_problem(result, errors, props)
    elif result.lost:
        result.problem = (
            f"{result.lost} of {result.sent} record(s) written but not read back within the deadline"
        )


def _produce(
    props: Mapping[str, Any],
    result: ProbeResult,
    partitions: list[int],
    run: bytes,
    sent: dict[int, float],
    deadline: float,
) -> list[Any]:
    """Write the records; returns the delivery errors (KafkaError), first first."""
    from confluent_kafka import KafkaException

    bound_ms = max(100, int(_left(deadline) * 1000) - 200)
    configured = [int(props[k]) for k in _DELIVERY_KEYS if str(props.get(k, "")).isdigit()]
    conf = {k: v for k, v in props.items() if k not in _DELIVERY_KEYS}
    linger = int(result.producer["linger.ms"])
    overrides = {
        **result.producer,
        "allow.auto.create.topics": False,
        "message.timeout.ms": max(linger + 1, min([bound_ms, *configured])),
    }
    writer = producer(conf, **{k.replace(".", "_"): v for k, v in overrides.items()})
    errors: list[Any] = []

    def delivered(n: int) -> Any:
        def report(error: Any, _msg: Any) -> None:
            if error is None:
                result.ack_s.append(time.monotonic() - sent[n])
                result.acked += 1
            else:
                errors.append(error)

        return report

    try:
        # One record first, not counted: the service's producer is long-lived, so its
        # connections, the topic's metadata and its idempotent producer id are in place.
        try:
            for n in partitions:
                writer.produce(result.topic, value=run + b":warm", partition=n)
            writer.flush(_left(deadline))
        except KafkaException as exc:  # the producer id refused: a fatal error, raised here
            error = kafka_error_of(exc)
            code = error.name() if error is not None else None
            if code is None or faults.classify(code).resource is None:
                raise translate_error(exc, writer, action=f"write to {result.topic}") from exc
            raise _write_denied(code, props, result.topic) from None
        for n in range(result.count):
            sent[n] = time.monotonic()
            try:
                writer.produce(
                    result.topic,
                    value=run + b":" + str(n).encode(),
                    partition=partitions[n % len(partitions)],
                    on_delivery=delivered(n),
                )
            except KafkaException as exc:  # the client already knows the topic refuses writes
                del sent[n]
                errors.append(kafka_error_of(exc) or exc)
                break
            writer.poll(0)
        # poll, not flush: flush sends at once, and the records would not wait linger.ms as
        # the service's do.
        while result.acked + len(errors) < len(sent) and time.monotonic() < deadline:
            writer.poll(0.001)
    finally:
        if len(writer):
            writer.purge()
            writer.flush(0)
    return errors


def _read_back(
    reader: Any, run: bytes, arrived: dict[int, float], refused: list[Any], stop: threading.Event
) -> None:
    prefix = run + b":"
    while not stop.is_set():
        # poll, not consume(n): consume waits for n records or its timeout, which would count
        # as latency.
        msg = reader.poll(0.05)
        now = time.monotonic()
        error = msg.error() if msg is not None else None
        if (
            error is not None
            and msg.topic() is not None
            and faults.classify(error.name()).resource == "topic"
        ):
            refused.append(error)  # no Read on the topic: nothing will come back
            return
        value = msg.value() if msg is not None and error is None else None
        if value is not None and value.startswith(prefix) and value[len(prefix) :].isdigit():
            arrived.setdefault(int(value[len(prefix) :]), now)


def _write_denied(code: str, props: Mapping[str, Any], topic: str) -> KafkaopsError:
    """A write refused for want of an ACL. CLUSTER_AUTHORIZATION_FAILED is the idempotent
    producer's InitProducerId, which a broker grants to a principal with Write on any topic (or
    IdempotentWrite on the cluster): Write on the probe topic is the one grant that fixes both."""
    if code != "CLUSTER_AUTHORIZATION_FAILED":
        return authorization_error(code, props, name=topic, operation="Write")
    who = principal_of(props)
    return KafkaAuthorizationError(
        faults.denial("TOPIC_AUTHORIZATION_FAILED", name=topic, operation="Write", principal=who)
        + " (the idempotent producer's InitProducerId was refused: CLUSTER_AUTHORIZATION_FAILED)",
        hint=faults.acl_hint("TOPIC_AUTHORIZATION_FAILED", name=topic, operation="Write", principal=who),
    )


def _delivery_problem(result: ProbeResult, errors: list[Any], props: Mapping[str, Any]) -> None:
    first = errors[0]
    code = first.name() if hasattr(first, "name") else None
    result.problem_code = code
    if code is not None and faults.classify(code).resource is not None:
        raise _write_denied(code, props, result.topic)
    if code in ("NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND"):
        result.problem = (
            f"{code}: {result.topic} has fewer in-sync replicas than min.insync.replicas: every "
            f"acks=all write is refused, the service's too ({len(errors)} of {result.count} records)"
        )
        return
    error: KafkaopsError = translate_error(first, props, action=f"write to {result.topic}")
    result.problem = f"{len(errors)} of {result.count} record(s) not acknowledged: {error.message}"
