"""`kafkaops db init|check`, mapped column names, the database URL, and what an unreachable
database looks like."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from kafkaops.config.settings import LOGICAL_COLUMNS, OPTIONAL_COLUMNS
from tests.helpers.config import write_config
from tests.helpers.events import event, insert_one_per_status
from tests.helpers.process import run_kafkaops


def test_init_is_idempotent_and_creates_the_index(database, cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    first = cli("db", "init")
    assert first.exit_code == 0, first.stderr
    assert first.stderr.startswith("Created table ") and "failed_kafka_events" in first.stderr
    database.insert([event(1)])
    second = cli("db", "init")
    assert second.exit_code == 0 and "already exists; left as it is" in second.stderr
    assert database.count() == 1
    indexes = sa.inspect(database.engine).get_indexes("failed_kafka_events", schema=database.schema)
    assert sorted(i["column_names"] for i in indexes) == [
        ["status", "created_at"],
        ["status", "next_retry_at"],
    ]
    check = cli("db", "check")
    assert check.exit_code == 0 and "matches the mapping" in check.stderr


def test_mapped_column_names_are_used_everywhere(make_database, cli, tmp_path, monkeypatch) -> None:
    db = make_database(
        "postgresql", {"event_key": "kafka_key", "last_error": "error_message", "status": "state"}
    )
    db.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", db)))
    db.insert([event(1, last_error="x", status="DLQ_FAILED"), event(2, last_error="x")])
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("failed_kafka_events", schema=db.schema)}
    assert {"kafka_key", "error_message", "state"} <= columns and "status" not in columns
    result = cli("failed", "--group-by", "status,last_error,event_key", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert {(g["status"], g["event_key"]) for g in json.loads(result.stdout)} == {
        ("DLQ_FAILED", "player-1"),
        ("PENDING", "player-2"),
    }


def test_check_reports_missing_and_mistyped_columns(database, cli, tmp_path, monkeypatch) -> None:
    with database.engine.begin() as conn:
        schema = f'"{database.schema}".' if database.schema else ""
        conn.execute(
            sa.text(
                f"CREATE TABLE {schema}failed_kafka_events (id INTEGER PRIMARY KEY, topic VARCHAR(255), payload TEXT, "
                "status VARCHAR(20), retry_count VARCHAR(10), created_at TIMESTAMP, updated_at TIMESTAMP)"
            )
        )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    result = cli("db", "check", "-o", "json")
    assert result.exit_code == 1
    problems = {p["column"]: p["problem"] for p in json.loads(result.stdout)}
    assert problems["retry_count"].endswith("where integer is expected")
    assert problems["next_retry_at"] == "missing"
    assert set(problems) == {
        "retry_count",
        "event_id",
        "event_key",
        "headers",
        "last_error",
        "error_type",
        "next_retry_at",
        "resolved_at",
    }
    assert "does not match the mapping: 8 problem(s)" in result.stderr


def test_check_on_a_missing_table(database, cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    result = cli("db", "check")
    assert result.exit_code == 1
    assert "table does not exist (run: kafkaops db init)" in result.stdout


def test_a_mapped_column_that_does_not_exist(make_database, cli, tmp_path, monkeypatch) -> None:
    db = make_database("postgresql")
    db.init()
    broken = make_database("postgresql", {"last_error": "no_such_column"})
    broken.schema = db.schema
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", broken)))
    result = cli("failed", "--group-by", "last_error")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the table does not match the configured mapping:")
    assert "no_such_column" in result.stderr
    assert "Hint: run 'kafkaops db check'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line_without_the_password(cli) -> None:
    result = cli(
        "failed", env={"KAFKAOPS_DATABASE_URL": "postgresql://app:hunter2-secret@127.0.0.1:1/casino"}
    )
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused\n"
    )


def test_debug_shows_the_traceback(cli) -> None:
    result = cli(
        "--debug",
        "failed",
        env={"KAFKAOPS_DATABASE_URL": "postgresql://app:hunter2-secret@127.0.0.1:1/casino"},
    )
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().endswith("connection refused")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://app:pw@db:notaport/casino",
            "Error: invalid database URL: postgresql://app@db:notaport/casino",
        ),
        ("nonsense", "Error: invalid database URL: nonsense"),
        ("mysql://app@db/casino", "Error: unsupported database 'mysql' in mysql://app@db/casino"),
    ],
)
def test_a_database_url_kafkaops_cannot_use_is_a_config_error(cli, url: str, message: str) -> None:
    result = cli("failed", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[1].startswith("Hint: kafkaops speaks PostgreSQL")


@pytest.mark.parametrize(
    ("column", "new_type", "shown", "expected"),
    [
        ("created_at", "text", "TEXT", "timestamp"),
        ("payload", "xml", "xml", "text or bytes or json"),
        ("last_error", "text[]", "text[]", "text"),
        ("updated_at", "timestamptz[]", "timestamp with time zone[]", "timestamp"),
        ("event_key", "varchar(255)[]", "character varying(255)[]", "text"),
    ],
)
@pytest.mark.slow
def test_check_names_a_column_type_the_commands_cannot_use(
    pg_database, tmp_path, column: str, new_type: str, shown: str, expected: str
) -> None:
    """Types SQLAlchemy does not know (xml) or shows as ARRAY are named as PostgreSQL names
    them, and its raw `SAWarning: Did not recognize type` never reaches the terminal."""
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    table = f'"{pg_database.schema}".failed_kafka_events'
    using = f"ARRAY[{column}]" if new_type.endswith("[]") else f"{column}::{new_type}"
    with pg_database.engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type} USING {using}"))
    done = run_kafkaops("db", "check", "-o", "json", config=config)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout) == [
        {"column": column, "physical": column, "problem": f"type {shown} where {expected} is expected"}
    ]
    assert done.stderr.splitlines() == [
        f"Error: table {pg_database.schema}.failed_kafka_events does not match the mapping: 1 problem(s)"
    ]


@pytest.mark.slow
def test_options_in_a_postgresql_url_are_kept(pg_database, tmp_path: Path) -> None:
    """`?options=-csearch_path=...` picks the schema for psql and libpq; kafkaops used to drop
    it for its own TimeZone option and read (or purge!) the table of another schema."""
    pg_database.init()
    pg_database.insert([event(n, status="DLQ_FAILED") for n in range(3)])
    url = f"{pg_database.url}?options=-csearch_path%3D{pg_database.schema}"
    result = run_kafkaops("failed", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["count"] == 3
    shown = run_kafkaops("failed", "list", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert json.loads(shown.stdout)[0]["created_at"].endswith("Z")  # kafkaops' UTC session still holds


EVERY_COLUMN_RENAMED = {c: f"svc_{c}" for c in LOGICAL_COLUMNS}


@pytest.fixture(params=["sqlite", "postgresql"])
def renamed(request, make_database, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A table whose every column has another physical name, and kafkaops configured for it."""
    db = make_database(request.param, EVERY_COLUMN_RENAMED)
    db.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "kafkaops.yaml", db)))
    return db


@pytest.mark.slow
def test_every_command_keys_rows_by_logical_names_under_a_full_mapping(renamed, cli) -> None:
    ids = insert_one_per_status(renamed)
    groups = json.loads(cli("failed", "-g", "status,event_key,error_signature", "-o", "json").stdout)
    assert groups[0]["status"] == "DLQ_FAILED"
    assert groups[0]["event_key"] == "k-1"
    assert groups[0]["error_signature"] == "Foo@<id> rejected"

    listed = json.loads(cli("failed", "list", "-o", "json").stdout)
    by_event = {r["event_id"]: r for r in listed}
    assert set(by_event["evt-1"]) == set(LOGICAL_COLUMNS) - {"payload", "headers"}
    assert by_event["evt-1"]["last_error"] == "Foo@1a2b3c rejected"
    assert by_event["evt-1"]["event_key"] == "k-1"
    assert by_event["evt-2"]["next_retry_at"] == "2026-11-27T12:00:00Z"

    rows = list(csv.DictReader(io.StringIO(cli("failed", "list", "-o", "csv").stdout)))
    assert {r["event_id"]: r["last_error"] for r in rows}["evt-3"] == "too large"

    table = cli("failed", "list").stdout
    assert "Foo@1a2b3c rejected" in table and "too large" in table

    shown = json.loads(cli("failed", "show", str(ids["evt-1"]), "-o", "json").stdout)
    assert set(shown) == set(LOGICAL_COLUMNS) | set(OPTIONAL_COLUMNS)  # db init made the optional ones
    assert (shown["event_key"], shown["last_error"], shown["retry_count"]) == (
        "k-1",
        "Foo@1a2b3c rejected",
        5,
    )
    assert shown["headers"] == {"eventType": "PlayerRegistered"}

    due = cli("retry", "--dry-run", "-o", "json")
    assert due.exit_code == 0, due.stderr
    assert [(r["id"], r["event_key"], r["attempt"]) for r in json.loads(due.stdout)] == [
        (ids["evt-2"], "player-2", 2)
    ]

    requeued = cli("failed", "requeue", str(ids["evt-1"]), "--yes", "-o", "json")
    assert requeued.exit_code == 0, requeued.stderr
    assert json.loads(requeued.stdout)["requeued"] == 1
    purged = cli("failed", "purge", "--no-archive", "--older-than", "30d", "--yes", "-o", "json")
    assert json.loads(purged.stdout)["deleted"] == 1
    t = renamed.table
    assert {r["event_id"]: r["status"] for r in renamed.rows()} == {
        "evt-1": "PENDING",
        "evt-2": "PENDING",
        "evt-3": "DLQ",
    }
    assert renamed.rows(t.c.event_id == "evt-1")[0]["retry_count"] == 0
