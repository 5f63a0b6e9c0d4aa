"""Seeing and acting on failed events: group, list, show, requeue, purge.

All counting and grouping happens in SQL; results stream back, so memory does not grow with
the table. Filters are bound parameters on mapped columns, never strings spliced into SQL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, delete, func, select, types, update

from kafkaops.config import LOGICAL_COLUMNS
from kafkaops.connections import stream_rows
from kafkaops.errors import NotFoundError, UsageError
from kafkaops.schema import STATUSES
from kafkaops.timeparse import as_utc

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

GROUP_KEYS = (
    "status",
    "topic",
    "last_error",
    "error_type",
    "retry_count",
    "event_key",
    "error_signature",
)
REQUEUEABLE = ("DLQ_FAILED", "DLQ")
PURGEABLE = ("RESOLVED", "DLQ")

# last_error -> error_signature: each (pattern, flags, placeholder) in order. PostgreSQL's
# regular expressions use \y for a word boundary; SQLite gets the same function in Python.
# Explicit ASCII classes ([0-9], [ \t]), not \d or \s, so that both engines agree on
# non-ASCII text (Python's classes are Unicode-aware, PostgreSQL's are not).
SIGNATURE_RULES: tuple[tuple[str, str, str], ...] = (
    (r"'[^']*'|\"[^\"]*\"", "g", "<value>"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "gi", "<uuid>"),
    (
        r"\y[0-9]+(\.[0-9]+)?[ \t]?(ns|us|ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)\y",
        "gi",
        "<duration>",
    ),
    (r"\y0x[0-9a-f]+\y", "gi", "<hex>"),
    (r"\y(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{4,}\y", "gi", "<hex>"),
    (r"\y[0-9]+(\.[0-9]+)?\y", "g", "<n>"),
)


@dataclass(frozen=True)
class EventFilter:
    """Which rows a command is about; empty means all."""

    statuses: tuple[str, ...] = ()
    topic: str | None = None  # glob: * and ?
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    error: str | None = None  # substring of last_error, case-insensitive


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


def parse_group_by(value: str) -> list[str]:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--group-by needs at least one of: {', '.join(GROUP_KEYS)}")
    for name in names:
        if name not in GROUP_KEYS:
            raise UsageError(f"cannot group by {name!r} (valid: {', '.join(GROUP_KEYS)})")
    return list(dict.fromkeys(names))


def error_signature_expr(table: Table) -> ColumnElement[Any]:
    expr: ColumnElement[Any] = table.c.last_error
    for pattern, flags, placeholder in SIGNATURE_RULES:
        expr = func.regexp_replace(expr, pattern, placeholder, flags, type_=types.Text)
    return expr


def error_signature(text: str) -> str:
    """The same normalisation as the SQL expression, for one string (tests, previews)."""
    from kafkaops.connections import _regexp_replace

    result: str | None = text
    for pattern, flags, placeholder in SIGNATURE_RULES:
        result = _regexp_replace(result, pattern, placeholder, flags)
    return result or ""


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
        where.append(c.last_error.ilike(f"%{escaped}%", escape="\\"))
    return where


def group_counts(
    conn: Connection,
    table: Table,
    *,
    group_by: Sequence[str],
    flt: EventFilter,
    top: int | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Counts per group with the oldest and newest `created_at`, largest groups first."""
    keys = [
        (error_signature_expr(table) if name == "error_signature" else table.c[name]).label(name)
        for name in group_by
    ]
    count = func.count().label("count")
    query = (
        select(
            *keys,
            count,
            func.min(table.c.created_at).label("oldest_created_at"),
            func.max(table.c.created_at).label("newest_created_at"),
        )
        .where(*conditions(table, flt))
        .group_by(*keys)
        .order_by(count.desc(), *keys)
    )
    if top is not None:
        query = query.limit(top)
    for item in stream_rows(conn, query):
        item["oldest_created_at"] = as_utc(item["oldest_created_at"])
        item["newest_created_at"] = as_utc(item["newest_created_at"])
        yield item


# Everything but the bulky columns; `failed show` prints those.
LIST_COLUMNS = tuple(c for c in LOGICAL_COLUMNS if c not in ("payload", "headers"))
_TIMES = ("created_at", "updated_at", "next_retry_at", "resolved_at")


def list_events(conn: Connection, table: Table, *, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    """Rows without their payloads, newest first."""
    query = (
        select(*(table.c[name] for name in LIST_COLUMNS))
        .where(*conditions(table, flt))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(limit)
    )
    return [_normalise(dict(row._mapping)) for row in conn.execute(query)]


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


def get_event(conn: Connection, table: Table, event_id: int | str | uuid.UUID) -> dict[str, Any]:
    if conn.dialect.name == "sqlite" and isinstance(event_id, uuid.UUID):
        event_id = str(event_id)
    row = conn.execute(select(table).where(table.c.id == event_id)).first()
    if row is None:
        raise NotFoundError(f"no failed event with id {event_id}")
    return _normalise(dict(row._mapping))


def decode_payload(payload: str) -> tuple[Any, bool]:
    """(parsed JSON, True) when the payload is JSON, else (the text unchanged, False)."""
    try:
        return json.loads(payload), True
    except (TypeError, ValueError):
        return payload, False


def decode_headers(headers: str | None) -> dict[str, Any] | str | None:
    if headers is None or headers == "":
        return None
    try:
        value = json.loads(headers)
    except ValueError:
        return headers
    return value if isinstance(value, dict) else headers


def count_matching(conn: Connection, table: Table, *, flt: EventFilter) -> int:
    query = select(func.count()).select_from(table).where(*conditions(table, flt))
    return int(conn.execute(query).scalar_one())


def requeue_filter(flt: EventFilter) -> EventFilter:
    """Requeue acts on DLQ_FAILED rows unless told DLQ; anything else is refused."""
    statuses = flt.statuses or ("DLQ_FAILED",)
    refused = [s for s in statuses if s not in REQUEUEABLE]
    if refused:
        raise UsageError(f"requeue takes rows in DLQ_FAILED or DLQ, not {', '.join(refused)}")
    return EventFilter(statuses, flt.topic, flt.since, flt.until, flt.error)


def requeue(conn: Connection, table: Table, *, flt: EventFilter, now: datetime) -> int:
    """Back to PENDING, attempt counter reset, due now: the runbook's manual intervention."""
    flt = requeue_filter(flt)
    statement = (
        update(table)
        .where(*conditions(table, flt))
        .values(
            status="PENDING",
            retry_count=0,
            next_retry_at=now,
            updated_at=now,
            resolved_at=None,
        )
    )
    return int(conn.execute(statement).rowcount)


def purge_filter(flt: EventFilter) -> EventFilter:
    """Purge acts on RESOLVED rows unless told DLQ; undelivered events are refused."""
    statuses = flt.statuses or ("RESOLVED",)
    refused = [s for s in statuses if s not in PURGEABLE]
    if refused:
        raise UsageError(
            f"purge never deletes {', '.join(refused)} rows: they are events not yet delivered "
            "(purge takes RESOLVED or DLQ)"
        )
    return EventFilter(statuses, flt.topic, flt.since, flt.until, flt.error)


def purge_conditions(table: Table, flt: EventFilter, older_than: datetime) -> list[ColumnElement[bool]]:
    """Rows whose last change (`updated_at`) is before the cutoff, in a purgeable status only."""
    where = conditions(table, purge_filter(flt))
    # Belt and braces: whatever the filter says, these two statuses are never deleted.
    where.append(table.c.status.in_(PURGEABLE))
    where.append(table.c.updated_at < older_than)
    return where


def count_purgeable(conn: Connection, table: Table, *, flt: EventFilter, older_than: datetime) -> int:
    query = select(func.count()).select_from(table).where(*purge_conditions(table, flt, older_than))
    return int(conn.execute(query).scalar_one())


def purge_batch(
    conn: Connection, table: Table, *, flt: EventFilter, older_than: datetime, batch_size: int
) -> int:
    """Delete at most one batch; the caller commits and repeats until it returns 0."""
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
    return int(conn.execute(statement).rowcount)


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    for key in _TIMES:
        if key in row:
            row[key] = as_utc(row[key])
    if isinstance(row.get("id"), uuid.UUID):
        row["id"] = str(row["id"])
    return row
