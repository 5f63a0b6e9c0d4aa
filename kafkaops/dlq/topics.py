"""Dead-letter topics: find and describe them (`dlq list`), create the missing ones
(`dlq ensure`) and read their records (`dlq tail`).

Reading never joins or commits a consumer group: partitions are assigned directly. Replay,
which does commit, lives in `kafkaops.dlq.replay`.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaUnavailableError, NotFoundError, UsageError
from kafkaops.common.jsontext import parse_json
from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
from kafkaops.dlq import record as dlq_record
from kafkaops.dlq.catalogue import read_dlq_topics, topics_needing_dlq
from kafkaops.dlq.selection import Selection, record_timestamp_ms
from kafkaops.kafka import client as kafka
from kafkaops.kafka.dlq_names import DlqCatalog, DlqTopic, existing_topics
from kafkaops.kafka.errors import kafka_errors, translate_error
from kafkaops.kafka.metadata import check_reachable, create_topics, topic_metadata, topic_names, watermarks
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message
    from confluent_kafka.admin import AdminClient

    from kafkaops.db.connections import Connections

REPLAY_GROUP_PREFIX = "kafkaops-replay."
# Offsets read beyond N to find a partition's last N records at the first try: the last
# offsets may be transaction markers, which hold no record.
_NEWEST_WINDOW = 16


def replay_group_for(topic: str) -> str:
    """The consumer group `dlq replay` commits its progress under, unless told otherwise."""
    return f"{REPLAY_GROUP_PREFIX}{topic}"


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


# ---------------------------------------------------------------------------------------
# One record as the user sees it


def record_view(msg: Message, suffixes: Sequence[str]) -> dict[str, Any]:
    """The JSON shape of one DLQ record (`dlq tail -o json`)."""
    headers = dlq_record.readable_headers(msg)
    origin = dlq_record.parse_origin(headers, msg.topic() or "", suffixes)
    view: dict[str, Any] = {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": isoformat_utc(from_epoch_ms(record_timestamp_ms(msg))),
    }
    view.update(_bytes_field("key", msg.key()))
    # None: the client could not read them (a header name that is not UTF-8).
    view["headers"] = (
        None if headers is None else [{"key": k, **_bytes_field("value", v)} for k, v in headers]
    )
    view["original"] = {
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "timestamp": origin.timestamp,
    }
    view["error"] = {
        "message": origin.error_message,
        "class": origin.error_class,
        "wrapper": origin.error_wrapper,
    }
    view.update(_value_field(msg.value()))
    return view


def _bytes_field(name: str, value: bytes | str | None) -> dict[str, Any]:
    if value is None:
        return {name: None}
    raw = value.encode() if isinstance(value, str) else value
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(raw).decode("ascii")}


def _value_field(value: bytes | None) -> dict[str, Any]:
    if value is None:
        return {"value": None}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode("ascii")}
    parsed, is_json = parse_json(text)
    return {"value": parsed if is_json else text}


# ---------------------------------------------------------------------------------------
# dlq list


@dataclass
class DlqListing:
    """One row of `dlq list`: a DLQ topic of the catalogue, with what its records say."""

    topic: str
    messages: int
    original_topic: str | None
    original_exists: bool
    oldest: datetime | None
    newest: datetime | None
    replay_pending: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_dlq_topics(props: Mapping[str, Any], catalog: DlqCatalog, timeout: float = 10.0) -> list[DlqListing]:
    """Every DLQ topic of the catalogue, with its size, origin, age and what replay has left.

    A constant number of round trips, however many DLQ topics there are: one metadata
    request, the catalogue's two offset requests, one read of every partition's first record
    and one of its last ones."""
    from confluent_kafka import TopicPartition

    client = kafka.admin(props)
    with kafka_errors(client, "list topics"):
        metadata = client.list_topics(timeout=timeout)
    existing = existing_topics(metadata)
    with kafka_errors(client, "read the offsets of the DLQ topics"):
        found = read_dlq_topics(client, catalog.layout(metadata), catalog, timeout)
    marks = {name: dict(t.offsets or {}) for name, t in found.items()}
    filled = [(t, p, lh) for t, m in marks.items() for p, lh in m.items() if lh[1] > lh[0]]
    consumer = read_consumer(props)
    try:
        firsts = _read_to_end(
            consumer, [TopicPartition(t, p, lh[0]) for t, p, lh in filled], timeout, first_only=True
        )
        lasts = _last_records(consumer, {(t, p): lh for t, p, lh in filled}, 1, timeout)
    finally:
        consumer.close()
    group_offsets = _replay_group_offsets(client, {t: list(m) for t, m in marks.items()}, timeout)
    result = []
    for topic, dlq in found.items():
        stamps_first = [s for m in firsts if m.topic() == topic and (s := record_timestamp_ms(m)) is not None]
        mine = [m for (t, _), got in lasts.items() if t == topic for m in got]
        newest_msg = max(mine, key=lambda m: record_timestamp_ms(m) or -1, default=None)
        original = dlq.source
        if newest_msg is not None:
            headers = dlq_record.readable_headers(newest_msg)
            original = dlq_record.parse_origin(headers, topic, catalog.suffixes).topic or original
        result.append(
            DlqListing(
                topic=topic,
                messages=dlq.messages or 0,
                original_topic=original,
                original_exists=original in existing,
                oldest=from_epoch_ms(min(stamps_first, default=None)),
                newest=from_epoch_ms(
                    max((s for m in mine if (s := record_timestamp_ms(m)) is not None), default=None)
                ),
                replay_pending=pending_offsets(marks[topic], group_offsets[topic]),
            )
        )
    return result


def _replay_group_offsets(
    client: AdminClient, layout: Mapping[str, list[int]], timeout: float
) -> dict[str, dict[int, int | None]]:
    """What each topic's replay group committed on it, through one admin client: every
    request is sent before any answer is awaited (one round trip, not one per topic)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    futures = {}
    for topic, partitions in layout.items():
        group = replay_group_for(topic)
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
        with kafka_errors(client, f"read the offsets of group {group!r}"):
            futures[topic] = client.list_consumer_group_offsets([request], request_timeout=timeout)[group]
    result = {}
    for topic, future in futures.items():
        with kafka_errors(client, f"read the offsets of group {replay_group_for(topic)!r}"):
            found = future.result(timeout)
        result[topic] = {
            tp.partition: tp.offset if tp.offset >= 0 else None for tp in found.topic_partitions or ()
        }
    return result


def pending_offsets(marks: Mapping[int, tuple[int, int]], committed: Mapping[int, int | None]) -> int:
    """Offsets between the group's position and the end of each partition (transaction
    markers included: an estimate of the records left, never an undercount of zero)."""
    total = 0
    for partition, (low, high) in marks.items():
        start = max(low, committed.get(partition) or low)
        total += max(0, high - start)
    return total


def _read_to_end(consumer: Consumer, start: list[Any], timeout: float, *, first_only: bool) -> list[Message]:
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
                if _is_eof(msg):
                    waiting.discard(where)
                    continue
                _raise_for(msg, consumer)
                if where not in waiting:
                    continue
                found.append(msg)
                if first_only:
                    waiting.discard(where)
    finally:
        consumer.unassign()
    return found


def _last_records(
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
                if _is_eof(msg):
                    waiting.discard(where)
                    continue
                _raise_for(msg, consumer)
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


def _is_eof(msg: Message) -> bool:
    from confluent_kafka import KafkaError

    error = msg.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF


def _raise_for(msg: Message, consumer: Consumer) -> None:
    error = msg.error()
    if error is not None:
        raise translate_error(error, consumer, action=f"read {msg.topic()!r}")


# ---------------------------------------------------------------------------------------
# dlq ensure


@dataclass(frozen=True)
class EnsurePlan:
    source: str
    dlq: str
    partitions: int | None
    replication_factor: int | None
    action: str  # create | exists | no-source | is-dlq | bad-name


def topics_without_dlq(conns: Connections, props: Mapping[str, Any], catalog: DlqCatalog) -> list[DlqTopic]:
    """The DLQ topics missing for the topics whose rows need one (`dlq list` warns of them)."""
    with conns.connect() as conn:
        sources = topics_needing_dlq(conn, conns.table)
    return catalog.missing(sources, set(topic_names(props)))


def plan_ensure(
    props: Mapping[str, Any],
    sources: Sequence[str],
    catalog: DlqCatalog,
    *,
    strict: bool,
    timeout: float = 10.0,
) -> list[EnsurePlan]:
    """What `ensure` would do for each source topic. `strict`: a source the user named that
    does not exist, or is itself a DLQ, is a usage error (exit 2); one taken from the table is
    only reported."""
    info = check_reachable(props, timeout)
    existing = set(topic_names(props, timeout))
    plans = []
    for source in dict.fromkeys(sources):
        dlq = catalog.dlq_for(source)
        if not is_valid_topic_name(dlq):
            if strict:
                raise UsageError(
                    f"topic {source!r} can have no DLQ topic: {dlq!r} is not a valid Kafka topic name "
                    f"({len(dlq)} characters)",
                    hint=TOPIC_NAME_RULE,
                )
            plans.append(EnsurePlan(source, dlq, None, None, "bad-name"))
            continue
        if catalog.is_dlq(source):
            if strict:
                raise UsageError(
                    f"topic {source!r} is itself a dead-letter topic: it gets no DLQ of its own",
                    hint=f"name its source topic ({catalog.source_of(source)})",
                )
            plans.append(EnsurePlan(source, dlq, None, None, "is-dlq"))
            continue
        if dlq in existing:
            plans.append(EnsurePlan(source, dlq, None, None, "exists"))
            continue
        if source not in existing:
            if strict:
                raise UsageError(
                    f"topic {source!r} does not exist on Kafka at {info.bootstrap_servers}",
                    hint="name an existing topic: its DLQ copies its partition count",
                )
            plans.append(EnsurePlan(source, dlq, None, None, "no-source"))
            continue
        layout = topic_metadata(props, source, timeout)
        replicas = max((len(p.replicas) for p in layout.partitions), default=1)
        factor = max(1, min(replicas, info.broker_count or 1))
        plans.append(EnsurePlan(source, dlq, layout.partition_count, factor, "create"))
    return plans


def create_missing(props: Mapping[str, Any], plans: Sequence[EnsurePlan], timeout: float = 30.0) -> list[str]:
    todo = {p.dlq: (p.partitions or 1, p.replication_factor or 1) for p in plans if p.action == "create"}
    create_topics(props, todo, timeout)
    return list(todo)


# ---------------------------------------------------------------------------------------
# dlq tail


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
        marks = watermarks(consumer, request.topic, timeout)
    except NotFoundError as exc:
        raise UsageError(exc.message, hint="see `kafkaops dlq list` for the DLQ topics") from None
    marks = request.selection.chosen_partitions(request.topic, marks)
    if request.last is not None and not request.from_beginning and request.since_ms is None:
        ranges = {(request.topic, p): mark for p, mark in marks.items()}
        found = _last_records(consumer, ranges, request.last, timeout, request.selection.matches)
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
    deadline = time.monotonic() + timeout
    while waiting and not stop():
        batch = consumer.consume(500, timeout=0.2)
        if batch:
            deadline = time.monotonic() + timeout
        elif time.monotonic() > deadline:
            raise KafkaUnavailableError(f"Kafka delivered nothing from {request.topic!r} for {timeout:g}s")
        for msg in batch:
            if _is_eof(msg):
                waiting.discard(msg.partition())
                continue
            _raise_for(msg, consumer)
            partition = msg.partition() or 0
            if partition not in waiting:
                if request.follow and request.selection.matches(msg):
                    late.append(msg)  # arrived after the start: --follow shows it next
                continue
            if (msg.offset() or 0) >= marks[partition][1] - 1:
                waiting.discard(partition)
            if request.selection.matches(msg) and (request.last is None or counts[partition] < request.last):
                counts[partition] += 1
                yield msg
    if request.follow:
        yield from late
        yield from _follow(consumer, request, stop)


def _follow(consumer: Consumer, request: TailRequest, stop: Callable[[], bool]) -> Iterator[Message]:
    """New matching records from the consumer's positions, until `stop()` says so."""
    while not stop():
        for msg in consumer.consume(500, timeout=0.5):
            if _is_eof(msg):
                continue
            _raise_for(msg, consumer)
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
