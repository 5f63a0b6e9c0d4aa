"""Helpers of the `kafkaops dlq` tests: write DLQ records, read a topic back whole, run the
CLI as a real subprocess. Plain confluent_kafka, so a kafkaops bug cannot hide in them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.process import start_kafkaops

ROOT = Path(__file__).resolve().parents[2]
Header = tuple[str, bytes | None]


def spring_headers(original: str, offset: int, *, partition: int = 0, message: str = "boom") -> list[Header]:
    return [
        ("kafka_dlt-original-topic", original.encode()),
        ("kafka_dlt-original-partition", partition.to_bytes(4, "big")),
        ("kafka_dlt-original-offset", offset.to_bytes(8, "big")),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", message.encode()),
    ]


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | str | None, bytes | str | None, list[Header] | None]],
    *,
    partition: int | None = None,
) -> None:
    """Write (key, value, headers) records, in order, and wait for every acknowledgement."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failures: list[Any] = []
    for key, value, headers in records:
        kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers or None}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, on_delivery=lambda err, _m: err and failures.append(err), **kwargs)
    assert producer.flush(30) == 0
    assert not failures, failures


def json_records(
    original: str, count: int, *, start: int = 0, brands: int = 3
) -> list[tuple[str, str, list[Header]]]:
    """`count` JSON DLQ records written as Spring's recoverer would, numbered from `start`."""
    return [
        (
            f"player-{n % 7}",
            json.dumps({"n": n, "brandId": f"casino-{n % brands}", "pad": "x" * 40}),
            spring_headers(original, n),
        )
        for n in range(start, start + count)
    ]


def read_all(
    bootstrap: str, topic: str, *, isolation: str = "read_committed", timeout: float = 30.0
) -> list[Message]:
    """Every record of `topic` up to its current end, in partition/offset order."""
    # With read_committed, the "high" watermark librdkafka reports is the last stable offset.
    admin_consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
        }
    )
    try:
        meta = admin_consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = sorted(meta.partitions)
        ends = _ends(admin_consumer, topic, partitions)
        if isolation == "read_committed":
            # A transaction that has just committed writes its markers after the commit
            # returned: until they land, the last stable offset stays before its records.
            # Waited for a few seconds; a transaction still open then stays left out.
            highs = _ends(None, topic, partitions, bootstrap=bootstrap)
            settle = time.monotonic() + 5
            while any(ends[p] < highs[p] for p in partitions) and time.monotonic() < settle:
                time.sleep(0.05)
                ends = _ends(admin_consumer, topic, partitions)
    finally:
        admin_consumer.close()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    messages: list[Message] = []
    waiting = {p for p in partitions if ends[p] > 0}
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while waiting:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} timed out; still waiting for partitions {waiting}")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends[msg.partition()]:
                        waiting.discard(msg.partition())
                    continue
                raise KafkaException(error)
            messages.append(msg)
    finally:
        consumer.close()
    return sorted(messages, key=lambda m: (m.partition(), m.offset()))


def _ends(
    consumer: Consumer | None, topic: str, partitions: list[int], *, bootstrap: str = ""
) -> dict[int, int]:
    """Each partition's end: the last stable offset through a read_committed consumer, the
    high watermark through a read_uncommitted one (made here when none is given)."""
    own = consumer is None
    if consumer is None:
        # librdkafka's default isolation is read_committed: its "high" would be the stable offset.
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"probe-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_uncommitted",
            }
        )
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
    finally:
        if own:
            consumer.close()


def high_watermarks(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Each partition's end, records of open or aborted transactions included."""
    return _ends(None, topic, partitions, bootstrap=bootstrap)


_COORDINATOR_MOVING = frozenset(
    {"NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "_WAIT_COORD"}
)


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
                break
            except KafkaException as exc:
                # A fresh broker is still electing (or loading) the group coordinator.
                error = exc.args[0]
                coordinator = error.name() in _COORDINATOR_MOVING
                if not (error.retriable() or coordinator) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in found)


def high_total(bootstrap: str, topic: str, partitions: int) -> int:
    """The sum of the high watermarks: uncommitted transactional records included."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)
        )
    finally:
        consumer.close()


def kafkaops_process(*args: str, bootstrap: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`kafkaops -b BOOTSTRAP ARGS...` started from the repository (signals, exit codes)."""
    return start_kafkaops("-b", bootstrap, *args, env={**(env or {}), "PYTHONPATH": str(ROOT)}, cwd=str(ROOT))


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def produce_raw_header(
    bootstrap: str, topic: str, key: bytes, value: bytes, name: bytes, header: bytes
) -> None:
    """Write one record whose header name is any bytes (not UTF-8, say), as a C producer may:
    confluent_kafka only takes str names, so this goes through librdkafka's own produceva."""
    with _raw_producer(bootstrap) as send:
        send(topic, key, value, name, header)


@contextmanager
def raw_header_left_open(
    bootstrap: str, topic: str, name: bytes, header: bytes, *, transactional_id: str
) -> Iterator[None]:
    """As produce_raw_header, in a transaction left open until the block ends (then aborted)."""
    with _raw_producer(bootstrap, transactional_id=transactional_id) as send:
        send(topic, b"k", b"left open", name, header)
        yield


@contextmanager
def _raw_producer(bootstrap: str, *, transactional_id: str | None = None) -> Iterator[Any]:
    """``send(topic, key, value, header_name, header_value)`` through librdkafka's C API, each
    record flushed; with a transactional id, all in one transaction aborted at the end."""
    import ctypes

    from kafkaops.demo.cluster import _library_path

    lib = ctypes.CDLL(_library_path())

    class Header(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]

    class Mem(ctypes.Structure):
        _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]

    class U(ctypes.Union):
        _fields_ = [("cstr", ctypes.c_char_p), ("mem", Mem), ("header", Header), ("pad", ctypes.c_char * 64)]

    class Vu(ctypes.Structure):  # rd_kafka_vu_t
        _fields_ = [("vtype", ctypes.c_int), ("u", U)]

    topic_vt, value_vt, key_vt, header_vt = 1, 4, 5, 9  # rd_kafka_vtype_t
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_produceva.restype = ctypes.c_void_p
    lib.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(Vu), ctypes.c_size_t]
    lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    for call in ("rd_kafka_init_transactions", "rd_kafka_abort_transaction"):
        getattr(lib, call).restype = ctypes.c_void_p  # an rd_kafka_error_t *, NULL when it worked
        getattr(lib, call).argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_begin_transaction.restype = ctypes.c_void_p
    lib.rd_kafka_begin_transaction.argtypes = [ctypes.c_void_p]
    conf = lib.rd_kafka_conf_new()
    errstr = ctypes.create_string_buffer(512)
    settings = {
        "bootstrap.servers": bootstrap,
        **({"transactional.id": transactional_id} if transactional_id else {}),
    }
    for key_, value_ in settings.items():
        assert lib.rd_kafka_conf_set(conf, key_.encode(), value_.encode(), errstr, 512) == 0, errstr.value
    producer = lib.rd_kafka_new(0, conf, errstr, 512)
    assert producer, errstr.value
    keep: list[Any] = []

    def send(topic: str, key: bytes, value: bytes, name: bytes, header: bytes) -> None:
        buffers = [ctypes.create_string_buffer(b, len(b)) for b in (key, value, header)]
        keep.extend(buffers)
        vus = (Vu * 4)()
        vus[0].vtype, vus[0].u.cstr = topic_vt, topic.encode()
        vus[1].vtype, vus[1].u.mem = key_vt, Mem(ctypes.cast(buffers[0], ctypes.c_void_p), len(key))
        vus[2].vtype, vus[2].u.mem = value_vt, Mem(ctypes.cast(buffers[1], ctypes.c_void_p), len(value))
        vus[3].vtype, vus[3].u.header = (
            header_vt,
            Header(name, ctypes.cast(buffers[2], ctypes.c_void_p), len(header)),
        )
        assert not lib.rd_kafka_produceva(producer, vus, 4), "produceva failed"
        assert lib.rd_kafka_flush(producer, 30_000) == 0

    try:
        if transactional_id:
            assert not lib.rd_kafka_init_transactions(producer, 30_000), "init_transactions failed"
            assert not lib.rd_kafka_begin_transaction(producer), "begin_transaction failed"
        yield send
        if transactional_id:
            assert not lib.rd_kafka_abort_transaction(producer, 30_000), "abort_transaction failed"
    finally:
        lib.rd_kafka_destroy(producer)


def dlq_pair(bootstrap: str, new_topic: NewTopicFactory, partitions: int = 1) -> tuple[str, str]:
    """A source topic and its `.dlq` topic, both created."""
    source = new_topic(partitions, name_prefix="src")
    return source, create_topic(bootstrap, source + ".dlq", partitions)


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> str:
    from confluent_kafka.admin import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=-1)])[name].result(
        timeout=30
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return name
        time.sleep(0.05)
    raise AssertionError(f"topic {name} never got leaders")
