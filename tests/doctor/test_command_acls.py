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
from tests.helpers.secure_broker import Grant, KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _run(cli: Cli, world: World, command: str) -> Any:
    args = {
        "status": ["status", "-o", "json"],
        "retry": ["retry"],
        "dlq list": ["dlq", "list", "-o", "json"],
        "dlq tail": ["dlq", "tail", world.dlq, "--from-beginning", "-o", "json"],
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
        assert len(result.stdout.strip().splitlines()) >= 1 and world.dlq in result.stdout
    elif command == "dlq ensure":
        assert world.bare + ".dlq" in world.broker.admin().list_topics(timeout=10).topics
    elif command == "dlq replay":
        assert json.loads(result.stdout)["replayed"] == DLQ_RECORDS
        assert end_offset(world.broker, world.source) >= DLQ_RECORDS  # and a commit marker


# Defects of issue 23 that branch acl-defects fixes; each case fails today for that reason alone
# (strict: the case turns red when the fix lands, and the mark comes off).
_GROUP_LESS_READS = pytest.mark.xfail(
    strict=True, reason="dlq list/tail still need Group Describe on a random kafkaops-<uuid> group"
)
_HIDDEN_TOPICS = pytest.mark.xfail(
    strict=True, reason="a topic the principal may not describe is still reported as missing"
)
KNOWN: dict[tuple[str, str | None], pytest.MarkDecorator] = {
    ("dlq list", None): _GROUP_LESS_READS,
    ("dlq tail", None): _GROUP_LESS_READS,
    # No DLQ visible: "No DLQ topics", exit 0.
    ("dlq list", "{dlq}"): _HIDDEN_TOPICS,
    # Creates the DLQ, waits 30 s for it to show, exits 0 (and a second run is refused).
    ("dlq ensure", "{source}{suffix}:Describe"): _HIDDEN_TOPICS,
}


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

# The one line naming what was denied, where kafkaops already says it that way.
DENIAL = "{operation} on topic {name} denied to {principal}"
DENIAL_LINE_TODAY = {"retry"}


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
    assert result.exit_code != 0, (result.stdout, result.stderr)
    if command == "retry":
        # Nothing charged to the events: no row's attempt count moved, none went to its DLQ.
        assert {k: count for k, (_, count) in world.attempts().items()} == {
            k: count for k, (_, count) in before.items()
        }
        assert world.attempts()["evt-big"] == before["evt-big"]
    if command in DENIAL_LINE_TODAY:
        line = DENIAL.format(
            operation=missing.operation.capitalize(), name=missing.name, principal=world.user.principal
        )
        assert f"Error: {line}" in result.stderr


@pytest.mark.parametrize("command", ["dlq list", "dlq tail"])
def test_dlq_list_and_tail_work_with_describe_on_the_kafkaops_group_prefix_as_the_page_says(
    command: str,
    cli: Cli,
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    make_database: Callable[..., TestDatabase],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(secure_broker, make_database("sqlite"), kafka_user(), tmp_path)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(world.config))
    extra = Grant("group", "kafkaops-", "describe", "PREFIXED")
    secure_broker.grant(world.user, *world.grants(command), extra)
    _did_its_work(world, command, _run(cli, world, command))
