"""`kafkaops failed`: group, list, show, requeue and purge rows of `failed_kafka_events`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from click.core import ParameterSource

from kafkaops.cli.completion import complete_event_ids, complete_group_by, complete_purgeable
from kafkaops.cli.errors import LockBoundGroup
from kafkaops.cli.fields import Field
from kafkaops.cli.gate import no_writes, writes
from kafkaops.cli.journal import ArchiveOpt, NoArchiveOpt, archive_target, audit_action, selection_of
from kafkaops.cli.options import (
    DryRunOpt,
    ErrorOpt,
    OutputOpt,
    SinceOpt,
    StatusOpt,
    TopicOpt,
    UntilOpt,
    WhereOpt,
    YesOpt,
    event_filter,
)
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import bounded_connections, confirm, output, state, target
from kafkaops.common.escape import safe_text
from kafkaops.common.timeparse import format_duration
from kafkaops.config.settings import STATEMENT_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from kafkaops.db.actions import BulkAction
    from kafkaops.db.connections import Connections
    from kafkaops.db.failed_events import EventFilter
    from kafkaops.dlq.reconcile import DlqRecordStates


app = typer.Typer(
    cls=LockBoundGroup,
    invoke_without_command=True,
    no_args_is_help=False,
)

# A bound well inside what a database integer holds (the list asks for one row more than its
# limit): a bigger number is a usage error, not `bigint out of range` from the server.
MAX_ROWS = 10**12
DRY_RUN_ROWS = 50
WARNED_IDS = 20  # named ids left out, one warning line each; beyond that, one line says how many

GroupByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--group-by",
        "-g",
        help="Columns to group by, repeated or comma-separated: status, topic, last_error, error_type, "
        "retry_count, event_key, error_signature (last_error with numbers, ids, quoted values and "
        "durations folded). [default: status]",
        show_default=False,
        autocompletion=complete_group_by,
    ),
]
TopOpt = Annotated[
    int | None,
    typer.Option(
        "--top", min=1, max=MAX_ROWS, help="Only the N largest groups. [default: all]", show_default=False
    ),
]
IdsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[ID]...",
        help="Only these rows (ids as `failed list` shows them).",
        show_default=False,
        autocompletion=complete_event_ids,
    ),
]

TimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout",
        help="Give up on a statement that runs longer than this (30s, 5m): the transaction is "
        f"rolled back and nothing it did is kept. [default: {format_duration(STATEMENT_TIMEOUT)}]",
        show_default=False,
    ),
]

# The parent's filters, which apply to `list`, `requeue` and `purge` as well.
_FILTERS = ("status", "topic", "since", "until", "error")


@app.callback()
@no_writes
def summary(
    ctx: typer.Context,
    group_by: GroupByOpt = None,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    top: TopOpt = None,
    output_format: OutputOpt = None,
) -> None:
    """See what failed and why: counts per group; list, show, requeue, park or purge events.

    Without a subcommand, counts failed events per group (default: per status, most urgent
    first: DLQ_FAILED, PENDING, DLQ, PARKED, RESOLVED; other groupings largest first), with the oldest
    and newest created_at of each group. Grouping and counting run in SQL. Filters and -o given
    here apply to the subcommand too.

    \b
    Example:
      kafkaops failed -g topic,error_signature --status DLQ_FAILED --since 24h
    """
    if ctx.invoked_subcommand is not None:
        from kafkaops.common.errors import UsageError

        if group_by or top is not None:
            raise UsageError(
                f"--group-by and --top shape the counts of `kafkaops failed`; "
                f"`failed {ctx.invoked_subcommand}` does not take them"
            )
        return
    from kafkaops.db.failed_events import EventFilter, group_counts, parse_group_by, status_summary

    keys = parse_group_by(group_by or ["status"])
    flt = event_filter(status=status, topic=topic, since=since, until=until, error=error)
    out = output(output_format)
    conns = bounded_connections(ctx)
    fields = [Field(k, kind=_kind(k)) for k in keys]
    fields += [
        Field("count", kind="int"),
        Field("oldest_created_at", "OLDEST"),
        Field("newest_created_at", "NEWEST"),
    ]
    with conns.connect() as conn:
        if keys == ["status"] and flt == EventFilter():
            # The default summary: what is unresolved from its index, not a scan of the history.
            from kafkaops.common import clock

            rows, counts = status_summary(
                conn, conns.table, conns.settings.database, now=clock.now(), top=top
            )
            written = out.rows(rows, fields)
        else:
            counts = None
            written = out.rows(group_counts(conn, conns.table, group_by=keys, flt=flt, top=top), fields)
    if counts is not None and counts.resolved_estimated:
        out.info(
            f"RESOLVED: ~{counts.resolved.count:,}, the planner's estimate (exact, with a scan of "
            "the table: kafkaops failed --status RESOLVED)"
        )
    if counts is not None and counts.missing_index:
        out.info(f"counting faster needs the unresolved rows' index: {counts.missing_index}")
    if not written and out.fmt.value == "table":
        out.info("No failed events match.")


def _kind(key: str) -> str:
    return "long" if key in ("last_error", "error_signature") else "status" if key == "status" else "text"


def _inherited(ctx: typer.Context, **given: Any) -> dict[str, Any]:
    """This subcommand's options, with the parent's filters and -o where it gave none.

    Given in both places with different values, a filter is refused rather than one silently
    winning; the subcommand's own -o wins over the parent's (as the nearer one)."""
    from kafkaops.common.errors import UsageError

    merged = dict(given)
    for name, value in _given_to_parent(ctx).items():
        if name not in merged:
            raise UsageError(f"`failed {ctx.info_name}` takes no --{name.replace('_', '-')}")
        mine = merged[name]
        if mine in (None, []):
            merged[name] = value
        elif mine != value and name != "output_format":
            raise UsageError(
                f"--{name} given both before and after `{ctx.info_name}`, differently: give it once"
            )
    return merged


def _given_to_parent(ctx: typer.Context) -> dict[str, Any]:
    """The filters and -o the command line gave `kafkaops failed` before this subcommand, as
    the subcommand's own arrive (ctx.params holds click's values: tuples, format names)."""
    parent, given = ctx.parent, {}
    for name in (*_FILTERS, "output_format"):
        if parent is None or parent.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        value = parent.params[name]
        given[name] = Format(value) if name == "output_format" else list(value) if name == "status" else value
    return given


def _filter(opts: dict[str, Any], ids: tuple[Any, ...] = ()) -> EventFilter:
    from dataclasses import replace

    flt = event_filter(**{k: opts[k] for k in _FILTERS})
    return replace(flt, ids=ids) if ids else flt


def _ids(ctx: typer.Context, raws: list[str] | None) -> tuple[Any, ...]:
    if not raws:
        return ()
    from kafkaops.db.failed_events import parse_event_ids

    conns = bounded_connections(ctx)
    return parse_event_ids(raws, conns.id_type(), conns.dialect)


def _list_fields(out: Output) -> list[Field]:
    if out.fmt is Format.table:
        return [
            Field("id", "ID"),
            Field("topic", "TOPIC"),
            Field("status", "STATUS", kind="status"),
            Field("retry_count", "RETRIES", kind="int"),
            Field("next_retry_at", "NEXT RETRY"),
            Field("age", "AGE", kind="age", source="created_at"),
            Field("last_error", "LAST ERROR", kind="long"),
        ]
    from kafkaops.db.failed_events import LIST_COLUMNS

    return [Field(name, kind="status" if name == "status" else "text") for name in LIST_COLUMNS]


def _for_people(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A row no retry pass will touch shows no NEXT RETRY: a stale time there reads as a
    promise. Only the human table: the machine formats keep what is stored."""
    from kafkaops.db.statuses import SETTLED

    for row in rows:
        if row.get("status") in SETTLED:
            row = {**row, "next_retry_at": None}
        yield row


def _write_page(out: Output, page: Any, fields: list[Field]) -> int:
    rows = _for_people(page) if out.fmt is Format.table else page
    try:
        return out.rows(rows, fields)
    finally:
        page.close()


@app.command("list")
@no_writes
def list_(
    ctx: typer.Context,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_ROWS, help="At most this many rows.")
    ] = 50,
    all_rows: Annotated[bool, typer.Option("--all", help="Every matching row, streamed (no limit).")] = False,
    where: WhereOpt = None,
    output_format: OutputOpt = None,
) -> None:
    """List failed events, most urgent first, without payloads.

    Order: DLQ_FAILED, PENDING, DLQ, then RESOLVED; newest first within a status.

    Payloads and headers: `failed show ID`. When --limit cuts the list, stderr says how many
    rows matched.

    \b
    Example:
      kafkaops failed list --status DLQ_FAILED --topic 'casino.*' --limit 20
    """
    from kafkaops.db.failed_events import count_matching, page_of_events

    opts = _inherited(
        ctx, status=status, topic=topic, since=since, until=until, error=error, output_format=output_format
    )
    if all_rows and ctx.get_parameter_source("limit") is ParameterSource.COMMANDLINE:
        from kafkaops.common.errors import UsageError

        raise UsageError("--all and --limit contradict each other: give one")
    flt = _filter(opts)
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    shown = None if all_rows else limit
    rows = _row_filter(ctx, where)
    if rows is not None:
        _list_selected(out, conns, flt, rows, shown)
        return
    with conns.connect() as conn:
        page = page_of_events(conn, conns.table, flt=flt, limit=shown)
        written = _write_page(out, page, _list_fields(out))
        total = count_matching(conn, conns.table, flt=flt) if page.cut else written
    if page.cut:
        out.info(f"Showing {written:,} of {total:,}; use --limit N or --all.")
    if not written and out.fmt is Format.table:
        out.info("No failed events match.")


def _row_filter(ctx: typer.Context, where: str | None) -> Any:
    if where is None:
        return None
    from kafkaops.db.where import compile_row_filter

    return compile_row_filter(where, saved=state(ctx).settings.filters)


def _say_failures(out: Output, rows: Any) -> None:
    if rows is not None and rows.where.failures.count:
        out.warning(rows.where.failures.sentence("row"))


def _list_selected(out: Output, conns: Any, flt: EventFilter, rows: Any, shown: int | None) -> None:
    """`failed list --where`: the rows the expression selects (in id order), at most `shown`."""
    from datetime import datetime

    from kafkaops.common.timeparse import as_utc
    from kafkaops.db.failed_events import LIST_COLUMNS, conditions
    from kafkaops.db.where import stream_selected

    total = 0

    def page() -> Iterator[dict[str, Any]]:
        nonlocal total
        where = conditions(conns.table, flt)
        for row in stream_selected(conn, conns.table, rows, where, columns=LIST_COLUMNS):
            total += 1
            if shown is None or total <= shown:
                yield {
                    k: as_utc(v) if isinstance(v, datetime) else v
                    for k, v in row.items()
                    if k in LIST_COLUMNS
                }

    with conns.connect() as conn:
        listed = page()
        written = out.rows(_for_people(listed) if out.fmt is Format.table else listed, _list_fields(out))
        for _ in listed:  # count the rest
            pass
    if shown is not None and total > written:
        out.info(f"Showing {written:,} of {total:,}; use --limit N or --all.")
    if not written and out.fmt is Format.table:
        out.info("No failed events match.")
    _say_failures(out, rows)


@app.command()
@no_writes
def show(
    ctx: typer.Context,
    event_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            help="The rows' ids (numbers, or UUIDs).",
            show_default=False,
            autocompletion=complete_event_ids,
        ),
    ],
    where: WhereOpt = None,
    output_format: OutputOpt = None,
) -> None:
    """Show events whole: payload (pretty-printed when JSON) and decoded headers.

    One id prints one object (-o json: an object); several print one after the other (-o json:
    a list of objects, in the order asked; -o jsonl: one object per line). The table shows a text up to 65,536 characters and
    says how much more there is; the machine formats print everything.

    \b
    Example:
      kafkaops failed show 4711 4712
    """
    from kafkaops.db.failed_events import decode_headers, get_events

    opts = _inherited(ctx, output_format=output_format)
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    ids = _ids(ctx, event_ids)
    chooser = _row_filter(ctx, where)
    with conns.connect() as conn:
        rows = get_events(conn, conns.table, ids)
    if chooser is not None:
        kept = [row for row in rows if chooser.test(row)]
        for row in rows:
            if row not in kept:
                out.warning(f"id {row['id']} left out (--where does not select it).")
        _say_failures(out, chooser)
        rows = kept
        if not rows:
            out.info("No failed events match.")
            return
    for row in rows:
        row["headers"] = decode_headers(row["headers"])
    if out.fmt in (Format.csv, Format.tsv, Format.jsonl):  # one line (or row) per event
        out.rows(rows, [Field(k) for k in rows[0]])
        return
    if out.fmt is not Format.table:
        if len(rows) == 1:
            out.record(rows[0])
        else:
            out.document(rows)
        return
    for n, row in enumerate(rows):
        if n:
            out.separator()
        _show_one(out, row)


def _show_one(out: Output, row: dict[str, Any]) -> None:
    from kafkaops.db.failed_events import decode_payload
    from kafkaops.db.statuses import SETTLED

    if row.get("status") in SETTLED:
        row["next_retry_at"] = None
    _dlq_record_line(row)
    stored = row.pop("payload")
    if stored is None:
        out.record(row, blocks={"payload (NULL: nothing stored)": ""})
        return
    payload, is_json = decode_payload(stored)
    title = "payload (JSON)" if is_json else "payload (not JSON, shown as stored)"
    text = json.dumps(payload, indent=2, ensure_ascii=False) if is_json else payload
    out.record(row, blocks={title: text})


def _dlq_record_line(row: dict[str, Any]) -> None:
    """The optional dlq_* columns as one `dlq_record` line: where the row's DLQ record is and
    when the DLQ send was acknowledged; for a DLQ row without them, what can be said."""
    from kafkaops.common.timeparse import isoformat_utc

    has_columns = "dlq_offset" in row
    topic, partition, offset = (row.pop(k, None) for k in ("dlq_topic", "dlq_partition", "dlq_offset"))
    acked = row.pop("dlq_acked_at", None)
    if topic is not None or offset is not None:
        where = f"{topic or '(topic not recorded)'} partition {partition} offset {offset}"
        when = isoformat_utc(acked, timespec="milliseconds") if isinstance(acked, datetime) else acked
        row["dlq_record"] = where + (f", acknowledged {when}" if when else "")
    elif row.get("status") == "DLQ":
        why = "its DLQ send did not record it" if has_columns else "the table has no dlq_* columns"
        row["dlq_record"] = f"not recorded ({why}): kafkaops dlq tail shows each record's row"


def _bulk(
    ctx: typer.Context,
    out: Output,
    action: BulkAction,
    *,
    dry_run: bool,
    yes: bool,
    matched: Callable[[int], str],
    question: Callable[[int], str],
    done: Callable[[int], str],
    extra: dict[str, Any] | None = None,
    after: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """The shape requeue and purge share: count and show what matches (and the named ids left
    out), then ask, naming where, then act; -o json gets one result object. `matched`,
    `question` and `done` say a number of rows in words."""
    from kafkaops.db.actions import ActionInterrupted

    where = target(state(ctx))
    plan = action.plan(preview=DRY_RUN_ROWS if dry_run else 0)
    if plan.preview and out.fmt is Format.table:
        fields = [
            Field("id", "ID"),
            Field("topic", "TOPIC"),
            Field("status", "STATUS", kind="status"),
            Field("last_error", "LAST ERROR", kind="long"),
        ]
        out.rows(plan.preview, fields)
    _warn_left_out(out, plan.left_out, action)
    refused = _refused_permanent(out, action)
    out.info(f"{matched(plan.matched)} match in {where}.")
    doc = {"matched": plan.matched, action.done_key: 0, **(extra or {}), "dry_run": dry_run}
    doc["left_out"] = plan.left_out
    if refused is not None:
        doc["refused_permanent"] = refused
    if dry_run or plan.matched == 0:
        _say_failures(out, action.rows)
        if plan.matched > len(plan.preview) and dry_run:
            out.info(f"Showing {len(plan.preview):,} of {plan.matched:,}.")
        _result(out, {**doc, "rows": plan.preview} if dry_run else doc)
        return
    confirm(f"{question(plan.matched)} in {where}?", yes=yes)
    try:
        changed = action.run()
    except ActionInterrupted as stop:
        # Ctrl-C between batches: what was committed stays committed; say how much, then stop.
        out.info(
            f"Interrupted after {stop.what} {stop.done:,} row(s); the batch in progress was rolled back."
        )
        _result(out, {**doc, action.done_key: stop.done, "interrupted": True})
        raise KeyboardInterrupt from None
    out.info(done(changed))
    _result(out, {**doc, action.done_key: changed, **(after() if after else {})})
    _say_failures(out, action.rows)


def _refused_permanent(out: Output, action: BulkAction) -> int | None:
    """Requeue's one line on the rows it left out because the broker will never accept them."""
    found = getattr(action, "refused_permanent", None)
    if found is None:
        return None
    total = sum(found.values())
    if total:
        from kafkaops.db.park import describe_breakdown

        out.warning(
            f"{total:,} row(s) left out: the broker will never accept them ({describe_breakdown(found)}); "
            "park them (kafkaops failed park --permanent --reason TEXT), fix the cause, or requeue with --force."
        )
    return total


def _warn_left_out(out: Output, left_out: list[dict[str, Any]], action: BulkAction) -> None:
    for item in left_out[:WARNED_IDS]:
        status = item["status"]
        why = "no such row" if status is None else f"{safe_text(status)}: {action.verb} takes {action.takes}"
        if item.get("where") is False:
            why = "--where does not select it"
        out.warning(f"id {item['id']} left out ({why}).")
    if len(left_out) > WARNED_IDS:
        out.warning(f"{len(left_out) - WARNED_IDS:,} more named id(s) left out (-o json lists them all).")


def _timeout(raw: str) -> timedelta:
    from kafkaops.common.errors import UsageError
    from kafkaops.common.timeparse import parse_duration

    within = parse_duration(raw, what="--timeout")
    if within.total_seconds() <= 0:
        raise UsageError(f"--timeout {raw!r} must be longer than 0s")
    return within


def _result(out: Output, doc: dict[str, Any]) -> None:
    if out.fmt is not Format.table:
        out.document(doc)


@app.command()
@writes
def requeue(
    ctx: typer.Context,
    event_ids: IdsArg = None,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    where: WhereOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Requeue the rows held back too: those the broker will never accept (error_type "
            "RecordTooLarge, InvalidRecord, InvalidTopic) and DLQ rows whose DLQ record was already "
            "replayed or still waits for `dlq replay` (their event is then published twice).",
        ),
    ] = False,
    timeout: TimeoutOpt = format_duration(STATEMENT_TIMEOUT),
    output_format: OutputOpt = None,
) -> None:
    """Requeue DLQ_FAILED (default) or DLQ rows: PENDING, retry_count 0, due now.

    The manual intervention the runbook asks for: the next retry pass publishes them again.
    Ids narrow it to those rows (DLQ_FAILED or DLQ alike unless --status says which); a named
    row in another status (PENDING, RESOLVED) is left as it is, with a warning. Rows whose
    error_type says the broker will never accept them (too large, invalid, a topic name Kafka
    refuses) are left out, in one line: park them (kafkaops failed park) or fix the cause. A DLQ
    row whose DLQ record is known (dlq_topic, dlq_partition, dlq_offset) is held back when
    `kafkaops dlq replay` already replayed that record, or when the record still waits on its
    DLQ topic (replay it instead: that publishes it once and marks the row RESOLVED). --force
    requeues both kinds anyway. -o json prints {"matched", "requeued", "dry_run", "left_out",
    "refused_permanent", "held_back", "rows"} for scripts.

    \b
    Example:
      kafkaops failed requeue --status DLQ_FAILED --topic casino.player.registered.v1
      kafkaops failed requeue 4128 4129
    """
    from kafkaops.common import clock
    from kafkaops.db.actions import Requeue

    opts = _inherited(
        ctx, status=status, topic=topic, since=since, until=until, error=error, output_format=output_format
    )
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    flt = _filter(opts, _ids(ctx, event_ids))
    within = _timeout(timeout)
    from kafkaops.dlq.reconcile import DlqRecordStates

    # --force asks Kafka nothing: it is also the way on when Kafka cannot be asked.
    states = DlqRecordStates() if force else _dlq_record_states(conns, flt)
    _warn_held_back(out, states)
    action = Requeue(conns, flt, within=within, now=clock.now(), force=force, exclude=states.held_back)
    action.rows = _row_filter(ctx, where)
    audit_action(ctx, action, "failed requeue", selection_of(action.flt, where=where, force=force or None))
    _bulk(
        ctx,
        out,
        action,
        dry_run=dry_run,
        yes=yes,
        matched=lambda n: f"{n:,} {action.statuses} row(s)",
        question=lambda n: f"Requeue {n:,} {action.statuses} row(s) to PENDING",
        done=lambda n: f"Requeued {n:,} row(s) to PENDING; the next retry pass publishes them.",
        extra={
            "held_back": {
                "replayed": [str(i) for i in states.replayed],
                "pending_replay": [str(i) for i in states.pending],
            }
        },
    )


def _dlq_record_states(conns: Connections, flt: EventFilter) -> DlqRecordStates:
    """What became of the DLQ records of the DLQ rows a requeue takes (see dlq.reconcile)."""
    from kafkaops.common.errors import KafkaopsError
    from kafkaops.dlq.reconcile import dlq_record_states

    try:
        return dlq_record_states(conns, flt)
    except KafkaopsError as error:
        force = "--force requeues without asking Kafka whether their DLQ records were replayed"
        error.hint = f"{error.hint}; or {force}" if error.hint else force
        error.message = f"cannot tell whether the DLQ rows' records were replayed: {error.message}"
        raise


def _warn_held_back(out: Output, states: DlqRecordStates) -> None:
    if states.replayed:
        out.warning(
            f"{len(states.replayed):,} DLQ row(s) left out: `kafkaops dlq replay` already replayed their DLQ "
            f"record (ids {_some_ids(states.replayed)}); requeueing them publishes their events twice "
            "(--force to do it anyway)"
        )
    if states.pending:
        topics = ", ".join(sorted(safe_text(t) for t in states.pending_topics))
        out.warning(
            f"{len(states.pending):,} DLQ row(s) left out: their DLQ record still waits in {topics} "
            f"(ids {_some_ids(states.pending)}); `kafkaops dlq replay` publishes them once and marks "
            "the rows RESOLVED, requeueing them as well publishes them twice (--force to requeue anyway)"
        )


def _some_ids(ids: list[Any]) -> str:
    shown = ", ".join(safe_text(str(i)) for i in ids[:WARNED_IDS])
    return shown + (f" and {len(ids) - WARNED_IDS:,} more" if len(ids) > WARNED_IDS else "")


@app.command()
@writes
def purge(
    ctx: typer.Context,
    event_ids: IdsArg = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Only rows last updated longer ago than this (30d, 12h) or before an ISO time; "
            "needed unless ids name the rows.",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="RESOLVED or DLQ (repeat or comma-separate), or PARKED (only when named); PENDING "
            "and DLQ_FAILED are never purged. [default: RESOLVED; with ids: RESOLVED and DLQ]",
            show_default=False,
            autocompletion=complete_purgeable,
        ),
    ] = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=MAX_ROWS, help="Rows deleted per transaction."),
    ] = 10_000,
    where: WhereOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = format_duration(STATEMENT_TIMEOUT),
    archive: ArchiveOpt = None,
    no_archive: NoArchiveOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Delete old RESOLVED (default) or DLQ rows (PARKED ones when --status PARKED); never PENDING or DLQ_FAILED.

    Rows go in batches, each one transaction that locks what it deletes (SKIP LOCKED). Every
    row deleted, every column, goes to the archive (--archive, or purge.archive_dir) and is
    on disk before its batch commits; `failed restore ARCHIVE` puts rows back.

    Ids narrow it to those rows (then --older-than is optional); a named row in a status purge
    never deletes is kept, with a warning. -o json prints {"matched", "deleted", "dry_run",
    "left_out", "rows"} for cron.

    \b
    Example:
      kafkaops failed purge --status RESOLVED --older-than 30d --archive purge.jsonl.gz --yes
      kafkaops failed purge 4128 --status DLQ --archive purge-4128.jsonl
    """
    from kafkaops.common import clock
    from kafkaops.common.timeparse import format_utc, isoformat_utc
    from kafkaops.db.actions import Purge, purge_cutoff

    opts = _inherited(
        ctx, status=status, topic=topic, since=since, until=until, error=error, output_format=output_format
    )
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    flt = _filter(opts, _ids(ctx, event_ids))
    within = _timeout(timeout)
    cutoff = purge_cutoff(older_than, now=clock.now())
    action = Purge(conns, flt, older_than=cutoff, batch_size=batch_size, within=within)
    action.rows = _row_filter(ctx, where)
    kept = archive_target(ctx, archive, no_archive, dry_run=dry_run)
    chosen = selection_of(action.flt, older_than=cutoff, batch_size=batch_size, where=where)
    audit_action(ctx, action, "failed purge", chosen, archive=kept)
    age = f" last updated before {format_utc(cutoff)}" if cutoff else ""
    _bulk(
        ctx,
        out,
        action,
        dry_run=dry_run,
        yes=yes,
        matched=lambda n: f"{n:,} {action.statuses} row(s){age}",
        question=lambda n: f"Delete {n:,} {action.statuses} row(s)",
        done=lambda n: f"Deleted {n:,} row(s).",
        extra={"older_than": isoformat_utc(cutoff) if cutoff else None},
    )


from kafkaops.cli import failed_park  # noqa: E402, F401  (registers `failed park` and `failed unpark`)
