"""Database errors sorted by their codes (SQLSTATE, SQLite's result codes), never their text.

Each case provokes the real error on a real server or file, then checks what kafkaops makes of
it: the kind, and the one line a user sees. A server that answers in German or Japanese gives
the same codes, so the same kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.config import Overrides, load_settings
from kafkaops.connections import Connections, classify_db_error, create_engine, sqlstate
from kafkaops.errors import DatabaseError, SchemaError


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
    from tests.conftest import write_config

    db = make_database("sqlite")
    db.init()
    broken = make_database("sqlite", {"last_error": "no_such_column"})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", broken)))
    result = cli("failed", "--group-by", "last_error")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the table does not match the configured mapping:")
    assert "Hint: run 'kafkaops db check'" in result.stderr
