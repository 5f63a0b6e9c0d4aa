"""Database errors sorted by their codes (SQLSTATE, SQLite's result codes), never their text.

Each case provokes the real error on a real server or file, then checks what kafkaops makes of
it: the kind, and the one line a user sees. A server that answers in German or Japanese gives
the same codes, so the same kinds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.common.errors import DatabaseError, SchemaError
from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.connections import Connections
from kafkaops.db.engine import create_engine
from kafkaops.db.sqlerrors import classify_db_error, sqlstate
from tests.helpers.config import write_config
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops, start_kafkaops


def provoke(url: str, run: Callable[[Any], Any]) -> sa.exc.DBAPIError:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            run(conn)
    except sa.exc.DBAPIError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError("no error")


def _sql(*statements: str) -> Callable[[Any], None]:
    def run(conn: Any) -> None:
        for statement in statements:
            conn.execute(sa.text(statement))

    return run


@pytest.mark.parametrize(
    ("run", "code", "kind"),
    [
        (_sql("SELECT no_such_column FROM pg_class"), "42703", "schema"),
        (_sql("SELECT 1 FROM no_such_table"), "42P01", "schema"),
        (_sql("SET statement_timeout = 50", "SELECT pg_sleep(5)"), "57014", "timeout"),
        (_sql("SELECT pg_terminate_backend(pg_backend_pid())"), "57P01", "lost"),
        (_sql("CREATE TEMP TABLE v (s varchar(3))", "INSERT INTO v VALUES ('toolong')"), "22001", "other"),
    ],
    ids=["no-column", "no-table", "statement-timeout", "admin-shutdown", "value-too-long"],
)
def test_postgresql_errors_are_sorted_by_sqlstate(pg_url: str, run: Any, code: str, kind: str) -> None:
    error = provoke(pg_url, run)
    assert sqlstate(error.orig) == code
    assert classify_db_error(error) == kind


def test_a_lock_wait_is_a_timeout(pg_database) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    table = f'"{pg_database.schema}".failed_kafka_events'
    with pg_database.engine.connect() as holder:
        holder.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        error = provoke(pg_database.url, _sql("SET lock_timeout = 100", f"SELECT * FROM {table}"))
        holder.rollback()
    assert (sqlstate(error.orig), classify_db_error(error)) == ("55P03", "timeout")
    # One reading of the code, whatever wraps the driver's error: SQLAlchemy's, or the kafkaops
    # error translated from it (which the `failed` commands' lock message reads).
    translated = Connections(load_settings(Overrides(database_url=pg_database.url))).translate_db_error(error)
    try:
        raise translated from error
    except DatabaseError as raised:
        assert (sqlstate(error), sqlstate(raised)) == ("55P03", "55P03")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda url: url.set(database="no_such_db"), 'database "no_such_db" does not exist'),
        (lambda url: url.set(username="no_such_role"), 'role "no_such_role" does not exist'),
    ],
    ids=["no-database", "no-role"],
)
def test_connection_refusals_by_the_server_are_connect_errors(pg_url: str, change: Any, reason: str) -> None:
    # libpq reports a refused login without a SQLSTATE to the client: raised while connecting
    # (no statement) is what makes it a connect error, whatever the server's language.
    url = change(sa.engine.make_url(pg_url)).render_as_string(hide_password=False)
    error = provoke(url, _sql("SELECT 1"))
    assert classify_db_error(error) == "connect"
    translated = Connections(load_settings(Overrides(database_url=url))).translate_db_error(error)
    assert isinstance(translated, DatabaseError) and not isinstance(translated, SchemaError)
    assert translated.message.startswith("cannot connect to database postgresql://")
    assert reason in translated.message


def test_no_server_at_all_is_a_connect_error(closed_port: int) -> None:
    error = provoke(f"postgresql://app@127.0.0.1:{closed_port}/db", _sql("SELECT 1"))
    assert sqlstate(error.orig) is None  # the client's own error: no server to give a code
    assert classify_db_error(error) == "connect"


@pytest.mark.parametrize(
    ("run", "kind"),
    [
        (_sql("SELECT no_such_column FROM sqlite_master"), "schema"),
        (_sql("SELECT 1 FROM no_such_table"), "schema"),
    ],
)
def test_sqlite_errors_are_sorted_by_their_result_code(tmp_path, run: Any, kind: str) -> None:  # type: ignore[no-untyped-def]
    error = provoke(f"sqlite:///{tmp_path / 'x.db'}", run)
    assert error.orig.sqlite_errorname == "SQLITE_ERROR"  # type: ignore[union-attr]
    assert classify_db_error(error) == kind


def test_sqlite_file_that_cannot_be_opened_is_a_connect_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    error = provoke(f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}", _sql("SELECT 1"))
    assert error.orig.sqlite_errorname == "SQLITE_CANTOPEN"  # type: ignore[union-attr]
    assert classify_db_error(error) == "connect"


def test_a_mapping_error_on_sqlite_is_a_schema_error(make_database, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.config import write_config

    db = make_database("sqlite")
    db.init()
    broken = make_database("sqlite", {"last_error": "no_such_column"})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", broken)))
    result = cli("failed", "--group-by", "last_error")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the table does not match the configured mapping:")
    assert "Hint: run 'kafkaops db check'" in result.stderr


def _kafkaops_waiting_on_a_lock(
    pg_database, args: list[str], env: dict[str, str], mode: str
) -> tuple[int, str, int]:  # type: ignore[no-untyped-def]
    """Runs kafkaops while another session holds the table (`mode`: ACCESS EXCLUSIVE stops
    reads, SHARE only writes), terminates kafkaops' backend as it waits (what `pg_terminate_backend` or a failover does mid-command): exit code, stderr, the
    number of rows left in each status as a checksum."""
    import time

    table = f'"{pg_database.schema}".failed_kafka_events'
    holder = pg_database.engine.connect()
    holder.execute(sa.text(f"LOCK TABLE {table} IN {mode} MODE"))
    proc = start_kafkaops(*args, env=env)
    try:
        with pg_database.engine.connect() as conn:
            for _ in range(100):
                killed = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'kafkaops' AND wait_event_type = 'Lock'"
                    )
                ).all()
                conn.rollback()  # pg_stat_activity is a snapshot per transaction
                if killed:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("kafkaops never waited on the lock")
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        holder.rollback()
        holder.close()
    return proc.returncode, err, pg_database.count()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "mode", "says"),
    [
        (["failed", "list"], "ACCESS EXCLUSIVE", ""),
        (["failed", "-g", "status"], "ACCESS EXCLUSIVE", ""),
        (["failed", "requeue", "--yes"], "SHARE", "; nothing was requeued (the transaction was rolled back)"),
        (
            ["failed", "purge", "--no-archive", "--older-than", "1d", "--yes", "--batch-size", "1"],
            "SHARE",
            "; nothing was deleted (the transaction was rolled back)",
        ),
    ],
    ids=["list", "group", "requeue", "purge"],
)
@pytest.mark.slow
def test_a_connection_lost_mid_command_says_so_and_what_was_written(
    pg_database, tmp_path, args: list[str], mode: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from tests.helpers.config import write_config
    from tests.helpers.events import NOW, event

    pg_database.init()
    old = NOW - timedelta(days=30)
    pg_database.insert(
        [event(1, status="DLQ_FAILED"), event(2, status="RESOLVED", created_at=old, updated_at=old)]
    )
    config = write_config(tmp_path / "k.yaml", pg_database)
    code, err, left = _kafkaops_waiting_on_a_lock(pg_database, args, {"KAFKAOPS_CONFIG": str(config)}, mode)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert lines == [
        "Error: lost the connection to the database during the command: "
        f"terminating connection due to administrator command{says}"
    ], err
    assert left == 2
    assert {r["status"] for r in pg_database.rows()} == {"DLQ_FAILED", "RESOLVED"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("committing", [False, True], ids=["mid-statement", "at-commit"])
def test_a_connection_that_breaks_after_it_was_made_is_lost_not_cannot_connect(
    pg_url: str, committing: bool
) -> None:
    """The backend is gone before kafkaops' next statement (or its COMMIT): libpq then reports
    no SQLSTATE, as for a server that never answered; having connected is what tells them apart."""
    from kafkaops.common.errors import ConnectionLostError

    conns = Connections(load_settings(Overrides(database_url=pg_url)))
    killer = create_engine(pg_url)
    try:
        with pytest.raises(ConnectionLostError) as lost, conns.begin() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with killer.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                other.commit()
            time.sleep(0.2)
            if not committing:
                conn.execute(sa.text("SELECT 1"))
    finally:
        killer.dispose()
        conns.close()
    assert lost.value.message.startswith(
        "lost the connection to the database while committing: "
        if committing
        else "lost the connection to the database during the command: "
    ), lost.value.message
    assert lost.value.during_commit is committing


class CuttableLink:
    """A TCP relay on loopback between kafkaops and PostgreSQL whose connections the test can
    cut, as a network drop or a server killed outright does: the client sees EOF, no error."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket
        import threading

        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        import socket

        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("committing", [False, True], ids=["mid-statement", "at-commit"])
def test_a_link_cut_after_connecting_is_lost_not_cannot_connect(pg_url: str, committing: bool) -> None:
    from kafkaops.common.errors import ConnectionLostError

    url = sa.engine.make_url(pg_url)
    link = CuttableLink((url.host or "127.0.0.1", url.port or 5432))
    relayed = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    conns = Connections(load_settings(Overrides(database_url=relayed)))
    try:
        with pytest.raises(ConnectionLostError) as lost, conns.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            link.cut()
            if not committing:
                conn.execute(sa.text("SELECT 1"))
    finally:
        link.close()
        conns.close()
    when = "while committing" if committing else "during the command"
    assert lost.value.message.startswith(f"lost the connection to the database {when}: "), lost.value.message


def test_an_error_raised_while_unwinding_an_interrupt_does_not_replace_it() -> None:
    """Ctrl-C mid-statement leaves psycopg's connection busy; the rollback on the way out of
    Connections.connect()/begin() then fails ("can't change 'autocommit' now", seen about once
    in 25 interrupted purges). The interrupt is what the user must see (exit 130 and what was
    done), so it wins over an error raised while unwinding it, however wrapped."""
    from kafkaops.db.transactions import interrupt_wins

    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as raised, interrupt_wins():
        try:
            raise interrupt
        finally:
            try:
                raise RuntimeError("can't change 'autocommit' now: connection in transaction status ACTIVE")
            except RuntimeError as cleanup:
                raise DatabaseError("database error: can't change 'autocommit' now") from cleanup
    assert raised.value is interrupt
    # An error of its own is not turned into an interrupt.
    with pytest.raises(DatabaseError), interrupt_wins():
        raise DatabaseError("database error: connection refused")


@pytest.mark.parametrize(
    "args", [("failed",), ("failed", "purge", "--no-archive", "--older-than", "1d", "--yes"), ("db", "check")]
)
@pytest.mark.slow
def test_a_table_locked_by_a_migration_gives_up_with_one_error_instead_of_hanging(
    pg_database, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A session holding ACCESS EXCLUSIVE (ALTER TABLE, VACUUM FULL): every command gives up after
    its lock timeout (database.lock_timeout, here 1 s of the default 10 s) with one clear line,
    exit 1, and changes nothing. The subprocess timeout makes a hang a failure, not a stuck
    suite."""
    from datetime import timedelta

    from tests.helpers.events import NOW

    pg_database.init()
    pg_database.insert([event(1, status="RESOLVED", updated_at=NOW - timedelta(days=40))])
    config = write_config(tmp_path / "kafkaops.yaml", pg_database, database={"lock_timeout": "1500ms"})
    holder = pg_database.engine.connect()
    try:
        holder.execute(sa.text("SET lock_timeout = '5s'"))
        holder.execute(
            sa.text(f'LOCK TABLE "{pg_database.schema}".failed_kafka_events IN ACCESS EXCLUSIVE MODE')
        )
        started = time.monotonic()
        result = run_kafkaops(*args, config=config, timeout=45)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0] == (
        "Error: the table is locked by another session; gave up after waiting 1.5 s"
    )
    assert result.stderr.splitlines()[1].startswith("Hint: a migration, VACUUM FULL")
    assert 1.5 <= waited < 9  # it did wait for the lock, as long as it says, and no longer
    assert pg_database.count() == 1


@pytest.mark.slow
def test_a_connection_lost_mid_stream_is_one_error_line_without_traceback(
    pg_database, tmp_path: Path
) -> None:
    pg_database.init()
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{pg_database.schema}".failed_kafka_events '
                "(topic, payload, status, retry_count, created_at, updated_at, last_error) "
                "SELECT 't', '{}', 'PENDING', 0, now(), now(), repeat('e', 200) FROM generate_series(1, 200000)"
            )
        )
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    proc = start_kafkaops("failed", "list", "--all", "-o", "jsonl", config=config)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith('{"id"')  # streaming has begun
        with pg_database.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kafkaops' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert killed
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
