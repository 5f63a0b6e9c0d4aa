"""`kafkaops failed park` and `failed unpark`: rows taken out of the retry loop, and put back."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops.cli.failed import (
    MAX_ROWS,
    IdsArg,
    TimeoutOpt,
    _bulk,
    _filter,
    _ids,
    _inherited,
    _timeout,
    app,
)
from kafkaops.cli.gate import writes
from kafkaops.cli.journal import audit_action, selection_of
from kafkaops.cli.options import (
    DryRunOpt,
    ErrorOpt,
    OutputOpt,
    SinceOpt,
    StatusOpt,
    TopicOpt,
    UntilOpt,
    YesOpt,
)
from kafkaops.cli.state import bounded_connections, output
from kafkaops.common.timeparse import format_duration
from kafkaops.config.settings import STATEMENT_TIMEOUT

BatchOpt = Annotated[
    int,
    typer.Option("--batch-size", min=1, max=MAX_ROWS, help="Rows changed per transaction."),
]


@app.command()
@writes
def park(
    ctx: typer.Context,
    event_ids: IdsArg = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="Why the rows are set aside (required); kept in their last_error with the status they had.",
            show_default=False,
        ),
    ] = None,
    permanent: Annotated[
        bool,
        typer.Option(
            "--permanent",
            help="Only rows the broker will never accept (error_type RecordTooLarge, InvalidRecord, "
            "InvalidTopic).",
        ),
    ] = False,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    batch_size: BatchOpt = 1000,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = format_duration(STATEMENT_TIMEOUT),
    output_format: OutputOpt = None,
) -> None:
    """Park rows: take them out of the retry loop without deleting them (status PARKED).

    A parked row is never retried, never requeued, and never purged unless purge's --status
    PARKED names it; `kafkaops failed --status PARKED` lists them, and `failed unpark` puts them
    back in the status they had. Takes PENDING and DLQ_FAILED rows (default) or DLQ rows; ids or
    at least one filter are needed. --reason is kept in last_error, above the error the row had.
    Rows a running retry pass holds are left out and counted ("busy"): run it again.
    -o json prints {"matched", "parked", "busy", "reason", "dry_run", "left_out", "rows"}.

    \b
    Example:
      kafkaops failed park --permanent --reason "payload over 1 MB, fixed in producer 2.3"
      kafkaops failed park 4128 4129 --reason "topic retired"
    """
    from kafkaops.common import clock
    from kafkaops.db.park import Park

    opts = _inherited(
        ctx, status=status, topic=topic, since=since, until=until, error=error, output_format=output_format
    )
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    flt = _filter(opts, _ids(ctx, event_ids))
    action = Park(
        conns,
        flt,
        reason=reason or "",
        only_permanent=permanent,
        within=_timeout(timeout),
        now=clock.now(),
        batch_size=batch_size,
    )
    audit_action(
        ctx,
        action,
        "failed park",
        selection_of(action.flt, reason=action.reason, permanent=permanent or None),
    )
    kind = f"{action.statuses}{' permanent-failure' if permanent else ''}"
    _bulk(
        ctx,
        out,
        action,
        dry_run=dry_run,
        yes=yes,
        matched=lambda n: f"{n:,} {kind} row(s)",
        question=lambda n: f"Park {n:,} {kind} row(s) (reason: {action.reason})",
        done=lambda n: _done("Parked", n, action.busy, "no retry pass will touch them"),
        extra={"reason": action.reason},
        after=lambda: {"busy": action.busy},
    )


@app.command()
@writes
def unpark(
    ctx: typer.Context,
    event_ids: IdsArg = None,
    status: StatusOpt = None,
    topic: TopicOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error: ErrorOpt = None,
    batch_size: BatchOpt = 1000,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = format_duration(STATEMENT_TIMEOUT),
    output_format: OutputOpt = None,
) -> None:
    """Unpark PARKED rows: back to the status they had, with the last_error they had.

    A row parked from PENDING is due at once; one parked from DLQ_FAILED or DLQ is that again
    (requeue it when its cause is fixed). A row whose last_error no longer starts with the
    parking line goes to DLQ_FAILED. Ids or a filter are needed (every parked row: --status
    PARKED). -o json prints {"matched", "unparked", "busy", "dry_run", "left_out", "rows"}.

    \b
    Example:
      kafkaops failed unpark --status PARKED --topic casino.wallet.deposit.v1
    """
    from kafkaops.common import clock
    from kafkaops.db.park import Unpark

    opts = _inherited(
        ctx, status=status, topic=topic, since=since, until=until, error=error, output_format=output_format
    )
    out = output(opts["output_format"])
    conns = bounded_connections(ctx)
    flt = _filter(opts, _ids(ctx, event_ids))
    action = Unpark(conns, flt, within=_timeout(timeout), now=clock.now(), batch_size=batch_size)
    audit_action(ctx, action, "failed unpark", selection_of(action.flt))
    _bulk(
        ctx,
        out,
        action,
        dry_run=dry_run,
        yes=yes,
        matched=lambda n: f"{n:,} PARKED row(s)",
        question=lambda n: f"Unpark {n:,} PARKED row(s) to the status they had",
        done=lambda n: _done("Unparked", n, action.busy, "back in the status they had"),
        after=lambda: {"busy": action.busy},
    )


def _done(verb: str, n: int, busy: int, what: str) -> str:
    line = f"{verb} {n:,} row(s); {what}."
    if busy:
        line += (
            f" {busy:,} matching row(s) were held by a running retry pass and left as they are: run it again."
        )
    return line
