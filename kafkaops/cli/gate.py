"""Which commands write to the database or Kafka, and the one gate that refuses them in a
read-only context (`readonly: true`, or $KAFKAOPS_READONLY=1).

Every command says which kind it is, on its function, in one line:

    @app.command()
    @writes
    def requeue(...): ...

`@writes`: it changes the database or Kafka (rows, topics, offsets, records), so a read-only
context refuses it, after its options are parsed and before anything is opened (as it does
a $KAFKAOPS_ACTOR the audit journal cannot take). `@no_writes`:
it changes neither (it may write its own files: `config use-context`, status' state file).
`install` wraps every `@writes` command; tests/cli/test_read_only.py fails for a command that
says neither.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from kafkaops.cli.options import walk_commands

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "kafkaops_writes"


def writes(function: F) -> F:
    """Mark a command that writes to the database or Kafka: refused in a read-only context."""
    setattr(function, _MARK, True)
    return function


def no_writes(function: F) -> F:
    """Mark a command that writes to neither the database nor Kafka."""
    setattr(function, _MARK, False)
    return function


def writes_data(command: click.Command) -> bool | None:
    """True (`@writes`), False (`@no_writes`) or None (not declared) for a built command."""
    return getattr(command.callback, _MARK, None)


def declared_commands(root: click.Group) -> list[tuple[str, click.Command]]:
    """Every command that must declare its kind, by its path (`failed requeue`): every leaf,
    and every group that does something of its own when called without a subcommand."""
    found = []
    for command in walk_commands(root):
        if command is root:
            continue
        if isinstance(command, click.Group) and not command.invoke_without_command:
            continue
        found.append((_path(root, command), command))
    return found


def install(root: click.Group) -> None:
    """Put the gate in front of every `@writes` command under `root`."""
    for command in walk_commands(root):
        if writes_data(command) and command.callback is not None:
            command.callback = _gated(command.callback)


def refuse_if_read_only(ctx: click.Context) -> None:
    from kafkaops.cli.state import state
    from kafkaops.common.errors import ReadOnlyError

    settings = state(ctx).settings
    if not settings.readonly.on:
        return
    where = f"context {settings.context}" if settings.context else "this environment"
    raise ReadOnlyError(
        f"{where} is read-only: `{ctx.command_path}` writes to the database or Kafka and was not run",
        hint=f"{settings.readonly.why}; reading commands (failed list, status, audit) still work",
    )


def _gated(callback: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(callback)
    def gated(*args: Any, **kwargs: Any) -> Any:
        import os

        from kafkaops.audit.actor import actor

        refuse_if_read_only(click.get_current_context())
        actor(os.environ)  # who acts, for the journal: a bad $KAFKAOPS_ACTOR stops it here
        return callback(*args, **kwargs)

    return gated


def _path(root: click.Group, command: click.Command) -> str:
    def search(group: click.Group, prefix: list[str]) -> list[str] | None:
        for name, child in group.commands.items():
            if child is command:
                return [*prefix, name]
            if isinstance(child, click.Group) and (found := search(child, [*prefix, name])):
                return found
        return None

    return " ".join(search(root, []) or [command.name or "?"])
