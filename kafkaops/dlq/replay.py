"""`dlq replay`: re-publish DLQ records to their original topic, exactly once, resumably.

One transactional producer writes each batch and commits the consumed offsets in the same
transaction (`send_offsets_to_transaction`) under the replay group, so a run cut at any
moment leaves either the whole batch and its offsets or neither; the next run resumes from
the committed offsets. The run ends at the high watermarks seen when it started (positions
are compared, never records counted: transaction markers occupy offsets).

This module is the read loop; when a transaction commits, aborts and rewinds, retries or stops
the run is `kafkaops.dlq.transactions`' to say. What a replay checks and reads before it acts
is in `kafkaops.dlq.plan`.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import (
    KafkaClientError,
    KafkaopsError,
    KafkaUnavailableError,
    UsageError,
)
from kafkaops.dlq import record as dlq_record
from kafkaops.dlq.left_open import check_none_left_open
from kafkaops.dlq.plan import (
    ReplayConflictError,
    ReplayPlan,
    ReplayRequest,
    check_no_live_replay,
    check_target,
    client_id,
    source_offsets,
)
from kafkaops.dlq.reading import READ_ONLY, is_eof, raise_definite
from kafkaops.dlq.transactions import Batch, TransactionPolicy
from kafkaops.kafka import dlq_names
from kafkaops.kafka.errors import kafka_errors
from kafkaops.kafka.metadata import committed_offsets

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer
    from confluent_kafka.admin import AdminClient

    from kafkaops.db.connections import Connections

log = logging.getLogger(__name__)

# While another member shares the replay group at the start, how often a run asks whether it
# still holds the transactional id (a transaction opened and aborted: two round trips).
PROBE_SECONDS = 0.5
# How long a transaction holding this source's records may stay open on a target before the run
# refuses to write there (at most --commit-timeout): one an earlier run left, the coordinator
# aborts during init_transactions; one still open after this was left hanging.
LEFT_OPEN_GRACE = 10.0


@dataclass
class ReplaySummary:
    source: str
    group: str
    dry_run: bool
    targets: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    skipped_filtered: int = 0
    skipped_max_replays: int = 0
    skipped_examples: list[str] = field(default_factory=list)  # partition/offset of loop-guarded ones
    duration_s: float = 0.0
    complete: bool = False
    interrupted: bool = False
    commits: int = 0  # transactions committed (the audit journal says so)

    def add(self, batch: Batch) -> None:
        self.targets.update(batch.targets)
        self.replayed += batch.replayed
        self.skipped_filtered += batch.filtered
        self.skipped_max_replays += batch.max_replays
        room = 20 - len(self.skipped_examples)
        self.skipped_examples += batch.examples[: max(0, room)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "group": self.group,
            "targets": dict(sorted(self.targets.items())),
            "replayed": self.replayed,
            "skipped_filtered": self.skipped_filtered,
            "skipped_max_replays": self.skipped_max_replays,
            "dry_run": self.dry_run,
            "duration_s": round(self.duration_s, 3),
            "complete": self.complete,
            "interrupted": self.interrupted,
        }


@contextmanager
def _collect_per_batch() -> Iterator[None]:
    """No automatic garbage collection while records stream through.

    Every record allocates a Message and its header tuples, all freed by reference counting;
    the collector, triggered every few hundred allocations, re-walked the young ones for
    nothing and took a tenth of a replay's time. The objects that exist before the run are
    frozen (never walked again) and _commit() collects what is left after each batch, so
    memory stays bounded by the batch."""
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


class _InBackground:
    """One blocking client call (it releases the GIL) on a thread of its own."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        import threading

        self._error: BaseException | None = None

        def run() -> None:
            try:
                call(*args)
            except BaseException as exc:  # handed to the caller by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="kafkaops-replay-init", daemon=True)
        self._thread.start()

    def wait(self) -> BaseException | None:
        """Wait for the call to end; the exception it raised, if any."""
        self._thread.join()
        return self._error

    def succeeded(self) -> bool:
        """The call has ended without raising."""
        return not self._thread.is_alive() and self._error is None


class _StopBefore(Exception):
    """A record that must not be replayed (bad target): commit what came before, then stop."""

    def __init__(self, error: KafkaopsError) -> None:
        self.error = error


# ---------------------------------------------------------------------------------------
# The run


class Replayer:
    """One replay run. `stop()` is polled between records: when it turns true the open
    transaction is committed (or aborted) and run() returns what was committed."""

    def __init__(
        self,
        conns: Connections,
        request: ReplayRequest,
        plan: ReplayPlan,
        *,
        stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int], None] = lambda advanced: None,
        on_commit: Callable[[Batch], None] = lambda batch: None,
    ) -> None:
        self.conns = conns
        # Called with each batch once its transaction has committed (kafkaops.dlq.reconcile).
        self.on_commit = on_commit
        self.props = conns.settings.require_kafka()
        self.request = request
        self.plan = plan
        self.stop = stop
        self.progress = progress
        self.summary = ReplaySummary(source=request.source, group=request.group_id, dry_run=request.dry_run)
        self.end = dict(plan.end)
        self.positions: dict[int, int] = {}
        self.done: set[int] = set()
        self._targets_ok: dict[str, KafkaopsError | None] = {}
        self._writing = False  # a real run (not --dry-run): targets are checked for what was left open
        # The run's admin client, once it exists: asked about targets, watermarks and committed
        # offsets over its open connection (a client per question would cost a bootstrap each).
        self._asker: AdminClient | None = None
        # A consumer of the replay group that never joins it nor fetches: reads the committed
        # offsets (one request, never queued behind the run's fetch long-poll).
        self._offsets_reader: Consumer | None = None
        self.transactions = TransactionPolicy(request, self.props, self._targets_ok)
        self.transactions.locate = self._locate
        self._open_batch: Batch | None = None  # the transaction being filled or committed
        self._produced = 0
        self._started = time.monotonic()
        # Consumed but not yet handled: a batch may close in the middle of a fetch.
        self._backlog: deque[Message] = deque()
        # Target of each distinct kafka_dlt-original-topic value seen (raw bytes -> topic).
        self._target_by_raw: dict[str | bytes, str] = {}
        # Records whose headers() failed in _replay_fast (partition, offset): see readable_headers.
        self._unreadable_headers: set[tuple[int, int]] = set()
        from confluent_kafka import KafkaError, KafkaException

        self._eof_code = KafkaError._PARTITION_EOF
        self._kafka_exception = KafkaException
        self._selecting = request.selection.filters_records

    # -- entry point -----------------------------------------------------------------------

    def run(self) -> ReplaySummary:
        self._started = time.monotonic()
        try:
            with _collect_per_batch():
                if self.request.dry_run:
                    self._dry_run()
                else:
                    self._replay()
        finally:
            self.summary.duration_s = time.monotonic() - self._started
            self._asker = None  # an error's traceback may outlive the run: it holds no client
        return self.summary

    # -- dry run: read and count, commit and produce nothing -------------------------------

    def _dry_run(self) -> None:
        from confluent_kafka import TopicPartition

        consumer = self.conns.consumer(group_id=self.request.group_id, **READ_ONLY)
        self._asker = self.conns.admin()
        marks = source_offsets(self._asker, self.request.source, self.end, 10.0, high=False)
        low = {p: lh[0] for p, lh in marks.items()}
        self.positions = {p: max(low[p], self.plan.committed.get(p) or low[p]) for p in self.end}
        self.done = {p for p, pos in self.positions.items() if pos >= self.end[p]}
        consumer.assign(
            [
                TopicPartition(self.request.source, p, pos)
                for p, pos in self.positions.items()
                if p not in self.done
            ]
        )
        while not self._finished():
            batch = Batch()
            try:
                self._fill(consumer, batch, producer=None)
            except _StopBefore as stop:
                self._settle_dry(batch)
                raise stop.error from None
            self._settle_dry(batch)
        self.summary.complete = not self.summary.interrupted and self._all_done()

    def _settle_dry(self, batch: Batch) -> None:
        self.progress(batch.advanced(self.positions))
        self.positions.update(batch.moved)
        self.summary.add(batch)
        gc.collect()  # see _collect_per_batch

    # -- the real thing --------------------------------------------------------------------

    def _replay(self) -> None:
        request = self.request
        self._writing = True
        # Every client is created first, so their connections come up side by side (creating a
        # transactional producer contacts no coordinator and fences nobody: init_transactions
        # does, which is why it waits for the check that no replay of this topic is running).
        admin = self.conns.admin()
        txn_ms = self.transactions.transaction_timeout_ms
        producer = self.conns.transactional_producer(
            request.transactional_id,
            **{
                # Java's partitioner: a replayed key lands where the service would put it.
                "partitioner": "murmur2_random",
                # A target deleted mid-run stays deleted: never re-created by a metadata request
                # on a broker with auto.create.topics.enable (targets are checked up front).
                "allow.auto.create.topics": False,
                "linger.ms": 50,
                "transaction.timeout.ms": txn_ms,
                # librdkafka refuses a message timeout above the transaction's.
                "message.timeout.ms": min(txn_ms, max(30_000, int(request.commit_timeout * 1000))),
                # Memory is bounded by what awaits the broker's acknowledgement, never by the
                # topic or the transaction: 16 MB is ~0.2 s of replay, the broker acks faster.
                "queue.buffering.max.kbytes": 16_384,
                # librdkafka's own 1 MB cap would refuse a record the target takes: the
                # broker and the target's max.message.bytes decide (1e9 is librdkafka's limit).
                "message.max.bytes": 1_000_000_000,
                "on_delivery": self.transactions.on_delivery,
                # Only failures call back into Python: a report per record costs a third of
                # the replay's time.
                "delivery.report.only.error": True,
                # The broker answers CONCURRENT_TRANSACTIONS while it writes the last commit's
                # markers; retry after 20 ms rather than librdkafka's 100.
                "retry.backoff.ms": 20,
            },
        )
        consumer = self.conns.consumer(
            group_id=request.group_id,
            **{
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "enable.auto.offset.store": False,
                # Dynamic membership: a finished run leaves the group at once, so "live
                # members" means a replay is running (or was killed < 10 s ago).
                "client.id": client_id(),
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1000,
                # The fetch queue stays small whatever the topic's size.
                "queued.max.messages.kbytes": 8192,
                # ...and refills as soon as there is room (librdkafka waits 1 s by default).
                "fetch.queue.backoff.ms": 5,
            },
        )
        # Targets, watermarks and committed offsets are asked through the admin client, in
        # batched requests: never behind the group consumer's fetch long-poll.
        self._asker = admin
        self._offsets_reader = self.conns.consumer(group_id=request.group_id, **READ_ONLY)
        check_no_live_replay(admin, request.group_id)
        del admin  # the run's (self._asker), dropped when it ends: an admin client has no close()
        # init_transactions (which finishes or aborts what a killed run left open) and the
        # group join are independent round trips: run them side by side. The committed
        # offsets are read (_rewind) only once both are done, so they are the settled ones.
        init = _InBackground(self.transactions.init, producer)
        try:
            log.info("replay of %r: joining group %r", request.source, request.group_id)
            self._join(consumer, producer, init)
        finally:
            error = init.wait()
        if error is not None:
            with kafka_errors(producer, "start a transaction (init_transactions)", self._access("Write")):
                raise error
        log.info("replay of %r: transactions initialised, group joined", request.source)
        self._rewind(consumer)
        self._started = time.monotonic()  # --rate counts from here, not from the set-up
        log.info("replay of %r: resuming at %s, ending at %s", request.source, self.positions, self.end)
        while not self._finished():
            batch = self._open_batch = Batch()
            producer.begin_transaction()
            stop_error: KafkaopsError | None = None
            try:
                self._fill(consumer, batch, producer)
            except _StopBefore as stop:
                stop_error = stop.error
            if not self._commit(producer, consumer, batch):
                self._after_abort()
                self._rewind(consumer)
            if stop_error is not None:
                raise stop_error
        self.summary.complete = not self.summary.interrupted and self._all_done()

    def _after_abort(self) -> None:
        """Before the aborted batch is tried again: its records must be closed on every target
        it may have written to (a marker the brokers skipped would let the retry's commit make
        them visible with its own)."""
        for target, problem in self._targets_ok.items():
            if problem is None:
                self._check_left_open(target, ours=True)

    def _check_left_open(self, target: str, *, ours: bool = False) -> None:
        """Nothing of this source may stay in a transaction left open on ``target``
        (dlq/left_open.py): raises KafkaClientError when something does."""
        assert self._asker is not None
        grace = min(LEFT_OPEN_GRACE, self.request.commit_timeout)
        check_none_left_open(
            self._asker, self.props, target, self.request.source, grace=grace, timeout=10.0, ours=ours
        )

    def _access(self, operation: str) -> dict[str, tuple[str | None, str | None]]:
        """What a replay request asks of each resource, for naming a denial: ``operation`` on
        the source and the group, Write on the transactional id (the run's producer)."""
        return {
            "topic": (self.request.source, operation),
            "group": (self.request.group_id, operation),
            "transactional id": (self.request.transactional_id, "Write"),
            "cluster": (None, "IdempotentWrite"),
        }

    def _join(self, consumer: Consumer, producer: Producer, init: _InBackground) -> None:
        """Subscribe and wait until this run owns every partition of the source.

        Two replays started at the same instant both pass check_no_live_replay and join the
        group together. The one that holds the transactional id after init_transactions (the
        last to initialise: it fenced the other) is the one that runs: while another member
        shares the group, each asks whether it still holds the id (TransactionPolicy.holds_id,
        every PROBE_SECONDS); the fenced one refuses and leaves, the other gets every partition.
        """
        from confluent_kafka import KafkaError

        assigned: list[Any] = []
        shared: list[bool] = []  # an assignment came and it is not every partition
        probed = 0.0

        every = set(self.plan.partitions)

        # Captures no `self`: the consumer holds this callback, and a cycle through a client
        # is never collected.
        def on_assign(_consumer: Any, partitions: list[Any]) -> None:
            assigned[:] = partitions
            shared[:] = [{tp.partition for tp in partitions} != every]

        with kafka_errors(consumer, f"join group {self.request.group_id!r}", self._access("Read")):
            consumer.subscribe([self.request.source], on_assign=on_assign)
            wait = max(30.0, self.request.commit_timeout)
            deadline = time.monotonic() + wait
            while {tp.partition for tp in assigned} != set(self.plan.partitions):
                if self.stop():
                    raise KeyboardInterrupt
                # A record polled here is not lost: _rewind() seeks to the committed offsets.
                msg = consumer.poll(0.02)
                error = msg.error() if msg is not None else None
                if (
                    error is not None
                    and error.code() != KafkaError._PARTITION_EOF
                    and not self.transactions.transient(error)
                ):
                    raise self.transactions.consumer_failure(error, consumer)
                now = time.monotonic()
                if shared and shared[0] and now - probed >= PROBE_SECONDS and init.succeeded():
                    probed = now
                    if not self.transactions.holds_id(producer, consumer, self.plan.partitions):
                        raise ReplayConflictError(
                            f"another replay of {self.request.source!r} started at the same moment and "
                            "holds its transactional id: this one stopped before replaying anything",
                            hint="let the other replay finish, then rerun to see what is left",
                        )
                if time.monotonic() > deadline:
                    if assigned:
                        raise ReplayConflictError(
                            f"another consumer shares group {self.request.group_id!r}: "
                            "a replay of this topic is running"
                        )
                    raise KafkaUnavailableError(
                        f"no partitions of {self.request.source!r} were assigned to group "
                        f"{self.request.group_id!r} within {wait:g}s"
                    )

    def _rewind(self, consumer: Consumer) -> None:
        """Go back to the committed offsets: after the start, and after every abort."""
        from confluent_kafka import TopicPartition

        source, admin, timeout = self.request.source, self._asker, self.request.commit_timeout
        assert admin is not None
        # Stable offsets (the reader is read_committed), through a consumer that never fetches:
        # the transactions initialised, what a killed run left open is aborted (or committed)
        # by now, and librdkafka waits out UNSTABLE_OFFSET_COMMIT until its markers are written.
        assert self._offsets_reader is not None
        committed = committed_offsets(
            self._offsets_reader,
            self.request.group_id,
            source,
            timeout,
            partitions=self.end,
            operation="Read",
        )
        low = {p: lh[0] for p, lh in source_offsets(admin, source, self.end, timeout, high=False).items()}
        self._backlog.clear()  # the seek below fetches them again
        self.positions = {p: max(low[p], committed.get(p) or low[p]) for p in self.end}
        self.done = {p for p, pos in self.positions.items() if pos >= self.end[p]}
        todo = [TopicPartition(source, p, pos) for p, pos in self.positions.items() if p not in self.done]
        idle = self.done | (set(self.plan.partitions) - set(self.end))
        if idle:
            consumer.pause([TopicPartition(source, p) for p in idle])
        if todo:
            consumer.resume(todo)
            for tp in todo:
                consumer.seek(tp)

    def _locate(self, key: bytes | None, value: bytes | None) -> str | None:
        """``partition/offset`` of the first source record of the open batch with these key and
        value bytes (read again: a delivery report carries no headers, so no replayed-from);
        None when none is found within 10 s. Only asked when a delivery failed."""
        from confluent_kafka import TopicPartition

        batch = self._open_batch
        if batch is None:
            return None
        ranges = {p: (self.positions[p], end) for p, end in batch.moved.items() if end > self.positions[p]}
        if not ranges:
            return None
        reader = self.conns.consumer(**READ_ONLY)
        try:
            reader.assign([TopicPartition(self.request.source, p, start) for p, (start, _) in ranges.items()])
            deadline = time.monotonic() + 10.0
            while ranges and time.monotonic() < deadline:
                msg = reader.poll(0.2)
                if msg is None:
                    continue
                if msg.error() is not None:
                    # The end of a partition; anything else (a connection's hiccup, reported with
                    # no partition) is waited out within the deadline.
                    if is_eof(msg):
                        ranges.pop(msg.partition() or 0, None)
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if partition not in ranges:
                    continue
                if msg.value() == value and msg.key() == key:
                    return f"{partition}/{offset}"
                if offset >= ranges[partition][1] - 1:
                    del ranges[partition]  # the end of what the batch took
        finally:
            reader.close()
        return None

    # -- filling one batch -----------------------------------------------------------------

    def _fill(self, consumer: Consumer, batch: Batch, producer: Producer | None) -> None:
        request = self.request
        backlog = self._backlog
        opened = idle_since = time.monotonic()
        while True:
            if self.stop():
                self.summary.interrupted = True
                return
            if self._finished(batch):
                return
            now = time.monotonic()
            if self.transactions.batch_closes(batch, opened, now):
                return
            if not backlog:
                if producer is not None:
                    producer.poll(0)
                messages = consumer.consume(min(500, request.batch_size), timeout=0.1)
                raise_definite(consumer)
                if messages:
                    idle_since = time.monotonic()
                    backlog.extend(messages)
                elif now - idle_since > max(30.0, request.commit_timeout):
                    raise KafkaUnavailableError(
                        f"Kafka delivered nothing from {request.source!r} for {now - idle_since:.0f}s"
                    )
                continue
            fast = producer is not None and not request.rate and request.limit is None
            if not (fast and producer is not None and self._replay_fast_or_stop(batch, producer, opened)):
                self._handle(backlog.popleft(), batch, producer, consumer)

    def _replay_fast_or_stop(self, batch: Batch, producer: Producer, opened: float) -> int:
        """_replay_fast(), which meets a record whose headers cannot be read as an exception
        from headers(): that record is then left first in the backlog for _handle() to refuse.
        (Only the first headers() call fails; later ones return a broken list. The failure
        may surface as the UnicodeDecodeError itself, at the next call that checks.)"""
        try:
            return self._replay_fast(batch, producer, opened)
        except (SystemError, UnicodeDecodeError) as exc:
            cause = exc if isinstance(exc, UnicodeDecodeError) else exc.__cause__
            if not (self._backlog and isinstance(cause, UnicodeDecodeError)):
                raise
            msg = self._backlog[0]
            self._unreadable_headers.add((msg.partition() or 0, msg.offset() or 0))
            return 0

    def _replay_fast(self, batch: Batch, producer: Producer, opened: float) -> int:
        """_handle() for a run of plain records, inlined: a replay spends its time here.

        Anything unusual (an error or end-of-partition event, a record before the position or
        past the end, a selection, the loop guard, a new target) goes through _handle(). Per
        record it does only what cannot be done per batch: ~1 µs of Python beside the ~5 µs
        confluent-kafka needs to hand the record over (headers() and produce())."""
        if self._selecting:
            return 0
        request = self.request
        backlog, end = self._backlog, self.end
        moved, targets_ok = batch.moved, self._targets_ok
        to, source, suffixes = request.to, request.source, request.suffixes
        replay_count_header, by_raw = dlq_record.REPLAY_COUNT, self._target_by_raw
        original_topic_header = dlq_record.ORIGINAL_TOPIC
        row_header, rows = dlq_record.FAILED_EVENT_ID, batch.rows
        replayed_from, replay_count_one = dlq_record.REPLAYED_FROM, (dlq_record.REPLAY_COUNT, b"1")
        produce, stop, popleft = producer.produce, self.stop, backlog.popleft
        # Per partition still open: the next offset this batch expects at the earliest (older
        # ones were fetched before a rewind) and the last one the fast path may take (the
        # partition's final record goes through _handle(), which closes the partition).
        nexts = {p: moved.get(p, pos) for p, pos in self.positions.items() if p not in self.done}
        lasts = {p: end[p] - 1 for p in nexts}
        prefixes = {p: b"%s/%d/" % (source.encode(), p) for p in nexts}
        sent_to: list[str] = []  # one entry per record: cheaper than counting as they go
        room = request.batch_size - batch.handled  # batch_closes, per batch, not per record
        handled = 0
        try:
            while backlog and handled < room:
                msg = backlog[0]
                partition: int = msg.partition()  # type: ignore[assignment]
                offset: int = msg.offset()  # type: ignore[assignment]
                floor = nexts.get(partition)
                if floor is None or offset < floor or offset >= lasts[partition] or msg.error() is not None:
                    break  # _fill hands this one to _handle()
                headers = msg.headers()
                row_id = None
                if headers:
                    values = dict(headers)
                    row_id = values.get(row_header)
                    if replay_count_header in values:
                        break  # the loop guard's business
                    if to is not None:
                        target: str | None = to
                    else:
                        # Most records of a DLQ share one origin: resolve each distinct header once.
                        raw = values.get(original_topic_header)  # bytes: read from Kafka
                        target = by_raw.get(raw) if raw else None
                        if target is None:
                            target = dlq_record.original_topic_of(values, source, suffixes)
                            if raw and target is not None:
                                by_raw[raw] = target
                else:
                    target = to or dlq_names.original_topic_by_name(source, suffixes)
                if target is None or targets_ok.get(target, False) is not None:
                    break  # not checked yet, or refused
                # A new list: the message's own is cached by confluent-kafka and must stay as read.
                where = (replayed_from, prefixes[partition] + b"%d" % offset)
                out = [*headers, where, replay_count_one] if headers else [where, replay_count_one]
                try:
                    produce(target, msg.value(), msg.key(), headers=out)
                except BufferError:
                    producer.poll(0.05)
                    continue
                except self._kafka_exception as exc:
                    raise self.transactions.producer_failure(exc.args[0], producer) from None
                popleft()
                sent_to.append(target)
                if row_id is not None:
                    # The row's topic is the record's original one (the target, unless --to).
                    rows.append((row_id, target if to is None else self._original(values)))
                nexts[partition] = offset + 1
                handled += 1
                if handled % 512 == 0 and (stop() or time.monotonic() - opened >= request.batch_seconds):
                    break
        finally:
            # What was produced belongs to the batch, even when produce() failed midway.
            for partition, offset in nexts.items():
                if offset != moved.get(partition, self.positions[partition]):
                    moved[partition] = offset
            batch.targets.update(sent_to)
            self._produced += handled
            batch.replayed += handled
        return handled

    def _handle(self, msg: Message, batch: Batch, producer: Producer | None, consumer: Consumer) -> None:
        # The hot path: one call per record, so no imports or set-ups in here.
        error = msg.error()
        partition = msg.partition() or 0
        if error is not None:
            if error.code() == self._eof_code:
                # The end of what is readable: past trailing transaction markers.
                if partition in self.positions and partition not in self.done:
                    current = batch.moved.get(partition, self.positions[partition])
                    batch.moved[partition] = min(max(current, msg.offset() or 0), self.end[partition])
                    self._maybe_done(partition, batch, consumer)
                return
            if self.transactions.transient(error):
                return
            raise self.transactions.consumer_failure(error, consumer)
        offset = msg.offset() or 0
        if partition in self.done or partition not in self.positions:
            return
        current = batch.moved.get(partition, self.positions[partition])
        if offset < current:
            return  # fetched before a rewind
        end = self.end[partition]
        if offset >= end:
            # Arrived after the run started: the next run replays it.
            self._mark_done(partition, consumer)
            return
        self._replay_one(msg, batch, producer)
        batch.moved[partition] = offset + 1
        if offset + 1 >= end:
            self._mark_done(partition, consumer)

    def _replay_one(self, msg: Message, batch: Batch, producer: Producer | None) -> None:
        request = self.request
        if self._selecting and not request.selection.matches(msg):
            batch.filtered += 1
            return
        unreadable = (msg.partition() or 0, msg.offset() or 0) in self._unreadable_headers
        headers = None if unreadable else dlq_record.readable_headers(msg)
        if headers is None:
            raise _StopBefore(
                KafkaClientError(
                    f"record {msg.partition()}/{msg.offset()} of {request.source!r} has a header name that "
                    "is not UTF-8: this Kafka client cannot read its headers, so it cannot be replayed "
                    "byte for byte",
                    hint="select around it (--partition, --since/--until) or move it with a tool that "
                    "reads raw headers",
                )
            )
        values = dict(headers)
        count = dlq_record.replay_count_of(values) if dlq_record.REPLAY_COUNT in values else 0
        if count >= request.max_replays:
            batch.max_replays += 1
            batch.examples.append(f"{msg.partition()}/{msg.offset()}")
            return
        target = request.to or dlq_record.original_topic_of(values, request.source, request.suffixes)
        if target is None or target not in self._targets_ok or self._targets_ok[target] is not None:
            problem = self._target_problem(target, msg)
            if problem is not None:
                raise _StopBefore(problem)
        assert target is not None
        if producer is not None:
            if request.rate:
                self._pace()
            out_headers = dlq_record.replay_headers(
                headers,
                source_topic=request.source,
                partition=msg.partition(),
                offset=msg.offset(),
                replay_count=count,
            )
            while True:
                try:
                    producer.produce(target, value=msg.value(), key=msg.key(), headers=out_headers)
                    break
                except BufferError:
                    producer.poll(0.05)  # the local queue is full: let deliveries drain it
                except self._kafka_exception as exc:
                    raise self.transactions.producer_failure(exc.args[0], producer) from None
            self._produced += 1
            row_id = values.get(dlq_record.FAILED_EVENT_ID)
            if row_id is not None:
                batch.rows.append((row_id, target if request.to is None else self._original(values)))
        batch.targets[target] += 1
        batch.replayed += 1

    def _original(self, values: dict[str, Any]) -> str:
        """The record's original topic (its row's topic), for a replay --to another one."""
        return dlq_record.original_topic_of(values, self.request.source, self.request.suffixes) or ""

    def _target_problem(self, target: str | None, msg: Message) -> KafkaopsError | None:
        where = f"record {msg.partition()}/{msg.offset()} of {self.request.source!r}"
        if target is None:
            return UsageError(
                f"{where} names no original topic (no kafka_dlt-original-topic, x-original-topic "
                "or __connect.errors.topic header) and the DLQ name has no known suffix",
                hint="name the target with --to",
            )
        if target not in self._targets_ok:
            try:
                asker = self._asker if self._asker is not None else self.props
                check_target(asker, self.request.source, target, self.request.suffixes, 10.0)
                self._targets_ok[target] = None
            except UsageError as exc:
                self._targets_ok[target] = UsageError(f"{where}: {exc.message}", hint=exc.hint)
            if self._targets_ok[target] is None and self._writing:
                try:  # before the first write to it (init_transactions has run)
                    self._check_left_open(target)
                except KafkaClientError as exc:
                    self._targets_ok[target] = exc
        return self._targets_ok[target]

    def _pace(self) -> None:
        rate = self.request.rate
        if not rate:
            return
        due = self._started + self._produced / rate
        while (wait := due - time.monotonic()) > 0 and not self.stop():
            time.sleep(min(wait, 0.1))

    def _maybe_done(self, partition: int, batch: Batch, consumer: Consumer) -> None:
        if batch.moved.get(partition, self.positions[partition]) >= self.end[partition]:
            self._mark_done(partition, consumer)

    def _mark_done(self, partition: int, consumer: Consumer) -> None:
        from confluent_kafka import TopicPartition

        self.done.add(partition)
        consumer.pause([TopicPartition(self.request.source, partition)])

    def _finished(self, batch: Batch | None = None) -> bool:
        if self.summary.interrupted or self._all_done():
            return True
        limit = self.request.limit
        replayed = self.summary.replayed + (batch.replayed if batch else 0)
        return limit is not None and replayed >= limit

    def _all_done(self) -> bool:
        return len(self.done) >= len(self.end)

    # -- after a commit --------------------------------------------------------------------

    def _commit(self, producer: Producer, consumer: Consumer, batch: Batch) -> bool:
        """The batch committed with its offsets (TransactionPolicy.commit) and counted; False
        when it was aborted (the caller rewinds)."""
        if not self.transactions.commit(producer, consumer, batch):
            return False
        if not batch.moved:
            return True  # nothing was in it
        log.info(
            "replay of %r: committed %d record(s), offsets %s",
            self.request.source,
            batch.replayed,
            batch.moved,
        )
        self.progress(batch.advanced(self.positions))
        self.positions.update(batch.moved)
        self.summary.add(batch)
        self.summary.commits += 1
        self.on_commit(batch)
        gc.collect()  # cheap: only what was made since the run started (_collect_per_batch)
        return True
