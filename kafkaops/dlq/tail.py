"""`dlq tail`: records of a DLQ topic, read-only, newest per partition or from a start point,
optionally followed (the JSON shape of a record is dlq/model.py's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafkaops.common.errors import KafkaUnavailableError, NotFoundError, UsageError
from kafkaops.dlq.reading import is_eof, is_record, last_records, raise_definite
from kafkaops.dlq.selection import Selection, record_timestamp_ms
from kafkaops.kafka.errors import kafka_errors
from kafkaops.kafka.metadata import watermarks

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

# Records asked of the client per call: large batches, few calls (a read to the end of a
# topic spends most of its time per record, not per call).
_BATCH = 2000


@dataclass(frozen=True)
class TailRequest:
    topic: str
    last: int | None  # per partition; None: everything from the start point
    from_beginning: bool = False
    since_ms: int | None = None
    follow: bool = False
    selection: Selection = field(default_factory=Selection)


def tail(
    consumer: Consumer,
    request: TailRequest,
    *,
    stop: Callable[[], bool] = lambda: False,
    timeout: float = 30.0,
) -> Iterator[Message]:
    """Records of a DLQ topic, read-only (partitions assigned, nothing committed).

    Without a start point, the last `last` matching records of each partition merged by time;
    with one, every matching record from there (at most `last` per partition) in the order
    read. With `follow`, new records are yielded as they arrive until `stop()` says so.
    """
    from confluent_kafka import TopicPartition

    try:
        marks = watermarks(consumer, request.topic, timeout, operation="Read")
    except NotFoundError as exc:
        raise UsageError(exc.message, hint="see `kafkaops dlq list` for the DLQ topics") from None
    marks = request.selection.chosen_partitions(request.topic, marks)
    if request.last is not None and not request.from_beginning and request.since_ms is None:
        ranges = {(request.topic, p): mark for p, mark in marks.items()}
        found = last_records(consumer, ranges, request.last, timeout, request.selection.matches)
        merged = [m for q in found.values() for m in q]
        merged.sort(key=lambda m: (record_timestamp_ms(m) or 0, m.partition(), m.offset()))
        yield from merged
        if request.follow:
            consumer.assign([TopicPartition(request.topic, p, high) for p, (_, high) in marks.items()])
            yield from _follow(consumer, request, stop)
        return
    starts = _start_offsets(consumer, request, marks, timeout)
    counts = dict.fromkeys(marks, 0)
    consumer.assign([TopicPartition(request.topic, p, off) for p, off in starts.items()])
    waiting = {p for p, off in starts.items() if off < marks[p][1]}
    late: list[Message] = []
    # The loop runs once per record of a whole topic (`dlq stats`): what it asks of each
    # record is bound once here. The chosen partitions are the assigned ones, so a selection
    # that passes over no record of them is not asked at all.
    matches = request.selection.matches if request.selection.filters_records else None
    last = request.last
    ends = {p: high - 1 for p, (_, high) in marks.items()}
    deadline = time.monotonic() + timeout
    while waiting and not stop():
        batch = consumer.consume(_BATCH, timeout=0.2)
        raise_definite(consumer)
        if batch:
            deadline = time.monotonic() + timeout
        elif time.monotonic() > deadline:
            raise KafkaUnavailableError(f"Kafka delivered nothing from {request.topic!r} for {timeout:g}s")
        for msg in batch:
            if msg.error() is not None:
                if is_eof(msg):
                    waiting.discard(msg.partition())
                if not is_record(msg, consumer):
                    continue
            partition = msg.partition() or 0
            if partition not in waiting:
                if request.follow and request.selection.matches(msg):
                    late.append(msg)  # arrived after the start: --follow shows it next
                continue
            if (msg.offset() or 0) >= ends[partition]:
                waiting.discard(partition)
            if matches is not None and not matches(msg):
                continue
            if last is not None:
                if counts[partition] >= last:
                    continue
                counts[partition] += 1
            yield msg
    if request.follow:
        yield from late
        yield from _follow(consumer, request, stop)


def _follow(consumer: Consumer, request: TailRequest, stop: Callable[[], bool]) -> Iterator[Message]:
    """New matching records from the consumer's positions, until `stop()` says so."""
    while not stop():
        batch = consumer.consume(500, timeout=0.5)
        raise_definite(consumer)
        for msg in batch:
            if not is_record(msg, consumer):
                continue
            if request.selection.matches(msg):
                yield msg


def _start_offsets(
    consumer: Consumer, request: TailRequest, marks: Mapping[int, tuple[int, int]], timeout: float
) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    if request.since_ms is not None:
        asked = [TopicPartition(request.topic, p, request.since_ms) for p in marks]
        with kafka_errors(consumer, f"find offsets by time in {request.topic!r}"):
            found = consumer.offsets_for_times(asked, timeout=timeout)
        # -1: no record at or after that time: start at the end.
        return {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1] for tp in found}
    return {p: low for p, (low, _) in marks.items()}
