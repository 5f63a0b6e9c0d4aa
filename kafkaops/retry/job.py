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

from sqlalchemy import LargeBinary, Select, Table, cast, select, type_coerce

from kafkaops.common import clock
from kafkaops.common.errors import KafkaClientError, KafkaopsError, SchemaError
from kafkaops.common.escape import safe_text
from kafkaops.common.timeparse import time_or_none
from kafkaops.config.settings import PASS_DEADLINE, SETTLE_TIMEOUT, RetrySettings
from kafkaops.db.failed_events import glob_condition, logical
from kafkaops.db.schema import BytesAsText, TableShape, inspect_table
from kafkaops.db.text import is_utf8
from kafkaops.db.transactions import bound_transaction, stream_rows
from kafkaops.dlq import record as dlq_record
from kafkaops.kafka import faults
from kafkaops.retry.publish import Failure, Headers, Publisher, SetRefusal, producer_overrides, record_headers
from kafkaops.retry.schedule import RetrySchedule
from kafkaops.retry.settle import Settlement, SettleResult, as_written, settle_or_isolate, with_dlq_record
from kafkaops.retry.topic_limits import TopicLimits

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.common.signals import StopRequest
    from kafkaops.db.connections import Connections

log = logging.getLogger("kafkaops.retry")


@dataclass
class FailedEvent:
    id: Any
    topic: str | None  # NOT NULL in `db init`'s table, but the service's may allow it
    event_key: str | bytes | None  # bytes: exactly as stored (SQLite)
    payload: str | bytes | None  # str: text, UTF-8 on Kafka; bytes: exactly as stored
    headers: str | bytes | None
    retry_count: int
    created_at: datetime | None
    next_retry_at: datetime | None = None  # None: never scheduled, due since it was stored


@dataclass
class PassOptions:
    batch_size: int | None = None  # None: retry.batch_size
    limit: int | None = None
    topic: str | None = None
    reachability_timeout: float = 5.0
    # No new batch starts after it; each statement's timeout ends at it (at least
    # SETTLE_TIMEOUT for a settle, which must not be cut short after publishing).
    deadline: timedelta = PASS_DEADLINE
    # Set (by a signal, `common.signals`) to stop before the next batch: the batch in flight is
    # published and settled first, so what the broker acknowledged is never left to be sent again.
    stop: StopRequest | None = None


class PassStopped(KafkaopsError):
    """The pass stopped on a database failure; what it did so far is in `summary`."""


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
    deadline_reached: bool = False
    stopped_by: str | None = None  # the signal that stopped the pass between batches (SIGTERM)
    dlq_failed_ids: list[Any] = field(default_factory=list)
    too_large_for_dlq_ids: list[Any] = field(default_factory=list)  # requeueing cannot help them
    bad_topic_ids: list[Any] = field(default_factory=list)  # no topic, or one Kafka refuses: neither can
    # Rows whose attempt failed for an error the broker gives a record it will never accept
    # (faults.is_permanent, the record refused alone): flagged at their first attempt.
    permanent_ids: list[Any] = field(default_factory=list)
    permanent_errors: Counter[str] = field(default_factory=Counter)  # by error class (simple name)
    # The first topic (and why) that kafkaops' own principal may not write: the pass stops.
    denied: tuple[str, Failure] | None = None
    denied_rows: int = 0  # claimed and left as they were for that reason (part of `aborted`)
    isolated: list[tuple[Any, str]] = field(default_factory=list)  # (id, status) settled alone
    attempts_by_topic: Counter[str] = field(default_factory=Counter)
    resolved_by_topic: Counter[str] = field(default_factory=Counter)
    dlq_by_topic: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    # By topic: records the broker refused as a whole message set, and what isolating them found.
    set_refusals: dict[str, SetRefusal] = field(default_factory=dict)

    @property
    def transport_aborted(self) -> int:
        """Rows left untouched for the environment's sake (not for a denial)."""
        return self.aborted - self.denied_rows

    @property
    def completed(self) -> bool:
        return (
            self.aborted == 0
            and self.circuit_breaker == "CLOSED"
            and not self.deadline_reached
            and self.stopped_by is None
            and not self.isolated
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "resolved": self.resolved,
            "rescheduled": self.rescheduled,
            "dlq": self.dlq,
            "dlq_failed": self.dlq_failed,
            "permanent": len(self.permanent_ids),
            "aborted": self.aborted,
            "circuit_breaker": self.circuit_breaker,
            "duration_s": round(self.duration_s, 3),
        }

    def refusals_as_list(self) -> list[dict[str, Any]]:
        """What isolating each topic's refused message sets found, for -o json."""
        return [refusal.as_dict() for refusal in self.set_refusals.values()]


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
    c = table.c
    sqlite = conn.dialect.name == "sqlite"
    # Rows keyed by logical names, whatever the mapping; stored text read as its exact bytes.
    columns = (
        *logical(table, ("id", "topic")),
        _exact(c.event_key, sqlite).label("event_key"),
        _exact(c.payload, sqlite).label("payload"),
        _exact(c.headers, sqlite).label("headers"),
        *logical(table, ("retry_count", "created_at", "next_retry_at")),
    )
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
            r.retry_count or 0,  # NULL in a service's table that allows it: never attempted
            time_or_none(r.created_at),
            r.next_retry_at,
        )
        for r in rows
    ]
    # Rows of one key go out in the order they were first stored.
    events.sort(key=lambda e: (e.created_at is None, e.created_at))
    return events


def _exact(column: Any, sqlite: bool) -> Any:
    """The column as the bytes to publish: text as text (UTF-8 on Kafka), json/jsonb as the
    database's text (JsonAsText casts it), bytea raw, and on SQLite the exact stored bytes
    (a value that is not UTF-8 goes out as stored)."""
    if sqlite:
        return cast(column, LargeBinary)
    if isinstance(column.type, BytesAsText):
        return type_coerce(column, LargeBinary)
    return column


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
            item["attempt"] = (item["retry_count"] or 0) + 1
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
        original_topic=event.topic or "",
        exception_message=failure.message,
        exception_fqcn=failure.error_type,
        failed_event_id=event.id,
        retry_count=retry_count,
    )


def _row(event: FailedEvent, retry_count: int, error: str, error_type: str) -> dict[str, Any]:
    return {"b_id": event.id, "b_retry_count": retry_count, "b_last_error": error, "b_error_type": error_type}


# -- the pass ------------------------------------------------------------------------------------


def preflight(conns: Connections) -> TableShape:
    """Before anything is published: the table must take every value a pass writes."""
    with conns.begin() as conn:
        bound_transaction(conn, statement=timedelta(seconds=30), idle=timedelta(seconds=60))
        shape = inspect_table(conn, conns.settings.database)
    if shape.problems:
        listed = "; ".join(f"{p.physical}: {p.problem}" for p in shape.problems[:5])
        more = f" and {len(shape.problems) - 5} more" if len(shape.problems) > 5 else ""
        raise SchemaError(
            f"the table does not match the configured mapping ({listed}{more}): nothing was published",
            hint="run 'kafkaops db check' to see which columns differ",
        )
    return shape


def batch_worst_case(settings: RetrySettings) -> timedelta:
    """The longest a batch may sit between statements: its publish and the isolation of the
    sets the broker refused, then its DLQ sends and theirs."""
    return 4 * (settings.delivery_timeout + timedelta(seconds=5)) + timedelta(seconds=60)


def run_pass(
    conns: Connections,
    options: PassOptions,
    *,
    on_batch: Callable[[BatchReport], None] | None = None,
    summary: PassSummary | None = None,
) -> PassSummary:
    """Claim, publish and settle due rows batch by batch until none is due, --limit is reached,
    the circuit breaker opens or the deadline passes. Raises KafkaUnavailableError before
    touching a row when the cluster cannot be reached, SchemaError before publishing when the
    table cannot take what the pass writes, and PassStopped when a settle fails: `summary`
    (when given) then holds what was done."""
    from kafkaops.kafka.metadata import check_reachable

    settings = conns.settings.retry
    started = time.monotonic()
    ends = started + options.deadline.total_seconds()
    summary = summary if summary is not None else PassSummary()
    try:
        props = conns.kafka_props  # a configuration error is reported before anything is touched
        shape = preflight(conns)
        check_reachable(props, timeout=options.reachability_timeout)
        _run_batches(conns, options, settings, shape, ends, summary, on_batch)
    finally:
        summary.duration_s = time.monotonic() - started
    return summary


def _run_batches(
    conns: Connections,
    options: PassOptions,
    settings: RetrySettings,
    shape: TableShape,
    ends: float,
    summary: PassSummary,
    on_batch: Callable[[BatchReport], None] | None,
) -> None:
    table = conns.table
    lock = conns.dialect == "postgresql"
    overrides = producer_overrides(settings)
    limits = TopicLimits(conns.admin, timeout=options.reachability_timeout)
    publisher = Publisher(
        conns.producer(**overrides),
        lambda **sized: conns.producer(**overrides, **sized),
        set_bytes=limits.set_bytes,
        refusals=summary.set_refusals,
    )
    schedule = RetrySchedule(settings.schedule)
    breaker = CircuitBreaker(settings.breaker_threshold)
    room = {name: shape.max_length(name) for name in ("last_error", "error_type")}
    idle = batch_worst_case(settings)
    untouched_ids: list[Any] = []  # tried this pass and left as they were: not claimed again
    stored_after = None  # the last never-scheduled id claimed: the next batch starts after it
    batch_number = 0
    batch_size = options.batch_size or settings.batch_size
    while not breaker.open and len(untouched_ids) < _max_untouched(batch_size):
        want = batch_size if options.limit is None else min(batch_size, options.limit - summary.claimed)
        if want <= 0:
            break
        if options.stop is not None and options.stop.requested is not None:
            summary.stopped_by = options.stop.requested
            break
        if time.monotonic() >= ends:
            summary.deadline_reached = True
            break
        batch_number += 1
        batch_started = time.monotonic()
        published = claimed = 0
        try:
            # immediate: SQLite has no row locks; its write lock, taken up front, makes a second
            # pass wait for this batch instead of claiming the same rows.
            with conns.begin(immediate=True) as conn:
                bound_transaction(conn, statement=timedelta(seconds=ends - time.monotonic()), idle=idle)
                events = claim_due_events(
                    conn,
                    table,
                    now=clock.now(),
                    limit=want,
                    topic=options.topic,
                    lock=lock,
                    skip=untouched_ids,
                    stored_after=stored_after,
                )
                if not events:
                    break
                claimed = len(events)
                stored_after = max((e.id for e in events if e.next_retry_at is None), default=stored_after)
                settlement = _attempt(publisher, events, settings, breaker, summary)
                published = len(settlement.resolved) + len(settlement.dlq)
                remaining = timedelta(seconds=ends - time.monotonic())
                bound_transaction(conn, statement=max(remaining, SETTLE_TIMEOUT), idle=idle)
                result = settle_or_isolate(
                    conn, table, settlement, now=clock.now(), schedule=schedule, room=room
                )
        except KafkaopsError as error:
            summary.claimed += claimed
            if not published:
                raise
            raise PassStopped(
                f"{error.message}: pass stopped; {published} row(s) of batch {batch_number} were "
                "published but not settled (the next pass publishes them again: at least once)",
                hint=error.hint,
            ) from error
        settlement = as_written(settlement, result)
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
        if result.isolated or result.unsettled:
            _stop_on_isolated(summary, result, batch_number, published)
        if summary.denied is not None:
            _stop_on_denial(conns, summary, batch_number)
        if len(events) < want:
            break
    summary.circuit_breaker = "OPEN" if breaker.open else "CLOSED"


def _stop_on_isolated(summary: PassSummary, result: SettleResult, batch: int, published: int) -> None:
    """The database refused a batch's settle: the rows it took one by one are settled, the
    others are isolated with a status alone, and the pass stops (something is wrong with the
    table or its data that the preflight could not see)."""
    summary.isolated += result.isolated
    isolated = ", ".join(f"{row_id} -> {status}" for row_id, status in result.isolated[:20])
    unsettled = len(result.unsettled)
    raise PassStopped(
        f"the database refused to settle batch {batch} ({result.error}): pass stopped; "
        f"{len(result.isolated)} row(s) settled with their status alone ({isolated or 'none'}), "
        f"{unsettled} row(s) not settled at all"
        + (f" ({published} published in this batch)" if unsettled else ""),
        hint="see the row(s) with: kafkaops failed show ID; fix the table (kafkaops db check), then requeue",
    )


def _stop_on_denial(conns: Connections, summary: PassSummary, batch: int) -> None:
    """kafkaops' own principal may not write a topic: configuration, not the events' fault. The
    batch is settled (what was acknowledged is RESOLVED); the denied rows are left exactly as
    they were, and the pass stops before the next batch."""
    from kafkaops.kafka.errors import authorization_error

    assert summary.denied is not None
    topic, failure = summary.denied
    resource = faults.classify(failure.code).resource
    stopped = (
        f": retry pass stopped in batch {batch}; {summary.denied_rows} row(s) left as they were, "
        "no attempt counted"
    )
    if faults.is_tls_failure(failure.code):  # a TLS handshake that failed mid-pass
        raise KafkaClientError(
            f"TLS handshake with Kafka failed ({failure.code}: {failure.message}) writing to {topic}{stopped}",
            hint="check ssl.ca.location (or ssl.ca.pem) and that bootstrap.servers names the brokers "
            "as their certificates do",
        )
    if resource is None:  # the credentials, rejected mid-pass
        raise KafkaClientError(
            f"Kafka rejected the credentials ({failure.code}: {failure.message}) writing to {topic}{stopped}",
            hint="check sasl.mechanism, sasl.username and sasl.password",
        )
    name: str | None = topic
    operation: str | None = "Write"
    if resource != "topic":  # the idempotent producer's right on the cluster (brokers < 2.8), or other
        name, operation = None, "IdempotentWrite" if resource == "cluster" else None
        stopped = f" writing to {topic}{stopped}"
    raise authorization_error(failure.code, conns.kafka_props, name=name, operation=operation, then=stopped)


def _max_untouched(batch_size: int) -> int:
    """How many unsettled rows a pass tolerates before it stops on its own, breaker or not."""
    return max(batch_size, 1000)


def _count(summary: PassSummary, report: BatchReport, settlement: Settlement) -> None:
    summary.claimed += report.claimed
    summary.resolved += report.resolved
    summary.rescheduled += report.rescheduled
    summary.dlq += report.dlq
    summary.dlq_failed += report.dlq_failed
    summary.aborted += report.untouched
    summary.dlq_failed_ids += [row["b_id"] for row in settlement.dlq_failed]


def _attempt(
    publisher: Publisher,
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
        summary.attempts_by_topic[topic_label(event.topic)] += 1
        try:
            record = to_record(event)
        except ValueError as exc:
            # The row's own fault, found before anything is sent: an attempt like any other.
            failure = Failure("INVALID_RECORD", str(exc))
            _note_permanent(summary, event, failure, settings)
            _failed_attempt(event, failure, settings, settlement, exhausted)
            continue
        records.append(record)
        publishable.append(event)
    results = publisher.publish(records, timeout=timeout)
    for event, result in zip(publishable, results, strict=True):
        if result is None:
            breaker.record(False)
            settlement.resolved.append(event.id)
            summary.resolved_by_topic[topic_label(event.topic)] += 1
        elif result.counts_as_attempt:
            breaker.record(False)
            _note_permanent(summary, event, result, settings)
            _failed_attempt(event, result, settings, settlement, exhausted)
        else:
            _leave_untouched(event, event.topic or "", result, breaker, settlement, summary)
    if exhausted:
        _send_to_dlq(publisher, exhausted, settings, breaker, settlement, summary, timeout)
    return settlement


def _note_permanent(
    summary: PassSummary, event: FailedEvent, failure: Failure, settings: RetrySettings
) -> None:
    """A record the broker will never accept (refused alone: isolation ran first) and sent back
    into the loop is flagged at its first attempt, not after the schedule runs out; its
    error_type says so in the table. One on its last attempt goes to its DLQ, as any other."""
    if faults.is_permanent(failure.code) and event.retry_count + 1 < settings.max_retries:
        summary.permanent_ids.append(event.id)
        summary.permanent_errors[failure.error_type.rsplit(".", 1)[-1]] += 1


def topic_label(topic: str | None) -> str:
    """A row's topic as a metric label: escaped as people see it (a topic that is not UTF-8
    cannot be written to the textfile as it is)."""
    return safe_text(topic) if topic is not None else "(null)"


def to_record(event: FailedEvent) -> tuple[str, bytes, bytes | None, Headers]:
    """The Kafka record of a row, or ValueError saying why this row cannot be one."""
    if event.topic is None or event.topic == "":
        raise ValueError("the topic is NULL or empty: there is nowhere to publish")
    if not is_utf8(event.topic):
        raise ValueError("the topic is not UTF-8: no Kafka topic has that name")
    if event.payload is None:
        raise ValueError("the payload is NULL: there is nothing to publish")
    headers = record_headers(event.headers)
    return event.topic, as_bytes(event.payload, "payload"), _key(event), headers


def as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} cannot be encoded as UTF-8") from None


def _key(event: FailedEvent) -> bytes | None:
    return as_bytes(event.event_key, "event_key") if event.event_key is not None else None


def _leave_untouched(
    event: FailedEvent,
    topic: str,
    failure: Failure,
    breaker: CircuitBreaker,
    settlement: Settlement,
    summary: PassSummary,
) -> None:
    """Not the event's fault: no attempt is counted. The environment's (transport, timeout, no
    report in time) counts toward the circuit breaker; kafkaops' own configuration's (a
    missing ACL on `topic`) stops the pass after this batch."""
    settlement.untouched.append(event.id)
    if failure.fault is faults.Fault.CONFIGURATION:
        summary.denied_rows += 1
        if summary.denied is None:
            summary.denied = (topic, failure)
        return
    breaker.record(True)
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
    publisher: Publisher,
    exhausted: list[tuple[FailedEvent, Failure, int]],
    settings: RetrySettings,
    breaker: CircuitBreaker,
    settlement: Settlement,
    summary: PassSummary,
    timeout: float,
) -> None:
    sendable = []
    records = []
    for event, failure, retry_count in exhausted:
        if event.topic is None or event.topic == "" or not is_utf8(event.topic):
            # No topic, so no dead-letter topic either: an operator must look at it.
            why = "without a topic" if not event.topic else "whose topic is not UTF-8"
            message = f"{failure.message}; no DLQ topic for a row {why}"
            settlement.dlq_failed.append(_row(event, retry_count, message, failure.error_type))
            summary.bad_topic_ids.append(event.id)
            continue
        try:
            value = as_bytes(event.payload, "payload") if event.payload is not None else None
            key = _key(event)
        except ValueError:
            value, key = None, None  # the DLQ record still says which row and why
        sendable.append((event, failure, retry_count))
        records.append(
            (settings.dlq_topic_for(event.topic), value, key, dlq_headers(event, failure, retry_count))
        )
    for index, ((event, failure, retry_count), result) in enumerate(
        zip(sendable, publisher.publish(records, timeout=timeout), strict=True)
    ):
        if result is None:
            breaker.record(False)
            row = _row(event, retry_count, failure.message, failure.error_type)
            settlement.dlq.append(with_dlq_record(row, publisher.acked.get(index)))
            summary.dlq_by_topic[topic_label(event.topic)] += 1
        elif result.counts_as_attempt:
            breaker.record(False)
            message = f"{failure.message}; DLQ send to {settings.dlq_topic_for(event.topic or '')} failed: {result.message}"
            settlement.dlq_failed.append(_row(event, retry_count, message, failure.error_type))
            # Refused for these, a requeue can only be refused again: the record is too large,
            # or the DLQ topic's name is (the row's topic has a space, a character beyond
            # [A-Za-z0-9._-], or more than 249 characters with the suffix).
            if faults.is_too_large(result.code):
                summary.too_large_for_dlq_ids.append(event.id)
            elif faults.is_invalid_topic(result.code):
                summary.bad_topic_ids.append(event.id)
        else:
            # The DLQ could not be reached, or kafkaops may not write it: leave the row as it
            # was rather than call it lost; the next pass repeats the attempt and the DLQ send.
            dlq_topic = settings.dlq_topic_for(event.topic or "")
            _leave_untouched(event, dlq_topic, result, breaker, settlement, summary)


def describe_set_refusals(summary: PassSummary) -> list[tuple[bool, str]]:
    """One line per topic whose records the broker refused as whole message sets, saying what
    isolating them found; True for a line that says the environment is at fault."""
    lines = []
    for refusal in summary.set_refusals.values():
        topic, code = topic_label(refusal.topic), refusal.code
        found = (
            f"the broker refused {refusal.rows} record(s) of topic {topic} as part of message sets "
            f"({code}); sent again in smaller sets down to single records"
        )
        if refusal.cause == "batch":
            lines.append((False, f"{found}, all were acknowledged: the sets were too large, no record was"))
        if refusal.charged:
            lines.append(
                (
                    False,
                    f"{found}, {refusal.charged} were refused alone and counted an attempt, "
                    f"{refusal.resolved} were acknowledged",
                )
            )
        if refusal.not_charged:
            codes = ", ".join(f"{n}x {c}" for c, n in refusal.environment.most_common())
            why = (
                "the broker refused their timestamps: this host's clock, or the topic's "
                "message.timestamp.* settings, not the events"
                if "INVALID_TIMESTAMP" in refusal.environment
                else "not the events' fault"
            )
            every = (
                "every record"
                if not (refusal.charged or refusal.resolved)
                else f"{refusal.not_charged} record(s)"
            )
            lines.append(
                (
                    True,
                    f"the broker refused {every} of topic {topic} sent alone ({codes}): {why}; "
                    f"{refusal.not_charged} row(s) left PENDING, no attempt counted",
                )
            )
    return lines


def describe_failed_ids(ids: Sequence[Any], shown: int = 20) -> str:
    listed = ", ".join(str(i) for i in ids[:shown])
    return listed + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
