"""The one place kafkaops opens connections: the SQLAlchemy engine, the table mapping, Kafka clients.

Everything is created on first use and closed by `close()`, which the CLI registers to run at
exit. Driver exceptions are turned into one-line kafkaops errors here (`sqlerrors`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ConfigError, KafkaopsError, StatementTimeoutError
from kafkaops.common.secrets import url_without_password
from kafkaops.db import sqlerrors
from kafkaops.db.engine import URL_HINT, create_engine
from kafkaops.db.sqlerrors import QUERY_CANCELED, sqlstate
from kafkaops.db.transactions import (
    bound_transaction,
    interrupt_wins,
    interrupted,
    release_frames,
    set_pg_limits,
    timeout_ms,
)

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine

    from kafkaops.config.settings import Settings


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
            from kafkaops.db import schema  # SQLAlchemy's schema types: not for commands without a table

            db = self.settings.database
            # json/jsonb/bytea payloads are read as text; SQLite's times in their stored form.
            # The optional columns (DLQ record, resolved_by) where the table has them.
            with self.connect() as conn:
                declared = schema.declared_types(conn, db)  # one catalog query for both
                kinds = schema.live_stored_kinds(conn, db, declared=declared)
                optional = schema.live_optional_columns(conn, db, declared=declared)
            self._table = schema.build_table(
                db,
                id_type="any" if db.id_type == "auto" else db.id_type,
                stored_kinds=kinds,
                optional=optional,
            )
        return self._table

    def id_type(self) -> str:
        """`bigint` or `uuid`: configured, or read from the live table (one catalog query)."""
        from kafkaops.db import schema

        db = self.settings.database
        if db.id_type != "auto":
            return db.id_type
        with self.connect() as conn:
            return schema.detect_id_type(conn, db)

    def bound_lock_waits(self, lock: timedelta) -> None:
        """From now on every PostgreSQL session of this engine gives up waiting for a lock after
        `lock` (SQLSTATE 55P03, LOCK_NOT_AVAILABLE). Session-wide, unlike `bound_transaction`: a
        `failed` or `db` command's reads run outside any transaction it bounds. SQLite has its
        busy timeout already. Call it before the first connection; a second call changes nothing."""
        if self._lock_waits_bounded or self.dialect != "postgresql":
            return
        from sqlalchemy import event

        limits = {"lock_timeout": timeout_ms(lock)}

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True  # a session setting, not one a rollback would undo
            try:
                set_pg_limits(dbapi_conn.execute, limits, local=False)
            finally:
                dbapi_conn.autocommit = autocommit

        event.listen(self.engine, "connect", on_connect)
        self._lock_waits_bounded = True

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in autocommit-free mode; the caller commits what it changes."""
        session = Session()
        with interrupt_wins(), self.db_errors(session), self.engine.connect() as conn:
            session.connected = True
            yield conn

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        `immediate`: on SQLite, take the database's write lock when the transaction begins
        (BEGIN IMMEDIATE), so that a concurrent writer waits instead of reading the same rows.
        """
        session = Session()
        with interrupt_wins(), self.db_errors(session), self.engine.connect() as conn:
            session.connected = True
            if immediate:
                conn.execution_options(kafkaops_immediate=True)
            try:
                with conn.begin():
                    yield conn
                    session.committing = True
            except BaseException as error:
                if interrupted(error):
                    # Cut mid-statement: the driver's connection may still hold its statement
                    # and its locks (SQLite's write lock). It dies now, and its uncommitted
                    # transaction with it, so what runs next (the journal's outcome) can write.
                    # The frames the interrupt left behind hold the driver's cursor, which
                    # would keep a closed SQLite connection (and its lock) alive: let them go.
                    release_frames(error)
                    with suppress(Exception):
                        conn.invalidate()
                raise

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
        return sqlerrors.translate_db_error(
            error,
            connected=session is not None and session.connected,
            committing=session is not None and session.committing,
            shown_url=self._shown_url(),
            secrets=self._secrets(),
        )

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
