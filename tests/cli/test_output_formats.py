"""Every command's `-o/--output`: its help lists exactly the formats it accepts, each listed one
is accepted (and `json` is one JSON document), each other one is refused in one `Error:` line.

The commands are found by walking the CLI, so a new command with `-o` is checked too (and
fails here until it has a line in COMMANDS). A SQLite file and the embedded Kafka cluster
stand in for the real ones: no broker is needed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
import yaml
from confluent_kafka import Producer
from typer.main import get_command

from kafkaops.audit.table import audit_table, create_audit_table
from kafkaops.cli.main import app
from kafkaops.config.settings import DatabaseSettings
from kafkaops.db.engine import create_engine
from kafkaops.db.schema import build_table, init_table
from kafkaops.demo.cluster import EmbeddedKafka
from tests.conftest import Cli
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event

# Each command with -o, and the arguments that make it run to its output.
COMMANDS: dict[str, list[str]] = {
    "failed": [],
    "failed list": [],
    "failed show": ["1"],
    "failed requeue": ["--dry-run"],
    "failed park": ["--dry-run", "--status", "PENDING", "--reason", "x"],
    "failed unpark": ["--dry-run", "--status", "PARKED"],
    "failed purge": ["--dry-run", "--older-than", "1d"],
    "retry": ["--dry-run"],
    "status": [],
    "dlq list": [],
    "dlq tail": ["t.v1.dlq", "--from-beginning"],
    "dlq stats": ["t.v1.dlq"],
    "dlq replay": ["t.v1.dlq", "--dry-run"],
    "config show": [],
    "config contexts": [],
    "db check": [],
    "lag": [],
    "doctor": ["status"],
    "probe": ["--topic", "t.v1", "-n", "3"],
    "failed restore": ["archive.jsonl", "--dry-run"],
    "audit": [],
    "audit show": ["1"],
}
# A format no command writes, and every one some command writes.
EVERY_FORMAT = ["table", "json", "jsonl", "yaml", "csv", "tsv", "nagios", "prometheus", "xml"]
# status judges: 0-2 are its verdicts, and a usage error is 3 (UNKNOWN), never a verdict.
VERDICTS = {"status": (0, 1, 2), "lag": (0, 1, 2, 3), "doctor": (0, 1), "probe": (0, 1, 2)}
USAGE_EXIT = {"status": 3, "lag": 3, "probe": 3}


def _commands_with_output(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        if any(isinstance(p, click.Option) and "--output" in p.opts for p in command.params):
            yield " ".join((*path, name))
        if isinstance(command, click.Group):
            yield from _commands_with_output(command, (*path, name))


FOUND = list(_commands_with_output(get_command(app)))  # type: ignore[arg-type]


def test_every_command_with_an_output_option_is_checked_here() -> None:
    assert sorted(FOUND) == sorted(COMMANDS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One SQLite table with one PENDING row on t.v1, and a cluster whose t.v1.dlq holds two
    records."""
    root = tmp_path_factory.mktemp("formats")
    url = f"sqlite:///{root / 'events.db'}"
    settings = DatabaseSettings(url=url)
    engine = create_engine(url)
    init_table(engine, settings)
    create_audit_table(engine, settings)
    with engine.begin() as conn:
        conn.execute(sa.insert(build_table(settings)), [event(1, topic="t.v1")])
        entry = {"started_at": "2026-12-06T09:00:00.000000Z", "actor": "a@h", "version": "0", "rows": 0}
        command = {"command": "failed requeue", "command_line": "kafkaops failed requeue", "selection": "{}"}
        conn.execute(sa.insert(audit_table(settings)), [{**entry, **command, "details": "{}"}])
    engine.dispose()
    header = {"kafkaops_archive": 1, "table": "failed_kafka_events", "id_column": "id", "columns": ["id"]}
    (root / "archive.jsonl").write_text(json.dumps(header) + "\n")
    with EmbeddedKafka() as cluster:
        cluster.create_topic("t.v1")
        cluster.create_topic("t.v1.dlq")
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
        for n in range(2):
            producer.produce("t.v1.dlq", key=f"k{n}", value=json.dumps({"n": n}))
        assert producer.flush(10) == 0
        yield {"root": root, "url": url, "bootstrap": cluster.bootstrap_servers}


@pytest.fixture
def configured(world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = {"bootstrap.servers": world["bootstrap"], **FAST_CLIENT}
    path = write_config(tmp_path / "kafkaops.yaml", kafka=kafka, database={"url": world["url"]})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(world["root"])  # where `failed restore archive.jsonl` finds it


def listed_formats(cli: Cli, command: str) -> list[str]:
    """The formats the help names, once in the option's choices and once in its text: alike."""
    result = cli(*command.split(), "--help", env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    choices = re.search(r"-o, --output \[([a-z|]+)\]", text)
    assert choices is not None, text
    formats = choices.group(1).split("|")
    sentence = re.search(r"Output format: (.*?)\. \[default: (\w+)\]", text)
    assert sentence is not None, text
    named = [part.split(" (")[0] for part in re.split(r", (?![^(]*\))", sentence.group(1))]
    assert named == formats
    assert sentence.group(2) == "table"
    return formats


def _unlisted(cli: Cli, command: str) -> list[str]:
    return [f for f in EVERY_FORMAT if f not in listed_formats(cli, command)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.slow
def test_each_format_the_help_lists_is_accepted(command: str, cli: Cli, configured: None) -> None:
    for fmt in listed_formats(cli, command):
        result = cli(*command.split(), *COMMANDS[command], "-o", fmt)
        assert result.exit_code in VERDICTS.get(command, (0,)), (fmt, result.stderr)
        out = result.stdout
        if fmt == "json":
            json.loads(out)  # one document, whatever the command
        elif fmt == "jsonl":
            [json.loads(line) for line in out.splitlines()]  # every line one document
        elif fmt == "yaml":
            assert yaml.safe_load(out) is not None
        elif fmt in ("csv", "tsv"):
            assert list(csv.reader(io.StringIO(out), delimiter="," if fmt == "csv" else "\t"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.slow
def test_each_format_the_help_does_not_list_is_refused_in_one_line(
    command: str, cli: Cli, configured: None
) -> None:
    listed = listed_formats(cli, command)
    for fmt in _unlisted(cli, command):
        result = cli(*command.split(), *COMMANDS[command], "-o", fmt)
        assert result.exit_code == USAGE_EXIT.get(command, 2), (fmt, result.stderr)
        assert result.stderr == (
            f"Error: {command} does not write {fmt!r}: -o/--output takes {', '.join(listed)}\n"
        )
        assert result.stdout == ""


def test_dlq_tail_writes_records_as_table_json_or_json_lines_only(cli: Cli) -> None:
    assert listed_formats(cli, "dlq tail") == ["table", "json", "jsonl"]
