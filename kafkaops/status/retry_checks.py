"""The checks about the retry loop itself: whether the retry job runs (`retry_last_run`), the
rows it can never deliver (`permanent_failures`) and the rows set aside (`parked`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from kafkaops.common.timeparse import format_duration
from kafkaops.config.settings import Thresholds
from kafkaops.db.retry_runs import TABLE, RetryRun
from kafkaops.status.checks import OK, WARNING, Check, command

RUN_A_PASS = command("kafkaops", "retry", "-v")


def retry_last_run(recorded: bool, run: RetryRun | None, *, due: int, now: datetime, t: Thresholds) -> Check:
    """WARNING when the last pass recorded is older than `thresholds.retry_last_run` (or none
    is) while rows are due, or when it failed; OK otherwise, saying what it did."""
    limit = t.retry_last_run_warning
    due_words = f"{due:,} row(s) due"
    if not recorded:
        return Check(
            "retry_last_run",
            OK,
            None,
            f"last retry pass not recorded: no {TABLE} table (kafkaops db init creates it)",
        )
    if run is None:
        if not due:
            return Check("retry_last_run", OK, None, "no retry pass recorded yet; no row due")
        return Check(
            "retry_last_run",
            WARNING,
            None,
            f"no retry pass recorded while {due_words}: is the retry job scheduled?",
            f"{RUN_A_PASS}  (one pass by hand; then check its cron job or timer)",
        )
    age = now - run.finished_at
    seconds = max(int(age.total_seconds()), 0)
    ago = "just now" if age < timedelta(seconds=1) else f"{format_duration(age)} ago"
    did = ", ".join(f"{n:,} {name}" for name, n in run.counts.items() if n) or "nothing due"
    said = f"last retry pass ended {ago} ({run.outcome}, {run.duration_s:.1f}s: {did})"
    if run.outcome == "failed":
        return Check(
            "retry_last_run",
            WARNING,
            seconds,
            f"{said} failed: {run.detail or 'no detail recorded'}",
            RUN_A_PASS,
        )
    if age > limit and due:
        return Check(
            "retry_last_run",
            WARNING,
            seconds,
            f"{said}: older than {format_duration(limit)} while {due_words}; is the retry job running?",
            f"{RUN_A_PASS}  (one pass by hand; then check its cron job or timer)",
        )
    return Check("retry_last_run", OK, seconds, said)


def permanent_failures(found: dict[str, int]) -> Check | None:
    """WARNING for PENDING and DLQ_FAILED rows whose recorded error says the broker will never
    accept them: no retry helps; park them or fix the cause. None when there are none."""
    total = sum(found.values())
    if not total:
        return None
    from kafkaops.db.park import describe_breakdown

    return Check(
        "permanent_failures",
        WARNING,
        total,
        f"{total:,} PENDING/DLQ_FAILED event(s) the broker will never accept ({describe_breakdown(found)}); "
        "retrying cannot help",
        command(
            "kafkaops", "failed", "park", "--permanent", "--reason", "the broker refuses it", "--dry-run"
        ),
    )


def parked(count: int) -> Check | None:
    """Parked rows are counted, never judged: they were set aside on purpose."""
    if not count:
        return None
    return Check(
        "parked",
        OK,
        count,
        f"{count:,} PARKED event(s) set aside, not retried "
        f"(see: {command('kafkaops', 'failed', 'list', '--status', 'PARKED')})",
    )
