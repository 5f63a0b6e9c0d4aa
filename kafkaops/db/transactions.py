"""Bounds on one transaction and what ends it: PostgreSQL's timeouts (the one way kafkaops sets
them), SQLite's busy timeout, rows streamed as they arrive, and Ctrl-C winning over the errors
raised while a statement is torn down.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.expression import Select

# PostgreSQL's timeouts are int4 milliseconds: a longer one (25 days and up) is refused by SET,
# so a longer bound is held to the longest the server takes.
PG_MAX_TIMEOUT_MS = 2**31 - 1


def bound_transaction(
    conn: Connection, *, statement: timedelta, lock: timedelta | None = None, idle: timedelta | None = None
) -> None:
    """Bound the current transaction, and only it, so that a locked table or a hung trigger
    cannot hold a command past its time. PostgreSQL (SET LOCAL): each statement may run
    `statement`, wait `lock` for a lock (default: a little less than `statement`, so that a
    lock wait says so rather than "statement timeout"), and the transaction may sit idle
    `idle` (the server's own idle_in_transaction_session_timeout, which may be shorter than
    a retry batch's publish, must not kill the session holding its locks). SQLite has no
    statement timeout: its busy timeout (how long it waits for another writer) becomes `lock`
    for the rest of the transaction; the next transaction starts with the default again."""
    ms = timeout_ms(statement)
    lock_ms = timeout_ms(lock) if lock is not None else max(ms - min(ms // 10, 1000), 1)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {lock_ms}")
        return
    if conn.dialect.name != "postgresql":
        return
    limits = {"statement_timeout": ms, "lock_timeout": lock_ms}
    if idle is not None:
        limits["idle_in_transaction_session_timeout"] = timeout_ms(idle)
    set_pg_limits(conn.exec_driver_sql, limits, local=True)


def set_pg_limits(
    execute: Callable[[str, dict[str, str]], Any], limits: dict[str, int], *, local: bool
) -> None:
    """The one way kafkaops sets PostgreSQL's timeouts: one round trip of set_config, which takes
    bound parameters (SET does not). `local`: for the current transaction only (SET LOCAL)."""
    scope = "true" if local else "false"
    execute(
        "SELECT " + ", ".join(f"set_config('{name}', %({name})s, {scope})" for name in limits),
        {name: str(value) for name, value in limits.items()},
    )


def timeout_ms(duration: timedelta) -> int:
    """A duration as PostgreSQL's timeout settings take it: whole milliseconds, at least 1."""
    return min(max(int(duration.total_seconds() * 1000), 1), PG_MAX_TIMEOUT_MS)


@contextmanager
def interrupt_wins() -> Iterator[None]:
    """Ctrl-C (or a signal turned into KeyboardInterrupt) in the middle of a statement leaves
    the driver's connection busy, and the rollback on the way out then fails ("can't change
    'autocommit' now"): that error must not replace the interrupt, which the commands report
    as what it is (exit 130, with what was done); nor may the error sqlite3 makes of a Ctrl-C
    that lands inside one of kafkaops' SQL functions. The uncommitted transaction dies with the
    connection."""
    import sys

    from kafkaops.db.engine import interrupted_in_sql_function

    # An interrupt already being handled when this began (a journal writing its outcome after
    # Ctrl-C) is not this block's: its own errors are its own.
    handled = {id(e) for e in _chain(sys.exc_info()[1])}
    try:
        yield
    except KeyboardInterrupt:
        interrupted_in_sql_function()  # this one is raised as itself: nothing left to note
        raise
    except Exception as error:
        interrupt = _interrupt_behind(error, handled)
        if interrupt is None and interrupted_in_sql_function():
            interrupt = KeyboardInterrupt()  # sqlite3 swallowed it inside a SQL function
        if interrupt is None:
            raise
        raise interrupt from None


def interrupted(error: BaseException) -> bool:
    """True when `error` is, or hides, a Ctrl-C (KeyboardInterrupt), including one sqlite3
    swallowed inside a SQL function (noted, not consumed)."""
    from kafkaops.db.engine import interrupt_noted

    return any(isinstance(e, KeyboardInterrupt) for e in _chain(error)) or interrupt_noted()


def release_frames(error: BaseException) -> None:
    """Drop the locals of the finished frames `error` and what is behind it went through (the
    driver's cursor among them); the frames still running keep theirs."""
    import traceback

    for current in _chain(error):
        traceback.clear_frames(current.__traceback__)


def _interrupt_behind(error: BaseException, handled: set[int]) -> KeyboardInterrupt | None:
    for current in _chain(error):
        if isinstance(current, KeyboardInterrupt) and id(current) not in handled:
            return current
    return None


def _chain(error: BaseException | None) -> list[BaseException]:
    """`error` and every exception behind it (its causes and contexts)."""
    found: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        todo += [current.__cause__, current.__context__]
    return found


def stream_rows(
    conn: Connection, statement: Select[Any], *, chunk: int = 1000
) -> Generator[dict[str, Any], None, None]:
    """Rows of a query as they arrive, so memory does not grow with the result.

    On psycopg this uses the driver's streaming (chunked rows mode) instead of SQLAlchemy's
    server-side cursors: PostgreSQL plans a DECLARE CURSOR for a fast start and never in
    parallel, which makes a big GROUP BY several times slower than the same query in psql.
    """
    if conn.dialect.driver != "psycopg":
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(statement)
        for row in result:
            yield dict(row._mapping)
        return
    from sqlalchemy import exc

    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql, params = str(compiled), compiled.params
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        names: list[str] | None = None
        for values in cursor.stream(sql, params, size=chunk):
            if names is None:
                names = [d.name for d in cursor.description or ()]
            yield dict(zip(names, values, strict=True))
    except dbapi_error as error:
        # Wrapped as SQLAlchemy would, so one translation serves every query.
        raise exc.DBAPIError.instance(sql, params, error, dbapi_error) from error
    finally:
        cursor.close()
