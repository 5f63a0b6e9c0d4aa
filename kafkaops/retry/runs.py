"""Each retry pass leaves a row in `kafkaops_retry_runs` (`db.retry_runs`): when it started, how
long it took, what it did and how it ended, for `status` to judge whether the retry job runs.

Recording never changes a pass's outcome: a database without the table, or one that refuses
the write, leaves the pass's exit status as it was; a pass stopped by the database itself
records nothing (the database is what failed).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kafkaops.db.retry_runs import COUNTS, RetryRun, has_runs_table, record_run
from kafkaops.db.transactions import bound_transaction

if TYPE_CHECKING:
    from kafkaops.common.errors import KafkaopsError
    from kafkaops.db.connections import Connections
    from kafkaops.retry.job import PassSummary

log = logging.getLogger("kafkaops.retry")
RECORD_TIMEOUT = timedelta(seconds=5)


def pass_run(summary: PassSummary, *, started_at: datetime, failure: KafkaopsError | None) -> RetryRun:
    """What a pass did, as the row records it."""
    counts = summary.as_dict()
    if failure is not None:
        outcome, detail = "failed", failure.message.splitlines()[0] if failure.message else None
    elif not summary.completed:
        outcome = "stopped"
        detail = (
            f"stopped by {summary.stopped_by}"
            if summary.stopped_by
            else "circuit breaker opened"
            if summary.circuit_breaker == "OPEN"
            else "deadline reached"
            if summary.deadline_reached
            else f"{summary.aborted} row(s) left untouched"
        )
    else:
        outcome, detail = "completed", None
    return RetryRun(
        started_at=started_at,
        duration_s=summary.duration_s,
        counts={name: int(counts.get(name, 0)) for name in COUNTS},
        outcome=outcome,
        detail=detail,
    )


def record_pass(conns: Connections, run: RetryRun) -> bool:
    """Write the pass's row; False (and one log line at -v) when it could not be written."""
    db = conns.settings.database
    try:
        with conns.begin() as conn:
            bound_transaction(conn, statement=RECORD_TIMEOUT)
            if not has_runs_table(conn, db):
                log.info("not recorded: no kafkaops_retry_runs table (kafkaops db init creates it)")
                return False
            record_run(conn, db, run)
        return True
    except Exception as error:  # the pass's outcome stands whatever happens here
        log.info("the pass could not be recorded in kafkaops_retry_runs: %s", error)
        return False
