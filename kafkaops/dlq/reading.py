"""Reading DLQ topics without a consumer group: the read-only consumer (partitions assigned
with explicit offsets, nothing committed) and reads of offset ranges, up to the end or the last
N records of each partition. `dlq list` and `dlq tail` read through here.

confluent-kafka will not build a consumer without a `group.id`, so the read-only consumer has a
throwaway one it never uses: it fetches from the partition leaders and never needs the group
coordinator. What the coordinator answers about that group (GROUP_AUTHORIZATION_FAILED where
the principal has no ACL on it) is therefore no error of the read: reading a DLQ topic needs
Read on the topic and no Group ACL.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaUnavailableError
from kafkaops.kafka import client as kafka
from kafkaops.kafka import faults
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
    # A read to the end of a topic (`dlq stats`, `dlq tail --from-beginning`) is bound by
    # fetch round trips, not by decoding: librdkafka waits fetch.queue.backoff.ms (1 s by
    # default) before fetching again once its queue is full, and a partition at its end holds
    # a fetch for fetch.wait.max.ms (500 ms by default). Measured on 1,000,000 records: 7.7 s
    # with the defaults, 2.4 s with these. Idle (`--follow`), a fetch per broker every 50 ms.
    "fetch.queue.backoff.ms": 0,
    "fetch.wait.max.ms": 50,
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
            batch = consumer.consume(500, timeout=0.2)
            raise_definite(consumer)
            for msg in batch:
                where = (msg.topic(), msg.partition())
                if is_eof(msg):
                    waiting.discard(where)
                    continue
                if not is_record(msg, consumer) or where not in waiting:
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
            raise_definite(consumer)
            if batch:
                deadline = time.monotonic() + timeout
            elif time.monotonic() > deadline:
                raise KafkaUnavailableError(f"Kafka delivered nothing for {timeout:g}s")
            for msg in batch:
                where = (msg.topic() or "", msg.partition() or 0)
                if is_eof(msg):
                    waiting.discard(where)
                    continue
                if not is_record(msg, consumer) or where not in waiting:
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


def is_record(msg: Message, consumer: Consumer) -> bool:
    """True for a record. False for an end-of-partition event and for an error of the read-only
    consumer's throwaway group (none of the read's business): neither is a record, and a read
    that took one for a record would show, count or replay an error event. Any other error is
    raised, as is a definite failure librdkafka reported meanwhile (credentials, TLS)."""
    raise_definite(consumer)
    error = msg.error()
    if error is None:
        return True
    if is_eof(msg):
        return False
    topic = msg.topic()
    if topic is None and is_group_error(error.name()):
        return False  # the throwaway group's coordinator: never used (see the module's doc)
    what = repr(topic) if topic is not None else "the assigned partitions"
    raise translate_error(error, consumer, action=f"read {what}", access={"topic": (topic, "Read")})


def raise_definite(client: Any) -> None:
    """Raise what librdkafka reported through the error callback that kafkaops' own set-up
    is at fault for (rejected credentials, a failed TLS handshake): the read ends at once with
    its cause, not at its deadline with "timed out"."""
    definite = kafka.client_state(client).definite
    if definite is not None and faults.is_configuration_fault(definite.name()):
        raise translate_error(definite, client)


def is_group_error(code: str) -> bool:
    """An error about the consumer's group (its coordinator, its ACL) rather than a partition."""
    return code in ("GROUP_AUTHORIZATION_FAILED", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR") or (
        faults.classify(code).resource == "group"
    )
