"""The rules every command's options follow (`kafkaops.cli.options`): global options, declared
once, taken before or after the subcommand and only from the command line (the environment is
the configuration's to read); an option given twice is refused however it is spelt, as click's
own parser reads the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import typer

from kafkaops.cli.main import app


def test_every_subcommand_takes_every_global_option_after_its_name_hidden() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    declared = {
        "--config",
        "--context",
        "--database-url",
        "--bootstrap-servers",
        "--debug",
        "--raw-cells",
        "--verbose",
    }
    shown = {p.opts[0] for p in root.params if isinstance(p, click.Option) and not p.hidden}
    assert declared <= shown  # documented once, at the top

    def check(command: click.Command, path: str) -> None:
        hidden = {p.opts[0] for p in command.params if isinstance(p, click.Option) and p.hidden}
        assert declared <= hidden, f"{path} lacks {sorted(declared - hidden)}"
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                check(sub, f"{path} {name}")

    for name, sub in root.commands.items():
        check(sub, f"kafkaops {name}")


def test_the_same_value_before_and_after_the_subcommand_is_one_option(configured, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--context", "test", "failed", "list", "--context", "test", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_flag_beats_the_environment_and_is_not_given_twice_for_it(configured, cli) -> None:  # type: ignore[no-untyped-def]
    for args in (["--context", "test", "failed", "list"], ["failed", "list", "--context", "test"]):
        result = cli(*args, "-o", "json", env={"KAFKAOPS_CONTEXT": "nope"})
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == []
    from_env = cli("failed", "list", env={"KAFKAOPS_CONTEXT": "nope"})
    assert from_env.exit_code == 2
    assert "no context named 'nope'" in from_env.stderr


def test_a_webhook_from_the_environment_is_not_warned_of(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "k.yaml"
    config.write_text("contexts: {t: {database: {url: 'sqlite:///nowhere/x.db'}}}")
    env = {"KAFKAOPS_ALERT_WEBHOOK": "http://127.0.0.1:1/T0/B0/HookX"}
    result = cli("--config", str(config), "status", "-o", "json", env=env)
    assert "holds a secret" not in result.stderr
    assert "HookX" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # -v and -n in one word, then --limit: a second limit click would silently take.
        (["failed", "list", "-vn", "1", "--limit", "2"], "--limit given more than once"),
        # --watch takes an optional value: the first has none, the second has one.
        (["status", "--watch", "--watch", "5"], "--watch given more than once"),
        (["failed", "list", "-t", "a", "-tb"], "--topic given more than once"),
    ],
)
def test_an_option_given_twice_is_refused_however_it_is_spelt(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == (3 if args[0] == "status" else 2), result.stderr
    assert f"Error: {message}; give it once" in result.stderr
    assert result.stdout == ""
