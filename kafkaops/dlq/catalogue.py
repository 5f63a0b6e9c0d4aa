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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kafkaops.db.statuses import STATUSES
from kafkaops.kafka.dlq_names import DlqCatalog, DlqTopic

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

# Rows in these statuses will never go to a DLQ topic again; every other status may.
_SETTLED_FOR_GOOD = ("RESOLVED",)
NEEDS_DLQ_STATUSES = tuple(s for s in STATUSES if s not in _SETTLED_FOR_GOOD)


def needs_dlq(status: str) -> bool:
    """Whether a row in this status makes its topic need a DLQ topic."""
    return status not in _SETTLED_FOR_GOOD


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

    from kafkaops.kafka import faults as faults
    from kafkaops.kafka.errors import translate_error
    from kafkaops.kafka.metadata import SETTLE_PAUSE

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
                if faults.classify(error.name()).resource is not None:  # a denial: name the topic
                    raise translate_error(exc, client, access={"topic": (tp.topic, "Describe")}) from exc
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
