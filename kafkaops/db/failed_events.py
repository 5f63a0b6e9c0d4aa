"""Seeing and acting on failed events: group, list, show, requeue, purge.

All counting and grouping happens in SQL; results stream back, so memory does not grow with
the table. Filters are bound parameters on mapped columns, never strings spliced into SQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Label, Table, case, delete, func, select, types, update

from kafkaops.common.errors import NotFoundError, UsageError
from kafkaops.common.jsontext import parse_json
from kafkaops.common.signature import SIGNATURE_RULES
from kafkaops.common.timeparse import as_utc
from kafkaops.config.settings import LOGICAL_COLUMNS, OPTIONAL_COLUMNS
from kafkaops.db.schema import ContainsFolded, StoredText, StoredTextResult, instant
from kafkaops.db.statuses import (
    GROUP_KEYS,
    PURGEABLE,
    PURGEABLE_WHEN_NAMED,
    REQUEUEABLE,
    SEVERITY,
    STATUSES,
)
from kafkaops.db.transactions import stream_rows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.config.settings import DatabaseSettings
    from kafkaops.db.table_counts import TableCounts


@dataclass(frozen=True)
class EventFilter:
    """Which rows a command is about; empty means all."""

    statuses: tuple[str, ...] = ()
    topic: str | None = None  # glob: * and ?
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    error: str | None = None  # substring of last_error, case-insensitive
    ids: tuple[Any, ...] = ()  # only these rows (ids as the column expects them)

    def with_statuses(self, statuses: tuple[str, ...]) -> EventFilter:
        return EventFilter(statuses, self.topic, self.since, self.until, self.error, self.ids)


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased, validated statuses; `PENDING,DLQ` and repeated options both work."""
    result: list[str] = []
    for value in values:
        for part in value.split(","):
            status = part.strip().upper()
            if not status:
                continue
            if status not in STATUSES:
                raise UsageError(f"unknown status {part.strip()!r} (valid: {', '.join(STATUSES)})")
            if status not in result:
                result.append(status)
    return tuple(result)


def parse_group_by(values: str | Sequence[str]) -> list[str]:
    """Group keys from `-g topic -g status` and `-g topic,status` alike, in the order given."""
    parts = [values] if isinstance(values, str) else list(values)
    names = [n.strip().lower() for value in parts for n in value.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--group-by needs at least one of: {', '.join(GROUP_KEYS)}")
    for name in names:
        if name not in GROUP_KEYS:
            raise UsageError(f"cannot group by {name!r} (valid: {', '.join(GROUP_KEYS)})")
    return list(dict.fromkeys(names))


def error_signature_expr(table: Table) -> ColumnElement[Any]:
    expr: ColumnElement[Any] = StoredText(table.c.last_error)
    for pattern, flags, placeholder in SIGNATURE_RULES:
        expr = func.regexp_replace(expr, pattern, placeholder, flags, type_=types.Text)
    return StoredTextResult(expr)


def glob_condition(column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
    if not any(ch in pattern for ch in "*?"):
        return column == pattern
    escaped = re.sub(r"([\\%_])", r"\\\1", pattern).replace("*", "%").replace("?", "_")
    return column.like(escaped, escape="\\")


def conditions(table: Table, flt: EventFilter) -> list[ColumnElement[bool]]:
    c = table.c
    where: list[ColumnElement[bool]] = []
    if flt.statuses:
        where.append(c.status.in_(flt.statuses))
    if flt.topic:
        where.append(glob_condition(c.topic, flt.topic))
    if flt.since:
        where.append(c.created_at >= flt.since)
    if flt.until:
        where.append(c.created_at < flt.until)
    if flt.error:
        escaped = re.sub(r"([\\%_])", r"\\\1", flt.error)
        where.append(ContainsFolded(c.last_error, f"%{escaped}%"))
    if flt.ids:
        where.append(c.id.in_(flt.ids))
    return where


def logical(table: Table, names: Iterable[str]) -> list[Label[Any]]:
    """Columns labelled with their logical names: rows leave the core keyed `event_key`, not
    by whatever the service called the column (`kafka_key`)."""
    return [table.c[name].label(name) for name in names]


def severity_order(table: Table) -> ColumnElement[Any]:
    return case({s: i for i, s in enumerate(SEVERITY)}, value=table.c.status, else_=len(SEVERITY))


def group_counts(
    conn: Connection,
    table: Table,
    *,
    group_by: Sequence[str],
    flt: EventFilter,
    top: int | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Counts per group with the oldest and newest `created_at`, largest groups first; when the
    first key is the status, statuses come in severity order (DLQ_FAILED first) instead."""
    keys = [
        (error_signature_expr(table) if name == "error_signature" else table.c[name]).label(name)
        for name in group_by
    ]
    count = func.count().label("count")
    query = (
        select(
            *keys,
            count,
            func.min(instant(table.c.created_at)).label("oldest_created_at"),
            func.max(instant(table.c.created_at)).label("newest_created_at"),
        )
        .where(*conditions(table, flt))
        .group_by(*keys)
    )
    first = [severity_order(table)] if group_by[0] == "status" else []
    query = query.order_by(*first, count.desc(), *keys)
    if top is not None:
        query = query.limit(top)
    for item in stream_rows(conn, query):
        yield _normalise(item, ("oldest_created_at", "newest_created_at"))


def status_summary(
    conn: Connection, table: Table, db: DatabaseSettings, *, now: datetime, top: int | None = None
) -> tuple[list[dict[str, Any]], TableCounts]:
    """`kafkaops failed` without filters: the counts per status, most urgent first, read as
    `status` reads them (`table_counts`): the rows not RESOLVED exactly through their index,
    RESOLVED estimated on a large table (its oldest and newest then unknown: None)."""
    from kafkaops.db.table_counts import read_counts

    counts = read_counts(conn, table, db, now=now)
    by_status = counts.by_status()
    rank = {s: i for i, s in enumerate(SEVERITY)}
    ordered = sorted(by_status, key=lambda s: (rank.get(s, len(SEVERITY)), -by_status[s].count, s))
    rows = [
        {
            "status": status,
            "count": by_status[status].count,
            "oldest_created_at": by_status[status].oldest_created_at,
            "newest_created_at": by_status[status].newest_created_at,
        }
        for status in ordered
    ]
    return rows[:top] if top is not None else rows, counts


# Everything but the bulky columns; `failed show` prints those.
LIST_COLUMNS = tuple(c for c in LOGICAL_COLUMNS if c not in ("payload", "headers"))
_TIMES = ("created_at", "updated_at", "next_retry_at", "resolved_at", "dlq_acked_at")


def list_events(
    conn: Connection,
    table: Table,
    *,
    flt: EventFilter,
    limit: int | None,
    where: Sequence[ColumnElement[bool]] | None = None,
    columns: Sequence[str] = LIST_COLUMNS,
) -> Generator[dict[str, Any], None, None]:
    """Rows without their payloads, the ones that need attention first (DLQ_FAILED, PENDING,
    DLQ, then RESOLVED), newest first within a status, streamed (`limit` None: all of them).

    `where` replaces the filter's conditions (purge's own, for its dry run)."""
    query = (
        select(*logical(table, columns))
        .where(*(conditions(table, flt) if where is None else where))
        .order_by(severity_order(table), instant(table.c.created_at).desc(), table.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    for item in stream_rows(conn, query):
        yield _normalise(item)


class Page:
    """At most `limit` rows of a query asked for `limit + 1`; `cut` says whether more matched.

    The extra row is read (so the stream ends on its own) but not yielded: whether a limit cut
    the result costs one row, not a count, in the common case.
    """

    def __init__(self, rows: Generator[dict[str, Any], None, None], limit: int | None) -> None:
        self._rows = rows
        self.limit = limit
        self.cut = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for n, row in enumerate(self._rows):
            if self.limit is not None and n >= self.limit:
                self.cut = True
                continue
            yield row

    def close(self) -> None:
        self._rows.close()


def page_of_events(
    conn: Connection,
    table: Table,
    *,
    flt: EventFilter,
    limit: int | None,
    where: Sequence[ColumnElement[bool]] | None = None,
    columns: Sequence[str] = LIST_COLUMNS,
) -> Page:
    asked = None if limit is None else limit + 1
    return Page(list_events(conn, table, flt=flt, limit=asked, where=where, columns=columns), limit)


def parse_event_id(raw: str, id_type: str) -> int | uuid.UUID:
    """The row id as its column expects it, or a usage error naming what an id looks like."""
    text = raw.strip()
    if id_type == "uuid":
        try:
            return uuid.UUID(text)
        except ValueError:
            raise UsageError(f"invalid id {raw!r}: this table's ids are UUIDs") from None
    if re.fullmatch(r"[0-9]{1,19}", text) and int(text) < 2**63:
        return int(text)
    raise UsageError(f"invalid id {raw!r}: this table's ids are whole numbers below 2^63")


# Ids are bound one parameter each; PostgreSQL takes at most 65,535 parameters per statement.
MAX_IDS = 30_000


def parse_event_ids(raws: Sequence[str], id_type: str, dialect: str) -> tuple[Any, ...]:
    """Ids as the database compares them (SQLite keeps UUIDs as text); duplicates dropped."""
    parsed: list[Any] = [parse_event_id(raw, id_type) for raw in raws]
    if len(set(parsed)) > MAX_IDS:
        raise UsageError(
            f"{len(set(parsed)):,} ids given; at most {MAX_IDS:,} at once",
            hint="run it in parts, or choose the rows with filters (--status, --topic, --since, --error)",
        )
    if dialect == "sqlite":
        parsed = [str(p) if isinstance(p, uuid.UUID) else p for p in parsed]
    return tuple(dict.fromkeys(parsed))


def get_events(conn: Connection, table: Table, event_ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Whole rows in the order asked; a NotFoundError names every id that does not exist."""
    names = LOGICAL_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in table.c)
    query = select(*logical(table, names)).where(table.c.id.in_(event_ids))
    found = {str(row["id"]): row for row in (_normalise(dict(r._mapping)) for r in conn.execute(query))}
    missing = [str(i) for i in event_ids if str(i) not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20:,} more" if len(missing) > 20 else "")
        raise NotFoundError(f"no failed event with id {shown}")
    return [found[str(i)] for i in event_ids]


def ids_left_out(
    conn: Connection, table: Table, ids: Sequence[Any], where: Sequence[ColumnElement[bool]]
) -> list[dict[str, Any]]:
    """Of the ids a user named, those the action's conditions leave out, with their status
    (None: no such row), so that nothing named is skipped silently."""
    if not ids:
        return []
    query = select(*logical(table, ("id", "status"))).where(table.c.id.in_(ids))
    statuses = {str(r.id): r.status for r in conn.execute(query)}
    matched = {str(r.id) for r in conn.execute(select(table.c.id.label("id")).where(*where))}
    return [{"id": str(i), "status": statuses.get(str(i))} for i in ids if str(i) not in matched]


PREVIEW_COLUMNS = ("id", "topic", "status", "last_error")


@dataclass
class ActionPlan:
    """What a requeue or purge would act on, found before anyone is asked."""

    matched: int
    left_out: list[dict[str, Any]]  # ids the user named that the action leaves alone
    preview: list[dict[str, Any]]  # the first rows it would touch (dry runs)


def plan_action(
    conn: Connection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    *,
    ids: Sequence[Any],
    preview: int,
) -> ActionPlan:
    matched = int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
    rows: list[dict[str, Any]] = []
    if preview and matched:
        rows = list(
            list_events(conn, table, flt=EventFilter(), limit=preview, where=where, columns=PREVIEW_COLUMNS)
        )
    return ActionPlan(matched, ids_left_out(conn, table, ids, where), rows)


def decode_payload(payload: str) -> tuple[Any, bool]:
    """(parsed JSON, True) when the payload is JSON, else (the text unchanged, False)."""
    parsed, is_json = parse_json(payload)
    return (parsed, True) if is_json else (payload, False)


def decode_headers(headers: str | None) -> dict[str, Any] | str | None:
    if headers is None or headers == "":
        return None
    value, is_json = parse_json(headers)
    return value if is_json and isinstance(value, dict) else headers


def count_matching(conn: Connection, table: Table, *, flt: EventFilter) -> int:
    query = select(func.count()).select_from(table).where(*conditions(table, flt))
    return int(conn.execute(query).scalar_one())


def requeue_filter(flt: EventFilter) -> EventFilter:
    """Requeue acts on DLQ_FAILED rows unless told DLQ (rows named by id: either); anything
    else is refused. A PENDING row is never reset: that would throw away its backoff."""
    statuses = flt.statuses or (REQUEUEABLE if flt.ids else ("DLQ_FAILED",))
    refused = [s for s in statuses if s not in REQUEUEABLE]
    if refused:
        raise UsageError(f"requeue takes rows in DLQ_FAILED or DLQ, not {', '.join(refused)}")
    return flt.with_statuses(statuses)


def requeue(
    conn: Connection,
    table: Table,
    *,
    flt: EventFilter,
    now: datetime,
    where: Sequence[ColumnElement[bool]] | None = None,
    ids_out: list[Any] | None = None,
) -> int:
    """Back to PENDING, attempt counter reset, due now: the runbook's manual intervention.
    `where` replaces the filter's conditions (the requeue action's own); `ids_out` gets the ids
    of the rows changed (for the audit journal)."""
    flt = requeue_filter(flt)
    statement = (
        update(table)
        .where(*(conditions(table, flt) if where is None else where))
        .values(
            status="PENDING",
            retry_count=0,
            next_retry_at=now,
            updated_at=now,
            resolved_at=None,
        )
    )
    if ids_out is not None:
        done = [row[0] for row in conn.execute(statement.returning(table.c.id))]
        ids_out += done
        return len(done)  # this call's rows, whatever the list held before
    return int(conn.execute(statement).rowcount)


def purge_filter(flt: EventFilter) -> EventFilter:
    """Purge acts on RESOLVED rows unless told DLQ (or PARKED, only when named); undelivered
    events are refused."""
    statuses = flt.statuses or (PURGEABLE if flt.ids else ("RESOLVED",))
    refused = [s for s in statuses if s not in PURGEABLE + PURGEABLE_WHEN_NAMED]
    if refused:
        raise UsageError(
            f"purge never deletes {', '.join(refused)} rows: they are events not yet delivered "
            "(purge takes RESOLVED or DLQ, and PARKED when --status PARKED names it)"
        )
    return flt.with_statuses(statuses)


def purge_conditions(
    table: Table, flt: EventFilter, older_than: datetime | None
) -> list[ColumnElement[bool]]:
    """Rows whose last change (`updated_at`) is before the cutoff (None: rows named by id, at
    any age), in a purgeable status only."""
    if older_than is None and not flt.ids:
        raise UsageError("purge needs --older-than, or the ids of the rows to delete")
    flt = purge_filter(flt)
    where = conditions(table, flt)
    # Belt and braces: whatever the filter says, PENDING and DLQ_FAILED are never deleted, and
    # PARKED only when the filter names it.
    named = tuple(s for s in PURGEABLE_WHEN_NAMED if s in flt.statuses)
    where.append(table.c.status.in_(PURGEABLE + named))
    if older_than is not None:
        where.append(table.c.updated_at < older_than)
    return where


def purge_batch(
    conn: Connection,
    table: Table,
    *,
    flt: EventFilter,
    older_than: datetime | None,
    batch_size: int,
    ids_out: list[Any] | None = None,
) -> int:
    """Delete at most one batch; the caller commits and repeats until it returns 0. `ids_out`
    gets the ids of the rows deleted (for the audit journal)."""
    # Locking the rows as they are chosen makes PostgreSQL re-check the conditions on a row
    # that changed meanwhile (requeued to PENDING: no longer deleted); SKIP LOCKED lets two
    # purges share the work instead of queueing behind each other.
    ids = (
        select(table.c.id)
        .where(*purge_conditions(table, flt, older_than))
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    statement = delete(table).where(table.c.id.in_(ids.scalar_subquery()))
    if ids_out is not None:
        done = [row[0] for row in conn.execute(statement.returning(table.c.id))]
        ids_out += done
        return len(done)  # this call's rows, whatever the list held before
    return int(conn.execute(statement).rowcount)


def _normalise(row: dict[str, Any], times: Sequence[str] = _TIMES) -> dict[str, Any]:
    for key in times:
        if isinstance(row.get(key), datetime):  # not a time (SQLite): shown as stored
            row[key] = as_utc(row[key])
    if isinstance(row.get("id"), uuid.UUID):
        row["id"] = str(row["id"])
    return row
