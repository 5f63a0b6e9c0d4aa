"""The table's side of the status: two aggregate queries, under a statement timeout.

One query counts every status (with the oldest PENDING row, the rows due now and the newest
RESOLVED time); the other counts the rows not yet RESOLVED per topic, for the pending-per-topic
table and the DLQ topic check. On PostgreSQL both run in one read-only transaction with
`SET LOCAL statement_timeout`, so a frozen or locked table cannot hold status past its deadline.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from kafkaops.status.model import DatabaseStatus
from kafkaops.timeparse import as_utc

if TYPE_CHECKING:
    from kafkaops.connections import Connections


def read_database(conns: Connections, *, now: datetime, timeout: float) -> DatabaseStatus:
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
            # Whole milliseconds; SET cannot take a bound parameter.
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
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
        conn.rollback()
    result.failed_topics = sorted(topics)
    result.elapsed_s = time.monotonic() - started
    return result
