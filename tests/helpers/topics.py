"""Reading what actually arrived on a topic, for assertions on bytes, keys and headers."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def consume(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 20.0, idle: float = 1.5
) -> list[Record]:
    """Every record of `topic` from the beginning: until `expect` arrived (then `idle` more
    seconds, to catch duplicates), or until nothing new came for `idle` seconds."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    # assign, not subscribe: no consumer group to join (the embedded cluster is slow at that)
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        consumer.close()
        return []
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            now = time.monotonic()
            if msg is None:
                enough = expect is None or len(records) >= expect
                if enough and now - last_new > idle:
                    break
                continue
            if msg.error():
                if msg.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            records.append(
                Record(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    msg.value(),
                    list(msg.headers() or []),
                )
            )
            last_new = now
    finally:
        consumer.close()
    return records
