"""`kafkaops retry`: one cron-safe retry pass over due failed events, then exit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kafkaops.cli.common import OutputOpt, TopicOpt, output, state
from kafkaops.cli.output import Field, Output
from kafkaops.config import MAX_BATCH_SIZE
from kafkaops.errors import ExitStatus, KafkaopsError

if TYPE_CHECKING:
    from kafkaops.retry import PassOptions, PassSummary


def retry(
    ctx: typer.Context,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=MAX_BATCH_SIZE,
            help="Rows claimed per batch. [default: retry.batch_size, 500]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
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
    output_format: OutputOpt = None,
) -> None:
    """Run one retry pass: publish due PENDING events, then exit (for cron: * * * * * kafkaops retry).

    Due rows (PENDING, next_retry_at empty or past) are claimed in batches, never-scheduled
    ones first in the order stored, then by due time, with SELECT ... FOR UPDATE SKIP LOCKED,
    so concurrent passes never publish a row twice in one round. Acknowledged rows become RESOLVED; a failure that belongs to the event counts an
    attempt and reschedules it (retry.schedule), and after retry.max_retries it goes to
    <topic>.dlq (DLQ), or DLQ_FAILED if that send fails. An unreachable cluster, or a circuit
    breaker opened by consecutive transport failures, stops the pass without counting attempts.

    Exit 0 when the pass completed, 1 when it stopped early or made DLQ_FAILED rows, 2 on usage
    or configuration errors. Quiet when nothing is due; -v logs one line per batch.

    \b
    Example:
      kafkaops retry --topic 'casino.*' --metrics-file /var/lib/node_exporter/kafkaops.prom
    """
    from kafkaops.retry import PassOptions

    app = state(ctx)
    settings = app.settings
    options = PassOptions(
        batch_size=batch_size or settings.retry.batch_size, limit=limit, topic=topic or None
    )
    out = output(output_format)
    if dry_run:
        _dry_run(ctx, options, out)
        return
    from kafkaops.retry import run_pass

    summary = run_pass(app.connections, options)
    metrics_error: KafkaopsError | None = None
    try:
        if metrics_file:
            from kafkaops.metrics import write_textfile

            write_textfile(metrics_file, summary)
        if pushgateway:
            from kafkaops.metrics import push

            push(pushgateway, summary)
    except KafkaopsError as error:
        metrics_error = error
    _report(out, summary, breaker_threshold=settings.retry.breaker_threshold)
    if metrics_error is not None:
        out.error(metrics_error.message)
    if not summary.completed or summary.dlq_failed or metrics_error is not None:
        raise typer.Exit(int(ExitStatus.FAILURE))


def _report(out: Output, summary: PassSummary, *, breaker_threshold: int) -> None:
    """The summary (quiet in a table when nothing happened: cron mails any output), then the
    lines an operator must not miss on stderr."""
    from kafkaops.retry import describe_failed_ids

    if out.fmt.value != "table":
        out.document(summary.as_dict())
    elif summary.claimed or not summary.completed:
        out.rows([summary.as_dict()], [Field(k) for k in summary.as_dict()])
    if summary.dlq_failed_ids:
        out.info(
            f"CRITICAL: {len(summary.dlq_failed_ids)} event(s) could not be sent to the DLQ and are now "
            f"DLQ_FAILED: id {describe_failed_ids(summary.dlq_failed_ids)} "
            "(see: kafkaops failed list --status DLQ_FAILED; requeue when the DLQ is writable)"
        )
    if summary.circuit_breaker == "OPEN":
        out.error(
            f"circuit breaker opened after {breaker_threshold} consecutive transport failures: "
            f"pass stopped, {summary.aborted} claimed row(s) left PENDING with no attempt counted"
        )
    elif summary.aborted:
        reasons = ", ".join(f"{n}x {code}" for code, n in summary.transport_errors.most_common())
        out.error(
            f"{summary.aborted} claimed row(s) left PENDING, no attempt counted: transport errors ({reasons})"
        )


def _dry_run(ctx: typer.Context, options: PassOptions, out: Output) -> None:
    from kafkaops.retry import preview_due_events
    from kafkaops.timeparse import utcnow

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
        count = out.rows(preview_due_events(conn, conns.table, now=utcnow(), options=options), fields)
    out.info(f"Dry run: {count} due row(s) would be attempted; nothing was changed.")
