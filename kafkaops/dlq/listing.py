"""`dlq list`: every DLQ topic of the catalogue with its size, origin, age and what replay has
left, in a constant number of round trips; and the consumer group replay commits under.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kafkaops.common.timeparse import from_epoch_ms
from kafkaops.dlq import record as dlq_record
from kafkaops.dlq.catalogue import read_dlq_topics
from kafkaops.dlq.reading import last_records, read_consumer, read_to_end
from kafkaops.dlq.selection import record_timestamp_ms
from kafkaops.kafka.dlq_names import DlqCatalog, existing_topics
from kafkaops.kafka.errors import kafka_errors, translate_error
from kafkaops.kafka.group_offsets import groups_committed_offsets
from kafkaops.kafka.metadata import DENIED, EXISTS, cluster_metadata, named_topics

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

REPLAY_GROUP_PREFIX = "kafkaops-replay."


def replay_group_for(topic: str) -> str:
    """The consumer group `dlq replay` commits its progress under, unless told otherwise."""
    return f"{REPLAY_GROUP_PREFIX}{topic}"


@dataclass
class DlqListing:
    """One row of `dlq list`: a DLQ topic of the catalogue, with what its records say."""

    topic: str
    messages: int
    original_topic: str | None
    original_exists: bool | None  # None: the principal may not describe it
    oldest: datetime | None
    newest: datetime | None
    replay_pending: int | None  # None: the principal may not describe the replay group

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_dlq_topics(props: Mapping[str, Any], catalog: DlqCatalog, timeout: float = 10.0) -> list[DlqListing]:
    """Every DLQ topic of the catalogue, with its size, origin, age and what replay has left.

    A constant number of round trips, however many DLQ topics there are: one metadata
    request, the catalogue's two offset requests, one read of every partition's first record
    and one of its last ones."""
    from confluent_kafka import TopicPartition

    # Rejected credentials or TLS end the command at once, with their cause.
    _info, metadata, client = cluster_metadata(props, timeout)
    existing = existing_topics(metadata)
    with kafka_errors(client, "read the offsets of the DLQ topics", {"topic": (None, "Describe")}):
        found = read_dlq_topics(client, catalog.layout(metadata), catalog, timeout)
    marks = {name: dict(t.offsets or {}) for name, t in found.items()}
    filled = [(t, p, lh) for t, m in marks.items() for p, lh in m.items() if lh[1] > lh[0]]
    consumer = read_consumer(props)
    try:
        firsts = read_to_end(
            consumer, [TopicPartition(t, p, lh[0]) for t, p, lh in filled], timeout, first_only=True
        )
        lasts = last_records(consumer, {(t, p): lh for t, p, lh in filled}, 1, timeout)
    finally:
        consumer.close()
    group_offsets = _replay_group_offsets(client, props, {t: list(m) for t, m in marks.items()}, timeout)
    originals: dict[str, str | None] = {}
    for topic, dlq in found.items():
        newest_msg = _newest(lasts, topic)
        original = dlq.source
        if newest_msg is not None:
            headers = dlq_record.readable_headers(newest_msg)
            original = dlq_record.parse_origin(headers, topic, catalog.suffixes).topic or original
        originals[topic] = original
    # An original the listing lacks may be one the principal may not describe: asked by name.
    unseen = sorted({o for o in originals.values() if o is not None and o not in existing})
    asked = named_topics(client, unseen, timeout) if unseen else {}
    result = []
    for topic, dlq in found.items():
        stamps_first = [s for m in firsts if m.topic() == topic and (s := record_timestamp_ms(m)) is not None]
        mine = [m for (t, _), got in lasts.items() if t == topic for m in got]
        origin = originals[topic]
        committed = group_offsets[topic]
        result.append(
            DlqListing(
                topic=topic,
                messages=dlq.messages or 0,
                original_topic=origin,
                original_exists=_exists(origin, existing, asked),
                oldest=from_epoch_ms(min(stamps_first, default=None)),
                newest=from_epoch_ms(
                    max((s for m in mine if (s := record_timestamp_ms(m)) is not None), default=None)
                ),
                replay_pending=pending_offsets(marks[topic], committed) if committed is not None else None,
            )
        )
    return result


def _newest(lasts: Mapping[tuple[str, int], Any], topic: str) -> Any:
    mine = [m for (t, _), got in lasts.items() if t == topic for m in got]
    return max(mine, key=lambda m: record_timestamp_ms(m) or -1, default=None)


def _exists(topic: str | None, existing: set[str], asked: Mapping[str, str]) -> bool | None:
    if topic is None:
        return False
    if topic in existing:
        return True
    return None if asked.get(topic) == DENIED else asked.get(topic) == EXISTS


def _replay_group_offsets(
    client: AdminClient, props: Mapping[str, Any], layout: Mapping[str, list[int]], timeout: float
) -> dict[str, dict[int, int | None] | None]:
    """What each topic's replay group committed on it, every group asked at once (one round
    trip, not one per topic; a coordinator loading or moving is asked again until `timeout`).
    None for a group the principal may not describe: `dlq list` needs no Group ACL."""
    from kafkaops.common.errors import KafkaUnavailableError

    asked = {replay_group_for(t): [(t, p) for p in parts] for t, parts in layout.items()}
    answers = groups_committed_offsets(props, asked, timeout)
    result: dict[str, dict[int, int | None] | None] = {}
    for topic in layout:
        group = replay_group_for(topic)
        answer = answers[group]
        if answer.timed_out:
            raise KafkaUnavailableError(f"the offsets of group {group!r} did not arrive within {timeout:g}s")
        if answer.error is not None:
            if answer.error.name() == "GROUP_AUTHORIZATION_FAILED":
                result[topic] = None
                continue
            access = {"group": (group, "Describe"), "topic": (topic, "Describe")}
            raise translate_error(
                answer.error,
                client,
                action=f"read the offsets of group {group!r}",
                access=access,
            )
        result[topic] = {p: offset if offset >= 0 else None for _, p, offset in answer.offsets}
    return result


def pending_offsets(marks: Mapping[int, tuple[int, int]], committed: Mapping[int, int | None]) -> int:
    """Offsets between the group's position and the end of each partition (transaction
    markers included: an estimate of the records left, never an undercount of zero)."""
    total = 0
    for partition, (low, high) in marks.items():
        start = max(low, committed.get(partition) or low)
        total += max(0, high - start)
    return total
