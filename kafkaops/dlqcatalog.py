"""The DLQ catalogue: which topics are dead-letter topics, the DLQ topic of a source topic,
which topics lack theirs, and how many records a DLQ topic holds. `status`, `dlq list`,
`dlq ensure`, `dlq replay` and `retry` all ask here.

- A topic is a DLQ when its name ends in any suffix of `retry.dlq_suffixes` or in
  `retry.dlq_suffix` (the one `retry` writes), and is longer than the suffix.
- The DLQ topic of a source is `<source><retry.dlq_suffix>`: a topic under a read-only suffix
  is read, listed and counted, but never stands in for it (that is not where `retry` writes).
- A source needs a DLQ topic while it has rows not RESOLVED (PENDING may still end in the DLQ,
  DLQ_FAILED already failed to), unless it is a DLQ topic itself.
- A DLQ topic's count is its offsets from the earliest to the last stable offset, summed over
  its partitions: what a read_committed reader (`dlq tail`, `dlq replay`) can reach, so an open
  transaction's records count once committed. Transaction markers and compacted records are
  offsets too: an estimate, never an undercount to zero.

Cheap to import (the configuration uses it at load time): Kafka is imported where it is asked.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.statuses import STATUSES

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

# kafkaops', Spring's newer and older defaults.
DEFAULT_DLQ_SUFFIXES = (".dlq", "-dlt", ".DLT")
DEFAULT_DLQ_SUFFIX = ".dlq"
# Rows in these statuses will never go to a DLQ topic again; every other status may.
_SETTLED_FOR_GOOD = ("RESOLVED",)
NEEDS_DLQ_STATUSES = tuple(s for s in STATUSES if s not in _SETTLED_FOR_GOOD)


def needs_dlq(status: str) -> bool:
    """Whether a row in this status makes its topic need a DLQ topic."""
    return status not in _SETTLED_FOR_GOOD


def dlq_topic_for(topic: str, suffix: str) -> str:
    """The DLQ topic `retry` writes a failed event of `topic` to, by its `suffix`."""
    return f"{topic}{suffix}"


def is_dlq_topic(topic: str, suffixes: Sequence[str]) -> bool:
    """True when `topic` is named like a dead-letter topic (and is not only the suffix)."""
    return any(topic.endswith(s) and len(topic) > len(s) for s in suffixes)


def original_topic_by_name(topic: str, suffixes: Sequence[str]) -> str | None:
    """The topic a DLQ topic belongs to by its name; the longest matching suffix wins."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if topic.endswith(suffix) and len(topic) > len(suffix):
            return topic[: -len(suffix)]
    return None


@dataclass(frozen=True)
class DlqTopic:
    """A DLQ topic: the source it belongs to, whether it exists, its partition count and, once
    read, the `(low, high)` offsets of each partition (None: not read, or it does not exist)."""

    name: str
    source: str  # by its name, or the topic whose rows need it
    exists: bool = True
    partitions: int | None = None
    offsets: Mapping[int, tuple[int, int]] | None = None

    @property
    def messages(self) -> int | None:
        if self.offsets is None:
            return None
        return sum(max(0, high - low) for low, high in self.offsets.values())


@dataclass(frozen=True)
class DlqCatalog:
    """The naming rules of one configuration (`DlqCatalog.of(settings.retry)`)."""

    write_suffix: str = DEFAULT_DLQ_SUFFIX
    configured_suffixes: tuple[str, ...] = DEFAULT_DLQ_SUFFIXES  # retry.dlq_suffixes

    @classmethod
    def of(cls, retry: Any) -> DlqCatalog:
        """From the `retry` section (`dlq_suffix`, `dlq_suffixes`)."""
        return cls(retry.dlq_suffix, tuple(retry.dlq_suffixes))

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Every suffix that names a DLQ topic: the configured ones and the one `retry` writes."""
        return tuple(dict.fromkeys((*self.configured_suffixes, self.write_suffix)))

    def is_dlq(self, topic: str) -> bool:
        return is_dlq_topic(topic, self.suffixes)

    def dlq_for(self, source: str) -> str:
        return dlq_topic_for(source, self.write_suffix)

    def source_of(self, dlq: str) -> str:
        """The source topic of a DLQ topic by its name (the longest matching suffix wins); a name
        with no DLQ suffix is its own."""
        return original_topic_by_name(dlq, self.suffixes) or dlq

    def dlq_topics(self, topics: Iterable[str]) -> list[str]:
        """The DLQ topics among `topics`, sorted."""
        return sorted(t for t in topics if self.is_dlq(t))

    def layout(self, metadata: Any) -> dict[str, list[int]]:
        """The DLQ topics of a metadata answer (`existing_topics`) and their partitions, by name."""
        names = sorted(t for t in existing_topics(metadata) if self.is_dlq(t))
        return {name: sorted(metadata.topics[name].partitions) for name in names}

    def missing(self, sources: Iterable[str], existing: Collection[str]) -> list[DlqTopic]:
        """The DLQ topics that `sources` (topics with rows that need one) lack on a cluster
        holding `existing`, in the order of `sources`. A source that is itself a DLQ needs none."""
        return [
            DlqTopic(self.dlq_for(s), s, exists=False)
            for s in dict.fromkeys(sources)
            if not self.is_dlq(s) and self.dlq_for(s) not in existing
        ]


# -- the database's side ----------------------------------------------------------------------


def topics_needing_dlq(conn: Connection, table: Table) -> list[str]:
    """Topics with rows in the failed-events table in a status that needs a DLQ topic."""
    from sqlalchemy import select

    column = table.c.topic
    query = (
        select(column)
        .where(column.is_not(None), table.c.status.in_(NEEDS_DLQ_STATUSES))
        .distinct()
        .order_by(column)
    )
    return [r[0] for r in conn.execute(query)]


# -- the cluster's side -----------------------------------------------------------------------


def existing_topics(metadata: Any) -> set[str]:
    """The topics a metadata answer names, internal ones left out. One created a moment ago
    is among them even while it answers LEADER_NOT_AVAILABLE: it exists."""
    from kafkaops.kafka import is_internal_topic

    return {name for name in metadata.topics if not is_internal_topic(name)}


def read_offsets(
    client: Any, layout: Mapping[str, Sequence[int]], timeout: float
) -> dict[str, dict[int, tuple[int, int]]]:
    """`{topic: {partition: (low, high)}}` through an admin client: one ListOffsets request for
    the earliest offsets of every partition and one for the last stable ones, however many
    topics. A partition whose leader is still being elected is asked again until `timeout`."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    deadline = time.monotonic() + timeout
    wanted = [TopicPartition(t, p) for t, parts in layout.items() for p in parts]
    low = _offsets(client, wanted, OffsetSpec.earliest(), IsolationLevel.READ_COMMITTED, deadline)
    high = _offsets(client, wanted, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED, deadline)
    result: dict[str, dict[int, tuple[int, int]]] = {t: {} for t in layout}
    for (topic, partition), end in high.items():
        result[topic][partition] = (low.get((topic, partition), 0), end)
    return result


def _offsets(
    client: Any, wanted: list[Any], spec: Any, isolation: Any, deadline: float
) -> dict[tuple[str, int], int]:
    from confluent_kafka import KafkaException

    from kafkaops import faults
    from kafkaops.kafka import SETTLE_PAUSE

    found: dict[tuple[str, int], int] = {}
    while wanted:
        left = max(0.1, deadline - time.monotonic())
        futures = client.list_offsets(
            {tp: spec for tp in wanted}, isolation_level=isolation, request_timeout=left
        )
        settling = []
        for tp, future in futures.items():
            try:
                info = future.result(timeout=max(0.1, deadline - time.monotonic()))
            except KafkaException as exc:
                error = exc.args[0]
                if not (error.retriable() or faults.is_settling(error.name())):
                    raise
                if time.monotonic() + SETTLE_PAUSE >= deadline:
                    raise
                settling.append(tp)
                continue
            found[(tp.topic, tp.partition)] = int(info.offset)
        wanted = settling
        if wanted:
            time.sleep(SETTLE_PAUSE)
    return found


def read_dlq_topics(
    client: Any, layout: Mapping[str, Sequence[int]], catalog: DlqCatalog, timeout: float
) -> dict[str, DlqTopic]:
    """The DLQ topics of a `layout` (`DlqCatalog.layout`), counted (`read_offsets`), by name."""
    offsets = read_offsets(client, layout, timeout) if layout else {}
    return {
        name: DlqTopic(name, catalog.source_of(name), True, len(parts), offsets[name])
        for name, parts in layout.items()
    }


def uncounted(layout: Mapping[str, Sequence[int]], catalog: DlqCatalog) -> dict[str, DlqTopic]:
    """The DLQ topics of a `layout` when their offsets could not be read."""
    return {name: DlqTopic(name, catalog.source_of(name), True, len(parts)) for name, parts in layout.items()}
