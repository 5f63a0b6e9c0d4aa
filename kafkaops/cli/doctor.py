"""`kafkaops doctor`: the permissions each command needs, checked before acting."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kafkaops.cli.fields import Field
from kafkaops.cli.gate import no_writes
from kafkaops.cli.options import OutputOpt
from kafkaops.cli.state import bounded_connections, output

FIELDS = [
    Field("command", "COMMAND"),
    Field("resource", "RESOURCE"),
    Field("operation", "OPERATION"),
    Field("state", "STATE"),
    Field("fix", "TO ADD", kind="long"),
]
JSON_FIELDS = [*FIELDS, Field("detail", "HOW")]


@no_writes
def doctor(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[COMMAND]...",
            help="Commands to check: status, retry, dlq list, dlq tail, dlq stats, dlq ensure, dlq "
            "replay (or list, tail, stats, ensure, replay), probe (its topic kafkaops.probe). "
            "[default: all but probe]",
            show_default=False,
        ),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            "-t",
            help="Also check for this source topic (and its DLQ); repeat for more. Without it, the "
            "topics of rows not RESOLVED and the DLQ topics the principal sees.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=0.5, help="Deadline of each request to Kafka."),
    ] = 10.0,
    output_format: OutputOpt = None,
) -> None:
    """Check the Kafka ACLs and database privileges the named commands need; change nothing.

    Logs in as the configured principal, then tells each permission without side effects:
    metadata for named topics (Describe), CreateTopics with validate_only (Create), OffsetFetch
    for groups, the principal's own ACLs where it may read them (Read, Write), InitProducerId
    with a throwaway transactional id where nothing else can tell. Then the database: the
    connection, the table's columns (as db check) and, on PostgreSQL, SELECT, UPDATE and DELETE
    on the table. Each row says granted, missing or unknown, and what to add. The minimal ACLs
    are in docs/acls.md.

    Exit 0 when every check holds, 1 when one is missing or unknown.

    \b
    Examples:
      kafkaops doctor
      kafkaops doctor retry dlq replay
      kafkaops doctor -o json | jq '.checks[] | select(.state != "granted")'
    """
    from kafkaops.doctor.run import parse_commands, run_doctor

    commands = parse_commands(command or [])
    conns = bounded_connections(ctx)
    report = run_doctor(conns, commands, topic or [], timeout)
    out = output(output_format)
    if out.fmt.value in ("json", "yaml"):
        out.document(report.as_dict())
    else:
        out.rows(_rows(report), JSON_FIELDS if out.fmt.value != "table" else FIELDS)
    for note in report.notes:
        out.info(note)
    counts = report.counts()
    if report.holds:
        out.info(
            f"Every check holds ({counts['granted']}) for {report.principal or 'the configured principal'}."
        )
    else:
        out.warning(
            f"{counts['missing']} missing, {counts['unknown']} unknown of {len(report.checks)} check(s) "
            f"for {report.principal or 'the configured principal'}"
        )
    raise typer.Exit(report.exit_code)


def _rows(report: Any) -> list[dict[str, Any]]:
    return [c.as_dict() for c in report.checks]
