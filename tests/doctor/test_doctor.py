"""`kafkaops doctor` on the secure broker: with every ACL of the table it says so and exits 0;
with any one missing it names that one (and the ACL to add) and exits 1; it changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafkaops.doctor import acls
from tests.conftest import Cli, TestDatabase
from tests.helpers.acl_scenario import World, make_world
from tests.helpers.secure_broker import Grant, KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Describe on the cluster: the principal may read the ACLs, so doctor can tell Read and Write.
READ_ACLS = Grant("broker", "kafka-cluster", "describe")


@pytest.fixture
def world(
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    make_database: Callable[..., TestDatabase],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    made = make_world(secure_broker, make_database("sqlite"), kafka_user(), tmp_path)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(made.config))
    made.rows_due()
    return made


def every_grant(world: World) -> list[Grant]:
    """The ACLs of every command for the world's topics, each once."""
    return list(dict.fromkeys(g for c in acls.COMMANDS for g in _grants_for(world, c)))


def _grants_for(world: World, command: str) -> list[Grant]:
    names = world.names()
    if command == "dlq replay":
        names = {**names, "target": [world.source]}
    if command == "dlq ensure":
        names = {**names, "source": [world.source]}
    return [Grant(b.resource, b.name, b.operation.lower()) for b in acls.bindings(command, names)]


def user_topics(broker: SecureBroker) -> set[str]:
    """The topics on the broker but its internal ones (made when a group is first asked about)."""
    return {t for t in broker.admin().list_topics(timeout=10).topics if not t.startswith("__")}


def doctor(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("doctor", *args, "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def states(report: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    return {(c["command"], c["resource"], c["operation"]): c["state"] for c in report["checks"]}


def test_every_check_holds_with_exactly_the_tables_acls(
    cli: Cli, world: World, secure_broker: SecureBroker
) -> None:
    secure_broker.grant(world.user, *every_grant(world), READ_ACLS)
    topics_before = user_topics(secure_broker)

    code, report = doctor(cli)

    assert [c for c in report["checks"] if c["state"] != "granted"] == []
    assert code == 0
    assert report["principal"] == world.user.principal
    kafka = {c["command"] for c in report["checks"]}
    assert kafka == {*acls.DEFAULT_COMMANDS, "database"}
    # validate_only and metadata: nothing was created (the DLQ of world.source exists already).
    assert user_topics(secure_broker) == topics_before


def _missing_cases() -> list[Any]:
    cases = []
    for command in acls.COMMANDS:
        for index, p in enumerate(acls.PERMISSIONS[command]):
            cases.append(pytest.param(command, index, id=f"{command}-{p.operation}-{p.resource}-{p.name}"))
    return cases


@pytest.mark.parametrize(("command", "index"), _missing_cases())
def test_a_missing_permission_is_named_with_the_acl_that_grants_it(
    command: str, index: int, cli: Cli, world: World, secure_broker: SecureBroker
) -> None:
    grants = _grants_for(world, command)
    missing = grants.pop(index)
    secure_broker.grant(world.user, *grants, READ_ACLS)

    code, report = doctor(cli, *command.split())

    assert code == 1
    words = missing.resource_type.replace("_", " ")
    key = (command, f"{words} {missing.name}", missing.operation.capitalize())
    assert states(report)[key] == "missing", report["checks"]
    assert [k for k, s in states(report).items() if s != "granted"] == [key]
    (check,) = [c for c in report["checks"] if c["state"] == "missing"]
    assert f"--allow-principal {world.user.principal}" in check["fix"]
    assert f"--operation {missing.operation.capitalize()}" in check["fix"]
    assert missing.name in check["fix"]


def test_without_reading_its_acls_the_broker_tells_every_check_but_a_literal_transactional_id(
    cli: Cli, world: World, secure_broker: SecureBroker
) -> None:
    prefixed = Grant("transactional_id", acls.TRANSACTIONAL_ID_PREFIX, "write", "PREFIXED")
    grants = [g for g in every_grant(world) if g.resource_type != "transactional_id"]
    secure_broker.grant(world.user, *grants, prefixed)

    code, report = doctor(cli)

    assert [c for c in report["checks"] if c["state"] != "granted"] == []
    assert code == 0

    group = acls.REPLAY_GROUP.format(dlq=world.dlq)
    secure_broker.revoke(
        world.user, prefixed, Grant("group", group, "read"), Grant("topic", world.source, "write")
    )
    secure_broker.grant(
        world.user, Grant("transactional_id", acls.REPLAY_TRANSACTIONAL_ID.format(dlq=world.dlq), "write")
    )
    code, report = doctor(cli, "dlq", "replay")
    told = states(report)
    assert told[("dlq replay", f"group {group}", "Read")] == "missing"
    assert told[("dlq replay", f"topic {world.source}", "Write")] == "missing"
    # A literal ACL on the id cannot be seen without reading the ACLs: not told, never "missing".
    txn = acls.REPLAY_TRANSACTIONAL_ID.format(dlq=world.dlq)
    assert told[("dlq replay", f"transactional id {txn}", "Write")] == "unknown"
    assert code == 1


def test_a_rejected_login_is_one_error_line(cli: Cli, world: World, tmp_path: Path) -> None:
    text = world.config.read_text().replace(world.user.password, "wrong-password")
    world.config.write_text(text)
    result = cli("doctor")
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ")
    assert "wrong-password" not in result.stderr + result.stdout
