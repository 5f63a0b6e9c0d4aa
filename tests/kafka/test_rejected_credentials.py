"""A wrong password on the secure broker ends every command at once with its real cause,
never "Broker transport failure" or "Local: Timed out" after the deadline, and touches no row."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli, TestDatabase
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event
from tests.helpers.secure_broker import KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WRONG = "not-the-password-0451"

COMMANDS = [
    ("status",),
    ("retry",),
    ("dlq", "list"),
    ("dlq", "tail", "orders.dlq"),
    ("dlq", "replay", "orders.dlq", "--dry-run"),
    ("dlq", "ensure", "orders"),
    ("lag", "--group", "payments"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_wrong_password_ends_the_command_at_once_saying_the_credentials_were_rejected(
    args: tuple[str, ...],
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    make_database: Callable[..., TestDatabase],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = kafka_user()
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic="orders")])
    before = db.rows()
    kafka = {**user.kafka, **FAST_CLIENT, "sasl.password": WRONG}
    path = write_config(tmp_path / "kafkaops.yaml", db, kafka=kafka)
    path.chmod(0o600)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))

    started = time.monotonic()
    result = cli(*args)
    elapsed = time.monotonic() - started

    shown = result.stdout + result.stderr
    assert result.exit_code != 0, shown
    assert elapsed < 5, f"{elapsed:.1f}s"
    assert f"Kafka at {secure_broker.bootstrap_servers} rejected the credentials" in shown
    assert "check sasl.mechanism, sasl.username and sasl.password" in shown
    assert "transport failure" not in shown and "Timed out" not in shown
    assert WRONG not in shown
    assert db.rows() == before
