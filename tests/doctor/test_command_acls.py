"""Each command on the secure broker as a least-privilege principal: with exactly the ACLs of
kafkaops' table (kafkaops/doctor/acls.py, which docs/acls.md shows) it does its work, and with
any one of them removed it fails, without charging an attempt to a row."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafkaops.doctor import acls
from tests.conftest import Cli, TestDatabase
from tests.helpers.acl_scenario import DLQ_RECORDS, World, end_offset, make_world
from tests.helpers.secure_broker import KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _run(cli: Cli, world: World, command: str) -> Any:
    args = {
        "status": ["status", "-o", "json"],
        "retry": ["retry"],
        "dlq list": ["dlq", "list", "-o", "json"],
        "dlq tail": ["dlq", "tail", world.dlq, "--from-beginning", "-o", "jsonl"],
        "dlq stats": ["dlq", "stats", world.dlq, "-o", "json"],
        "probe": ["probe", "--topic", world.probe, "-n", "5", "-o", "json"],
        "dlq ensure": ["dlq", "ensure", world.bare],
        "dlq replay": ["dlq", "replay", world.dlq, "--yes", "-o", "json"],
    }[command]
    return cli(*args)


def _did_its_work(world: World, command: str, result: Any) -> None:
    """What each command leaves behind when it worked."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    if command == "status":
        checks = {c["name"]: c["status"] for c in json.loads(result.stdout)["checks"]}
        assert checks["dlq_topics"] == "OK"
    elif command == "retry":
        assert world.attempts() == {
            "evt-0": ("RESOLVED", 0),
            "evt-1": ("RESOLVED", 0),
            "evt-big": ("DLQ", 6),
        }
    elif command == "dlq list":
        rows = {r["topic"]: r for r in json.loads(result.stdout)}
        assert rows[world.dlq]["messages"] == DLQ_RECORDS
        assert rows[world.dlq]["original_exists"] is True
    elif command == "dlq tail":
        # Exactly the records: never an error event of the read-only consumer's group (the
        # principal has no Group ACL) shown as one.
        tailed = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(tailed) == DLQ_RECORDS and all(r["offset"] >= 0 for r in tailed)
    elif command == "dlq stats":
        assert sum(g["count"] for g in json.loads(result.stdout)) == DLQ_RECORDS, result.stdout
    elif command == "probe":
        probed = json.loads(result.stdout)
        assert (probed["acked"], probed["received"], probed["lost"]) == (5, 5, 0)
    elif command == "dlq ensure":
        assert world.bare + ".dlq" in world.broker.admin().list_topics(timeout=10).topics
    elif command == "dlq replay":
        assert json.loads(result.stdout)["replayed"] == DLQ_RECORDS
        assert end_offset(world.broker, world.source) >= DLQ_RECORDS  # and a commit marker


# Permissions that only let a command see more: without one, the command still does its work
# and says what it could not see (exit 0), never that a topic is missing.
def _list_without_dlq_describe(world: World, result: Any) -> None:
    assert f"not authorized to describe its DLQ topic {world.dlq}" in result.stderr
    assert "no DLQ topic" not in result.stderr


def _list_without_original_describe(world: World, result: Any) -> None:
    rows = {r["topic"]: r for r in json.loads(result.stdout)}
    assert rows[world.dlq]["original_exists"] is None  # NOT AUTHORIZED in the table


DEGRADED: dict[tuple[str, str], Callable[[World, Any], None]] = {
    ("dlq list", "{dlq}"): _list_without_dlq_describe,
    ("dlq list", "{original}"): _list_without_original_describe,
}
KNOWN: dict[tuple[str, str | None], pytest.MarkDecorator] = {}


def _case(command: str, index: int | None) -> Any:
    if index is None:
        return pytest.param(command, None, id=f"{command}-all", marks=KNOWN.get((command, None), ()))
    p = acls.PERMISSIONS[command][index]
    mark = KNOWN.get((command, f"{p.name}:{p.operation}"), KNOWN.get((command, p.name), ()))
    return pytest.param(
        command, index, id=f"{command}-without-{p.operation}-{p.resource}-{p.name}", marks=mark
    )


CASES = [_case(command, None) for command in acls.COMMANDS] + [
    _case(command, index) for command in acls.COMMANDS for index in range(len(acls.PERMISSIONS[command]))
]

# The one line naming what was denied: every command but status, whose dlq_topics check says it.
DENIAL = "{operation} on {resource} {name} denied to {principal}"
RESOURCE_WORDS = {"topic": "topic", "group": "group", "transactional_id": "transactional id"}


@pytest.mark.parametrize(("command", "dropped"), CASES)
def test_a_command_works_with_exactly_its_acls_and_fails_without_any_one(
    command: str,
    dropped: int | None,
    cli: Cli,
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    make_database: Callable[..., TestDatabase],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(secure_broker, make_database("sqlite"), kafka_user(), tmp_path)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(world.config))
    world.rows_due()
    grants = world.grants(command)
    missing = grants.pop(dropped) if dropped is not None else None
    secure_broker.grant(world.user, *grants)
    before = world.attempts()

    result = _run(cli, world, command)

    if missing is None:
        _did_its_work(world, command, result)
        return
    degraded = (
        DEGRADED.get((command, acls.PERMISSIONS[command][dropped].name)) if dropped is not None else None
    )
    if degraded is not None:
        assert result.exit_code == 0, (result.stdout, result.stderr)
        degraded(world, result)
        return
    if (command, missing.name, missing.operation) == ("dlq ensure", world.bare + ".dlq", "describe"):
        # Create without Describe: the DLQ is made (kafkaops cannot see it afterwards), and a
        # second run finds it there (TOPIC_ALREADY_EXISTS): idempotent.
        assert result.exit_code == 0, (result.stdout, result.stderr)
        _did_its_work(world, command, result)
        again = _run(cli, world, command)
        assert again.exit_code == 0, (again.stdout, again.stderr)
        assert f"exists      {world.bare}.dlq" in again.stderr
        return
    assert result.exit_code != 0, (result.stdout, result.stderr)
    if command == "retry":
        # Nothing charged to the events: no row's attempt count moved, none went to its DLQ.
        assert {k: count for k, (_, count) in world.attempts().items()} == {
            k: count for k, (_, count) in before.items()
        }
        assert world.attempts()["evt-big"] == before["evt-big"]
    if command == "status":
        check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "dlq_topics")
        assert check["message"] == (
            f"not authorized to describe DLQ topic(s): {missing.name}: Describe denied to {world.user.principal}"
        )
        return
    line = DENIAL.format(
        operation=missing.operation.capitalize(),
        resource=RESOURCE_WORDS[missing.resource_type],
        name=missing.name,
        principal=world.user.principal,
    )
    (error,) = [e for e in result.stderr.splitlines() if e.startswith("Error: ")]
    assert line in error, result.stderr
    assert "--operation " + missing.operation.capitalize() in result.stderr  # the ACL to add
