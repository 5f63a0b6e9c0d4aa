"""The table's counts at a cost that follows what is unresolved, not the history: what
`status` and the default `kafkaops failed` read.

Rows not RESOLVED are counted exactly, per status and topic, through the unresolved rows'
index (`schema.unresolved_index`). The RESOLVED total is counted too while the table is small
(`EXACT_BELOW_BYTES`: the scan then costs milliseconds) or when asked (`exact`); past that,
PostgreSQL's planner estimate of the table's rows minus the exact unresolved count stands in
for it, and the newest RESOLVED time (which no index gives) is left out. SQLite counts
RESOLVED exactly (its count(*) reads the smallest index, no row), and leaves the newest
RESOLVED time out past the same size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kafkaops.common.timeparse import time_or_none
from kafkaops.config.settings import DatabaseSettings
from kafkaops.db.schema import (
    ComparableTime,
    has_unresolved_index,
    instant,
    resolved,
    unresolved,
    unresolved_index_statement,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Below this size (the table's own pages, TOAST aside) every row is read: exact and cheap.
EXACT_BELOW_BYTES = 16 * 1024 * 1024


@dataclass
class StatusFigures:
    """One status' rows (or, per topic, one status and topic's)."""

    count: int = 0
    oldest_created_at: datetime | None = None
    newest_created_at: datetime | None = None
    due: int = 0  # PENDING rows due now
    oldest_since: datetime | None = None  # the earliest `pending_since` (PENDING rows)

    def add(self, other: StatusFigures) -> None:
        self.count += other.count
        self.due += other.due
        if other.oldest_since is not None and (
            self.oldest_since is None or other.oldest_since < self.oldest_since
        ):
            self.oldest_since = other.oldest_since
        if other.oldest_created_at is not None and (
            self.oldest_created_at is None or other.oldest_created_at < self.oldest_created_at
        ):
            self.oldest_created_at = other.oldest_created_at
        if other.newest_created_at is not None and (
            self.newest_created_at is None or other.newest_created_at > self.newest_created_at
        ):
            self.newest_created_at = other.newest_created_at


@dataclass
class TableCounts:
    by_status_topic: dict[tuple[str, str | None], StatusFigures] = field(default_factory=dict)
    resolved: StatusFigures = field(default_factory=StatusFigures)
    resolved_estimated: bool = False
    newest_resolved_at: datetime | None = None  # None when estimated (no index gives it)
    missing_index: str | None = None  # the statement that creates it, when a large table lacks it

    def by_status(self) -> dict[str, StatusFigures]:
        out: dict[str, StatusFigures] = {}
        for (status, _topic), figures in self.by_status_topic.items():
            out.setdefault(status, StatusFigures()).add(figures)
        if self.resolved.count or "RESOLVED" in out:
            out.setdefault("RESOLVED", StatusFigures()).add(self.resolved)
        return out


def pending_since(table: sa.Table) -> sa.ColumnElement[Any]:
    """When a PENDING row became PENDING, as near as the table tells: the table has no column
    for it. A row not attempted since (retry_count 0) was last written when it was stored,
    requeued or unparked: its updated_at. A row attempted since keeps its created_at (each
    attempt moves updated_at, which would make a row stuck for hours look minutes old)."""
    c = table.c
    fresh = sa.func.coalesce(c.retry_count, 0) == 0
    since = sa.case((fresh, ComparableTime(c.updated_at)), else_=ComparableTime(c.created_at))
    return sa.type_coerce(since, c.created_at.type)


def read_counts(
    conn: Connection, table: sa.Table, db: DatabaseSettings, *, now: datetime, exact: bool = False
) -> TableCounts:
    """Every figure, inside the caller's transaction (its bounds apply to each statement)."""
    c = table.c
    result = TableCounts()
    due = sa.and_(c.status == "PENDING", sa.or_(c.next_retry_at.is_(None), c.next_retry_at <= now))
    query = (
        sa.select(
            c.status,
            c.topic,
            sa.func.count().label("n"),
            sa.func.min(instant(c.created_at)).label("oldest"),
            sa.func.max(instant(c.created_at)).label("newest"),
            sa.func.sum(sa.case((due, 1), else_=0)).label("due"),
            sa.func.min(sa.case((c.status == "PENDING", pending_since(table)))).label("since"),
        )
        .where(unresolved(table))
        .group_by(c.status, c.topic)
    )
    unresolved_total = 0
    for row in conn.execute(query):
        figures = StatusFigures(
            int(row.n),
            time_or_none(row.oldest),
            time_or_none(row.newest),
            int(row.due or 0),
            time_or_none(row.since),
        )
        topic = None if row.topic is None else str(row.topic)
        result.by_status_topic[(str(row.status), topic)] = figures
        unresolved_total += figures.count
    large = _table_bytes(conn, db) >= EXACT_BELOW_BYTES
    if exact or not large:
        _count_resolved(conn, table, result)
        return result
    if not has_unresolved_index(conn, db):
        result.missing_index = unresolved_index_statement(db, conn.dialect.name)
    if conn.dialect.name == "postgresql":
        total = _planned_rows(conn, table)
        result.resolved = StatusFigures(max(0, total - unresolved_total))
        result.resolved_estimated = True
    else:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        result.resolved = StatusFigures(max(0, total - unresolved_total))
    return result


def _count_resolved(conn: Connection, table: sa.Table, result: TableCounts) -> None:
    c = table.c
    row = conn.execute(
        sa.select(
            sa.func.count().label("n"),
            sa.func.min(instant(c.created_at)).label("oldest"),
            sa.func.max(instant(c.created_at)).label("newest"),
            sa.func.max(instant(sa.func.coalesce(c.resolved_at, c.updated_at))).label("resolved"),
        ).where(resolved(table))
    ).one()
    result.resolved = StatusFigures(int(row.n), time_or_none(row.oldest), time_or_none(row.newest))
    result.newest_resolved_at = time_or_none(row.resolved)


def _table_bytes(conn: Connection, db: DatabaseSettings) -> int:
    if conn.dialect.name == "postgresql":
        name = f"{db.schema}.{db.table}" if db.schema else db.table
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
        found = conn.execute(
            sa.text("SELECT pg_relation_size(to_regclass(:name))"), {"name": quoted}
        ).scalar()
        return int(found or 0)
    if conn.dialect.name == "sqlite":
        # The whole file: SQLite keeps no size per table without the optional dbstat table.
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        return int(pages or 0) * int(size or 0)
    return 0


def _planned_rows(conn: Connection, table: sa.Table) -> int:
    """The planner's estimate of the table's rows: its statistics' rows per page times the
    pages the table has now, so growth since the last ANALYZE is counted."""
    sql = str(sa.select(sa.literal_column("1")).select_from(table).compile(dialect=conn.dialect))
    plan: Any = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
