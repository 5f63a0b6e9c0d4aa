"""Reading DLQ topics without a consumer group: the read-only consumer (partitions assigned,
nothing committed) and reads of offset ranges, up to the end or the last N records of each
partition. `dlq list` and `dlq tail` read through here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaUnavailableError
from kafkaops.kafka import client as kafka
from kafkaops.kafka.errors import translate_error

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

# Offsets read beyond N to find a partition's last N records at the first try: the last
# offsets may be transaction markers, which hold no record.
_NEWEST_WINDOW = 16


# A consumer that only looks: committed records only, never commits (kafka.consumer's
# default), and says when it reached the end of a partition.
READ_ONLY: dict[str, Any] = {
    "isolation.level": "read_committed",
    "enable.partition.eof": True,
    "enable.auto.offset.store": False,
}


def read_consumer(props: Mapping[str, Any], **overrides: Any) -> Consumer:
    """A read-only consumer (READ_ONLY) on a throwaway group it never joins."""
    return kafka.consumer(props, **{**READ_ONLY, **overrides})


def read_to_end(consumer: Consumer, start: list[Any], timeout: float, *, first_only: bool) -> list[Message]:
    """Records from `start` up to the end of each partition (or the first one of each)."""
    if not start:
        return []
    consumer.assign(start)
    waiting = {(tp.topic, tp.partition) for tp in start}
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while waiting:
            if time.monotonic() > deadline:
                raise KafkaUnavailableError(
                    f"Kafka did not deliver the records asked for within {timeout:g}s"
                )
            for msg in consumer.consume(500, timeout=0.2):
                where = (msg.topic(), msg.partition())
                if is_eof(msg):
                    waiting.discard(where)
                    continue
                raise_for(msg, consumer)
                if where not in waiting:
                    continue
                found.append(msg)
                if first_only:
                    waiting.discard(where)
    finally:
        consumer.unassign()
    return found


def last_records(
    consumer: Consumer,
    ranges: Mapping[tuple[str, int], tuple[int, int]],
    n: int,
    timeout: float,
    keep: Callable[[Message], bool] = lambda msg: True,
) -> dict[tuple[str, int], deque[Message]]:
    """The last `n` records that `keep` accepts of each (topic, partition) in [low, high).

    A window before `high` is read first, and widened where it came up short until it
    reaches `low`: transaction markers, aborted transactions and compaction leave offsets
    that hold no record, so no fixed window is sure to hold N records."""
    found: dict[tuple[str, int], deque[Message]] = {}
    span = dict.fromkeys(ranges, 2 * n + _NEWEST_WINDOW)
    todo = [where for where, (low, high) in ranges.items() if high > low]
    while todo:
        starts = {where: max(ranges[where][0], ranges[where][1] - span[where]) for where in todo}
        found.update(_read_ranges(consumer, {w: (starts[w], ranges[w][1]) for w in todo}, n, timeout, keep))
        todo = [w for w in todo if len(found[w]) < n and starts[w] > ranges[w][0]]
        for where in todo:
            span[where] *= 4
    return found


def _read_ranges(
    consumer: Consumer,
    ranges: Mapping[tuple[str, int], tuple[int, int]],
    n: int,
    timeout: float,
    keep: Callable[[Message], bool],
) -> dict[tuple[str, int], deque[Message]]:
    """The last `n` records `keep` accepts of each partition's offsets [start, end)."""
    from confluent_kafka import TopicPartition

    kept: dict[tuple[str, int], deque[Message]] = {
        where: deque(maxlen=min(n, end - start)) for where, (start, end) in ranges.items()
    }
    waiting = set(ranges)
    consumer.assign([TopicPartition(t, p, ranges[t, p][0]) for t, p in ranges])
    deadline = time.monotonic() + timeout
    try:
        while waiting:
            batch = consumer.consume(500, timeout=0.2)
            if batch:
                deadline = time.monotonic() + timeout
            elif time.monotonic() > deadline:
                raise KafkaUnavailableError(f"Kafka delivered nothing for {timeout:g}s")
            for msg in batch:
                where = (msg.topic() or "", msg.partition() or 0)
                if is_eof(msg):
                    waiting.discard(where)
                    continue
                raise_for(msg, consumer)
                if where not in waiting:
                    continue
                offset, end = msg.offset() or 0, ranges[where][1]
                if offset >= end - 1:
                    waiting.discard(where)
                if offset < end and keep(msg):  # later ones were written after the start
                    kept[where].append(msg)
    finally:
        consumer.unassign()
    return kept


def is_eof(msg: Message) -> bool:
    from confluent_kafka import KafkaError

    error = msg.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF


def raise_for(msg: Message, consumer: Consumer) -> None:
    error = msg.error()
    if error is not None:
        raise translate_error(error, consumer, action=f"read {msg.topic()!r}")
