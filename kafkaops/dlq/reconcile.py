"""The table and the DLQ topics as one story.

A `DLQ` row and its record on `<topic>.dlq` are one event with two ways back: `failed requeue
--status DLQ` (from the table) and `dlq replay` (from the topic). Doing both publishes it twice.
Here: the rows a replay's committed records name (`kafkaops-failed-event-id`) marked RESOLVED
after each transaction commits (`RowMarker`, the replay's commit hook), and what `requeue`
must know first: whether each DLQ row's record was replayed already, still waits for a
replay, or is gone (`dlq_record_states`, from the row's recorded DLQ coordinates and the
replay group's committed offsets).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from kafkaops.common import clock
from kafkaops.common.errors import KafkaopsError, UsageError
from kafkaops.db.failed_events import EventFilter, conditions, parse_event_id, requeue_filter
from kafkaops.dlq.listing import replay_group_for
from kafkaops.kafka.metadata import committed_offsets, watermarks

if TYPE_CHECKING:
    from kafkaops.db.connections import Connections
    from kafkaops.dlq.transactions import Batch

log = logging.getLogger(__name__)

RESOLVED_BY_REPLAY = "replay"
# How long marking one batch's rows may take before the database is called unavailable.
MARK_WITHIN = timedelta(seconds=30)
# Ids are bound one parameter each (PostgreSQL takes at most 65,535 per statement).
_IDS_PER_STATEMENT = 10_000


@dataclass
class MarkResult:
    """What the marking did over a whole replay run."""

    marked: int = 0  # DLQ rows now RESOLVED
    not_dlq: int = 0  # named rows not in DLQ (already RESOLVED, requeued, another topic, none)
    unmarked: list[str] = field(default_factory=list)  # ids left DLQ because the database failed
    error: str | None = None  # why the database side failed
    no_database: int = 0  # records naming a row, with no database configured

    def as_dict(self) -> dict[str, Any]:
        return {
            "marked_resolved": self.marked,
            "named_rows_not_dlq": self.not_dlq,
            "unmarked": list(self.unmarked),
            "database_error": self.error,
        }


class RowMarker:
    """The replay's commit hook: after each committed transaction, the DLQ rows its records
    name become RESOLVED (`resolved_by` = replay where the table has that column), only when
    the row's topic is the record's original topic. A database failure never touches the Kafka side:
    the ids are kept in `result.unmarked` and the rest of the run's ids join them (the database
    is not asked again in this run, so a dead one costs one attempt, not one per batch)."""

    def __init__(self, conns: Connections) -> None:
        self.conns = conns
        self.result = MarkResult()
        self._enabled = bool(conns.settings.database.url)

    def __call__(self, batch: Batch) -> None:
        rows = batch.rows
        if not rows:
            return
        named = [(_text(raw), topic) for raw, topic in rows]
        if not self._enabled:
            self.result.no_database += len(named)
            return
        if self.result.error is not None:
            self.result.unmarked += [row_id for row_id, _ in named]
            return
        try:
            self.result.marked += self._mark(named)
        except (KafkaopsError, SQLAlchemyError) as error:
            message = error.message if isinstance(error, KafkaopsError) else str(error).splitlines()[0]
            self.result.error = message
            self.result.unmarked += [row_id for row_id, _ in named]
            log.warning("replay: %d row(s) not marked RESOLVED: %s", len(named), message)

    def _mark(self, named: Sequence[tuple[str, str]]) -> int:
        conns = self.conns
        id_type = conns.id_type()
        sqlite = conns.dialect == "sqlite"
        by_target: dict[str, list[Any]] = defaultdict(list)
        for raw, target in named:
            try:
                row_id = parse_event_id(raw, id_type)
            except UsageError:  # not an id of this table: another service's record
                self.result.not_dlq += 1
                continue
            # SQLite keeps UUIDs as text.
            by_target[target].append(str(row_id) if sqlite and id_type == "uuid" else row_id)
        now = clock.now()
        marked = 0
        with conns.bounded("marking replayed rows RESOLVED", within=MARK_WITHIN) as conn:
            table = conns.table
            values: dict[str, Any] = {"status": "RESOLVED", "resolved_at": now, "updated_at": now}
            if "resolved_by" in table.c:
                values["resolved_by"] = RESOLVED_BY_REPLAY
            for target, ids in by_target.items():
                for start in range(0, len(ids), _IDS_PER_STATEMENT):
                    chunk = ids[start : start + _IDS_PER_STATEMENT]
                    statement = (
                        update(table)
                        .where(table.c.id.in_(chunk), table.c.status == "DLQ", table.c.topic == target)
                        .values(**values)
                    )
                    changed = int(conn.execute(statement).rowcount)
                    marked += changed
                    self.result.not_dlq += len(chunk) - changed
        return marked


def _text(raw: str | bytes | None) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw)


# ---------------------------------------------------------------------------------------
# Before a requeue of DLQ rows


@dataclass
class DlqRecordStates:
    """The DLQ rows a requeue would take, by what became of their DLQ record."""

    replayed: list[Any] = field(default_factory=list)  # ids: `dlq replay` went past the record
    pending: list[Any] = field(default_factory=list)  # ids: the record waits for a replay
    pending_topics: set[str] = field(default_factory=set)  # the DLQ topics they wait in
    unknown: int = 0  # DLQ rows with no recorded DLQ record: nothing to compare

    @property
    def held_back(self) -> list[Any]:
        return self.replayed + self.pending


def dlq_record_states(conns: Connections, flt: EventFilter, timeout: float = 5.0) -> DlqRecordStates:
    """For the DLQ rows `requeue` would take: which records were replayed (the default replay
    group's committed offset is past the record's offset), which still wait (at or before it,
    and still on the topic), and how many rows recorded no DLQ record (`dlq_offset` NULL, or a
    table without the dlq_* columns). A record the topic no longer holds (retention) counts as
    neither: requeue is the only way back for it."""
    flt = requeue_filter(flt)
    states = DlqRecordStates()
    if "DLQ" not in flt.statuses:
        return states
    table = conns.table
    if not all(name in table.c for name in ("dlq_topic", "dlq_partition", "dlq_offset")):
        return states
    c = table.c
    where = [*conditions(table, flt), c.status == "DLQ"]
    query = select(c.id, c.dlq_topic, c.dlq_partition, c.dlq_offset).where(*where).order_by(c.id)
    located: dict[str, list[tuple[Any, int, int]]] = defaultdict(list)
    with conns.connect() as conn:
        for row_id, topic, partition, offset in conn.execute(query):
            if topic is None or partition is None or offset is None:
                states.unknown += 1
            else:
                located[str(topic)].append((row_id, int(partition), int(offset)))
    if not located:
        return states
    props = conns.settings.require_kafka()
    for topic, rows in located.items():
        committed = committed_offsets(props, replay_group_for(topic), topic, timeout)
        marks = watermarks(props, topic, timeout)
        for row_id, partition, offset in rows:
            position = committed.get(partition)
            low = marks.get(partition, (0, 0))[0]
            if position is not None and position > offset:
                states.replayed.append(row_id)
            elif offset >= low and partition in marks:
                states.pending.append(row_id)
                states.pending_topics.add(topic)
    return states
