"""Taking rows out of the retry loop without deleting them: `failed park` and `failed unpark`,
and which rows the broker will never accept (the permanent failures `requeue` refuses).

A parked row has the status PARKED: no retry pass claims it (they claim PENDING only), no
purge deletes it unless `--status PARKED` names it. Why it was parked, and the status it had,
are kept in its `last_error`, the one column the service's table offers for words:

    parked from DLQ_FAILED: <reason>
    <the last_error it had>

`unpark` reads that first line back (`parked_from`), restores the status (a PENDING row due at
once) and the error it had. A row whose first line is not kafkaops' (edited by hand) goes back
to DLQ_FAILED: out of the loop and in front of an operator, never retried silently.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, bindparam, func, or_, select, update

from kafkaops.common.errors import ConnectionLostError, StatementTimeoutError, UsageError
from kafkaops.db.actions import ActionInterrupted, BulkAction
from kafkaops.db.failed_events import EventFilter, conditions
from kafkaops.db.schema import fit
from kafkaops.db.statuses import PARKABLE
from kafkaops.db.text import decode_text, encode_text, is_utf8
from kafkaops.kafka.faults import permanent_error_types

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.db.connections import Connections

PARKED = "PARKED"
_FIRST_LINE = re.compile(r"parked from (PENDING|DLQ_FAILED|DLQ): ")
MAX_REASON = 500  # characters of --reason kept


# -- permanent failures -------------------------------------------------------------------------


def _permanent_types() -> list[str]:
    """The exception classes of the errors the broker gives a record it will never accept, as
    full names (what kafkaops and a Spring service write) and simple ones (what others do)."""
    full = permanent_error_types()
    return sorted({*full, *(name.rsplit(".", 1)[-1] for name in full)})


def permanent(table: Table) -> ColumnElement[bool]:
    """The rows whose recorded error (`error_type`, written by `retry` and by the service) is
    one the broker gives a record it will never accept: too large, invalid, no such topic."""
    return table.c.error_type.in_(_permanent_types())


def not_permanent(table: Table) -> ColumnElement[bool]:
    return or_(table.c.error_type.is_(None), table.c.error_type.not_in(_permanent_types()))


def permanent_breakdown(conn: Connection, table: Table, where: list[ColumnElement[bool]]) -> dict[str, int]:
    """Of the rows `where` matches, how many are permanent failures, by error type (simple name)."""
    query = (
        select(table.c.error_type, func.count()).where(*where, permanent(table)).group_by(table.c.error_type)
    )
    found: dict[str, int] = {}
    for error_type, n in conn.execute(query):
        name = str(error_type).rsplit(".", 1)[-1]
        found[name] = found.get(name, 0) + int(n)
    return found


def describe_breakdown(found: dict[str, int]) -> str:
    """`3x RecordTooLargeException, 1x InvalidRecordException`."""
    return ", ".join(f"{n}x {name}" for name, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


# -- the parked row's last_error ---------------------------------------------------------------


def parked_error(reason: str, status: str, previous: str | None) -> str:
    """The last_error of a row parked from `status` for `reason`."""
    first = f"parked from {status}: {reason}"
    return first if previous is None or previous == "" else f"{first}\n{previous}"


def parked_from(last_error: str | None) -> tuple[str, str | None]:
    """The status a parked row had and the last_error it had, read from its last_error; a row
    whose first line kafkaops did not write goes back to DLQ_FAILED, its error kept whole."""
    text = last_error or ""
    found = _FIRST_LINE.match(text)
    if found is None:
        return "DLQ_FAILED", last_error
    _first, sep, rest = text.partition("\n")
    return found.group(1), (rest if sep else None)


def clean_reason(raw: str | None) -> str:
    """--reason as one line: required, never empty, control characters as spaces."""
    reason = " ".join((raw or "").split())
    if not reason:
        raise UsageError(
            "park needs --reason TEXT: why the rows are set aside (kept in their last_error)",
            hint='e.g. --reason "payload over 1 MB, waiting for the producer fix"',
        )
    return reason[:MAX_REASON]


# -- the actions -------------------------------------------------------------------------------


def park_filter(flt: EventFilter, *, any_filter: bool) -> EventFilter:
    """Park acts on PENDING and DLQ_FAILED rows unless told (DLQ too; rows named by id: any of
    the three); never on everything at once without a filter."""
    if not flt.ids and not any_filter:
        raise UsageError(
            "park needs ids, or filters choosing the rows (--status, --topic, --error, --since, "
            "--until, --permanent)"
        )
    statuses = flt.statuses or (PARKABLE if flt.ids else ("PENDING", "DLQ_FAILED"))
    refused = [s for s in statuses if s not in PARKABLE]
    if refused:
        raise UsageError(f"park takes rows in {', '.join(PARKABLE)}, not {', '.join(refused)}")
    return flt.with_statuses(statuses)


@dataclass
class _Batch:
    changed: int
    seen: int


class _Batched(BulkAction):
    """Park and unpark: batches of rows chosen and locked (SKIP LOCKED: a row a retry pass holds
    is left to the end and counted in `busy`), each rewritten in Python from what it holds."""

    verb_ing = ""

    def __init__(
        self, conns: Connections, flt: EventFilter, *, within: timedelta, now: datetime, batch_size: int
    ) -> None:
        super().__init__(conns, flt, within=within)
        self.now = now
        self.batch_size = batch_size
        self.busy = 0  # rows left out because another transaction (a retry pass) held them

    def rewrite(self, row: Any, room: int | None) -> dict[str, Any]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        # immediate: SQLite's write lock up front, so a retry pass's batch and this one queue
        # behind each other instead of one failing to upgrade its read lock.
        lock = self.conns.settings.database.lock_timeout
        return self.conns.bounded(self.verb, within=self.within, lock=lock, immediate=True)

    def run(self) -> int:
        done = 0
        try:
            room = self._room()
            while True:
                with self._transaction() as conn:
                    batch = self._batch(conn, room)
                if self.witness is not None:
                    self.witness.committed()
                done += batch.changed
                if batch.seen < self.batch_size:
                    break
            with self._transaction() as conn:
                self.busy = int(
                    conn.execute(
                        select(func.count()).select_from(self.conns.table).where(*self.where)
                    ).scalar_one()
                )
            return done
        except KeyboardInterrupt:
            raise ActionInterrupted(done, self.verb_ing) from None
        except (StatementTimeoutError, ConnectionLostError) as late:
            raise late.telling(
                f"{done:,} row(s) {self.done_key} in committed batches; the batch in flight was rolled back"
                if done
                else f"nothing was {self.done_key} (the transaction was rolled back)"
            ) from late

    def _room(self) -> int | None:
        from kafkaops.db.schema import inspect_table

        with self.conns.connect() as conn:
            return inspect_table(conn, self.conns.settings.database).max_length("last_error")

    def _batch(self, conn: Connection, room: int | None) -> _Batch:
        table = self.conns.table
        c = table.c
        query = (
            select(c.id.label("id"), c.status.label("status"), c.last_error.label("last_error"))
            .where(*self.where)
            .order_by(c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        rows = conn.execute(query).all()
        if not rows:
            return _Batch(0, 0)
        values = [self.rewrite(row, room) for row in rows]
        statement = (
            update(table)
            .where(c.id == bindparam("b_id"), c.status == bindparam("b_was"))
            .values(
                status=bindparam("b_status"),
                last_error=bindparam("b_last_error"),
                next_retry_at=bindparam("b_next_retry_at"),
                updated_at=self.now,
            )
        )
        changed = conn.execute(statement, values).rowcount
        if self.witness is not None:  # the audit journal, in this batch's transaction
            self.witness.batch(conn, [row.id for row in rows])
        return _Batch(int(changed), len(rows))


def _text(value: Any) -> str | None:
    """A stored last_error as text to write back: bytes that are not UTF-8 (SQLite keeps what it
    is given) as `\\xNN` escapes, since the database takes text, not lone surrogates."""
    if value is None:
        return None
    text = decode_text(bytes(value)) if isinstance(value, bytes | bytearray | memoryview) else str(value)
    return text if is_utf8(text) else encode_text(text).decode("utf-8", "backslashreplace")


class Park(_Batched):
    """PENDING and DLQ_FAILED (default) or DLQ rows to PARKED, the reason and the status they
    had kept in last_error; in batches, each its own transaction."""

    verb, done_key, verb_ing, takes = "park", "parked", "parking", "PENDING, DLQ_FAILED or DLQ"

    def __init__(
        self,
        conns: Connections,
        flt: EventFilter,
        *,
        reason: str,
        only_permanent: bool = False,
        within: timedelta,
        now: datetime,
        batch_size: int = 1000,
    ) -> None:
        self.reason = clean_reason(reason)  # refused before anything is read
        super().__init__(
            conns,
            park_filter(flt, any_filter=only_permanent or _filtered(flt)),
            within=within,
            now=now,
            batch_size=batch_size,
        )
        table = conns.table
        self.where = [*conditions(table, self.flt), table.c.status.in_(PARKABLE)]
        if only_permanent:
            self.where.append(permanent(table))

    def rewrite(self, row: Any, room: int | None) -> dict[str, Any]:
        status = str(row.status)
        return {
            "b_id": row.id,
            "b_was": status,
            "b_status": PARKED,
            "b_last_error": fit(parked_error(self.reason, status, _text(row.last_error)), room),
            "b_next_retry_at": None,
        }


class Unpark(_Batched):
    """PARKED rows back to the status they had (a PENDING row due now), their last_error as it
    was; in batches, each its own transaction."""

    verb, done_key, verb_ing, takes = "unpark", "unparked", "unparking", "PARKED"

    def __init__(
        self,
        conns: Connections,
        flt: EventFilter,
        *,
        within: timedelta,
        now: datetime,
        batch_size: int = 1000,
    ) -> None:
        if flt.statuses and flt.statuses != (PARKED,):
            raise UsageError(
                f"unpark takes PARKED rows only, not {', '.join(s for s in flt.statuses if s != PARKED)}"
            )
        if not flt.ids and not _filtered(flt):
            raise UsageError(
                "unpark needs ids, or filters choosing the rows (--topic, --error, --since, --until)",
                hint="every parked row: kafkaops failed unpark --status PARKED",
            )
        super().__init__(conns, flt.with_statuses((PARKED,)), within=within, now=now, batch_size=batch_size)
        self.where = [*conditions(conns.table, self.flt), conns.table.c.status == PARKED]

    def rewrite(self, row: Any, room: int | None) -> dict[str, Any]:
        status, previous = parked_from(_text(row.last_error))
        return {
            "b_id": row.id,
            "b_was": PARKED,
            "b_status": status,
            "b_last_error": fit(previous, room),
            "b_next_retry_at": self.now if status == "PENDING" else None,
        }


def _filtered(flt: EventFilter) -> bool:
    return bool(flt.statuses or flt.topic or flt.since or flt.until or flt.error)


def permanent_ids(conn: Connection, table: Table, ids: list[Any]) -> set[str]:
    """Of these ids (as strings), those of permanent failures."""
    query = select(table.c.id).where(table.c.id.in_(ids), permanent(table))
    return {str(row_id) for (row_id,) in conn.execute(query)}
