"""Help text and README stay honest: every command documents itself and appears in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer

from kafkaops.cli.main import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def commands() -> list[tuple[str, click.Command]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, command: click.Command) -> None:
        found.append((prefix, command))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)

    walk("kafkaops", root)
    return found


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_the_readme(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    if name != "kafkaops":
        assert f"`{name}" in README, f"{name} is not documented in README.md"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no help text"


def test_readme_opens_with_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:40])
    assert "make run" in first_screen
    assert "make test" in first_screen


def runnable() -> set[str]:
    """Every command a user runs: leaves, and groups that act without a subcommand (`failed`)."""
    return {
        name
        for name, command in commands()
        if name != "kafkaops" and (not isinstance(command, click.Group) or command.invoke_without_command)
    }


def readme_table() -> set[str]:
    """The command paths of README's "## Commands" table, arguments (ID, NAME) left out."""
    section = README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `kafkaops"):
            continue
        words = line.split("`")[1].split()
        found.add(" ".join(w for w in words if w.islower() and not w.startswith("-")))
    return found


def test_the_readme_command_table_lists_exactly_the_commands_of_help() -> None:
    table = readme_table()
    assert table, "README has no command table"
    assert sorted(runnable() - table) == [], "commands missing from README's table"
    assert sorted(table - runnable()) == [], "README's table lists commands kafkaops does not have"


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_with_a_default_states_it(name: str, command: click.Command) -> None:
    ctx = click.Context(command, info_name=name)
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        default = param.get_default(ctx, call=False)
        if default in (None, False, (), []) or param.name in ("help", "version"):
            continue
        record = param.get_help_record(ctx)
        assert record is not None and "default" in record[1], (
            f"{name} {param.opts[0]}: default {default!r} not stated"
        )
