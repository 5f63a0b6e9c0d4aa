"""Settling a claimed batch: its outcomes written in the transaction that holds its locks.

One statement per outcome when the database takes them all; when it refuses, row by row in
savepoints, so that one row it refuses cannot roll back (and so republish) all the others.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, update

from kafkaops.db.schema import fit
from kafkaops.db.sqlerrors import classify_db_error

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.retry.publish import Acked
    from kafkaops.retry.schedule import RetrySchedule


@dataclass
class Settlement:
    resolved: list[Any] = field(default_factory=list)
    rescheduled: list[dict[str, Any]] = field(default_factory=list)
    dlq: list[dict[str, Any]] = field(default_factory=list)
    dlq_failed: list[dict[str, Any]] = field(default_factory=list)
    untouched: list[Any] = field(default_factory=list)  # ids left exactly as they were


def settle_batch(
    conn: Connection,
    table: Table,
    settlement: Settlement,
    *,
    now: datetime,
    schedule: RetrySchedule,
    room: Mapping[str, int | None] | None = None,
) -> None:
    """Write a batch's outcomes with one statement per outcome (executemany where rows differ).

    `now` is the settling time: it becomes `updated_at` (and `resolved_at`), and a rescheduled
    row is due `schedule` later, so `next_retry_at - updated_at` is exactly the configured delay.
    `room`: the length of bounded text columns; longer errors are cut to fit, with a marker.
    """
    c = table.c
    room = room or {}
    if settlement.resolved:
        conn.execute(
            update(table)
            .where(c.id.in_(settlement.resolved))
            .values(status="RESOLVED", resolved_at=now, updated_at=now)
        )
    for row in settlement.rescheduled:
        row["b_next_retry_at"] = schedule.next_retry_at(now, row["b_retry_count"])
    for status, rows in (
        ("PENDING", settlement.rescheduled),
        ("DLQ", settlement.dlq),
        ("DLQ_FAILED", settlement.dlq_failed),
    ):
        if not rows:
            continue
        for row in rows:
            row["b_last_error"] = fit(row["b_last_error"], room.get("last_error"))
            row["b_error_type"] = fit(row["b_error_type"], room.get("error_type"))
        values: dict[str, Any] = {
            "status": status,
            "retry_count": bindparam("b_retry_count"),
            "last_error": bindparam("b_last_error"),
            "error_type": bindparam("b_error_type"),
            "updated_at": now,
        }
        if status == "PENDING":
            values["next_retry_at"] = bindparam("b_next_retry_at")
        if status == "DLQ":
            values.update(dlq_record_values(table))
        conn.execute(update(table).where(c.id == bindparam("b_id")).values(**values), rows)


# Where a DLQ row's record is, in the optional columns the table has (schema.OPTIONAL_COLUMNS).
_DLQ_RECORD = ("dlq_topic", "dlq_partition", "dlq_offset", "dlq_acked_at")


def with_dlq_record(row: dict[str, Any], acked: Acked | None) -> dict[str, Any]:
    """A DLQ row's settle parameters with where its record was acknowledged (None: unknown)."""
    row["b_dlq_topic"] = acked.topic if acked else None
    row["b_dlq_partition"] = acked.partition if acked else None
    row["b_dlq_offset"] = acked.offset if acked else None
    row["b_dlq_acked_at"] = acked.at if acked else None
    return row


def dlq_record_values(table: Table) -> dict[str, Any]:
    return {name: bindparam(f"b_{name}") for name in _DLQ_RECORD if name in table.c}


# What a row whose full settle the database refuses becomes: a status alone, the one write
# most likely to pass. Published rows are RESOLVED (they are on the topic: publishing them again
# is what must not happen); DLQ rows are DLQ; rows whose attempt failed become DLQ_FAILED, out
# of the retry loop and in front of an operator (never deleted, never silently retried).
ISOLATED_STATUS = {
    "resolved": "RESOLVED",
    "rescheduled": "DLQ_FAILED",
    "dlq": "DLQ",
    "dlq_failed": "DLQ_FAILED",
}


@dataclass
class SettleResult:
    isolated: list[tuple[Any, str]] = field(default_factory=list)  # (id, status written alone)
    unsettled: list[Any] = field(default_factory=list)  # ids nothing could be written for
    error: str | None = None  # why the set-based settle failed


def settle_or_isolate(
    conn: Connection,
    table: Table,
    settlement: Settlement,
    *,
    now: datetime,
    schedule: RetrySchedule,
    room: Mapping[str, int | None],
) -> SettleResult:
    """Settle the batch; if the database refuses, settle row by row in savepoints, so that one
    row it refuses cannot roll back (and so republish on the next pass) all the others.

    Errors that mean the session or its time is gone (connection lost, timeouts) are raised:
    there is nothing left to settle with, and the caller stops the pass.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with conn.begin_nested():
            settle_batch(conn, table, settlement, now=now, schedule=schedule, room=room)
        return SettleResult()
    except DBAPIError as error:
        if classify_db_error(error) in ("connect", "lost", "timeout"):
            raise
        result = SettleResult(error=_first_line(error))
    c = table.c
    for outcome, one in _single_rows(settlement):
        try:
            with conn.begin_nested():
                settle_batch(conn, table, one, now=now, schedule=schedule, room=room)
            continue
        except DBAPIError as error:
            if classify_db_error(error) in ("connect", "lost", "timeout"):
                raise
        row_id = _settled_id(one)
        status = ISOLATED_STATUS[outcome]
        try:
            with conn.begin_nested():
                conn.execute(update(table).where(c.id == row_id).values(status=status))
            result.isolated.append((row_id, status))
        except DBAPIError as error:
            if classify_db_error(error) in ("connect", "lost", "timeout"):
                raise
            result.unsettled.append(row_id)
    return result


def _single_rows(settlement: Settlement) -> Generator[tuple[str, Settlement], None, None]:
    for row_id in settlement.resolved:
        yield "resolved", Settlement(resolved=[row_id])
    for row in settlement.rescheduled:
        yield "rescheduled", Settlement(rescheduled=[row])
    for row in settlement.dlq:
        yield "dlq", Settlement(dlq=[row])
    for row in settlement.dlq_failed:
        yield "dlq_failed", Settlement(dlq_failed=[row])


def _settled_id(one: Settlement) -> Any:
    if one.resolved:
        return one.resolved[0]
    rows = one.rescheduled or one.dlq or one.dlq_failed
    return rows[0]["b_id"]


def _first_line(error: Any) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def as_written(settlement: Settlement, result: SettleResult) -> Settlement:
    """The batch's outcomes as the database now has them: a row settled with its status alone
    counts under that status, a row nothing could be written for as left untouched."""
    if not result.isolated and not result.unsettled:
        return settlement
    isolated = dict(result.isolated)
    gone = set(isolated) | set(result.unsettled)
    written = Settlement(
        resolved=[i for i in settlement.resolved if i not in gone],
        rescheduled=[r for r in settlement.rescheduled if r["b_id"] not in gone],
        dlq=[r for r in settlement.dlq if r["b_id"] not in gone],
        dlq_failed=[r for r in settlement.dlq_failed if r["b_id"] not in gone],
        untouched=[*settlement.untouched, *result.unsettled],
    )
    for _outcome, one in _single_rows(settlement):
        row_id = _settled_id(one)
        status = isolated.get(row_id)
        if status == "RESOLVED":
            written.resolved.append(row_id)
        elif status is not None:
            row = (one.rescheduled or one.dlq or one.dlq_failed)[0]
            (written.dlq if status == "DLQ" else written.dlq_failed).append(row)
    return written
