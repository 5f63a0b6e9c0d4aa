"""Which commands `kafkaops doctor` checks: the ones named (`dlq replay` or `replay`), all by
default (all but probe), and one `Error:` line (exit 2) for a name it does not know."""

from __future__ import annotations

import pytest

from kafkaops.common.errors import UsageError
from kafkaops.doctor.acls import COMMANDS, DEFAULT_COMMANDS
from kafkaops.doctor.run import parse_commands
from tests.conftest import Cli
from tests.helpers.config import write_config


@pytest.mark.parametrize(
    ("words", "commands"),
    [
        ([], DEFAULT_COMMANDS),
        (["retry"], ("retry",)),
        (["dlq", "replay", "status"], ("dlq replay", "status")),
        (["replay", "list", "dlq", "tail"], ("dlq replay", "dlq list", "dlq tail")),
        (["retry", "retry"], ("retry",)),
        (["probe", "stats"], ("probe", "dlq stats")),
    ],
)
def test_the_named_commands_in_order_each_once(words: list[str], commands: tuple[str, ...]) -> None:
    assert parse_commands(words) == commands


def test_an_unknown_command_is_one_error_line(cli: Cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        parse_commands(["failed"])
    config = write_config(tmp_path / "k.yaml", kafka={"bootstrap.servers": "127.0.0.1:9"})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    result = cli("doctor", "dlq", "purge")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: doctor knows no command 'dlq purge'")
    assert result.stdout == ""


def test_the_help_names_every_command_doctor_knows(cli: Cli) -> None:
    shown = " ".join(cli("doctor", "--help").stdout.split())
    for command in COMMANDS:
        assert command in shown, f"doctor --help does not name {command}"
