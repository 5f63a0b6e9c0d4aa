"""One retry pass over `failed_kafka_events`: the runbook's state machine, safe to run from cron.

PENDING -> RESOLVED | DLQ | DLQ_FAILED. Due rows are claimed in batches with
`SELECT ... FOR UPDATE SKIP LOCKED`, published asynchronously through an idempotent producer,
and settled with a few set-based statements in the same transaction that holds their locks:
a row is RESOLVED only after the broker acknowledged it, and a process killed at any moment
leaves every row either untouched or correctly settled (at-least-once: never lost, perhaps twice).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, bindparam, select, update

from kafkaops import dlq_record
from kafkaops.config import RetrySettings
from kafkaops.connections import stream_rows
from kafkaops.failed import glob_condition, logical
from kafkaops.publish import Failure, Headers, producer_overrides, publish, record_headers
from kafkaops.timeparse import as_utc, utcnow

if TYPE_CHECKING:
    from confluent_kafka import Producer
    from sqlalchemy.engine import Connection

    from kafkaops.connections import Connections

log = logging.getLogger("kafkaops.retry")


@dataclass(frozen=True)
class RetrySchedule:
    """Attempt N+1 is due `delays[N]` after attempt N failed; the last delay repeats."""

    delays: Sequence[timedelta]

    def next_retry_at(self, now: datetime, retry_count: int) -> datetime:
        return now + self.delays[min(retry_count, len(self.delays) - 1)]


@dataclass
class FailedEvent:
    id: Any
    topic: str
    event_key: str | None
    payload: str | None  # NOT NULL in `db init`'s table, but the service's may allow it
    headers: str | None
    retry_count: int
    created_at: datetime | None
    next_retry_at: datetime | None = None  # None: never scheduled, due since it was stored


@dataclass
class PassOptions:
    batch_size: int = 500
    limit: int | None = None
    topic: str | None = None
    reachability_timeout: float = 5.0


@dataclass
class PassSummary:
    claimed: int = 0
    resolved: int = 0
    rescheduled: int = 0
    dlq: int = 0
    dlq_failed: int = 0
    aborted: int = 0  # claimed, then left untouched because delivery could not be settled
    circuit_breaker: str = "CLOSED"
    duration_s: float = 0.0
    dlq_failed_ids: list[Any] = field(default_factory=list)
    attempts_by_topic: Counter[str] = field(default_factory=Counter)
    resolved_by_topic: Counter[str] = field(default_factory=Counter)
    dlq_by_topic: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)

    @property
    def completed(self) -> bool:
        return self.aborted == 0 and self.circuit_breaker == "CLOSED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "resolved": self.resolved,
            "rescheduled": self.rescheduled,
            "dlq": self.dlq,
            "dlq_failed": self.dlq_failed,
            "aborted": self.aborted,
            "circuit_breaker": self.circuit_breaker,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class BatchReport:
    number: int
    claimed: int
    resolved: int
    rescheduled: int
    dlq: int
    dlq_failed: int
    untouched: int
    seconds: float


class CircuitBreaker:
    """Opens after `threshold` consecutive transport-level failures; any other outcome resets it."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.open = False

    def record(self, transport_failure: bool) -> None:
        self.consecutive = self.consecutive + 1 if transport_failure else 0
        if self.consecutive >= self.threshold:
            self.open = True


# -- claiming ------------------------------------------------------------------------------------


def due_queries(
    table: Table,
    *,
    now: datetime,
    topic: str | None,
    columns: Sequence[Any],
    skip: Sequence[Any] = (),
    stored_after: Any = None,
) -> tuple[Select[Any], Select[Any]]:
    """The two queries that find due rows, in claim order.

    Rows never scheduled (next_retry_at null: due since they were stored) in the order they
    were stored (id), then rows by due time. Each query walks an index in its own order and
    stops at the limit: the primary key from `stored_after` (where the pass got to) on, and the
    service's (status, next_retry_at) index. Ordering by created_at instead would sort every
    PENDING row on every batch: FOR UPDATE keeps PostgreSQL from using a top-N sort.
    """
    c = table.c
    extra = [glob_condition(c.topic, topic)] if topic else []
    if skip:
        extra.append(c.id.not_in(skip))
    stored = [c.id > stored_after] if stored_after is not None else []
    never_scheduled = (
        select(*columns)
        .where(c.status == "PENDING", c.next_retry_at.is_(None), *stored, *extra)
        .order_by(c.id)
    )
    scheduled = (
        select(*columns)
        .where(c.status == "PENDING", c.next_retry_at <= now, *extra)
        .order_by(c.next_retry_at)
    )
    return never_scheduled, scheduled


def claim_due_events(
    conn: Connection,
    table: Table,
    *,
    now: datetime,
    limit: int,
    topic: str | None = None,
    lock: bool = True,
    skip: Sequence[Any] = (),
    stored_after: Any = None,
) -> list[FailedEvent]:
    """Due rows in claim order, locked for this transaction (rows locked by other passes are
    skipped), returned in `created_at` order for publishing. `skip`: ids this pass already
    tried and left untouched; `stored_after`: the last never-scheduled id this pass claimed."""
    names = ("id", "topic", "event_key", "payload", "headers", "retry_count", "created_at", "next_retry_at")
    columns = logical(table, names)  # rows keyed by logical names, whatever the mapping
    rows: list[Any] = []
    queries = due_queries(table, now=now, topic=topic, columns=columns, skip=skip, stored_after=stored_after)
    for query in queries:
        if len(rows) >= limit:
            break
        query = query.limit(limit - len(rows))
        if lock:
            query = query.with_for_update(skip_locked=True)
        rows += conn.execute(query).all()
    events = [
        FailedEvent(
            r.id,
            r.topic,
            r.event_key,
            r.payload,
            r.headers,
            r.retry_count,
            as_utc(r.created_at),
            r.next_retry_at,
        )
        for r in rows
    ]
    # Rows of one key go out in the order they were first stored.
    events.sort(key=lambda e: (e.created_at is None, e.created_at))
    return events


def preview_due_events(
    conn: Connection, table: Table, *, now: datetime, options: PassOptions
) -> Generator[dict[str, Any], None, None]:
    """What a pass would attempt, in the order it would claim it: no lock, nothing written."""
    columns = logical(table, ("id", "topic", "event_key", "retry_count", "next_retry_at", "created_at"))
    remaining = options.limit
    for query in due_queries(table, now=now, topic=options.topic, columns=columns):
        if remaining is not None:
            if remaining <= 0:
                return
            query = query.limit(remaining)
        for item in stream_rows(conn, query):
            item["attempt"] = item["retry_count"] + 1
            if remaining is not None:
                remaining -= 1
            yield item


# -- the dead-letter record ---------------------------------------------------------------------


def dlq_headers(event: FailedEvent, failure: Failure, retry_count: int) -> Headers:
    try:
        own = record_headers(event.headers)
    except ValueError:
        own = []
    return dlq_record.dlq_headers(
        own,
        original_topic=event.topic,
        exception_message=failure.message,
        exception_fqcn=failure.error_type,
        failed_event_id=event.id,
        retry_count=retry_count,
    )


# -- settling ------------------------------------------------------------------------------------


@dataclass
class Settlement:
    resolved: list[Any] = field(default_factory=list)
    rescheduled: list[dict[str, Any]] = field(default_factory=list)
    dlq: list[dict[str, Any]] = field(default_factory=list)
    dlq_failed: list[dict[str, Any]] = field(default_factory=list)
    untouched: list[Any] = field(default_factory=list)  # ids left exactly as they were


def settle_batch(
    conn: Connection, table: Table, settlement: Settlement, *, now: datetime, schedule: RetrySchedule
) -> None:
    """Write a batch's outcomes with one statement per outcome (executemany where rows differ).

    `now` is the settling time: it becomes `updated_at` (and `resolved_at`), and a rescheduled
    row is due `schedule` later, so `next_retry_at - updated_at` is exactly the configured delay.
    """
    c = table.c
    if settlement.resolved:
        conn.execute(
            update(table)
            .where(c.id.in_(settlement.resolved))
            .values(status="RESOLVED", resolved_at=now, updated_at=now)
        )
    for row in settlement.rescheduled:
        row["b_next_retry_at"] = schedule.next_retry_at(now, row["b_retry_count"])
    for status, rows in (
        ("PENDING", settlement.rescheduled),
        ("DLQ", settlement.dlq),
        ("DLQ_FAILED", settlement.dlq_failed),
    ):
        if not rows:
            continue
        values: dict[str, Any] = {
            "status": status,
            "retry_count": bindparam("b_retry_count"),
            "last_error": bindparam("b_last_error"),
            "error_type": bindparam("b_error_type"),
            "updated_at": now,
        }
        if status == "PENDING":
            values["next_retry_at"] = bindparam("b_next_retry_at")
        conn.execute(update(table).where(c.id == bindparam("b_id")).values(**values), rows)


def _row(event: FailedEvent, retry_count: int, error: str, error_type: str) -> dict[str, Any]:
    return {"b_id": event.id, "b_retry_count": retry_count, "b_last_error": error, "b_error_type": error_type}


# -- the pass ------------------------------------------------------------------------------------


def run_pass(
    conns: Connections,
    options: PassOptions,
    *,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> PassSummary:
    """Claim, publish and settle due rows batch by batch until none is due, --limit is reached,
    or the circuit breaker opens. Raises KafkaUnavailableError before touching a row when the
    cluster cannot be reached."""
    from kafkaops import kafka

    settings = conns.settings.retry
    started = time.monotonic()
    props = conns.kafka_props
    kafka.check_reachable(props, timeout=options.reachability_timeout)
    table = conns.table
    lock = conns.dialect == "postgresql"
    producer = conns.producer(**producer_overrides(settings))
    schedule = RetrySchedule(settings.schedule)
    breaker = CircuitBreaker(settings.breaker_threshold)
    summary = PassSummary()
    untouched_ids: list[Any] = []  # tried this pass and left as they were: not claimed again
    stored_after = None  # the last never-scheduled id claimed: the next batch starts after it
    batch_number = 0
    while not breaker.open and len(untouched_ids) < _max_untouched(options):
        want = (
            options.batch_size
            if options.limit is None
            else min(options.batch_size, options.limit - summary.claimed)
        )
        if want <= 0:
            break
        batch_number += 1
        batch_started = time.monotonic()
        # immediate: SQLite has no row locks; its write lock, taken up front, makes a second
        # pass wait for this batch instead of claiming the same rows.
        with conns.begin(immediate=True) as conn:
            events = claim_due_events(
                conn,
                table,
                now=utcnow(),
                limit=want,
                topic=options.topic,
                lock=lock,
                skip=untouched_ids,
                stored_after=stored_after,
            )
            if not events:
                break
            stored_after = max((e.id for e in events if e.next_retry_at is None), default=stored_after)
            settlement = _attempt(producer, events, settings, breaker, summary)
            settle_batch(conn, table, settlement, now=utcnow(), schedule=schedule)
        untouched = len(settlement.untouched)
        untouched_ids += settlement.untouched
        report = BatchReport(
            batch_number,
            len(events),
            len(settlement.resolved),
            len(settlement.rescheduled),
            len(settlement.dlq),
            len(settlement.dlq_failed),
            untouched,
            time.monotonic() - batch_started,
        )
        _count(summary, report, settlement)
        log.info(
            "batch %d: claimed %d, resolved %d, rescheduled %d, dlq %d, dlq_failed %d, untouched %d in %.2fs",
            report.number,
            report.claimed,
            report.resolved,
            report.rescheduled,
            report.dlq,
            report.dlq_failed,
            report.untouched,
            report.seconds,
        )
        if on_batch is not None:
            on_batch(report)
        if len(events) < want:
            break
    summary.circuit_breaker = "OPEN" if breaker.open else "CLOSED"
    summary.duration_s = time.monotonic() - started
    return summary


def _max_untouched(options: PassOptions) -> int:
    """How many unsettled rows a pass tolerates before it stops on its own, breaker or not."""
    return max(options.batch_size, 1000)


def _count(summary: PassSummary, report: BatchReport, settlement: Settlement) -> None:
    summary.claimed += report.claimed
    summary.resolved += report.resolved
    summary.rescheduled += report.rescheduled
    summary.dlq += report.dlq
    summary.dlq_failed += report.dlq_failed
    summary.aborted += report.untouched
    summary.dlq_failed_ids += [row["b_id"] for row in settlement.dlq_failed]


def _attempt(
    producer: Producer,
    events: list[FailedEvent],
    settings: RetrySettings,
    breaker: CircuitBreaker,
    summary: PassSummary,
) -> Settlement:
    """Publish one claimed batch and decide each row's fate."""
    timeout = settings.delivery_timeout.total_seconds() + 5.0
    settlement = Settlement()
    records = []
    publishable: list[FailedEvent] = []
    exhausted: list[tuple[FailedEvent, Failure, int]] = []
    for event in events:
        try:
            headers = record_headers(event.headers)
            if event.payload is None:
                raise ValueError("the payload is NULL: there is nothing to publish")
        except ValueError as exc:
            _failed_attempt(event, Failure("INVALID_RECORD", str(exc), True), settings, settlement, exhausted)
            summary.attempts_by_topic[event.topic] += 1
            continue
        records.append((event.topic, event.payload.encode("utf-8"), _key(event), headers))
        publishable.append(event)
    results = publish(producer, records, timeout=timeout)
    for event, result in zip(publishable, results, strict=True):
        summary.attempts_by_topic[event.topic] += 1
        if result is None:
            breaker.record(False)
            settlement.resolved.append(event.id)
            summary.resolved_by_topic[event.topic] += 1
        elif result.counts_as_attempt:
            breaker.record(False)
            _failed_attempt(event, result, settings, settlement, exhausted)
        else:
            _leave_untouched(event, result, breaker, settlement, summary)
    if exhausted:
        _send_to_dlq(producer, exhausted, settings, breaker, settlement, summary, timeout)
    return settlement


def _key(event: FailedEvent) -> bytes | None:
    return event.event_key.encode("utf-8") if event.event_key is not None else None


def _leave_untouched(
    event: FailedEvent,
    failure: Failure,
    breaker: CircuitBreaker,
    settlement: Settlement,
    summary: PassSummary,
) -> None:
    """Not the event's fault (transport, timeout, no report in time): no attempt is counted."""
    breaker.record(True)
    settlement.untouched.append(event.id)
    summary.transport_errors[failure.code] += 1


def _failed_attempt(
    event: FailedEvent,
    failure: Failure,
    settings: RetrySettings,
    settlement: Settlement,
    exhausted: list[tuple[FailedEvent, Failure, int]],
) -> None:
    retry_count = event.retry_count + 1
    if retry_count >= settings.max_retries:
        exhausted.append((event, failure, retry_count))
    else:
        settlement.rescheduled.append(_row(event, retry_count, failure.message, failure.error_type))


def _send_to_dlq(
    producer: Producer,
    exhausted: list[tuple[FailedEvent, Failure, int]],
    settings: RetrySettings,
    breaker: CircuitBreaker,
    settlement: Settlement,
    summary: PassSummary,
    timeout: float,
) -> None:
    records = [
        (
            settings.dlq_topic_for(event.topic),
            event.payload.encode("utf-8") if event.payload is not None else None,
            _key(event),
            dlq_headers(event, failure, retry_count),
        )
        for event, failure, retry_count in exhausted
    ]
    for (event, failure, retry_count), result in zip(
        exhausted, publish(producer, records, timeout=timeout), strict=True
    ):
        if result is None:
            breaker.record(False)
            settlement.dlq.append(_row(event, retry_count, failure.message, failure.error_type))
            summary.dlq_by_topic[event.topic] += 1
        elif result.counts_as_attempt:
            breaker.record(False)
            message = f"{failure.message}; DLQ send to {settings.dlq_topic_for(event.topic)} failed: {result.message}"
            settlement.dlq_failed.append(_row(event, retry_count, message, failure.error_type))
        else:
            # The DLQ could not be reached at all: leave the row as it was rather than call it
            # lost; the next pass repeats the attempt and the DLQ send.
            _leave_untouched(event, result, breaker, settlement, summary)


def describe_failed_ids(ids: Sequence[Any], shown: int = 20) -> str:
    listed = ", ".join(str(i) for i in ids[:shown])
    return listed + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
