"""`kafkaops dlq`: list, tail, ensure and replay dead-letter topics."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kafkaops.cli.completion import complete_dlq_topics, complete_source_topics
from kafkaops.cli.fields import Field
from kafkaops.cli.formats import RECORDS, output_option
from kafkaops.cli.gate import no_writes, writes
from kafkaops.cli.journal import audited, note_replay, replay_selection, selection_of
from kafkaops.cli.options import DryRunOpt, OutputOpt, WhereOpt, YesOpt
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import confirm, output, state
from kafkaops.common import clock
from kafkaops.common.errors import KafkaopsError, UsageError, exit_status_for_signal
from kafkaops.common.escape import safe_binary, safe_text, shown_text
from kafkaops.common.signals import stop_on_signals

if TYPE_CHECKING:
    from confluent_kafka import Message

    from kafkaops.dlq.plan import ReplayPlan, ReplayRequest
    from kafkaops.dlq.reconcile import MarkResult
    from kafkaops.dlq.selection import Selection

app = typer.Typer(no_args_is_help=True, help="Dead-letter topics: list, tail, ensure, replay.")

PartitionOpt = Annotated[
    list[int] | None,
    typer.Option(
        "--partition",
        "-p",
        help="Only this partition; repeat for several. [default: all]",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", "-k", help="Only records with exactly this key (UTF-8).", show_default=False),
]
GrepOpt = Annotated[
    str | None,
    typer.Option(
        "--grep",
        help="Only records whose value or key contains this text (case-sensitive).",
        show_default=False,
    ),
]
RecordSinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only records with a timestamp at or after this time: ISO-8601 (UTC if no offset) or a "
        "duration ago (90m, 2h, 7d).",
        show_default=False,
    ),
]


# ---------------------------------------------------------------------------------------
# list


@app.command("list")
@no_writes
def list_(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """List the dead-letter topics: size, original topic, record times, replay backlog.

    A topic is a DLQ when its name ends in one of retry.dlq_suffixes (default .dlq, -dlt, .DLT)
    or in retry.dlq_suffix. MESSAGES counts offsets up to the last stable one (an open
    transaction's records once committed). Topics with rows not RESOLVED in the failed-events
    table but no DLQ topic get a warning: their next DLQ send would fail and leave DLQ_FAILED
    rows (`kafkaops dlq ensure` creates them).

    \b
    Example:
      kafkaops dlq list -o json
    """
    from kafkaops.dlq.listing import list_dlq_topics

    app_state = state(ctx)
    settings = app_state.settings
    catalog = settings.retry.dlq_catalog
    out = output(output_format)
    props = settings.require_kafka()
    topics = list_dlq_topics(props, catalog)
    rows = [t.as_dict() for t in topics]  # escaped by the output layer
    fields = [
        Field("topic", "TOPIC"),
        Field("messages", "MESSAGES", kind="int"),
        Field("original_topic", "ORIGINAL TOPIC"),
        Field("original_exists", "EXISTS", kind="exists"),
        Field("oldest", "OLDEST"),
        Field("newest", "NEWEST"),
        Field("replay_pending", "REPLAY PENDING", kind="int"),
    ]
    shown = out.rows(rows, fields)  # the Kafka side first: the database may be down
    without = None
    try:
        if settings.database.url:
            from kafkaops.dlq.ensure import topics_without_dlq

            without = topics_without_dlq(app_state.connections, props, catalog)
    finally:
        if not shown and out.fmt is Format.table:
            hidden = " that this principal may describe" if any(m.denied for m in without or ()) else ""
            out.info("No DLQ topics" + hidden + " (names ending in " + ", ".join(catalog.suffixes) + ").")
    if without is None:
        out.info("No database configured: topics with failed events were not checked for a DLQ.")
        return
    for missing in without:
        if missing.denied:
            out.warning(
                f"topic {safe_text(missing.source)} has failed events, and this principal is not "
                f"authorized to describe its DLQ topic {safe_text(missing.name)} (whether it exists "
                f"is unknown); {acl_hint_for_describe(missing.name, props)}"
            )
            continue
        out.warning(
            f"topic {safe_text(missing.source)} has failed events but no DLQ topic "
            f"{safe_text(missing.name)}: its next DLQ send fails and leaves "
            "DLQ_FAILED rows (run `kafkaops dlq ensure`)"
        )


def acl_hint_for_describe(topic: str, props: Mapping[str, Any]) -> str:
    """The ACL that lets kafkaops' principal describe ``topic``."""
    from kafkaops.kafka.client import principal_of
    from kafkaops.kafka.faults import acl_hint

    who = principal_of(props)
    return safe_text(acl_hint("TOPIC_AUTHORIZATION_FAILED", name=topic, operation="Describe", principal=who))


# ---------------------------------------------------------------------------------------
# ensure


@app.command()
@writes
def ensure(
    ctx: typer.Context,
    topics: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TOPIC]...",
            help="Source topics. [default: every topic with rows in the failed-events table]",
            show_default=False,
            autocompletion=complete_source_topics,
        ),
    ] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Create the missing DLQ topics: <topic><retry.dlq_suffix> for each source topic.

    Each gets its source's partition count and replication factor (at most the number of
    brokers). Without TOPIC, every topic with rows not RESOLVED in the failed-events table
    (the topics `status` and `dlq list` warn about).

    \b
    Example:
      kafkaops dlq ensure casino.loyalty.points-earned.v1 --dry-run
    """
    from kafkaops.dlq.catalogue import topics_needing_dlq
    from kafkaops.dlq.ensure import create_missing, plan_ensure

    app_state = state(ctx)
    settings = app_state.settings
    props = settings.require_kafka()
    out = output(None)
    if topics:
        sources, strict = list(topics), True
    else:
        conns = app_state.connections
        with conns.connect() as conn:
            sources, strict = topics_needing_dlq(conn, conns.table), False
        if not sources:
            out.info("No failed events that need a DLQ topic in the table: no DLQ topic to create.")
            return
    plans = plan_ensure(props, sources, settings.retry.dlq_catalog, strict=strict)
    for p in plans:
        if p.action == "exists":
            out.info(f"exists      {safe_text(p.dlq)}")
        elif p.action == "is-dlq":
            out.warning(f"topic {safe_text(p.source)} is itself a dead-letter topic: no DLQ created for it")
        elif p.action == "bad-name":
            out.warning(
                f"topic {safe_text(p.source)} can have no DLQ topic: {safe_text(p.dlq)} is not a valid "
                "Kafka topic name (too long?)"
            )
        elif p.action == "no-describe":
            out.warning(
                f"not authorized to describe topic {safe_text(p.source)}: {safe_text(p.dlq)} not created "
                f"({acl_hint_for_describe(p.source, props)})"
            )
        elif p.action == "no-source":
            out.warning(
                f"topic {safe_text(p.source)} does not exist on the cluster: {safe_text(p.dlq)} not created"
            )
    todo = [p for p in plans if p.action == "create"]
    verb = "would create" if dry_run else "create"
    for p in todo:
        out.info(f"{verb:<11} {p.dlq} ({p.partitions} partitions, replication factor {p.replication_factor})")
    if dry_run or not todo:
        out.info(
            f"{len(todo)} DLQ topic(s) {'would be created' if dry_run else 'to create'}; nothing changed."
        )
        return
    chosen = selection_of(topics=[p.dlq for p in todo])
    with audited(ctx, "dlq ensure", chosen) as entry:
        created = create_missing(props, todo)
        entry.note(created=list(created))
        entry.count(len(created))
    for p in todo:
        if p.dlq not in created:
            out.info(f"exists      {safe_text(p.dlq)} (the cluster says it already exists)")
    out.info(f"Created {len(created)} DLQ topic(s).")


# ---------------------------------------------------------------------------------------
# tail


@app.command()
@no_writes
def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The DLQ topic.", autocompletion=complete_dlq_topics)],
    last: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            "--last",
            min=1,
            help="At most N records of each partition: the last N, merged by time; with "
            "--from-beginning or --since, the first N from there. [default: 20, or all from a start point]",
            show_default=False,
        ),
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    since: RecordSinceOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records until Ctrl-C.")
    ] = False,
    partition: PartitionOpt = None,
    key: KeyOpt = None,
    grep: GrepOpt = None,
    where: WhereOpt = None,
    output_format: Annotated[Format | None, output_option(RECORDS)] = None,
) -> None:
    """Print DLQ records: partition, offset, time, key, original topic, error and value.

    Read-only: partitions are assigned directly, no consumer group is joined or committed.
    `-o json` prints one JSON list of the records, `-o jsonl` one object per record per line
    (the only machine format --follow takes: it never ends), each the record model --where
    filters on (docs/filters.md). Bytes that are not UTF-8 are given as base64.

    \b
    Example:
      kafkaops dlq tail casino.player.registered.v1.dlq -n 5 --grep brandId
      kafkaops dlq tail casino.player.registered.v1.dlq --from-beginning --where 'error.class.endsWith("TimeoutException")'
    """
    from kafkaops.dlq.reading import read_consumer
    from kafkaops.dlq.tail import TailRequest
    from kafkaops.dlq.tail import tail as read_tail

    settings = state(ctx).settings
    out = output(output_format)

    if follow and out.fmt is Format.json:
        raise UsageError(
            "--follow never ends, so it cannot close one JSON document",
            hint="use -o jsonl: one object per line",
        )
    if from_beginning and since is not None:
        raise UsageError("--from-beginning and --since are two start points: give one")
    suffixes = settings.retry.dlq_catalog.suffixes
    selection = _selection(partition=partition, key=key, grep=grep, since=None, until=None, match=None)
    selection = _with_where(selection, where, settings)
    since_ms = _since_ms(since)
    request = TailRequest(
        topic=topic,
        last=last if last is not None else (None if from_beginning or since_ms is not None else 20),
        from_beginning=from_beginning,
        since_ms=since_ms,
        follow=follow,
        selection=selection,
    )
    from kafkaops.kafka.metadata import check_reachable

    check_reachable(settings.require_kafka())  # a cluster that is not there fails in seconds
    consumer = read_consumer(settings.require_kafka())
    stopped = False

    def stop() -> bool:
        return stopped

    records: Iterator[Message] = read_tail(consumer, request, stop=stop)
    try:
        if out.fmt in (Format.json, Format.jsonl):
            from kafkaops.dlq.model import full_model

            views = (full_model(m, suffixes) for m in records)
            if out.fmt is Format.json:
                out.json_list(views)
            else:
                out.jsonl(views)
        else:
            count = 0
            for msg in records:
                out.text(_record_text(msg, suffixes))
                count += 1
            if not count and not follow:
                out.info("No records match.")
    except KeyboardInterrupt:
        stopped = True  # Ctrl-C ends --follow: a normal way to stop, exit 0
    finally:
        consumer.close()
        _say_failures(out, selection)


def _with_where(selection: Selection, where: str | None, settings: Any) -> Selection:
    """The selection narrowed by --where (compiled here: a bad expression stops the command
    before anything is read)."""
    if where is None:
        return selection
    import dataclasses

    from kafkaops.dlq.model import compile_record_filter

    found = compile_record_filter(where, saved=settings.filters, suffixes=settings.retry.dlq_catalog.suffixes)
    return dataclasses.replace(selection, where=found)


def _say_failures(out: Output, selection: Selection) -> None:
    failures = getattr(selection.where, "failures", None)
    if failures is not None and failures.count:
        out.warning(failures.sentence())


def _record_text(msg: Message, suffixes: tuple[str, ...]) -> str:
    from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
    from kafkaops.dlq import record as dlq_record
    from kafkaops.dlq.selection import record_timestamp_ms

    headers = dlq_record.readable_headers(msg)
    origin = dlq_record.parse_origin(headers, msg.topic() or "", suffixes)
    lines = [
        f"--- {safe_text(msg.topic() or '')}  partition {msg.partition()}  offset {msg.offset()}  "
        f"{isoformat_utc(from_epoch_ms(record_timestamp_ms(msg)), timespec='milliseconds') or '(no time)'}",
        f"key:      {_shown_bytes(msg.key())}",
    ]
    if headers is None:
        lines.append("headers:  (unreadable: a header name is not UTF-8)")
    original = shown_text(origin.topic or "(unknown)")
    where = [f"partition {origin.partition}" if origin.partition is not None else ""]
    where.append(f"offset {origin.offset}" if origin.offset is not None else "")
    where.append(isoformat_utc(from_epoch_ms(origin.timestamp), timespec="milliseconds") or "")
    detail = ", ".join(w for w in where if w)
    lines.append(f"original: {original}" + (f" ({detail})" if detail else ""))
    if origin.error_message or origin.error_class:
        error = ": ".join(shown_text(x) for x in (origin.error_class, origin.error_message) if x)
        lines.append(f"error:    {error}")
    if origin.failed_event_id:
        row = shown_text(origin.failed_event_id)
        lines.append(f"row:      {row}  (kafkaops failed show {row})")
    if origin.replay_count:
        lines.append(f"replayed: {origin.replay_count} time(s)")
    lines.append("value:")
    lines.append(_shown_value(msg.value()))
    return "\n".join(lines) + "\n"


def _shown_bytes(value: bytes | None) -> str:
    if value is None:
        return "(null)"
    try:
        return shown_text(value.decode("utf-8"))
    except UnicodeDecodeError:
        return f"(binary, {len(value)} bytes) " + safe_binary(value[:64])


def _shown_value(value: bytes | None) -> str:
    from kafkaops.common.jsontext import parse_json

    if value is None:
        return "(null)"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return f"(binary, {len(value)} bytes) " + safe_binary(value[:512])
    parsed, is_json = parse_json(text)
    if not is_json:
        return shown_text(text, keep_lines=True)
    return shown_text(json.dumps(parsed, indent=2, ensure_ascii=False), keep_lines=True)


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    from kafkaops.common.timeparse import parse_instant

    return int(parse_instant(since, what="--since", now=clock.now()).timestamp() * 1000)


def _selection(
    *,
    partition: list[int] | None,
    key: str | None,
    grep: str | None,
    since: str | None,
    until: str | None,
    match: list[str] | None,
) -> Selection:
    from kafkaops.common.timeparse import parse_instant
    from kafkaops.dlq.selection import build_selection

    return build_selection(
        partitions=partition,
        key=key,
        grep=grep,
        since=parse_instant(since, what="--since", now=clock.now()) if since else None,
        until=parse_instant(until, what="--until", now=clock.now()) if until else None,
        match=match,
    )


# ---------------------------------------------------------------------------------------
# stats


@app.command()
@no_writes
def stats(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The DLQ topic.", autocompletion=complete_dlq_topics)],
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            "-g",
            help="Count per error.signature, error.class, origin.topic, key, hour or day; repeat or "
            "comma-separate. [default: error.signature]",
            show_default=False,
        ),
    ] = None,
    since: RecordSinceOpt = None,
    where: WhereOpt = None,
    output_format: OutputOpt = None,
) -> None:
    """Count a DLQ topic's records per group, with the oldest and newest of each.

    Reads the topic once, up to its end offsets at the start (read-only, no consumer group),
    keeping one counter per group. Each group comes with the `kafkaops dlq replay` line that
    replays exactly its records. error.signature is `failed --group-by error_signature`'s: a
    table row and its DLQ record fall in the same group.

    \b
    Example:
      kafkaops dlq stats casino.player.registered.v1.dlq -g error.class -g day --since 7d
    """
    from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
    from kafkaops.dlq.reading import read_consumer
    from kafkaops.dlq.selection import Selection
    from kafkaops.dlq.stats import count_groups, parse_stats_group_by
    from kafkaops.dlq.tail import TailRequest
    from kafkaops.dlq.tail import tail as read_tail
    from kafkaops.kafka.metadata import check_reachable

    settings = state(ctx).settings
    out = output(output_format)
    names = parse_stats_group_by(group_by)
    selection = _with_where(Selection(), where, settings)
    since_ms = _since_ms(since)
    request = TailRequest(
        topic=topic, last=None, from_beginning=since_ms is None, since_ms=since_ms, selection=selection
    )
    check_reachable(settings.require_kafka())
    consumer = read_consumer(settings.require_kafka())
    try:
        counted = count_groups(
            read_tail(consumer, request),
            topic=topic,
            group_by=names,
            suffixes=settings.retry.dlq_catalog.suffixes,
        )
    finally:
        consumer.close()
    source = selection.where.where.source if selection.where is not None else None  # type: ignore[attr-defined]
    rows = counted.rows(since=isoformat_utc(from_epoch_ms(since_ms)), where=source)
    fields = [Field(n, n.upper()) for n in names] + [
        Field("count", "COUNT", kind="int"),
        Field("oldest", "OLDEST"),
        Field("newest", "NEWEST"),
        Field("replay", "REPLAY WITH", kind="long"),
    ]
    if not out.rows(rows, fields) and out.fmt is Format.table:
        out.info("No records match.")
    _say_failures(out, selection)


# ---------------------------------------------------------------------------------------
# replay


@app.command()
@writes
def replay(
    ctx: typer.Context,
    topic: Annotated[
        str, typer.Argument(help="The DLQ topic to replay.", autocompletion=complete_dlq_topics)
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Target topic for every record. [default: each record's original topic]",
            show_default=False,
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Consumer group that keeps the progress. [default: kafkaops-replay.<topic>]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=1, help="Replay at most N records. [default: all]", show_default=False
        ),
    ] = None,
    since: RecordSinceOpt = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Only records with a timestamp before this time; same forms as --since.",
            show_default=False,
        ),
    ] = None,
    partition: PartitionOpt = None,
    key: KeyOpt = None,
    grep: GrepOpt = None,
    match: Annotated[
        list[str] | None,
        typer.Option(
            "--match",
            help="Only records whose JSON value has this top-level FIELD=VALUE (brandId=casino-7); "
            "repeat: all must match.",
            show_default=False,
        ),
    ] = None,
    where: WhereOpt = None,
    max_replays: Annotated[
        int,
        typer.Option("--max-replays", min=1, help="Skip (and report) records already replayed this often."),
    ] = 3,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", min=0.001, help="At most N records per second. [default: no cap]", show_default=False
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            max=100_000,
            help="Records per transaction at most (and at most 2 s of them).",
        ),
    ] = 50_000,
    commit_timeout: Annotated[
        float,
        typer.Option(
            "--commit-timeout",
            min=1,
            # The transaction timeout is twice this, and brokers refuse more than their
            # transaction.max.timeout.ms (default 15 min).
            max=450,
            help="Seconds a transaction's offset send or commit may take.",
        ),
    ] = 30.0,
    yes: YesOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read and count what would go where; commit and produce nothing."),
    ] = False,
    output_format: OutputOpt = None,
) -> None:
    """Re-publish DLQ records to their original topic, exactly once and resumably.

    Each batch is produced and its offsets committed in one Kafka transaction under the group
    kafkaops-replay.<topic>: a run stopped at any moment (Ctrl-C, kill, broker failure) and
    run again delivers every record once to read_committed consumers. The run ends at the end
    offsets seen when it started. Bytes and headers go out unchanged, plus
    kafkaops-replayed-from and kafkaops-replay-count. Records outside the selection are passed
    over: the group does not offer them again.

    \b
    Example:
      kafkaops dlq replay casino.player.registered.v1.dlq --match brandId=casino-7 --rate 500
      kafkaops dlq replay casino.player.registered.v1.dlq --where @timeouts --dry-run
    """
    from kafkaops.dlq import plan as replay_plan
    from kafkaops.dlq import replay as core

    app_state = state(ctx)
    settings = app_state.settings
    conns = app_state.connections
    out = output(output_format)
    request = replay_plan.ReplayRequest(
        source=topic,
        group=group,
        to=to,
        selection=_with_where(
            _selection(partition=partition, key=key, grep=grep, since=since, until=until, match=match),
            where,
            settings,
        ),
        limit=limit,
        max_replays=max_replays,
        rate=rate,
        dry_run=dry_run,
        batch_size=batch_size,
        commit_timeout=commit_timeout,
        suffixes=settings.retry.dlq_catalog.suffixes,
    )
    try:
        plan = replay_plan.plan(conns, request)
    except KafkaopsError as exc:  # -o json still gets its document, with the error (as retry's)
        if out.fmt is not Format.table and not isinstance(exc, UsageError):
            started = core.ReplaySummary(source=topic, group=request.group_id, dry_run=dry_run)
            _print_summary(out, started, failed=True, error=exc)
        raise
    cluster = settings.require_kafka().get("bootstrap.servers", "?")
    context = settings.context or "(no context)"
    _say_plan(out, plan, request)
    if plan.pending == 0:
        out.info("Nothing to replay.")
        _print_summary(
            out,
            core.ReplaySummary(source=plan.source, group=plan.group, dry_run=dry_run, complete=True),
            failed=False,
        )
        return
    if not dry_run:
        confirm(
            f"Replay {plan.pending} pending offset(s) of {plan.source} in context {context} on {cluster}?",
            yes=yes,
        )
    journal = nullcontext(None) if dry_run else audited(ctx, "dlq replay", replay_selection(plan, request))
    # SIGINT/SIGTERM: finish the open transaction and stop; a second one aborts it (on close).
    from kafkaops.dlq.reconcile import RowMarker

    marker = RowMarker(conns)  # the rows each committed transaction's records name: RESOLVED
    with journal as entry:
        with _progress(out, plan.pending) as advance, stop_on_signals(announce=_stopping) as stop:
            replayer = core.Replayer(
                conns, request, plan, stop=stop.is_requested, progress=advance, on_commit=marker
            )
            try:
                summary = replayer.run()
            except Exception as exc:  # whatever stopped the run, say what it had committed by then
                _print_summary(out, replayer.summary, failed=True, marks=marker.result, error=exc)
                _say_marks(out, marker.result, fail=False)
                raise
            finally:
                _say_failures(out, request.selection)
                if entry is not None:
                    note_replay(entry, plan, replayer)
        _print_summary(out, summary, failed=False, marks=None if dry_run else marker.result)
        _say_marks(out, marker.result)
        if summary.interrupted:
            raise typer.Exit(exit_status_for_signal(stop.signum or signal.SIGINT))


def _say_plan(out: Output, plan: ReplayPlan, request: ReplayRequest) -> None:
    out.info(f"Source:    {plan.source} (group {plan.group}, {plan.pending} offset(s) pending)")
    out.info(f"Target:    {safe_text(plan.target)}")
    limit = request.limit
    out.info(f"Selection: {safe_text(plan.selection)}" + (f", at most {limit} record(s)" if limit else ""))
    if request.selection.filters_records:
        out.info(
            "           records outside the selection are passed over: this group will not offer them again"
        )


def _say_marks(out: Output, marks: MarkResult, *, fail: bool = True) -> None:
    """What became of the failed-event rows the replayed records name; a database side that
    failed is an error naming every row left DLQ (the replay itself stays committed)."""
    if marks.marked:
        out.info(f"Marked {marks.marked:,} DLQ row(s) RESOLVED (resolved by replay).")
    if marks.not_dlq:
        out.info(f"{marks.not_dlq:,} replayed record(s) name a row that is not DLQ here: left as it is.")
    if marks.no_database:
        out.info(
            f"{marks.no_database:,} replayed record(s) name a failed-event row; no database is configured, none was marked."
        )
    if marks.unmarked:
        from kafkaops.common.errors import DatabaseError

        error = DatabaseError(
            f"the replay is committed (a rerun does not publish these again), but {len(marks.unmarked):,} "
            f"row(s) could not be marked RESOLVED ({safe_text(marks.error)}) and stay DLQ: ids "
            + ", ".join(safe_text(i) for i in marks.unmarked),
            hint="their DLQ record was replayed: kafkaops failed requeue --status DLQ refuses them",
        )
        if fail:
            raise error
        out.warning(error.message)


def _stopping() -> None:
    sys.stderr.write("Stopping after the open transaction (again to abort it)...\n")


def _print_summary(
    out: Output,
    summary: Any,
    *,
    failed: bool,
    marks: MarkResult | None = None,
    error: BaseException | None = None,
) -> None:
    if out.fmt is not Format.table:
        doc = summary.as_dict()
        if marks is not None:
            doc["rows"] = marks.as_dict()
        if error is not None:  # the same line as the Error: on stderr
            doc["error"] = error.message if isinstance(error, KafkaopsError) else type(error).__name__
        out.document(doc)
        return
    verb = "Would replay" if summary.dry_run else "Replayed"
    targets = ", ".join(f"{safe_text(t)}: {n}" for t, n in sorted(summary.targets.items())) or "none"
    stopped = " before the interruption" if summary.interrupted else " before the failure" if failed else ""
    kept = "a dry run: nothing produced or committed" if summary.dry_run else "committed; a rerun resumes"
    note = f"{stopped} ({kept})" if stopped else ""
    out.info(f"{verb} {summary.replayed} record(s){note} ({targets}) in {summary.duration_s:.1f}s.")
    if summary.skipped_filtered:
        out.info(f"Passed over {summary.skipped_filtered} record(s) outside the selection.")
    if summary.skipped_max_replays:
        shown = ", ".join(summary.skipped_examples)
        out.warning(
            f"skipped {summary.skipped_max_replays} record(s) already replayed --max-replays times "
            f"(partition/offset: {shown}{', ...' if summary.skipped_max_replays > len(summary.skipped_examples) else ''})"
        )


class _progress:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, out: Output, total: int) -> None:
        self.total = total
        self.enabled = bool(getattr(out.stderr, "isatty", lambda: False)()) and total > 0
        self.out = out
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda advanced: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeRemainingColumn
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(f"{task.speed:,.0f} rec/s" if task.speed else "")

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.out.stderr),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("replay", total=self.total)
        return lambda advanced: self._bar.advance(self._task, advanced)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
