"""`kafkaops db init|check`, mapped column names, and what an unreachable database looks like."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import write_config
from tests.events import event


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(config)
    argv = [sys.executable, "-m", "kafkaops", "db", "check", "-o", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout) == [
        {"column": column, "physical": column, "problem": f"type {shown} where {expected} is expected"}
    ]
    assert done.stderr.splitlines() == [
        f"Error: table {pg_database.schema}.failed_kafka_events does not match the mapping: 1 problem(s)"
    ]
