"""The read-only gate: every command says whether it writes to the database or Kafka
(`kafkaops.cli.gate`), and in a read-only context each one that does is refused before it
opens anything: exit 2, `context prod is read-only`, and the database is as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
import typer.main

from kafkaops.cli.gate import declared_commands, writes_data
from kafkaops.cli.main import app
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import free_port
from tests.helpers.events import insert_one_per_status

ROOT = typer.main.get_command(app)
COMMANDS = declared_commands(ROOT)  # type: ignore[arg-type]
WRITERS = [path for path, command in COMMANDS if writes_data(command)]


def _arguments(command: click.Command) -> list[str]:
    """The least a command's parser takes: a value for each required argument and option."""
    given: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param, click.Option):
            given.append(param.opts[0])
        given.append("1")
    return given


def _snapshot(db: Any, tmp_path: Path) -> Any:
    """Everything a write could change: the tables there are and every row of them."""
    with db.engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names(schema=db.schema))
        rows = [sorted(map(repr, conn.execute(sa.select(db.table)).all()))]
    files = sorted(p.name for p in tmp_path.iterdir())
    digest = hashlib.sha256((tmp_path / "events.db").read_bytes()).hexdigest() if db.kind == "sqlite" else ""
    return names, rows, files, digest


def test_every_command_says_whether_it_writes() -> None:
    """A new command that does not say `@writes` or `@no_writes` fails here, so none slips past
    the gate unclassified."""
    undeclared = [path for path, command in COMMANDS if writes_data(command) is None]
    assert undeclared == [], f"declare @writes or @no_writes (kafkaops.cli.gate) on: {undeclared}"
    # The list: what writes to the database or to Kafka is gated; config files are not.
    assert {"failed requeue", "failed purge", "dlq replay", "dlq ensure", "retry", "db init"} <= set(WRITERS)
    assert "config use-context" not in WRITERS


@pytest.fixture
def read_only(database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:  # type: ignore[no-untyped-def]
    database.init()
    insert_one_per_status(database)
    kafka = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}  # nobody there
    config = write_config(tmp_path / "kafkaops.yaml", database, kafka=kafka, current="prod", readonly=True)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    return database


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", WRITERS)
def test_each_command_that_writes_is_refused_in_a_read_only_context(
    read_only: Any, tmp_path: Path, cli: Any, path: str
) -> None:
    command = dict(COMMANDS)[path]
    before = _snapshot(read_only, tmp_path)
    yes = ["--yes"] if _takes(command, "--yes") else []  # refused before anyone would be asked
    result = cli(*path.split(), *_arguments(command), *yes)
    # probe answers as status does (a Nagios check): a refusal is UNKNOWN (3), elsewhere usage (2).
    assert result.exit_code == (3 if path == "probe" else 2), result.stderr
    assert "Error: context prod is read-only" in result.stderr
    assert f"`kafkaops {path}`" in result.stderr
    assert result.stdout == ""
    assert _snapshot(read_only, tmp_path) == before


def _takes(command: click.Command, option: str) -> bool:
    return any(option in getattr(p, "opts", ()) for p in command.params)


@pytest.mark.timeout(60)
def test_kafkaops_readonly_makes_any_context_read_only_and_cannot_lift_the_files(
    configured: Any, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_one_per_status(configured)
    refused = cli("failed", "requeue", "--yes", env={"KAFKAOPS_READONLY": "1"})
    assert refused.exit_code == 2
    assert "Error: context test is read-only" in refused.stderr
    assert "$KAFKAOPS_READONLY is set" in refused.stderr
    assert configured.count(configured.table.c.status == "PENDING") == 1
    # Reading goes on as before.
    listed = cli("failed", "list", "-o", "json", env={"KAFKAOPS_READONLY": "1"})
    assert listed.exit_code == 0 and listed.stdout.count('"id"') == 4
    config = write_config(tmp_path / "ro.yaml", configured, current="prod", readonly=True)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    still = cli("failed", "requeue", "--yes", env={"KAFKAOPS_READONLY": "0"})
    assert still.exit_code == 2 and "readonly: true in" in still.stderr


@pytest.mark.parametrize(("value", "expected"), [("maybe", 2), ("0", 0), ("", 0)])
def test_a_kafkaops_readonly_that_says_neither_is_refused(
    configured: Any, cli: Any, value: str, expected: int
) -> None:
    result = cli("failed", "requeue", "--yes", env={"KAFKAOPS_READONLY": value})
    assert result.exit_code == expected, result.stderr
    if expected:
        assert "Error: $KAFKAOPS_READONLY must be 1 or 0" in result.stderr


def test_readonly_must_be_true_or_false(
    database: Any, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "kafkaops.yaml", database, readonly="yes please")
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    result = cli("failed", "list")
    assert result.exit_code == 2
    assert "Error: readonly in context 'test' must be true or false, not 'yes please'" in result.stderr
