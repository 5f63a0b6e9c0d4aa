"""`kafkaops failed`: group, list, show, requeue and purge rows of `failed_kafka_events`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kafkaops.cli.common import (
    DryRunOpt,
    ErrorOpt,
    OutputOpt,
    SinceOpt,
    StatusOpt,
    TopicOpt,
    UntilOpt,
    YesOpt,
    confirm,
    event_filter,
    output,
    state,
)
from kafkaops.cli.output import Field

app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
)

GroupByOpt = Annotated[
    str,
    typer.Option(
        "--group-by",
        "-g",
        help="Comma-separated columns to group by: status, topic, last_error, error_type, retry_count, "
        "event_key, error_signature (last_error with numbers, ids, quoted values and durations folded).",
    ),
]
TopOpt = Annotated[
    int | None,
    typer.Option("--top", min=1, help="Only the N largest groups. [default: all]", show_default=False),
]


@app.callback()
def summary(
    ctx: typer.Context,
    group_by: GroupByOpt = "status",
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    top: TopOpt = None,
    output_format: OutputOpt = None,
) -> None:
    """See what failed and why: counts per group; list, show, requeue or purge events.

    Without a subcommand, counts failed events per group (default: per status), largest first,
    with the oldest and newest created_at of each group. Grouping and counting run in SQL.

    \b
    Example:
      kafkaops failed --group-by topic,error_signature --status DLQ_FAILED --since 24h
    """
    if ctx.invoked_subcommand is not None:
        return
    from kafkaops.failed import group_counts, parse_group_by

    keys = parse_group_by(group_by)
    flt = event_filter(status=status, topic=topic, since=since, until=until, error=error)
    out = output(output_format)
    conns = state(ctx).connections
    fields = [Field(k, kind="long" if k in ("last_error", "error_signature") else "text") for k in keys]
    fields += [
        Field("count", kind="int"),
        Field("oldest_created_at", "OLDEST"),
        Field("newest_created_at", "NEWEST"),
    ]
    with conns.connect() as conn:
        written = out.rows(group_counts(conn, conns.table, group_by=keys, flt=flt, top=top), fields)
    if not written and out.fmt.value == "table":
        out.info("No failed events match.")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many rows.")] = 50,
    output_format: OutputOpt = None,
) -> None:
    """List failed events, newest first (payloads left out; see `failed show`).

    \b
    Example:
      kafkaops failed list --status DLQ_FAILED --topic 'casino.*' --limit 20
    """
    from kafkaops.failed import list_events

    flt = event_filter(status=status, topic=topic, since=since, until=until, error=error)
    out = output(output_format)
    conns = state(ctx).connections
    with conns.connect() as conn:
        rows = list_events(conn, conns.table, flt=flt, limit=limit)
    if out.fmt.value == "table":
        fields = [
            Field("id", "ID"),
            Field("topic", "TOPIC"),
            Field("status", "STATUS"),
            Field("retry_count", "RETRIES", kind="int"),
            Field("next_retry_at", "NEXT RETRY"),
            Field("age", "AGE", kind="age", source="created_at"),
            Field("last_error", "LAST ERROR", kind="long"),
        ]
    else:
        from kafkaops.failed import LIST_COLUMNS

        fields = [Field(name) for name in LIST_COLUMNS]
    if not out.rows(rows, fields) and out.fmt.value == "table":
        out.info("No failed events match.")


@app.command()
def show(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The row's id (a number, or a UUID).")],
    output_format: OutputOpt = None,
) -> None:
    """Show one failed event whole: payload pretty-printed when it is JSON, headers decoded.

    \b
    Example:
      kafkaops failed show 4711
    """
    from kafkaops.failed import decode_headers, decode_payload, get_event, parse_event_id

    out = output(output_format)
    conns = state(ctx).connections
    parsed = parse_event_id(event_id, conns.id_type())
    with conns.connect() as conn:
        row = get_event(conn, conns.table, parsed)
    row["headers"] = decode_headers(row["headers"])
    if out.fmt.value != "table":
        out.record(row)
        return
    stored = row.pop("payload")
    if stored is None:
        out.record(row, blocks={"payload (NULL: nothing stored)": ""})
        return
    payload, is_json = decode_payload(stored)
    title = "payload (JSON)" if is_json else "payload (not JSON, shown as stored)"
    text = json.dumps(payload, indent=2, ensure_ascii=False) if is_json else payload
    out.record(row, blocks={title: text})


@app.command()
def requeue(
    ctx: typer.Context,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Set DLQ_FAILED (default) or DLQ rows back to PENDING, retry_count 0, due now.

    The manual intervention the runbook asks for: the next retry pass publishes them again.

    \b
    Example:
      kafkaops failed requeue --status DLQ_FAILED --topic casino.player.registered.v1
    """
    from kafkaops.failed import count_matching, requeue_filter
    from kafkaops.failed import requeue as do_requeue
    from kafkaops.timeparse import utcnow

    flt = requeue_filter(event_filter(status=status, topic=topic, since=since, until=until, error=error))
    out = output(None)
    conns = state(ctx).connections
    with conns.connect() as conn:
        matching = count_matching(conn, conns.table, flt=flt)
    what = "/".join(flt.statuses)
    out.info(f"{matching} {what} row(s) match.")
    if dry_run or matching == 0:
        return
    confirm(f"Requeue {matching} row(s) to PENDING?", yes=yes)
    with conns.begin() as conn:
        changed = do_requeue(conn, conns.table, flt=flt, now=utcnow())
    out.info(f"Requeued {changed} row(s) to PENDING; the next retry pass publishes them.")


@app.command()
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Only rows last updated longer ago than this (30d, 12h) or before an ISO time. Required.",
        ),
    ],
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows deleted per transaction.")
    ] = 10_000,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Delete old RESOLVED (default) or DLQ rows in batches; never PENDING or DLQ_FAILED.

    \b
    Example:
      kafkaops failed purge --status RESOLVED --older-than 30d --yes
    """
    from kafkaops.failed import count_purgeable, purge_batch, purge_filter
    from kafkaops.timeparse import parse_instant

    flt = purge_filter(event_filter(status=status, topic=topic, since=since, until=until, error=error))
    cutoff = parse_instant(older_than, what="--older-than")
    out = output(None)
    conns = state(ctx).connections
    with conns.connect() as conn:
        matching = count_purgeable(conn, conns.table, flt=flt, older_than=cutoff)
    out.info(
        f"{matching} {'/'.join(flt.statuses)} row(s) last updated before {cutoff:%Y-%m-%d %H:%M:%S}Z match."
    )
    if dry_run or matching == 0:
        return
    confirm(f"Delete {matching} row(s)?", yes=yes)
    deleted = 0
    while True:
        with conns.begin() as conn:
            batch = purge_batch(conn, conns.table, flt=flt, older_than=cutoff, batch_size=batch_size)
        deleted += batch
        if batch < batch_size:
            break
    out.info(f"Deleted {deleted} row(s).")
