"""What every command shares: the per-invocation state, option aliases, and error mapping.

Options used by several commands are defined once here, so `-o json` or `--topic` mean the
same everywhere. Heavy libraries are not imported at this level: `kafkaops --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from kafkaops.cli.output import Format, Output
from kafkaops.errors import ExitStatus, KafkaopsError

if TYPE_CHECKING:
    from kafkaops.config import Overrides, Settings
    from kafkaops.connections import Connections
    from kafkaops.failed import EventFilter


@dataclass
class AppState:
    """Created by the root callback; settings and connections open on first use."""

    overrides: Overrides
    debug: bool = False
    verbose: int = 0
    _settings: Settings | None = field(default=None, repr=False)
    _connections: Connections | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from kafkaops.config import load_settings

            self._settings = load_settings(self.overrides)
        return self._settings

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            from kafkaops.connections import Connections

            self._connections = Connections(self.settings)
        return self._connections

    def close(self) -> None:
        if self._connections is not None:
            self._connections.close()
            self._connections = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        from kafkaops.config import Overrides

        root.obj = AppState(Overrides())
        root.call_on_close(root.obj.close)
    return root.obj


def output(fmt: Format | None) -> Output:
    return Output(fmt or Format.table)


class KafkaopsGroup(TyperGroup):
    """Maps kafkaops errors to one `Error:` line and their exit code; tracebacks only with --debug."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KafkaopsError as error:
            _report(ctx, error.message, error.hint, error)
            raise typer.Exit(int(error.exit_status)) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as a tool killed by SIGPIPE would.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:  # a bug, or a driver error nobody translated
            if type(error).__module__.startswith("click") or type(error).__module__.startswith("typer"):
                raise
            translated = _translate(ctx, error)
            if translated is not None:
                _report(ctx, translated.message, translated.hint, error)
                raise typer.Exit(int(translated.exit_status)) from None
            _report(
                ctx,
                f"unexpected {type(error).__name__}: {_scrub(ctx, str(error))}",
                "run with --debug for the traceback",
                error,
            )
            raise typer.Exit(int(ExitStatus.FAILURE)) from None


def _translate(ctx: Any, error: Exception) -> KafkaopsError | None:
    if "sqlalchemy" in sys.modules:
        from sqlalchemy import exc

        if isinstance(error, exc.DBAPIError):
            return state(ctx).connections.translate_db_error(error)
    return None


def _scrub(ctx: Any, text: str, *, first_line: bool = True) -> str:
    from kafkaops.secrets import redact

    app = ctx.find_root().obj
    try:
        secrets = app.settings.secret_values() if isinstance(app, AppState) and app._settings else []
    except Exception:  # reporting an error must never raise one of its own
        secrets = []
    if first_line:
        text = text.splitlines()[0] if text else ""
    return redact(text, secrets)


def _report(ctx: Any, message: str, hint: str | None, error: BaseException) -> None:
    app = ctx.find_root().obj
    if isinstance(app, AppState) and app.debug:
        from kafkaops.cli.output import safe_text

        # A traceback quotes exception messages, which may quote secrets and data.
        trace = _scrub(ctx, "".join(traceback.format_exception(error)), first_line=False)
        sys.stderr.write(safe_text(trace, keep_lines=True))
    Output().error(message, hint)


# -- option aliases ------------------------------------------------------------------------

OutputOpt = Annotated[
    Format | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table (rich on a terminal, plain text when piped), json, jsonl, yaml, csv, "
        "tsv. "
        "[default: table]",
        case_sensitive=False,
        show_default=False,
    ),
]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        help="Only rows in this status (PENDING, RESOLVED, DLQ, DLQ_FAILED); repeat or comma-separate.",
        show_default=False,
    ),
]
TopicOpt = Annotated[
    str | None,
    typer.Option(
        "--topic", "-t", help="Only this topic; a glob (* and ?) matches several.", show_default=False
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only rows created at or after this time: ISO-8601 (2026-11-27T10:00Z, UTC if no offset) "
        "or a duration ago (90m, 2h, 7d).",
        show_default=False,
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="Only rows created before this time; same forms as --since.", show_default=False
    ),
]
ErrorOpt = Annotated[
    str | None,
    typer.Option(
        "--error",
        "-e",
        help="Only rows whose last_error contains this text (case-insensitive).",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act without asking for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only count what would change; change nothing.")]


def event_filter(
    *,
    status: list[str] | None,
    topic: str | None,
    since: str | None,
    until: str | None,
    error: str | None,
) -> EventFilter:
    from kafkaops.failed import EventFilter, parse_statuses
    from kafkaops.timeparse import parse_instant

    return EventFilter(
        statuses=parse_statuses(status or []),
        topic=topic or None,
        since=parse_instant(since, what="--since") if since else None,
        until=parse_instant(until, what="--until") if until else None,
        error=error or None,
    )


def confirm(question: str, *, yes: bool) -> None:
    """Ask before acting; refuse to guess when nobody can answer (cron, a pipe)."""
    from kafkaops.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to act without confirmation: stdin is not a terminal", hint="add --yes")
    if not typer.confirm(question, default=False, err=True):
        sys.stderr.write("Aborted; nothing changed.\n")
        raise typer.Exit(int(ExitStatus.FAILURE))
