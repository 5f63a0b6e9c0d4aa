"""`kafkaops retry`: one cron-safe retry pass over due failed events, then exit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kafkaops.cli.fields import Field
from kafkaops.cli.gate import writes
from kafkaops.cli.journal import audited, journal_counts, selection_of
from kafkaops.cli.options import OutputOpt, TopicOpt, refuse_empty
from kafkaops.cli.output import Output
from kafkaops.cli.state import output, state
from kafkaops.common.errors import KafkaopsError
from kafkaops.common.timeparse import format_duration
from kafkaops.config.settings import MAX_BATCH_SIZE, PASS_DEADLINE, SETTLE_TIMEOUT, RetrySettings

if TYPE_CHECKING:
    from kafkaops.audit.journal import Entry
    from kafkaops.retry.job import PassOptions, PassSummary


@writes
def retry(
    ctx: typer.Context,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=MAX_BATCH_SIZE,
            help=f"Rows claimed per batch. [default: retry.batch_size, {RetrySettings.batch_size}]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            max=2**63 - 1,  # a bigint: the database refuses anything larger
            help="At most this many rows in this pass. [default: no limit]",
            show_default=False,
        ),
    ] = None,
    topic: TopicOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be attempted; touch nothing.")
    ] = False,
    metrics_file: Annotated[
        str | None,
        typer.Option(
            "--metrics-file",
            help="Write Prometheus metrics here (atomically) for node_exporter's textfile collector.",
            show_default=False,
        ),
    ] = None,
    pushgateway: Annotated[
        str | None,
        typer.Option(
            "--pushgateway", help="Push Prometheus metrics to this Pushgateway URL.", show_default=False
        ),
    ] = None,
    deadline: Annotated[
        str,
        typer.Option(
            "--deadline",
            help="Start no batch after this long (a duration: 90s, 10m, 1h); every database "
            "statement of the pass times out by then too, so a frozen database cannot hold "
            f"row locks. A batch already published still gets {format_duration(SETTLE_TIMEOUT)} to "
            f"settle. [default: {format_duration(PASS_DEADLINE)}]",
            show_default=False,
        ),
    ] = format_duration(PASS_DEADLINE),
    output_format: OutputOpt = None,
) -> None:
    """Run one retry pass: publish due PENDING events, then exit (for cron: * * * * * kafkaops retry).

    Due rows (PENDING, next_retry_at empty or past) are claimed in batches, never-scheduled
    ones first in the order stored, then by due time, with SELECT ... FOR UPDATE SKIP LOCKED,
    so concurrent passes never publish a row twice in one round. Acknowledged rows become RESOLVED; a failure that belongs to the event counts an
    attempt and reschedules it (retry.schedule), and after retry.max_retries it goes to
    <topic>.dlq (DLQ), or DLQ_FAILED if that send fails. An unreachable cluster, or a circuit
    breaker opened by consecutive transport failures, stops the pass without counting attempts;
    so does a permission kafkaops' own principal lacks (no Write ACL on a topic), after the batch
    in flight, leaving the denied rows as they were.
    The table is checked first, as db check does: nothing is published into a table that
    cannot take the outcome.

    A record the broker will never accept (RecordTooLarge, InvalidRecord, an unknown topic:
    refused alone) is flagged at its first attempt: counted under "permanent", its ids listed
    (-o json: "permanent_ids"), and the pass exits 1.

    Exit 0 when the pass completed, 1 when it stopped early (breaker, deadline, database),
    made DLQ_FAILED rows or met permanent failures, 2 on usage or configuration errors.
    SIGTERM or Ctrl-C stops the pass once the batch in flight is published and settled (exit
    143 or 130; a second signal stops at once). Quiet when nothing is due; -v logs one line per batch; -o json always prints the
    summary, with an "error" key when the pass failed and "stopped_by" when a signal stopped it.

    \b
    Example:
      kafkaops retry --topic 'casino.*' --metrics-file /var/lib/node_exporter/kafkaops.prom
    """
    from kafkaops.common.errors import UsageError
    from kafkaops.common.timeparse import parse_duration
    from kafkaops.retry.job import PassOptions
    from kafkaops.retry.outcome import check_metrics_targets

    refuse_empty({"--topic": topic})
    app = state(ctx)
    pass_deadline = parse_duration(deadline, what="--deadline")
    if pass_deadline.total_seconds() <= 0:
        raise UsageError(f"--deadline {deadline!r} must be longer than 0s")
    check_metrics_targets(metrics_file=metrics_file, pushgateway=pushgateway)
    settings = app.settings
    options = PassOptions(batch_size=batch_size, limit=limit, topic=topic or None, deadline=pass_deadline)
    out = output(output_format)
    if dry_run:
        _dry_run(ctx, options, out)
        return
    settings.require_kafka()  # a configuration error is said before anything is written
    started = False
    try:
        with audited(ctx, "retry", selection_of(topic=topic, limit=limit, batch_size=batch_size)) as entry:
            started = True
            _pass(
                ctx,
                entry,
                options,
                out,
                metrics_file=metrics_file,
                pushgateway=pushgateway,
                deadline=deadline,
            )
    except KafkaopsError as refused:
        if started:
            raise
        from kafkaops.retry.job import PassSummary

        # Nothing ran (the journal or the database refused first): -o json still gets its summary.
        _report(out, PassSummary(), breaker_threshold=settings.retry.breaker_threshold, failure=refused)
        raise


def _pass(
    ctx: typer.Context,
    entry: Entry,
    options: PassOptions,
    out: Output,
    *,
    metrics_file: str | None,
    pushgateway: str | None,
    deadline: str,
) -> None:
    from kafkaops.retry.outcome import retry_pass

    app = state(ctx)
    settings = app.settings
    outcome = retry_pass(
        app.connections,
        options,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        lock_timeout=settings.retry.metrics_lock_timeout,
    )
    entry.note(**journal_counts(outcome.summary))
    entry.count(outcome.summary.claimed - outcome.summary.aborted)
    _report(
        out,
        outcome.summary,
        breaker_threshold=settings.retry.breaker_threshold,
        failure=outcome.failure,
        deadline=deadline,
    )
    if outcome.metrics_error is not None:
        out.error(outcome.metrics_error.message)
    if outcome.failure is not None:
        raise outcome.failure
    if outcome.exit_status:
        raise typer.Exit(outcome.exit_status)


# The human table's headers: `circuit_breaker` is kafkaops' own breaker, not the service's.
SUMMARY_HEADERS = {"circuit_breaker": "PASS BREAKER", "duration_s": "SECONDS"}


def _report(
    out: Output,
    summary: PassSummary,
    *,
    breaker_threshold: int,
    failure: KafkaopsError | None = None,
    deadline: str = "",
) -> None:
    """The summary (quiet in a table when nothing happened: cron mails any output), then the
    lines an operator must not miss on stderr."""
    from kafkaops.retry.job import describe_failed_ids, describe_set_refusals

    document = summary.as_dict()
    if out.fmt.value != "table":
        if summary.set_refusals:
            document["set_refusals"] = summary.refusals_as_list()
        if summary.permanent_ids:
            document["permanent_ids"] = [str(i) for i in summary.permanent_ids]
        if failure is not None:
            document["error"] = failure.message
        if summary.stopped_by is not None:
            document["stopped_by"] = summary.stopped_by
        out.document(document)
    elif summary.claimed or (not summary.completed and failure is None):
        out.rows([document], [Field(k, SUMMARY_HEADERS.get(k, k.upper())) for k in document])
    for environment, line in describe_set_refusals(summary):
        (out.error if environment else out.info)(line)
    if summary.permanent_ids:
        found = ", ".join(f"{n}x {name}" for name, n in summary.permanent_errors.most_common())
        out.info(
            f"PERMANENT: {len(summary.permanent_ids)} event(s) the broker will never accept as they are "
            f"({found}): id {describe_failed_ids(summary.permanent_ids)}; retrying cannot help "
            "(kafkaops failed requeue leaves them out): fix the cause, or take them out of the loop "
            "with: kafkaops failed park --permanent --reason TEXT"
        )
    too_large = set(summary.too_large_for_dlq_ids)
    bad_topic = set(summary.bad_topic_ids)
    retryable = [i for i in summary.dlq_failed_ids if i not in too_large and i not in bad_topic]
    if retryable:
        out.info(
            f"CRITICAL: {len(retryable)} event(s) could not be sent to the DLQ and are now "
            f"DLQ_FAILED: id {describe_failed_ids(retryable)} "
            "(see: kafkaops failed list --status DLQ_FAILED; requeue when the DLQ is writable)"
        )
    if too_large:
        ids = [i for i in summary.dlq_failed_ids if i in too_large]
        out.info(
            f"CRITICAL: {len(ids)} event(s) are too large for their DLQ topic and are now DLQ_FAILED: "
            f"id {describe_failed_ids(ids)} (a requeue would only fail again: raise the DLQ topic's "
            "max.message.bytes and the producer's message.max.bytes, or take the payload out with "
            "kafkaops failed show ID and deal with it by hand)"
        )
    if bad_topic:
        ids = [i for i in summary.dlq_failed_ids if i in bad_topic]
        out.info(
            f"CRITICAL: {len(ids)} event(s) have no topic, or one Kafka refuses as a name (and their "
            f"DLQ topic with it), and are now DLQ_FAILED: id {describe_failed_ids(ids)} (a requeue "
            "would only fail again: see the topic with kafkaops failed show ID, then correct it in "
            "the table or publish the payload by hand)"
        )
    if summary.circuit_breaker == "OPEN":
        out.error(
            f"circuit breaker opened after {breaker_threshold} consecutive transport failures: "
            f"pass stopped, {summary.aborted} claimed row(s) left PENDING with no attempt counted"
        )
    elif summary.transport_aborted:
        # Rows left for a denial are told by the error that stopped the pass.
        reasons = ", ".join(f"{n}x {code}" for code, n in summary.transport_errors.most_common())
        out.error(
            f"{summary.transport_aborted} claimed row(s) left PENDING, no attempt counted: "
            f"transport errors ({reasons})"
        )
    if summary.stopped_by is not None:
        out.error(
            f"stopped by {summary.stopped_by}: every batch begun was published and settled; "
            "the rows left due wait for the next pass"
        )
    if summary.deadline_reached:
        out.error(
            f"the pass reached its --deadline ({deadline}) and stopped; the rows left due wait for the next pass"
        )


def _dry_run(ctx: typer.Context, options: PassOptions, out: Output) -> None:
    from kafkaops.common import clock as clock
    from kafkaops.retry.job import preview_due_events

    conns = state(ctx).connections
    fields = [
        Field("id", "ID"),
        Field("topic", "TOPIC"),
        Field("event_key", "KEY"),
        Field("attempt", "ATTEMPT", kind="int"),
        Field("next_retry_at", "DUE SINCE"),
        Field("created_at", "CREATED"),
    ]
    with conns.connect() as conn:
        count = out.rows(preview_due_events(conn, conns.table, now=clock.now(), options=options), fields)
    out.info(f"Dry run: {count} due row(s) would be attempted; nothing was changed.")
