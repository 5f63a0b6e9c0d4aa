"""What every command shares: the per-invocation state, option aliases, and error mapping.

Options used by several commands are defined once here, so `-o json` or `--topic` mean the
same everywhere. Heavy libraries are not imported at this level: `kafkaops --help` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from kafkaops.cli.formats import ALL as ALL_FORMATS
from kafkaops.cli.formats import output_option
from kafkaops.cli.output import Format, Output
from kafkaops.common import clock
from kafkaops.common.errors import ExitStatus, KafkaopsError

if TYPE_CHECKING:
    from kafkaops.config.file import ConfigFile
    from kafkaops.config.settings import Overrides, Settings
    from kafkaops.db.connections import Connections
    from kafkaops.db.failed_events import EventFilter


@dataclass
class AppState:
    """Created by the root callback; the config file, settings and connections open on first use."""

    overrides: Overrides
    debug: bool = False
    verbose: int = 0
    raw_cells: bool = False  # --raw-cells: csv/tsv cells exactly as stored
    _settings: Settings | None = field(default=None, repr=False)
    _connections: Connections | None = field(default=None, repr=False)
    _config_file: tuple[ConfigFile | None] | None = field(default=None, repr=False)

    def config_file(self) -> ConfigFile | None:
        """The config file in use, found, trusted and read once per command; which one it is
        goes to the log (-v), and a warning about it to stderr."""
        if self._config_file is None:
            import logging

            from kafkaops.config.file import open_config_file

            file = open_config_file(self.overrides.config_path, os.environ)
            log = logging.getLogger("kafkaops.config.settings")
            if file is None:
                log.info(
                    "no config file found (--config, $KAFKAOPS_CONFIG, ./kafkaops.yaml, user config dir)"
                )
            else:
                log.info("config file %s (from %s)", file.path, file.origin)
                for warning in file.warnings:
                    Output().warning(warning)
            self._config_file = (file,)
        return self._config_file[0]

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from kafkaops.config.file import running_uid
            from kafkaops.config.settings import settings_from

            self._settings = settings_from(self.config_file(), self.overrides, os.environ, uid=running_uid())
        return self._settings

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            from kafkaops.db.connections import Connections

            self._connections = Connections(self.settings)
        return self._connections

    def close(self) -> None:
        if self._connections is not None:
            self._connections.close()
            self._connections = None


def state(ctx: click.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        from kafkaops.config.settings import Overrides

        root.obj = AppState(Overrides())
        root.call_on_close(root.obj.close)
    return root.obj


def output(fmt: Format | None) -> Output:
    ctx = click.get_current_context(silent=True)
    return Output(fmt or Format.table, raw_cells=ctx is not None and state(ctx).raw_cells)


class KafkaopsGroup(TyperGroup):
    """Maps kafkaops errors to one `Error:` line and their exit code; tracebacks only with --debug.

    As the root group it also makes every subcommand accept the global options after its name
    (`kafkaops failed list --context prod`, as kubectl does) and refuse an option given twice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in _walk(self):
            command.parse_args = _refusing_repeats(command)  # type: ignore[method-assign]
            if command is not self:
                _add_global_options(command)
            if command.help and not command.short_help:
                # click cuts a summary to fit and adds "..."; the first paragraph is meant whole.
                command.short_help = " ".join(command.help.strip().split("\n\n")[0].split())

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
    from kafkaops.common.secrets import redact

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


class LockBoundGroup(TyperGroup):
    """A command group whose commands wait a bounded time for a lock on the table
    (`bounded_connections`); one that gave up is said in the user's words."""

    def invoke(self, ctx: click.Context) -> Any:
        from kafkaops.common.errors import DatabaseError

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


def bounded_connections(ctx: click.Context) -> Connections:
    """The connections, their sessions bounded in how long they wait for a lock
    (`database.lock_timeout`)."""
    conns = state(ctx).connections
    conns.bound_lock_waits(conns.settings.database.lock_timeout)
    return conns


# -- global options after the subcommand, options given twice --------------------------------


def help_width() -> int:
    """The terminal's width for help text (click stops at 80 columns unless told)."""
    import shutil

    return max(shutil.get_terminal_size().columns, 50)


def _walk(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = [group]
    for command in group.commands.values():
        found += _walk(command) if isinstance(command, click.Group) else [command]
    return found


# (names, attribute, flag/count kind): what the root callback takes, re-declared (hidden) on
# every subcommand. A value given after the subcommand is stored where the root's would be;
# settings are only read when a command body runs, after all parsing.
_GLOBALS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("--context",), "context", "value"),
    (("--config", "-c"), "config_path", "value"),
    (("--database-url",), "database_url", "value"),
    (("--bootstrap-servers", "-b"), "bootstrap_servers", "value"),
    (("--debug",), "debug", "flag"),
    (("--raw-cells",), "raw_cells", "flag"),
    (("--verbose", "-v"), "verbose", "count"),
)


def _add_global_options(command: click.Command) -> None:
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for names, attribute, kind in _GLOBALS:
        free = [n for n in names if n not in taken]
        if not free or free[0] != names[0]:
            continue  # the command has an option of that name: its own meaning wins
        command.params.append(
            click.Option(
                free,
                hidden=True,
                expose_value=False,
                is_flag=kind == "flag",
                count=kind == "count",
                callback=functools.partial(_store_global, attribute),
                shell_complete=_complete_context_option if attribute == "context" else None,
            )
        )


def _store_global(attribute: str, ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if ctx.resilient_parsing or value in (None, False, 0):
        return
    from dataclasses import replace

    from kafkaops.common.errors import UsageError

    app = state(ctx)
    if attribute in ("debug", "raw_cells"):
        setattr(app, attribute, True)
    elif attribute == "verbose":
        app.verbose += int(value)
        configure_logging(app.verbose)
    else:
        before = getattr(app.overrides, attribute)
        if before is not None and before != value:
            raise UsageError(f"{param.opts[0]} given twice, with different values: give it once")
        app.overrides = replace(app.overrides, **{attribute: value})


def configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, force=True)
    # The pool logs a connection lost mid-query with a traceback (and the SQL); the command
    # already says it in one Error line. Shown with -vv.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL if verbose < 2 else logging.NOTSET)
    from kafkaops.cli.output import safe_log_formatter

    for handler in logging.getLogger().handlers:
        handler.setFormatter(safe_log_formatter(fmt))  # log lines quote data from the database and Kafka


def _refusing_repeats(command: click.Command) -> Any:
    parse_args = command.parse_args

    def parse(ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            repeated = repeated_option(command, args)
            if repeated:
                raise click.UsageError(f"{repeated} given more than once; give it once", ctx)
            _warn_of_secrets_in_arguments(ctx, command, args)
        return parse_args(ctx, args)

    return parse


def _given_options(command: click.Command, args: list[str]) -> Iterator[tuple[click.Option, str | None]]:
    """Each option of `command` that `args` give, with its value (None for a flag). A group's
    own options end at its subcommand's name."""
    options: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in param.opts + param.secondary_opts:
                options[name] = param
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            break
        name, attached = token, None
        if token.startswith("--") and "=" in token:
            name, attached = token.split("=", 1)
        elif token.startswith("-") and not token.startswith("--") and len(token) > 2:
            name, attached = token[:2], token[2:]
        option = options.get(name)
        if option is None:
            if not token.startswith("-") and isinstance(command, click.Group):
                break  # the subcommand: what follows is its business
            continue
        value = attached
        if not option.is_flag and not option.count and attached is None:
            value = args[index] if index < len(args) else None
            index += 1
        yield option, value


def repeated_option(command: click.Command, args: list[str]) -> str | None:
    """The first single-valued option that `args` give twice (click would keep the last one
    silently), or None."""
    seen: set[str] = set()
    for option, _ in _given_options(command, args):
        if option.multiple or option.count or option.is_flag:
            continue
        if option.name in seen:
            return option.opts[0]
        seen.add(option.name or option.opts[0])
    return None


# Options whose value may hold a secret: the config key that says what it holds, and the ways to
# give it that `ps` does not show.
_SECRET_OPTIONS = {
    "--database-url": (
        "database.url",
        "$KAFKAOPS_DATABASE_URL, or database.url in the config file with ${VAR} for the password",
    ),
    "--alert-webhook": ("alerts.webhook", "$KAFKAOPS_ALERT_WEBHOOK, or alerts.webhook in the config file"),
}


def secrets_in_arguments(command: click.Command, args: list[str]) -> list[str]:
    """The options in `args` whose value holds a secret (a URL's password or token, a webhook
    URL), as `secrets.secrets_of` judges the same value in a config file."""
    from kafkaops.common.secrets import secrets_of

    found = []
    for option, value in _given_options(command, args):
        known = _SECRET_OPTIONS.get(option.opts[0])
        if known and value and any(secrets_of(known[0], value)) and option.opts[0] not in found:
            found.append(option.opts[0])
    return found


def _warn_of_secrets_in_arguments(ctx: click.Context, command: click.Command, args: list[str]) -> None:
    """Once per option: a secret on the command line is in every user's `ps`."""
    warned = ctx.find_root().meta.setdefault("kafkaops.secret_options_warned", set())
    for name in secrets_in_arguments(command, args):
        if name not in warned:
            warned.add(name)
            Output().warning(
                f"{name} holds a secret, which other users can read in the process list (ps); "
                f"give it with {_SECRET_OPTIONS[name][1]} instead"
            )


# -- completion: values, and context names read without YAML --------------------------------


def complete_statuses(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import STATUSES

    return _complete_list(STATUSES, incomplete, upper=True)


def complete_group_by(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import GROUP_KEYS

    return _complete_list(GROUP_KEYS, incomplete)


def complete_purgeable(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import PURGEABLE

    return _complete_list(PURGEABLE, incomplete, upper=True)


def _complete_list(values: tuple[str, ...], incomplete: str, *, upper: bool = False) -> list[str]:
    """`DLQ,PEN` completes to `DLQ,PENDING`: comma-separated lists complete their last item."""
    head, _, last = incomplete.rpartition(",")
    prefix = head + "," if head else ""
    last = last.upper() if upper else last.lower()
    done = set(head.upper().split(",") if upper else head.lower().split(","))
    return [prefix + v for v in values if v.startswith(last) and v not in done]


def complete_contexts(ctx: click.Context, incomplete: str) -> list[str]:
    """Context names from the config file kafkaops would read (found by the one lookup, and
    only if it is trusted), those `--context` can select; nothing when there is none."""
    from kafkaops.common.errors import ConfigError
    from kafkaops.config.file import find_config_file, running_uid, selectable_contexts

    try:
        root = ctx.find_root()
        explicit = root.params.get("config") or ctx.params.get("config")
        found = find_config_file(explicit, os.environ)
        if found is None:
            return []
        names = context_names_of(_trusted_text(found.path, running_uid()))
    except (OSError, ConfigError):
        return []
    return [n for n in selectable_contexts(names) if n.startswith(incomplete)]


def _trusted_text(path: Any, uid: int | None) -> str:
    """The file's text, read only if `distrust` finds nothing against it (no YAML parser:
    completion runs on every Tab)."""
    from kafkaops.config.file import decode, distrust

    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if uid is not None and distrust(st.st_mode, st.st_uid, uid):
            return ""
        return decode(fh.read(), path)


def _complete_context_option(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return complete_contexts(ctx, incomplete)


def context_names_of(text: str) -> list[str]:
    """The keys under the top-level `contexts:` of a config file, in block style, found with a
    line scan: completion runs on every Tab, and importing a YAML parser costs more than this."""
    import re

    names: list[str] = []
    inside, indent = False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#", 1)[0].rstrip() == "contexts:"
            indent = None
            continue
        if not inside:
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width == indent:
            match = re.match(r"\s*(\"[^\"]+\"|'[^']+'|[^:#]+?)\s*:(\s|$)", line)
            if match:
                names.append(match.group(1).strip("\"'"))
    return names


# -- option aliases ------------------------------------------------------------------------

OutputOpt = Annotated[Format | None, output_option(ALL_FORMATS)]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        help="Only rows in this status (PENDING, RESOLVED, DLQ, DLQ_FAILED); repeat or comma-separate.",
        show_default=False,
        autocompletion=complete_statuses,
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
    from kafkaops.common.errors import UsageError
    from kafkaops.common.timeparse import parse_instant
    from kafkaops.db.failed_events import EventFilter, parse_statuses

    # An empty value (`--topic "$TOPIC"` with the variable unset) would mean "no filter": for
    # a purge, every topic. Refused instead of silently widening what a command acts on.
    given = {"--status": ",".join(status) if status else None, "--topic": topic, "--since": since}
    given |= {"--until": until, "--error": error}
    for name, value in given.items():
        blank = value == "" if name == "--error" else not (value or "").replace(",", "").strip()
        if value is not None and blank:  # (--error ' ' searches for a space: allowed)
            raise UsageError(f"{name} is empty: give a value, or leave the option out")
    return EventFilter(
        statuses=parse_statuses(status or []),
        topic=topic or None,
        since=parse_instant(since, what="--since", now=clock.now()) if since else None,
        until=parse_instant(until, what="--until", now=clock.now()) if until else None,
        error=error or None,
    )


def target(app: AppState) -> str:
    """Where a command acts, for its confirmation: `context prod (postgresql db:5432/casino)`.

    The context and the database's host and name, never its user or password."""
    from sqlalchemy.engine import make_url

    from kafkaops.db.engine import normalise_url

    settings = app.settings
    url = make_url(normalise_url(settings.require_database_url()))
    backend = url.get_backend_name()
    if backend == "sqlite":
        place = url.database or ":memory:"
    else:
        place = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    context = f"context {settings.context}" if settings.context else "no context (environment and flags)"
    return f"{context} ({backend} {place})"


def confirm(question: str, *, yes: bool) -> None:
    """Ask before acting; refuse to guess when nobody can answer (cron, a pipe)."""
    from kafkaops.common.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to act without confirmation: stdin is not a terminal", hint="add --yes")
    if not typer.confirm(question, default=False, err=True):
        sys.stderr.write("Aborted; nothing changed.\n")
        raise typer.Exit(int(ExitStatus.FAILURE))
