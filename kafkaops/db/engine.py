"""The SQLAlchemy engine: the database URL, the dialect's connect options, and the hooks that
make SQLite answer kafkaops' SQL as PostgreSQL does (regexp_replace, stored times, lower(),
case-sensitive LIKE, BEGIN on begin, stored text read by `text.decode_text`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ConfigError
from kafkaops.common.secrets import url_for_driver, url_without_password
from kafkaops.common.signature import regexp_replace_text
from kafkaops.common.timeparse import stored_epoch
from kafkaops.db.text import decode_text, encode_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver kafkaops ships with. User and
    password are cut from the host where masking cuts them (`url_for_driver`)."""
    url = url_for_driver(url)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


URL_HINT = "kafkaops speaks PostgreSQL (postgresql://user@host:5432/db) and SQLite (sqlite:///path.db)"


def create_engine(url: str) -> Engine:
    import sqlalchemy
    from sqlalchemy import event, exc

    try:
        parsed = sqlalchemy.engine.make_url(normalise_url(url))
        parsed.get_backend_name()
    except (exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"invalid database URL: {url_without_password(url)}", hint=URL_HINT) from None
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if parsed.get_backend_name() == "postgresql":
        # UTC sessions: timestamps without time zone are then read and written as UTC too.
        # connect_timeout is libpq's bound on opening the connection, not a session limit: the
        # limits of statements and lock waits are set by `transactions.set_pg_limits` alone.
        kwargs["connect_args"] = {
            "connect_timeout": 5,
            "application_name": "kafkaops",
            "options": " ".join(filter(None, (str(parsed.query.get("options") or ""), "-c TimeZone=UTC"))),
            # Text as UTF-8 whatever the database's encoding: a SQL_ASCII database would
            # otherwise hand psycopg bytes where every query expects str.
            "client_encoding": "utf8",
        }
        kwargs["pool_size"] = 2
    try:
        engine = sqlalchemy.create_engine(parsed, **kwargs)
    except (exc.NoSuchModuleError, ImportError):  # no such dialect, or its driver is not installed
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} in {url_without_password(url)}",
            hint=URL_HINT,
        ) from None
    except exc.ArgumentError as error:
        raise ConfigError(
            f"invalid database URL {url_without_password(url)}: {error}", hint=URL_HINT
        ) from None
    if engine.dialect.name == "sqlite":
        _note_interrupts()
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


# sqlite3 turns whatever a SQL function raises into "user-defined function raised exception":
# a Ctrl-C that lands inside one would read as a broken table. The functions note it here, and
# `interrupt_wins` (db/transactions.py) raises it as the interrupt it was.
_INTERRUPTED = threading.Event()


def interrupt_noted() -> bool:
    """True while a KeyboardInterrupt raised inside one of kafkaops' SQLite functions awaits
    `interrupted_in_sql_function` (which consumes it)."""
    return _INTERRUPTED.is_set()


def interrupted_in_sql_function() -> bool:
    """True once after a KeyboardInterrupt was raised inside one of kafkaops' SQLite functions."""
    if _INTERRUPTED.is_set():
        _INTERRUPTED.clear()
        return True
    return False


def _note_interrupts() -> None:
    """Ctrl-C can land on the first instruction of a SQL function, before it can note anything:
    Python's own SIGINT handler is wrapped to note it first (only where it is still Python's)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def noted(signum: int, frame: Any) -> None:
        _INTERRUPTED.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, noted)


def _sql_function(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except KeyboardInterrupt:
            _INTERRUPTED.set()
            raise

    return call


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # PostgreSQL has regexp_replace; give SQLite the same function so one query serves both.
    dbapi_conn.create_function("regexp_replace", 4, _sql_function(_regexp_replace), deterministic=True)
    # Times as the service stored them (epoch ms, ISO text...) compared as instants.
    dbapi_conn.create_function("kafkaops_time", 1, _sql_function(_stored_epoch), deterministic=True)
    dbapi_conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    # LIKE (topic globs) is case-sensitive on PostgreSQL; make SQLite agree.
    dbapi_conn.execute("PRAGMA case_sensitive_like = ON")
    # --error is case-insensitive (lower() LIKE lower()); SQLite's lower() only folds ASCII.
    dbapi_conn.create_function("lower", 1, _sql_function(_lower), deterministic=True)
    # kafkaops emits BEGIN itself (below), as SQLAlchemy's docs recommend for pysqlite: the
    # driver would otherwise begin only at the first write, after a claim's SELECT.
    dbapi_conn.isolation_level = None
    # SQLite stores whatever bytes it is given: one event_key that is not UTF-8 must not make
    # every query fail. Such text is read as `decode_text` says, by every command.
    dbapi_conn.text_factory = decode_text


# kafkaops' SQL functions take text columns as their stored bytes (schema.StoredText: sqlite3
# hands a Python function only valid UTF-8), decode them with `decode_text`, and give bytes back
# for bytes, since sqlite3 cannot return text holding a lone surrogate (schema.StoredTextResult
# makes the result text again).


def _lower(value: Any) -> Any:
    # --error is case-insensitive (lower() LIKE lower()); LIKE reads a blob as its text.
    if isinstance(value, bytes):
        return encode_text(decode_text(value).lower())
    return value.lower() if isinstance(value, str) else value


# How long a SQLite connection waits for another writer, unless its transaction was bounded
# otherwise (bound_transaction).
SQLITE_BUSY_TIMEOUT_MS = 5000


def _stored_epoch(value: Any) -> float | None:
    return stored_epoch(decode_text(value) if isinstance(value, bytes) else value)


def _sqlite_on_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("kafkaops_immediate", False)
    # A bound set by the previous transaction on this pooled connection ends with it.
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _regexp_replace(
    value: str | bytes | None, pattern: str, replacement: str, flags: str
) -> str | bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return encode_text(regexp_replace_text(decode_text(value), pattern, replacement, flags))
    return regexp_replace_text(value, pattern, replacement, flags)
