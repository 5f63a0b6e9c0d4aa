"""The table's side of the status: two aggregate queries, under a statement timeout.

One query counts every status (with the oldest PENDING row, the rows due now and the newest
RESOLVED time); the other counts the rows not yet RESOLVED per topic, for the pending-per-topic
table and the DLQ topic check. On PostgreSQL both run in one read-only transaction with
`SET LOCAL statement_timeout`, so a frozen or locked table cannot hold status past its deadline.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kafkaops.errors import DatabaseError
from kafkaops.status.model import DatabaseStatus
from kafkaops.timeparse import as_utc

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.connections import Connections

QUERY_CANCELED = "57014"  # SQLSTATE: statement_timeout (or a cancel request) stopped the query


def read_database(conns: Connections, *, now: datetime, timeout: float) -> DatabaseStatus:
    """The figures, within `timeout` seconds from the call (connecting included)."""
    import sqlalchemy as sa

    started = time.monotonic()
    table = conns.table
    c = table.c
    due = sa.and_(c.status == "PENDING", sa.or_(c.next_retry_at.is_(None), c.next_retry_at <= now))
    per_status = sa.select(
        c.status,
        sa.func.count().label("n"),
        sa.func.min(c.created_at).label("oldest"),
        sa.func.max(sa.func.coalesce(c.resolved_at, c.updated_at)).label("newest_resolved"),
        sa.func.sum(sa.case((due, 1), else_=0)).label("due"),
    ).group_by(c.status)
    per_topic = (
        sa.select(c.topic, c.status, sa.func.count().label("n"))
        .where(c.status != "RESOLVED")
        .group_by(c.topic, c.status)
    )
    result = DatabaseStatus()
    with conns.connect() as conn:
        if conn.dialect.name == "postgresql":
            # What is left of the deadline once connected, in whole milliseconds (SET cannot
            # take a bound parameter).
            left_ms = int((timeout - (time.monotonic() - started)) * 1000)
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, left_ms)}")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            _read(conn, per_status, per_topic, result)
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == QUERY_CANCELED:
                raise DatabaseError(
                    f"database: no answer within {timeout:g}s (statement_timeout cancelled the query)",
                    hint="is the table locked? SELECT * FROM pg_locks WHERE NOT granted",
                ) from None
            raise
        conn.rollback()
    result.elapsed_s = time.monotonic() - started
    return result


def _read(conn: Connection, per_status: Any, per_topic: Any, result: DatabaseStatus) -> None:
    for row in conn.execute(per_status):
        status = str(row.status)
        result.counts[status] = result.counts.get(status, 0) + int(row.n)
        if status == "PENDING":
            result.oldest_pending_at = as_utc(row.oldest)
            result.due_now = int(row.due or 0)
        elif status == "RESOLVED":
            result.newest_resolved_at = as_utc(row.newest_resolved)
    topics: set[str] = set()
    for row in conn.execute(per_topic):
        if row.topic is None:
            continue
        topics.add(str(row.topic))
        if row.status == "PENDING":
            result.pending_by_topic[str(row.topic)] = int(row.n)
    result.failed_topics = sorted(topics)
