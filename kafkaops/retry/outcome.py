"""`kafkaops retry` as cron runs it: one pass, stopped cleanly by SIGTERM or Ctrl-C between
batches, its metrics written whatever happened, and the exit status all of that comes to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from kafkaops.common.errors import DatabaseError, ExitStatus, KafkaopsError, exit_status_for_signal
from kafkaops.common.signals import stop_on_signals
from kafkaops.retry.job import PassOptions, PassSummary, run_pass

if TYPE_CHECKING:
    from kafkaops.db.connections import Connections


@dataclass
class PassOutcome:
    summary: PassSummary
    failure: KafkaopsError | None = None  # what stopped the pass midway (summary says how far)
    metrics_error: KafkaopsError | None = None  # the metrics could not be written or pushed
    signum: int | None = None  # the signal that stopped the pass between batches

    @property
    def exit_status(self) -> int:
        """When no failure is raised: 128 + the signal that stopped the pass, else 1 when it
        stopped early (breaker, deadline), made DLQ_FAILED rows, met records the broker will never
        accept or lost its metrics, else 0."""
        if self.signum is not None and self.summary.stopped_by is not None:
            return exit_status_for_signal(self.signum)
        summary = self.summary
        if (
            not summary.completed
            or summary.dlq_failed
            or summary.permanent_ids
            or self.metrics_error is not None
        ):
            return ExitStatus.FAILURE
        return ExitStatus.OK


def check_metrics_targets(*, metrics_file: str | None, pushgateway: str | None) -> None:
    """Where the metrics go, checked before anything is published, not after."""
    from kafkaops.retry.metrics import check_pushgateway, check_textfile

    if metrics_file:
        check_textfile(metrics_file)
    if pushgateway:
        check_pushgateway(pushgateway)


def retry_pass(
    conns: Connections,
    options: PassOptions,
    *,
    metrics_file: str | None,
    pushgateway: str | None,
    lock_timeout: timedelta,
) -> PassOutcome:
    """One pass. SIGTERM (cron's timeout, systemd, Kubernetes) and Ctrl-C stop it between
    batches: the batch in flight is published and settled first, instead of dying between the
    broker's acknowledgement and the commit (which sends that batch again next pass); a second
    signal stops at once."""
    from kafkaops.common import clock
    from kafkaops.retry.runs import pass_run, record_pass

    outcome = PassOutcome(PassSummary())
    started_at = clock.now()
    with stop_on_signals() as stop:
        options.stop = stop
        try:
            run_pass(conns, options, summary=outcome.summary)
        except KafkaopsError as error:
            outcome.failure = error
    outcome.signum = stop.signum
    if conns.settings.database.url and not isinstance(outcome.failure, DatabaseError):
        record_pass(conns, pass_run(outcome.summary, started_at=started_at, failure=outcome.failure))
    outcome.metrics_error = _write_metrics(
        outcome.summary, metrics_file=metrics_file, pushgateway=pushgateway, lock_timeout=lock_timeout
    )
    return outcome


def _write_metrics(
    summary: PassSummary, *, metrics_file: str | None, pushgateway: str | None, lock_timeout: timedelta
) -> KafkaopsError | None:
    """What the pass did, even when it failed midway (last_success then stays where it was)."""
    from kafkaops.retry.metrics import push, write_textfile

    try:
        if metrics_file:
            write_textfile(metrics_file, summary, lock_timeout=lock_timeout)
        if pushgateway:
            push(pushgateway, summary)
    except KafkaopsError as error:
        return error
    return None
