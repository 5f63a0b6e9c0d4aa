"""The table's side of the status, under a statement timeout.

The counts come from `db.table_counts` (the rows not RESOLVED exactly, through their index;
RESOLVED estimated on a large table unless `--exact`): the counts per status, the oldest
PENDING row, the rows due now, the PENDING rows per topic and the topics whose rows need a DLQ
topic (the DLQ topic check). On PostgreSQL they are read in a read-only transaction bounded by
`bound_transaction`, so a frozen or locked table cannot hold status past its deadline.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kafkaops.common.errors import DatabaseError
from kafkaops.db.sqlerrors import QUERY_CANCELED, sqlstate
from kafkaops.db.table_counts import TableCounts, read_counts
from kafkaops.db.transactions import bound_transaction
from kafkaops.dlq.catalogue import needs_dlq
from kafkaops.status.model import DatabaseStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.db.connections import Connections


def read_database(
    conns: Connections, *, now: datetime, timeout: float, exact: bool = False
) -> DatabaseStatus:
    """The figures, within `timeout` seconds from the call (connecting included). `exact`:
    count the RESOLVED rows of a large table too (a scan of the whole table)."""
    import sqlalchemy as sa

    started = time.monotonic()
    result = DatabaseStatus()
    with conns.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        # What is left of the deadline once connected. A lock wait as long as the statement:
        # the statement timeout fires first, one message for both.
        left = timedelta(seconds=timeout - (time.monotonic() - started))
        bound_transaction(conn, statement=left, lock=left)
        try:
            counts = read_counts(conn, conns.table, conns.settings.database, now=now, exact=exact)
            _read_retry_side(conn, conns, result)
        except sa.exc.DBAPIError as error:
            if sqlstate(error) == QUERY_CANCELED:
                raise DatabaseError(
                    f"database: no answer within {timeout:g}s (statement_timeout cancelled the query)",
                    hint="is the table locked? SELECT * FROM pg_locks WHERE NOT granted",
                ) from None
            raise
        conn.rollback()
    _fold(counts, result)
    result.elapsed_s = time.monotonic() - started
    return result


def _read_retry_side(conn: Connection, conns: Connections, result: DatabaseStatus) -> None:
    """The rows the broker will never accept, and the last retry pass recorded (when the
    kafkaops_retry_runs table exists)."""
    from kafkaops.db.park import permanent_breakdown
    from kafkaops.db.retry_runs import has_runs_table, last_run
    from kafkaops.db.schema import unresolved

    table = conns.table
    where = [unresolved(table), table.c.status.in_(("PENDING", "DLQ_FAILED"))]
    result.permanent = permanent_breakdown(conn, table, where)
    db = conns.settings.database
    result.retry_runs_recorded = has_runs_table(conn, db)
    if result.retry_runs_recorded:
        result.last_retry_run = last_run(conn, db)


def _fold(counts: TableCounts, result: DatabaseStatus) -> None:
    topics: set[str] = set()
    for (status, topic), figures in counts.by_status_topic.items():
        result.counts[status] = result.counts.get(status, 0) + figures.count
        if status == "PENDING":
            oldest = figures.oldest_created_at
            if oldest is not None and (result.oldest_pending_at is None or oldest < result.oldest_pending_at):
                result.oldest_pending_at = oldest
            result.due_now += figures.due
            since = figures.oldest_since
            if since is not None and (
                result.oldest_pending_since is None or since < result.oldest_pending_since
            ):
                result.oldest_pending_since = since
        if topic is None:
            continue
        if needs_dlq(status):
            topics.add(topic)
        if status == "PENDING":
            result.pending_by_topic[topic] = result.pending_by_topic.get(topic, 0) + figures.count
    if counts.resolved.count or counts.resolved_estimated:
        result.counts["RESOLVED"] = counts.resolved.count
    result.resolved_estimated = counts.resolved_estimated
    result.newest_resolved_at = counts.newest_resolved_at
    result.missing_index = counts.missing_index
    result.failed_topics = sorted(topics)
