"""Every option more than one command takes, declared once as an `Annotated` alias, so `-o json`
or `--context prod` means the same everywhere; and the rules every command's parsing follows.

Global options (`GLOBAL_OPTIONS`) are declared here and taken by the root command; `install`
gives every subcommand hidden copies made from those declarations, so that they may also follow
the subcommand (`kafkaops failed list --context prod`, as kubectl allows). Either way the value
goes to the invocation's state through one callback. What click's own parser saw decides the
rest: a single-valued option given twice is refused (click would keep the last one silently),
and a secret given on the command line is warned of.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Any, get_args

import click
import typer
from click.core import ParameterSource

from kafkaops.cli.completion import complete_contexts, complete_statuses
from kafkaops.cli.formats import ALL as ALL_FORMATS
from kafkaops.cli.formats import output_option
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import state
from kafkaops.common import clock

if TYPE_CHECKING:
    from kafkaops.db.failed_events import EventFilter


def _take_global(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Where every global option's value goes, given before the subcommand or after it.

    Only values from the command line are taken: the environment variables named by `envvar=`
    (shown in --help) are read by the configuration itself (`config.settings`), which says in
    `config show` where each value came from and takes an empty variable as unset; the
    precedence is flags, then KAFKAOPS_*, then the file."""
    if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        option = param.opts[0] if param.opts else str(param.name)
        state(ctx).take(str(param.name), option, value, lenient=ctx.resilient_parsing)
    return value


# -- global options ------------------------------------------------------------------------

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        envvar="KAFKAOPS_CONFIG",
        help="Config file; takes precedence over $KAFKAOPS_CONFIG.",
        show_default=False,
        callback=_take_global,
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context",
        envvar="KAFKAOPS_CONTEXT",
        help="Context in the config file; takes precedence over $KAFKAOPS_CONTEXT.",
        show_default=False,
        autocompletion=complete_contexts,
        callback=_take_global,
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="KAFKAOPS_DATABASE_URL",
        help="Database URL; takes precedence over $KAFKAOPS_DATABASE_URL. Keep passwords out of it "
        "(they would show in `ps`): use the environment or ${VAR} in the config file.",
        show_default=False,
        callback=_take_global,
    ),
]
BootstrapServersOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        envvar="KAFKAOPS_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers; take precedence over $KAFKAOPS_BOOTSTRAP_SERVERS.",
        show_default=False,
        callback=_take_global,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", callback=_take_global)]
RawCellsOpt = Annotated[
    bool,
    typer.Option(
        "--raw-cells",
        help="csv and tsv: write text cells exactly as stored. By default a text cell starting with "
        "=, +, -, @, tab or carriage return (a formula to a spreadsheet) gets a leading '; numbers "
        "are never changed.",
        callback=_take_global,
    ),
]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="More log lines on stderr (-vv for debug).",
        callback=_take_global,
    ),
]

GLOBAL_OPTIONS = (
    ConfigOpt,
    ContextOpt,
    DatabaseUrlOpt,
    BootstrapServersOpt,
    DebugOpt,
    RawCellsOpt,
    VerboseOpt,
)
# Their names as declared above (inside `Annotated`, typer takes the first as a name, not a
# default): `install` copies the root command's options of these names.
_GLOBAL_NAMES = frozenset(
    name
    for alias in GLOBAL_OPTIONS
    for info in get_args(alias)[1:]
    for name in (info.default, *info.param_decls)
    if isinstance(name, str)
)

# Options whose value may hold a secret: the config key that says what it holds, and the ways to
# give it that `ps` does not show.
SECRET_OPTIONS = {
    "--database-url": (
        "database.url",
        "$KAFKAOPS_DATABASE_URL, or database.url in the config file with ${VAR} for the password",
    ),
    "--alert-webhook": ("alerts.webhook", "$KAFKAOPS_ALERT_WEBHOOK, or alerts.webhook in the config file"),
}


# -- options of several commands -----------------------------------------------------------

OutputOpt = Annotated[Format | None, output_option(ALL_FORMATS)]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        help="Only rows in this status (PENDING, RESOLVED, DLQ, DLQ_FAILED, PARKED); repeat or comma-separate.",
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
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where",
        "-w",
        help='Only records for which this CEL expression is true (error.class.endsWith("Timeout")); '
        "@NAME: the context's saved filter NAME. See docs/filters.md.",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act without asking for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only count what would change; change nothing.")]


def refuse_empty(given: dict[str, str | None]) -> None:
    """An empty filter (`--topic "$TOPIC"` with the variable unset) would mean "no filter": for a
    purge, every topic; for a retry pass, every topic. Refused instead of silently widening what
    a command acts on. (`--error ' '` searches for a space: allowed.)"""
    from kafkaops.common.errors import UsageError

    for name, value in given.items():
        blank = value == "" if name == "--error" else not (value or "").replace(",", "").strip()
        if value is not None and blank:
            raise UsageError(f"{name} is empty: give a value, or leave the option out")


def event_filter(
    *,
    status: list[str] | None,
    topic: str | None,
    since: str | None,
    until: str | None,
    error: str | None,
) -> EventFilter:
    from kafkaops.common.timeparse import parse_instant
    from kafkaops.db.failed_events import EventFilter, parse_statuses

    given = {"--status": ",".join(status) if status else None, "--topic": topic, "--since": since}
    refuse_empty({**given, "--until": until, "--error": error})
    return EventFilter(
        statuses=parse_statuses(status or []),
        topic=topic or None,
        since=parse_instant(since, what="--since", now=clock.now()) if since else None,
        until=parse_instant(until, what="--until", now=clock.now()) if until else None,
        error=error or None,
    )


# -- the rules of parsing, for every command -----------------------------------------------


def install(root: click.Group) -> None:
    """Give every command under `root` hidden copies of its global options, and make every
    command's parser refuse repeated options and warn of secrets."""
    globals_ = [p for p in root.params if isinstance(p, click.Option) and p.opts[0] in _GLOBAL_NAMES]
    for command in walk_commands(root):
        command.make_parser = _checked_parser(command)  # type: ignore[method-assign]
        if command is not root:
            command.params += [c for p in globals_ if (c := _hidden_copy(p, command)) is not None]


def walk_commands(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = [group]
    for command in group.commands.values():
        found += walk_commands(command) if isinstance(command, click.Group) else [command]
    return found


def _hidden_copy(option: click.Option, command: click.Command) -> click.Option | None:
    """`option` as `command` takes it after its name: hidden (documented once, at the top), its
    value handed to the same callback. None when the command has an option of that name: its
    own meaning wins."""
    taken = {name for param in command.params for name in getattr(param, "opts", [])}
    names = [name for name in option.opts if name not in taken]
    if not names or names[0] != option.opts[0]:
        return None
    clone = copy.copy(option)
    clone.opts, clone.secondary_opts = names, []
    clone.hidden, clone.expose_value, clone.envvar = True, False, None
    return clone


def _checked_parser(command: click.Command) -> Any:
    make_parser = command.make_parser

    def make(ctx: click.Context) -> Any:
        parser = make_parser(ctx)
        parse_args = parser.parse_args

        def parse(args: list[str]) -> tuple[dict[str, Any], list[str], list[click.Parameter]]:
            opts, rest, order = parse_args(args=args)
            if not ctx.resilient_parsing:
                _refuse_repeats(ctx, order)
                _warn_of_secrets(ctx, opts, order)
            return opts, rest, order

        parser.parse_args = parse  # type: ignore[method-assign]
        return parser

    return make


def _refuse_repeats(ctx: click.Context, order: list[click.Parameter]) -> None:
    """A single-valued option the command line gives twice (`order`: each option as often as
    it was given)."""
    seen: set[str] = set()
    for param in order:
        if not isinstance(param, click.Option) or param.multiple or param.count or param.is_flag:
            continue
        if param.name in seen:
            raise click.UsageError(f"{param.opts[0]} given more than once; give it once", ctx)
        seen.add(str(param.name))


def _warn_of_secrets(ctx: click.Context, opts: dict[str, Any], order: list[click.Parameter]) -> None:
    """Once per option: a secret on the command line (a URL's password or token, a webhook URL,
    as `secrets.secrets_of` judges the same value in a config file) is in every user's `ps`."""
    from kafkaops.common.secrets import secrets_of

    warned = state(ctx).warned_secrets
    for param in dict.fromkeys(order):
        name = param.opts[0] if isinstance(param, click.Option) else ""
        known = SECRET_OPTIONS.get(name)
        value = opts.get(str(param.name))
        if (
            known is None
            or name in warned
            or not isinstance(value, str)
            or not any(secrets_of(known[0], value))
        ):
            continue
        warned.add(name)
        Output().warning(
            f"{name} holds a secret, which other users can read in the process list (ps); "
            f"give it with {known[1]} instead"
        )
