"""`--where` on failed-event rows: the row model, the part of an expression SQL can answer, and
requeue/purge choosing rows by it.

A row is its logical columns (times as `2026-12-06T09:00:00Z`), `payload` parsed (JSON when it
parses, else text), `headers` decoded and `error_signature` (`failed --group-by
error_signature`'s). Top-level `&&` terms of the forms `COLUMN == "text"`, `COLUMN in ["a",
"b"]` and `retry_count <op> N` become SQL conditions (a row they exclude the expression could
not select); the whole expression is then asked of each row SQL returns.

Requeue and purge read candidates without locks, ask the expression, then lock only the rows
it selected (FOR UPDATE, purge's SKIP LOCKED), ask again of the locked rows and change those
still selected: a row the expression did not select is never changed, nor locked.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, select, update

from kafkaops.common.signature import error_signature
from kafkaops.common.timeparse import as_utc, isoformat_utc
from kafkaops.common.where import Where, compile_where, conjuncts, unwrap
from kafkaops.config.settings import LOGICAL_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# What a bulk action does to the ids a batch selected, inside the batch's transaction: the rows
# it changed.
Performer = Callable[["Connection", Sequence[Any]], int]

ROW_FIELDS = (*LOGICAL_COLUMNS, "error_signature")
_TEXT_COLUMNS = ("id", "event_id", "topic", "event_key", "status", "error_type")
_TERM_EQ = re.compile(r'^\s*([a-z_]+)\s*==\s*"((?:[^"\\]|\\["\\])*)"\s*$')
_TERM_IN = re.compile(
    r'^\s*([a-z_]+)\s+in\s+\[\s*("(?:[^"\\]|\\["\\])*"(?:\s*,\s*"(?:[^"\\]|\\["\\])*")*)\s*\]\s*$'
)
_TERM_CMP = re.compile(r"^\s*retry_count\s*(==|!=|>=|<=|>|<)\s*(\d{1,9})\s*$")
_STRING = re.compile(r'"((?:[^"\\]|\\["\\])*)"')


@dataclass
class RowFilter:
    """A compiled `--where` for failed rows: the SQL it implies and the test of each row."""

    where: Where

    @property
    def columns(self) -> tuple[str, ...]:
        """The logical columns a row must be read with (id always)."""
        names = set(self.where.names) | {"topic", "status", "last_error"}  # and what a preview shows
        return tuple(c for c in LOGICAL_COLUMNS if c in names or c == "id")

    def sql(self, table: Table) -> list[ColumnElement[bool]]:
        return sql_terms(self.where.source, table)

    def test(self, row: dict[str, Any], *, count: bool = True) -> bool:
        model = row_model(row, self.where.names)
        if count:
            return self.where.test(model, f"id {row['id']}")
        saved = self.where.failures.count, self.where.failures.first_where, self.where.failures.first_error
        try:
            return self.where.test(model, "")
        finally:
            failures = self.where.failures
            failures.count, failures.first_where, failures.first_error = saved


def compile_row_filter(text: str | None, *, saved: Any) -> RowFilter | None:
    where = compile_where(text, saved=saved, names=ROW_FIELDS)
    return None if where is None else RowFilter(where)


def row_model(row: dict[str, Any], names: Sequence[str] | frozenset[str] = ROW_FIELDS) -> dict[str, Any]:
    """The model of one row, with the fields `names` asks for."""
    from kafkaops.db.failed_events import decode_headers, decode_payload

    model: dict[str, Any] = {}
    for name in names:
        if name == "payload":
            stored = row.get("payload")
            model["payload"] = None if stored is None else decode_payload(stored)[0]
        elif name == "headers":
            model["headers"] = decode_headers(row.get("headers"))
        elif name == "error_signature":
            last_error = row.get("last_error")
            model[name] = None if last_error is None else error_signature(last_error)
        elif name in row:
            model[name] = _plain(row[name])
    return model


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat_utc(as_utc(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def sql_terms(source: str, table: Table) -> list[ColumnElement[bool]]:
    """The conditions SQL can answer: top-level `&&` terms that name a column directly."""
    terms = conjuncts(source)
    if terms is None:
        return []
    found: list[ColumnElement[bool]] = []
    for term in terms:
        term = unwrap(term)
        eq, within, cmp = _TERM_EQ.match(term), _TERM_IN.match(term), _TERM_CMP.match(term)
        if eq and eq.group(1) in _TEXT_COLUMNS and eq.group(1) != "id":
            found.append(table.c[eq.group(1)] == _unescape(eq.group(2)))
        elif within and within.group(1) in _TEXT_COLUMNS and within.group(1) != "id":
            values = [_unescape(v) for v in _STRING.findall(within.group(2))]
            found.append(table.c[within.group(1)].in_(values))
        elif cmp:
            column, number = table.c.retry_count, int(cmp.group(2))
            op = cmp.group(1)
            found.append(
                {
                    "==": column == number,
                    "!=": column != number,
                    ">=": column >= number,
                    "<=": column <= number,
                    ">": column > number,
                    "<": column < number,
                }[op]
            )
    return found


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


# -- choosing rows ------------------------------------------------------------------------------


def _columns(table: Table, names: Sequence[str]) -> list[Any]:
    return [table.c[n].label(n) for n in names]


def candidates(
    conn: Connection,
    table: Table,
    rows: RowFilter,
    where: Sequence[ColumnElement[bool]],
    *,
    after: Any = None,
    limit: int | None = None,
    columns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Rows SQL returns for `where` and the expression's own SQL terms, by id (no locks), with
    the columns the expression reads and `columns`."""
    names = [c for c in LOGICAL_COLUMNS if c in rows.columns or c in columns]
    query = select(*_columns(table, names)).where(*where, *rows.sql(table)).order_by(table.c.id)
    if after is not None:
        query = query.where(table.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def stream_selected(
    conn: Connection,
    table: Table,
    rows: RowFilter,
    where: Sequence[ColumnElement[bool]],
    *,
    chunk: int = 5_000,
    columns: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Every row the expression selects, by id, read `chunk` at a time (memory bounded)."""
    after = None
    while True:
        batch = candidates(conn, table, rows, where, after=after, limit=chunk, columns=columns)
        for row in batch:
            if rows.test(row):
                yield row
        if len(batch) < chunk:
            return
        after = batch[-1]["id"]


def act_on_selected(
    conn: Connection,
    table: Table,
    rows: RowFilter,
    where: Sequence[ColumnElement[bool]],
    chosen: Sequence[Any],
    act: Performer,
    *,
    skip_locked: bool = False,
) -> int:
    """Lock the `chosen` rows that still meet `where`, ask the expression again of each (a
    row may have changed since it was read) and `act` on the ids still selected (it returns
    how many rows it changed)."""
    if not chosen:
        return 0
    query = (
        select(*_columns(table, rows.columns))
        .where(table.c.id.in_(chosen), *where)
        .with_for_update(skip_locked=skip_locked)
    )
    still = [r["id"] for r in (dict(m._mapping) for m in conn.execute(query)) if rows.test(r, count=False)]
    if not still:
        return 0
    return act(conn, still)


def requeue_statement(table: Table, now: datetime) -> Performer:
    def perform(conn: Connection, ids: Sequence[Any]) -> int:
        statement = (
            update(table)
            .where(table.c.id.in_(ids))
            .values(status="PENDING", retry_count=0, next_retry_at=now, updated_at=now, resolved_at=None)
        )
        return int(conn.execute(statement).rowcount)

    return perform


def plan_selected(
    conn: Connection,
    table: Table,
    rows: RowFilter,
    where: Sequence[ColumnElement[bool]],
    *,
    ids: Sequence[Any],
    preview: int,
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """(how many rows the expression selects, the first `preview` of them, the named ids it
    leaves out with their status), read without locks."""
    from kafkaops.db.failed_events import PREVIEW_COLUMNS, ids_left_out

    matched = 0
    shown: list[dict[str, Any]] = []
    selected: set[str] = set()
    for row in stream_selected(conn, table, rows, where):
        matched += 1
        if len(shown) < preview:
            shown.append({k: _plain(row.get(k)) for k in PREVIEW_COLUMNS})
        if ids:
            selected.add(str(row["id"]))
    left_out = ids_left_out(conn, table, ids, where)
    named_out = {item["id"] for item in left_out}
    statuses = (
        {str(r["id"]): r["status"] for r in candidates(conn, table, rows, [table.c.id.in_(ids)])}
        if ids
        else {}
    )
    for raw in ids:
        key = str(raw)
        if key not in selected and key not in named_out:
            left_out.append({"id": key, "status": statuses.get(key), "where": False})
    return matched, shown, left_out


def act_batch(
    conn: Connection,
    table: Table,
    rows: RowFilter,
    where: Sequence[ColumnElement[bool]],
    act: Performer,
    *,
    after: Any,
    batch_size: int,
    skip_locked: bool = False,
) -> tuple[int, Any, bool]:
    """One batch: up to `batch_size` candidates after the id `after`, the selected ones locked,
    asked again and acted on. (rows changed, the last id read, whether more may follow)."""
    batch = candidates(conn, table, rows, where, after=after, limit=batch_size)
    chosen = [r["id"] for r in batch if rows.test(r, count=False)]
    changed = act_on_selected(conn, table, rows, where, chosen, act, skip_locked=skip_locked)
    last = batch[-1]["id"] if batch else after
    return changed, last, len(batch) == batch_size
