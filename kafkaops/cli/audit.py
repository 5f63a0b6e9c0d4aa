"""`kafkaops audit`: the journal of what kafkaops changed: who, when, what, how it ended."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kafkaops.cli.errors import LockBoundGroup
from kafkaops.cli.fields import Field
from kafkaops.cli.gate import no_writes
from kafkaops.cli.options import OutputOpt
from kafkaops.cli.output import Format
from kafkaops.cli.state import bounded_connections, output

app = typer.Typer(cls=LockBoundGroup, invoke_without_command=True, no_args_is_help=False)

MAX_ROWS = 10**12


@app.callback()
@no_writes
def entries(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only entries started since this long ago (7d, 12h) or this ISO time.",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Only entries of this actor (user@host, or $KAFKAOPS_ACTOR)."),
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="Only entries of this command ('failed purge', 'dlq replay').",
            show_default=False,
        ),
    ] = None,
    in_context: Annotated[
        str | None,
        typer.Option(
            "--in-context",
            help="Only entries made in this context (--context, as everywhere, chooses the context "
            "whose database is read).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_ROWS, help="At most this many entries.")
    ] = 50,
    output_format: OutputOpt = None,
) -> None:
    """What kafkaops changed, newest first: who, when, which command, how many rows, how it ended.

    Every command that changes data writes an entry before it acts and completes it when it
    ends; an entry without an outcome is a command that never finished (killed, or still
    running). One entry whole, with its ids and archive: `audit show ID`.

    \b
    Example:
      kafkaops audit --since 7d --command 'failed purge' --in-context prod
      kafkaops audit show 42 -o json
    """
    if ctx.invoked_subcommand is not None:
        return
    from kafkaops.audit.reading import list_entries
    from kafkaops.common import clock
    from kafkaops.common.timeparse import parse_instant

    out = output(output_format)
    start = parse_instant(since, what="--since", now=clock.now()) if since else None
    conns = bounded_connections(ctx)
    db = conns.settings.database
    with conns.connect() as conn:
        found = list_entries(
            conn, db, since=start, actor=actor, command=command, context=in_context, limit=limit
        )
        rows = [_flat(r) for r in found] if out.fmt in (Format.csv, Format.tsv) else list(found)
    if out.fmt is Format.table:
        fields = [
            Field("id", "ID"),
            Field("started_at", "STARTED"),
            Field("actor", "ACTOR"),
            Field("context", "CONTEXT"),
            Field("command", "COMMAND"),
            Field("rows", "ROWS", kind="int"),
            Field("outcome", "OUTCOME", kind="long"),
            Field("exit_code", "EXIT", kind="int"),
        ]
    else:
        fields = [Field(name) for name in COLUMNS]
    written = out.rows(rows, fields)
    if not written and out.fmt is Format.table:
        out.info("No audit entries match.")


COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "actor",
    "context",
    "version",
    "command",
    "command_line",
    "selection",
    "rows",
    "details",
    "outcome",
    "exit_code",
    "duration_ms",
)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """csv and tsv cells: the selection and details as JSON text."""
    return {k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v for k, v in row.items()}


@app.command()
@no_writes
def show(
    ctx: typer.Context,
    entry_id: Annotated[
        int, typer.Argument(metavar="ID", help="The entry's id (`kafkaops audit` lists them).")
    ],
    output_format: OutputOpt = None,
) -> None:
    """One journal entry whole: the command line, selection, ids and their SHA-256, archive, outcome.

    \b
    Example:
      kafkaops audit show 42
    """
    from kafkaops.audit.reading import get_entry

    out = output(output_format)
    conns = bounded_connections(ctx)
    with conns.connect() as conn:
        entry = get_entry(conn, conns.settings.database, entry_id)
    if out.fmt is Format.table:
        blocks = {
            k: json.dumps(entry.pop(k), indent=2, sort_keys=True, default=str)
            for k in ("selection", "details")
        }
        out.record(entry, blocks=blocks)
    elif out.fmt in (Format.csv, Format.tsv, Format.jsonl):
        out.rows([_flat(entry)], [Field(name) for name in COLUMNS])
    else:
        out.record(entry)
