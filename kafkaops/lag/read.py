"""Reading consumer groups from the cluster, batched: one ListGroups, one OffsetFetch per group
(all in flight at once), one DescribeGroups for every group, one metadata request, one
ListOffsets for every partition, and one consumer reading the record at each committed offset
(assigned, never joining a group, one forward pass per partition) for the lag in time. Nothing
is asked per partition.

Every answer that fails for one group or partition becomes that one's `problem`, a line the
verdict carries; only a cluster that cannot be asked at all raises.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from kafkaops.common.timeparse import format_duration, from_epoch_ms
from kafkaops.kafka.client import consumer
from kafkaops.kafka.errors import kafka_errors, translate_error
from kafkaops.kafka.group_offsets import groups_committed_offsets
from kafkaops.lag.model import WARNING, GroupLag, Member, PartitionLag

_GLOB = set("*?[")
# The time-lag read: small fetches, one record wanted per partition.
_READER: dict[str, Any] = {
    "enable.partition.eof": True,
    # librdkafka waits this long (1 s by default) before fetching again once the queue holds
    # queued.min.messages; with one record wanted per partition, every round would wait it out.
    "fetch.queue.backoff.ms": 0,
    "fetch.wait.max.ms": 50,
    "max.partition.fetch.bytes": 16384,
    "queued.min.messages": 1,
    "queued.max.messages.kbytes": 1024,
}


# Records to read through rather than seek over, to the next offset wanted on a partition.
_SEEK_GAP = 200


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def list_groups(client: Any, deadline: float) -> list[str]:
    with kafka_errors(client, "list consumer groups", {"cluster": (None, "Describe")}):
        listed = client.list_consumer_groups(request_timeout=_left(deadline)).result(timeout=_left(deadline))
    return sorted(g.group_id for g in listed.valid)


def select_groups(patterns: Sequence[str], known: Collection[str]) -> tuple[list[str], list[str]]:
    """The groups `patterns` name (globs, or exact names kept even when not listed, so a
    group that does not exist is said to), and the globs that matched nothing."""
    chosen: dict[str, None] = {}
    unmatched: list[str] = []
    for pattern in patterns:
        if not _GLOB & set(pattern):
            chosen[pattern] = None
            continue
        hits = [g for g in known if fnmatch.fnmatchcase(g, pattern)]
        if not hits:
            unmatched.append(pattern)
        chosen.update(dict.fromkeys(sorted(hits)))
    return list(chosen), unmatched


def read_committed(
    client: Any, props: Mapping[str, Any], groups: Sequence[str], deadline: float
) -> dict[str, GroupLag]:
    """Every group's committed offsets: one OffsetFetch per group, all in flight at once."""
    answers = groups_committed_offsets(props, dict.fromkeys(groups), _left(deadline))
    result: dict[str, GroupLag] = {}
    for group in groups:
        answer = answers[group]
        found = result[group] = GroupLag(group)
        if answer.error is not None:
            access = {"group": (group, "Describe"), "topic": (None, "Describe")}
            found.problem = translate_error(
                answer.error, client, action=f"read group {group!r} offsets", access=access
            ).message
            continue
        if answer.timed_out:
            found.problem = "its committed offsets did not arrive in time"
            continue
        for topic, partition, offset in answer.offsets:
            if (topic, partition) in answer.partition_errors or offset < 0:
                continue  # no commit on this partition
            found.partitions.append(PartitionLag(topic, partition, offset))
        found.partitions.sort(key=lambda p: (p.topic, p.partition))
    return result


def describe(client: Any, groups: Mapping[str, GroupLag], deadline: float) -> None:
    """State and members of every group, in one DescribeGroups call."""
    from confluent_kafka import KafkaException

    names = [g for g, found in groups.items() if found.problem is None]
    if not names:
        return
    with kafka_errors(client, "describe consumer groups"):
        futures = client.describe_consumer_groups(names, request_timeout=_left(deadline))
    for group, future in futures.items():
        found = groups[group]
        try:
            description = future.result(timeout=_left(deadline))
        except KafkaException as exc:
            access = {"group": (group, "Describe")}
            found.problem = translate_error(
                exc, client, action=f"describe group {group!r}", access=access
            ).message
            continue
        except TimeoutError:
            found.problem = "its description did not arrive in time"
            continue
        found.state = getattr(description.state, "name", str(description.state))
        for m in description.members or ():
            assigned = m.assignment.topic_partitions if m.assignment is not None else []
            found.members.append(
                Member(
                    m.member_id,
                    m.client_id,
                    m.host.lstrip("/"),
                    tuple(sorted((tp.topic, tp.partition) for tp in assigned)),
                )
            )
        found.members.sort(key=lambda m: (m.host, m.client_id, m.member_id))


def read_ends(client: Any, groups: Mapping[str, GroupLag], deadline: float) -> None:
    """End offsets (high watermarks) of every partition the groups committed on: one metadata
    request, then one ListOffsets for all of them. A deleted topic or a partition without a
    leader is that partition's problem, never asked about."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    with kafka_errors(client, "read the cluster's metadata"):
        metadata = client.list_topics(timeout=_left(deadline))
    wanted: dict[tuple[str, int], list[PartitionLag]] = {}
    for g in groups.values():
        for p in g.partitions:
            topic = metadata.topics.get(p.topic)
            part = topic.partitions.get(p.partition) if topic is not None and topic.error is None else None
            if part is None:
                p.problem, p.problem_verdict = (
                    f"topic {p.topic} has no partition {p.partition} (deleted?): the offset committed "
                    "there is left over",
                    WARNING,
                )
            elif part.leader < 0:
                p.problem = "partition has no leader: its end offset cannot be read"
            else:
                wanted.setdefault((p.topic, p.partition), []).append(p)
    if not wanted:
        return
    with kafka_errors(client, "read end offsets"):
        futures = client.list_offsets(
            {TopicPartition(t, n): OffsetSpec.latest() for t, n in wanted}, request_timeout=_left(deadline)
        )
    for tp, future in futures.items():
        try:
            end: int | None = int(future.result(timeout=_left(deadline)).offset)
            problem = None
        except KafkaException as exc:
            end, problem = None, translate_error(exc, client, action="read the end offset").message
        except TimeoutError:
            end, problem = None, "its end offset did not arrive in time"
        for p in wanted[(tp.topic, tp.partition)]:
            p.end, p.problem = end, problem


def read_oldest(
    props: Mapping[str, Any], groups: Mapping[str, GroupLag], now: datetime, deadline: float
) -> int:
    """The timestamp of the record at each committed offset with records waiting, read with one
    consumer assigned to all of them at once. Several groups at different offsets of one
    partition are served by one pass reading forward, seeking over gaps wider than a fetch.
    Returns how many were not read in time."""
    todo: dict[tuple[str, int], set[int]] = {}
    for g in groups.values():
        for p in g.partitions:
            if p.problem is None and p.end is not None and p.committed < p.end:
                todo.setdefault((p.topic, p.partition), set()).add(p.committed)
            elif p.problem is None and p.end is not None:
                p.time_lag_s = 0.0 if not p.beyond_end else None
    stamps: dict[tuple[str, int, int], int | None] = {}
    if todo:
        reader = consumer(props, **_READER)
        try:
            stamps = _read_forward(reader, {tp: sorted(o) for tp, o in todo.items()}, deadline)
        finally:
            reader.close()
    missed = 0
    for g in groups.values():
        for p in g.partitions:
            key = (p.topic, p.partition, p.committed)
            if p.problem is not None or p.end is None or p.committed >= p.end:
                continue
            if key not in stamps:
                missed += 1
                continue
            _set_time_lag(p, stamps[key], now)
    return missed


def _read_forward(
    reader: Any, wanted: dict[tuple[str, int], list[int]], deadline: float
) -> dict[tuple[str, int, int], int | None]:
    """{(topic, partition, offset): timestamp ms of the first record at or after offset; -1
    for a record without one, None when nothing readable waits (only transaction markers or
    aborted records)}. `wanted`: each partition's offsets, ascending; consumed as found."""
    from confluent_kafka import KafkaError, TopicPartition

    found: dict[tuple[str, int, int], int | None] = {}
    sought: dict[tuple[str, int], int] = {}
    reader.assign([TopicPartition(t, n, offsets[0]) for (t, n), offsets in wanted.items()])
    try:
        while wanted and time.monotonic() < deadline:
            for msg in reader.consume(num_messages=1000, timeout=min(0.2, _left(deadline))):
                tp = (msg.topic(), msg.partition())
                offsets = wanted.get(tp)
                if not offsets:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        for offset in offsets:
                            found[(*tp, offset)] = None  # nothing readable waits
                        offsets.clear()
                    else:
                        continue
                else:
                    stamp = _stamp(msg)
                    while offsets and offsets[0] <= msg.offset():
                        found[(*tp, offsets.pop(0))] = stamp
                    if offsets and offsets[0] - msg.offset() > _SEEK_GAP and sought.get(tp) != offsets[0]:
                        sought[tp] = offsets[0]
                        reader.seek(TopicPartition(*tp, offsets[0]))
                if not offsets:
                    del wanted[tp]
                    reader.incremental_unassign([TopicPartition(*tp)])
    finally:
        reader.unassign()
    return found


def _stamp(msg: Any) -> int:
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    kind, ms = msg.timestamp()
    return -1 if kind == TIMESTAMP_NOT_AVAILABLE or ms < 0 else int(ms)


def _set_time_lag(p: PartitionLag, ms: int | None, now: datetime) -> None:
    if ms is None:
        return  # nothing readable waits (transaction markers): unknown
    if ms < 0:
        p.note = "the oldest waiting record has no timestamp (-1): its lag in time is unknown"
        return
    p.oldest_timestamp = from_epoch_ms(ms)
    assert p.oldest_timestamp is not None
    waited = (now - p.oldest_timestamp).total_seconds()
    if waited < 0:
        p.time_lag_s = 0.0
        p.note = (
            f"the oldest waiting record is dated {format_duration(timedelta(seconds=-waited))} in the "
            "future (its producer's clock or CreateTime): its lag in time is taken as 0"
        )
    else:
        p.time_lag_s = waited
