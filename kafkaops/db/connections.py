"""The one place kafkaops opens connections: the SQLAlchemy engine, the table mapping, Kafka clients.

Everything is created on first use and closed by `close()`, which the CLI registers to run at
exit. Driver exceptions are turned into one-line kafkaops errors here, naming the target
without its secret.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import (
    ConfigError,
    ConnectionLostError,
    DatabaseError,
    KafkaopsError,
    SchemaError,
    StatementTimeoutError,
)
from kafkaops.common.secrets import redact, url_for_driver, url_without_password
from kafkaops.common.timeparse import stored_epoch

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql.expression import Select

    from kafkaops.config.settings import Settings


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver kafkaops ships with. User and
    password are cut from the host where masking cuts them (`url_for_driver`)."""
    url = url_for_driver(url)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass
class Session:
    """How far one connection got, for telling a lost connection from a refused one."""

    connected: bool = False
    committing: bool = False  # the work is done and COMMIT was sent


class Connections:
    """Lazily opened connections for one resolved context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._table: Table | None = None
        self._producers: list[Producer] = []
        self._consumers: list[Consumer] = []
        self._transactional: list[Producer] = []
        self._lock_waits_bounded = False

    # -- database ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.settings.require_database_url())
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def table(self) -> Table:
        """The mapped table. With `id_type: auto` the id column takes whatever the database
        has (bigint or UUID): ids read from it go back to it as they came."""
        if self._table is None:
            from kafkaops.db.schema import build_table, live_stored_kinds

            db = self.settings.database
            # json/jsonb/bytea payloads are read as text; SQLite's times in their stored form.
            with self.connect() as conn:
                kinds = live_stored_kinds(conn, db)
            self._table = build_table(
                db, id_type="any" if db.id_type == "auto" else db.id_type, stored_kinds=kinds
            )
        return self._table

    def id_type(self) -> str:
        """`bigint` or `uuid`: configured, or read from the live table (one catalog query)."""
        from kafkaops.db.schema import detect_id_type

        db = self.settings.database
        if db.id_type != "auto":
            return db.id_type
        with self.connect() as conn:
            return detect_id_type(conn, db)

    def bound_lock_waits(self, lock: timedelta) -> None:
        """From now on every PostgreSQL session of this engine gives up waiting for a lock after
        `lock` (SQLSTATE 55P03, LOCK_NOT_AVAILABLE). Session-wide, unlike `bound_transaction`: a
        `failed` or `db` command's reads run outside any transaction it bounds. SQLite has its
        busy timeout already. Call it before the first connection; a second call changes nothing."""
        if self._lock_waits_bounded or self.dialect != "postgresql":
            return
        from sqlalchemy import event

        limits = {"lock_timeout": _ms(lock)}

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True  # a session setting, not one a rollback would undo
            try:
                _set_pg_limits(dbapi_conn.execute, limits, local=False)
            finally:
                dbapi_conn.autocommit = autocommit

        event.listen(self.engine, "connect", on_connect)
        self._lock_waits_bounded = True

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in autocommit-free mode; the caller commits what it changes."""
        session = Session()
        with _interrupt_wins(), self.db_errors(session), self.engine.connect() as conn:
            session.connected = True
            yield conn

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        `immediate`: on SQLite, take the database's write lock when the transaction begins
        (BEGIN IMMEDIATE), so that a concurrent writer waits instead of reading the same rows.
        """
        session = Session()
        with _interrupt_wins(), self.db_errors(session), self.engine.connect() as conn:
            session.connected = True
            if immediate:
                conn.execution_options(kafkaops_immediate=True)
            with conn.begin():
                yield conn
                session.committing = True

    @contextmanager
    def bounded(
        self, what: str, *, within: timedelta, lock: timedelta | None = None, immediate: bool = False
    ) -> Iterator[Connection]:
        """`begin()`, the transaction bounded by `bound_transaction`: a statement that runs past
        `within` is cancelled and raised as StatementTimeoutError (`{what} did not finish within
        Ns`) after the transaction was rolled back, so no row is changed."""
        with self.begin(immediate=immediate) as conn:
            bound_transaction(conn, statement=within, lock=lock)
            started = time.monotonic()
            try:
                yield conn
            except Exception as error:
                # 57014 is also an operator's pg_cancel_backend: only a statement that ran the
                # whole bound is called late.
                late = time.monotonic() - started >= within.total_seconds()
                if not late or sqlstate(error) != QUERY_CANCELED:
                    raise
                raise StatementTimeoutError(
                    f"{what} did not finish within {within.total_seconds():g}s (statement_timeout)",
                    hint="a trigger or another session held it up (see pg_stat_activity); "
                    "give it longer with --timeout",
                ) from error

    @contextmanager
    def db_errors(self, session: Session | None = None) -> Iterator[None]:
        from sqlalchemy import exc

        try:
            yield
        except exc.DBAPIError as error:
            raise self.translate_db_error(error, session) from error
        except exc.ArgumentError as error:
            raise ConfigError(f"invalid database URL: {self._shown_url()}: {error}", hint=URL_HINT) from None

    def translate_db_error(self, error: Any, session: Session | None = None) -> KafkaopsError:
        """One kafkaops error for a driver error, sorted by its code (SQLSTATE, SQLite's
        error code), never by its text: servers speak other languages. `session`: how far the
        connection got, so that one that breaks after it was made is not "cannot connect"."""
        reason = redact(_first_line(error.orig) if error.orig else str(error), self._secrets())
        kind = classify_db_error(error)
        if kind == "connect" and session is not None and session.connected:
            kind = "lost"  # SQLSTATE class 08, or no SQLSTATE at all: the link broke mid-way
        if kind == "lost":
            committing = session is not None and session.committing
            when = "while committing" if committing else "during the command"
            return ConnectionLostError(
                f"lost the connection to the database {when}: {reason}",
                during_commit=committing,
            )
        if kind == "connect":
            return DatabaseError(f"cannot connect to database {self._shown_url()}: {_short_reason(reason)}")
        if kind == "schema":
            return SchemaError(
                f"the table does not match the configured mapping: {reason}",
                hint="run 'kafkaops db check' to see which columns differ",
            )
        if kind == "timeout":
            return DatabaseError(
                f"the database did not answer in time: {reason}",
                hint="another session may hold a lock on the table (see pg_stat_activity / pg_locks)",
            )
        return DatabaseError(f"database error: {reason}")

    def _shown_url(self) -> str:
        return url_without_password(self.settings.database.url or "")

    def _secrets(self) -> list[str]:
        return self.settings.secret_values()

    # -- Kafka ------------------------------------------------------------------------------

    def producer(self, **overrides: Any) -> Producer:
        from kafkaops.kafka import client as kafka

        producer = kafka.producer(self.settings.require_kafka(), **overrides)
        self._producers.append(producer)
        return producer

    def consumer(self, *, group_id: str | None = None, **overrides: Any) -> Consumer:
        from kafkaops.kafka import client as kafka

        consumer = kafka.consumer(self.settings.require_kafka(), group_id=group_id, **overrides)
        self._consumers.append(consumer)
        return consumer

    def transactional_producer(self, transactional_id: str, **overrides: Any) -> Producer:
        """A producer with ``transactional.id`` set (init_transactions is the caller's);
        close() aborts a transaction it left open."""
        producer = self.producer(**{"transactional.id": transactional_id, **overrides})
        self._transactional.append(producer)
        return producer

    def admin(self, **overrides: Any) -> AdminClient:
        from kafkaops.kafka import client as kafka

        return kafka.admin(self.settings.require_kafka(), **overrides)

    @property
    def kafka_props(self) -> dict[str, str]:
        return dict(self.settings.require_kafka())

    def close(self) -> None:
        from contextlib import suppress

        for producer in self._transactional:
            # An open transaction left behind would hold back read_committed consumers of
            # its partitions until the broker's transaction timeout; none open is a no-op.
            with suppress(Exception):
                producer.abort_transaction(5)
        self._transactional.clear()
        for consumer in self._consumers:
            with suppress(Exception):  # already closed, or the cluster went away
                consumer.close()
        self._consumers.clear()
        for producer in self._producers:
            # Anything still queued was never acknowledged; callers flush what they mean to send.
            with suppress(Exception):  # a fenced (fatal) producer refuses even this
                producer.purge()
                producer.flush(0)
        self._producers.clear()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# PostgreSQL's timeouts are int4 milliseconds: a longer one (25 days and up) is refused by SET,
# so a longer bound is held to the longest the server takes.
PG_MAX_TIMEOUT_MS = 2**31 - 1
QUERY_CANCELED = "57014"  # SQLSTATE: statement_timeout (or a cancel request) stopped the statement
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE: lock_timeout fired while waiting for a lock


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
    ms = _ms(statement)
    lock_ms = _ms(lock) if lock is not None else max(ms - min(ms // 10, 1000), 1)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {lock_ms}")
        return
    if conn.dialect.name != "postgresql":
        return
    limits = {"statement_timeout": ms, "lock_timeout": lock_ms}
    if idle is not None:
        limits["idle_in_transaction_session_timeout"] = _ms(idle)
    _set_pg_limits(conn.exec_driver_sql, limits, local=True)


def _set_pg_limits(
    execute: Callable[[str, dict[str, str]], Any], limits: dict[str, int], *, local: bool
) -> None:
    """The one way kafkaops sets PostgreSQL's timeouts: one round trip of set_config, which takes
    bound parameters (SET does not). `local`: for the current transaction only (SET LOCAL)."""
    scope = "true" if local else "false"
    execute(
        "SELECT " + ", ".join(f"set_config('{name}', %({name})s, {scope})" for name in limits),
        {name: str(value) for name, value in limits.items()},
    )


def _ms(duration: timedelta) -> int:
    return min(max(int(duration.total_seconds() * 1000), 1), PG_MAX_TIMEOUT_MS)


@contextmanager
def _interrupt_wins() -> Iterator[None]:
    """Ctrl-C (or a signal turned into KeyboardInterrupt) in the middle of a statement leaves
    the driver's connection busy, and the rollback on the way out then fails ("can't change
    'autocommit' now"): that error must not replace the interrupt, which the commands report
    as what it is (exit 130, with what was done). The uncommitted transaction dies with the
    connection."""
    try:
        yield
    except Exception as error:
        interrupt = _interrupt_behind(error)
        if interrupt is None:
            raise
        raise interrupt from None


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error.__cause__, error.__context__]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
    return None


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
        # limits of statements and lock waits are set by `_set_pg_limits` alone.
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
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # PostgreSQL has regexp_replace; give SQLite the same function so one query serves both.
    dbapi_conn.create_function("regexp_replace", 4, _regexp_replace, deterministic=True)
    # Times as the service stored them (epoch ms, ISO text...) compared as instants.
    dbapi_conn.create_function("kafkaops_time", 1, _stored_epoch, deterministic=True)
    dbapi_conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    # LIKE (topic globs) is case-sensitive on PostgreSQL; make SQLite agree.
    dbapi_conn.execute("PRAGMA case_sensitive_like = ON")
    # --error is case-insensitive (lower() LIKE lower()); SQLite's lower() only folds ASCII.
    dbapi_conn.create_function("lower", 1, _lower, deterministic=True)
    # kafkaops emits BEGIN itself (below), as SQLAlchemy's docs recommend for pysqlite: the
    # driver would otherwise begin only at the first write, after a claim's SELECT.
    dbapi_conn.isolation_level = None
    # SQLite stores whatever bytes it is given: one event_key that is not UTF-8 must not make
    # every query fail. Such text is read as `decode_text` says, by every command.
    dbapi_conn.text_factory = decode_text


def decode_text(raw: bytes) -> str:
    """Text SQLite stored, as every command and every SQL function reads it: UTF-8, each byte
    that is not UTF-8 kept as a lone surrogate (surrogateescape, `\\xff` -> U+DCFF), so that it
    goes back out as the very byte. JSON and YAML show it as `\\udcff`, tables and tsv as
    `\\xff` (`escape.safe_text`), piped csv as the byte; `retry` publishes the stored bytes."""
    return raw.decode("utf-8", "surrogateescape")


def encode_text(text: str) -> bytes:
    """The stored bytes of text read by `decode_text`."""
    return text.encode("utf-8", "surrogateescape")


def is_utf8(text: str) -> bool:
    """False for text `decode_text` read from bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


_PG_FLAGS = {"i": re.IGNORECASE}


def _regexp_replace(
    value: str | bytes | None, pattern: str, replacement: str, flags: str
) -> str | bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return encode_text(regexp_replace_text(decode_text(value), pattern, replacement, flags))
    return regexp_replace_text(value, pattern, replacement, flags)


def regexp_replace_text(value: str, pattern: str, replacement: str, flags: str) -> str:
    re_flags = re.ASCII  # as PostgreSQL's classes and case folding are
    for flag in flags:
        re_flags |= _PG_FLAGS.get(flag, 0)
    count = 0 if "g" in flags else 1
    return re.sub(pattern.replace(r"\y", r"\b"), replacement, value, count=count, flags=re_flags)


def _first_line(orig: BaseException) -> str:
    text = str(orig).strip()
    return text.splitlines()[0].strip() if text else type(orig).__name__


# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) by what they mean
# to an operator. Class 08 (connection exceptions) is connect as a whole.
_PG_CONNECT = frozenset({"28P01", "28000", "3D000", "57P03", "53300"})
_PG_LOST = frozenset({"57P01", "57P02", "25P03", "25P04"})  # shut down, idle-session timeouts
_PG_TIMEOUT = frozenset({QUERY_CANCELED, LOCK_NOT_AVAILABLE})  # statement timeout / cancel, lock timeout
_PG_SCHEMA = frozenset({"42P01", "42703", "3F000", "42804", "42883", "22P02"})
# SQLite's primary result codes (sqlite3 exposes them from Python 3.11).
_SQLITE_CANTOPEN, _SQLITE_NOTADB, _SQLITE_AUTH = 14, 26, 23
_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED = 1, 5, 6


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE behind an error: a psycopg error's own, the one a SQLAlchemy error wraps
    (`.orig`), or the one behind a kafkaops error (its `__cause__`, as `translate_db_error`
    raises them). None when no server gave one: the error is the client's own."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for candidate in (error, getattr(error, "orig", None)):
            code = getattr(candidate, "sqlstate", None)
            if code is None:
                code = getattr(getattr(candidate, "diag", None), "sqlstate", None)
            if isinstance(code, str):
                return code
        error = error.__cause__
    return None


def classify_db_error(error: Any) -> str:
    """connect | lost | timeout | schema | other, from the error's code.

    A psycopg error without a SQLSTATE comes from the client itself (no server to answer, a
    refused or dropped connection); SQLAlchemy wraps errors raised while connecting with no
    statement. kafkaops' SQL is fixed, so SQLite's generic SQLITE_ERROR can only mean the
    table does not match the mapping (no such table or column).
    """
    from sqlalchemy import exc

    orig = getattr(error, "orig", None)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        primary = sqlite_code & 0xFF
        if primary in (_SQLITE_CANTOPEN, _SQLITE_NOTADB, _SQLITE_AUTH):
            return "connect"
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return "timeout"
        if primary == _SQLITE_ERROR:
            return "schema"
        return "other"
    code = sqlstate(orig)
    if code is None:
        if getattr(error, "connection_invalidated", False) and getattr(error, "statement", None):
            return "lost"
        if isinstance(error, exc.OperationalError | exc.InterfaceError):
            return "connect" if not getattr(error, "statement", None) else "lost"
        return "other"
    if code.startswith("08") or code in _PG_CONNECT:
        return "connect"
    if code in _PG_LOST:
        return "lost"
    if code in _PG_TIMEOUT:
        return "timeout"
    if code in _PG_SCHEMA:
        return "schema"
    return "other"


def _short_reason(reason: str) -> str:
    """The part of a connection error worth a line (presentation only: the error is already
    classified by its code); any text the patterns do not know is shown whole."""
    match = re.search(r'(password authentication failed for user "[^"]*")', reason)
    if match:
        return match.group(1)
    match = re.search(r'(database "[^"]*" does not exist)', reason)
    if match:
        return match.group(1)
    # psycopg prefixes: 'connection failed: connection to server at "h" (ip), port p failed: why'
    short = reason.rsplit("failed: ", 1)[-1].strip() or reason
    short = short.split("FATAL:", 1)[-1].strip() or short
    return short[:1].lower() + short[1:]
