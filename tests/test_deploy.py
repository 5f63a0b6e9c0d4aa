"""The deployment recipes in docs/deploy/ stay runnable: every kafkaops command line in them
parses with the current CLI (commands, options and their values), without running anything."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
import typer
import yaml

from kafkaops.cli.main import app

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"


def parse(args: list[str]) -> click.Context:
    """Parse a command line down to its last subcommand, as click would before invoking it."""
    command = typer.main.get_command(app)
    ctx = command.make_context("kafkaops", list(args))
    while isinstance(command, click.Group):
        rest = [*ctx.protected_args, *ctx.args]
        if not rest:
            break
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def _after_kafkaops(words: list[str]) -> list[str]:
    index = next(i for i, w in enumerate(words) if w == "kafkaops" or w.endswith("/kafkaops"))
    return words[index + 1 :]


def recipes() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]:
            words = shlex.split(line)
            found.append(("crontab", words[7:]))  # 5 time fields, the user, then the command
    for line in (DEPLOY / "kafkaops-retry.service").read_text().splitlines():
        if line.startswith("ExecStart="):
            found.append(("systemd", _after_kafkaops(shlex.split(line.removeprefix("ExecStart=")))))
    cronjob = yaml.safe_load((DEPLOY / "cronjob.yaml").read_text())
    for container in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
        found.append(("kubernetes", list(container["args"])))
    for line in (DEPLOY / "nagios.cfg").read_text().splitlines():
        if line.strip().startswith("command_line"):
            words = shlex.split(line.replace("$ARG1$", "prod"))
            found.append(("nagios", _after_kafkaops(words)))
    return found


def test_every_recipe_is_found() -> None:
    kinds = {kind for kind, _ in recipes()}
    assert kinds == {"crontab", "systemd", "kubernetes", "nagios"}


@pytest.mark.parametrize(("kind", "args"), recipes(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_each_recipe_parses_with_the_current_cli(kind: str, args: list[str]) -> None:
    ctx = parse(args)
    assert ctx.command.name != "kafkaops", f"{kind}: {args} names no command"


def test_a_recipe_with_a_typo_would_fail_here() -> None:
    with pytest.raises(click.UsageError):
        parse(["retry", "--metrics-fle", "/tmp/x.prom"])
    with pytest.raises(click.UsageError):
        parse(["nosuch"])
