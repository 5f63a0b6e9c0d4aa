"""From what a command raised to what the user sees: one `Error:` line (and a hint), the exit
code the error carries (`common.errors.ExitStatus`), a traceback only with --debug, and no
secret in any of it.

`known_error` is the one translation of an exception into a KafkaopsError; the root group
reports it, and `kafkaops status` (Monitoring Plugins) only changes the exit code it carries.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click
import typer
from typer.core import TyperGroup

from kafkaops.cli import gate, options
from kafkaops.cli.output import Output
from kafkaops.cli.state import AppState, state
from kafkaops.common.errors import DatabaseError, ExitStatus, KafkaopsError


class KafkaopsGroup(TyperGroup):
    """The root group: maps what a command raised to one `Error:` line and its exit code, and
    installs the option rules (`options.install`) on every command below it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options.install(self)
        gate.install(self)
        for command in options.walk_commands(self):
            if command.help and not command.short_help:
                # click cuts a summary to fit and adds "..."; the first paragraph is meant whole.
                command.short_help = " ".join(command.help.strip().split("\n\n")[0].split())

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        from kafkaops.cli.journal import ARGV

        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta.setdefault(ARGV, list(args))  # before parsing consumed them: the audit journal's
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as a tool killed by SIGPIPE would.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(int(ExitStatus.BROKEN_PIPE)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:
            if _is_clicks(error):
                raise
            known = known_error(ctx, error)
            _report(ctx, known, error)
            raise typer.Exit(int(known.exit_status)) from None


def known_error(ctx: click.Context, error: Exception) -> KafkaopsError:
    """`error` as the KafkaopsError the user is told of: itself, a driver error translated by
    the connections, or (a bug, or a driver error nobody translated) "unexpected ...", with
    every secret of the settings masked."""
    if isinstance(error, KafkaopsError):
        return error
    if "sqlalchemy" in sys.modules:
        from sqlalchemy import exc

        if isinstance(error, exc.DBAPIError):
            return state(ctx).connections.translate_db_error(error)
    return KafkaopsError(
        f"unexpected {type(error).__name__}: {_scrub(ctx, str(error))}",
        hint="run with --debug for the traceback",
    )


def _is_clicks(error: Exception) -> bool:
    """click's and typer's own exceptions (usage errors): click reports them."""
    return type(error).__module__.startswith(("click", "typer"))


def _scrub(ctx: click.Context, text: str, *, first_line: bool = True) -> str:
    from kafkaops.common.secrets import redact

    app = ctx.find_root().obj
    try:
        secrets = app.settings.secret_values() if isinstance(app, AppState) and app._settings else []
    except Exception:  # reporting an error must never raise one of its own
        secrets = []
    if first_line:
        text = text.splitlines()[0] if text else ""
    return redact(text, secrets)


def _report(ctx: click.Context, known: KafkaopsError, error: BaseException) -> None:
    app = ctx.find_root().obj
    if isinstance(app, AppState) and app.debug:
        from kafkaops.cli.output import safe_text

        # A traceback quotes exception messages, which may quote secrets and data.
        trace = _scrub(ctx, "".join(traceback.format_exception(error)), first_line=False)
        sys.stderr.write(safe_text(trace, keep_lines=True))
    Output().error(known.message, known.hint)


class LockBoundGroup(TyperGroup):
    """A command group whose commands wait a bounded time for a lock on the table
    (`state.bounded_connections`); one that gave up is said in the user's words."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseError as error:
            from kafkaops.db.sqlerrors import LOCK_NOT_AVAILABLE, sqlstate

            if sqlstate(error) != LOCK_NOT_AVAILABLE:  # our lock_timeout fired
                raise
            waited = state(ctx).settings.database.lock_timeout.total_seconds()
            raise DatabaseError(
                f"the table is locked by another session; gave up after waiting {waited:g} s",
                hint="a migration, VACUUM FULL or a long transaction holds it (see pg_stat_activity "
                "and pg_locks); try again when it is done",
            ) from error
