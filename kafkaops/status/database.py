"""The table's side of the status: one aggregate query, under a statement timeout.

One scan grouped by status and topic gives every figure: the counts per status, the oldest
PENDING row, the rows due now, the newest RESOLVED time, and the PENDING rows per topic and
the topics whose rows need a DLQ topic (the DLQ topic check). On PostgreSQL it runs in a
read-only transaction bounded by `bound_transaction`, so a frozen or locked table cannot
hold status past its deadline.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import DatabaseError
from kafkaops.common.timeparse import time_or_none
from kafkaops.db.schema import instant
from kafkaops.db.sqlerrors import QUERY_CANCELED, sqlstate
from kafkaops.db.transactions import bound_transaction
from kafkaops.dlq.catalogue import needs_dlq
from kafkaops.status.model import DatabaseStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.db.connections import Connections


def read_database(conns: Connections, *, now: datetime, timeout: float) -> DatabaseStatus:
    """The figures, within `timeout` seconds from the call (connecting included)."""
    import sqlalchemy as sa

    started = time.monotonic()
    table = conns.table
    c = table.c
    due = sa.and_(c.status == "PENDING", sa.or_(c.next_retry_at.is_(None), c.next_retry_at <= now))
    # One scan for every figure: per (status, topic), folded per status here.
    query = sa.select(
        c.status,
        c.topic,
        sa.func.count().label("n"),
        sa.func.min(instant(c.created_at)).label("oldest"),
        sa.func.max(instant(sa.func.coalesce(c.resolved_at, c.updated_at))).label("newest_resolved"),
        sa.func.sum(sa.case((due, 1), else_=0)).label("due"),
    ).group_by(c.status, c.topic)
    result = DatabaseStatus()
    with conns.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        # What is left of the deadline once connected. A lock wait as long as the statement:
        # the statement timeout fires first, one message for both.
        left = timedelta(seconds=timeout - (time.monotonic() - started))
        bound_transaction(conn, statement=left, lock=left)
        try:
            _read(conn, query, result)
        except sa.exc.DBAPIError as error:
            if sqlstate(error) == QUERY_CANCELED:
                raise DatabaseError(
                    f"database: no answer within {timeout:g}s (statement_timeout cancelled the query)",
                    hint="is the table locked? SELECT * FROM pg_locks WHERE NOT granted",
                ) from None
            raise
        conn.rollback()
    result.elapsed_s = time.monotonic() - started
    return result


def _read(conn: Connection, query: Any, result: DatabaseStatus) -> None:
    topics: set[str] = set()
    for row in conn.execute(query):
        status, n = str(row.status), int(row.n)
        result.counts[status] = result.counts.get(status, 0) + n
        if status == "PENDING":
            oldest = time_or_none(row.oldest)
            if oldest is not None and (result.oldest_pending_at is None or oldest < result.oldest_pending_at):
                result.oldest_pending_at = oldest
            result.due_now += int(row.due or 0)
        elif status == "RESOLVED":
            newest = time_or_none(row.newest_resolved)
            if newest is not None and (
                result.newest_resolved_at is None or newest > result.newest_resolved_at
            ):
                result.newest_resolved_at = newest
        if row.topic is None:
            continue
        if needs_dlq(status):
            topics.add(str(row.topic))
        if status == "PENDING":
            result.pending_by_topic[str(row.topic)] = result.pending_by_topic.get(str(row.topic), 0) + n
    result.failed_topics = sorted(topics)
