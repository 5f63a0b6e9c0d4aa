"""The transactions of a replay: what one holds (`Batch`), when it closes, and how it ends: committed
with its offsets, retried, aborted and rewound, or the run stopped. `Replayer`'s read loop asks
`TransactionPolicy` at each of those points; exactly-once is decided here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ConfigError, KafkaClientError, KafkaopsError
from kafkaops.dlq.plan import ReplayConflictError, ReplayRequest
from kafkaops.kafka import faults
from kafkaops.kafka.client import client_state, last_error
from kafkaops.kafka.errors import authorization_error, translate_error

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message, Producer

log = logging.getLogger(__name__)

# Aborted attempts of one batch before the run gives up (each one rewinds and tries again).
MAX_ABORTS = 3


@dataclass
class Batch:
    """What one transaction holds until it commits."""

    targets: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    filtered: int = 0
    max_replays: int = 0
    examples: list[str] = field(default_factory=list)
    moved: dict[int, int] = field(default_factory=dict)  # partition -> next offset
    # (kafkaops-failed-event-id, original topic) of each replayed record that names its row.
    rows: list[tuple[str | bytes, str]] = field(default_factory=list)

    @property
    def handled(self) -> int:
        """Records this batch has taken: replayed, or skipped by the selection or the loop guard."""
        return self.replayed + self.filtered + self.max_replays

    def advanced(self, positions: Mapping[int, int]) -> int:
        return sum(self.moved[p] - positions[p] for p in self.moved)


@dataclass(frozen=True)
class Refused:
    """A delivery the broker (or librdkafka) failed: why, to which topic, the bytes sent (a
    delivery report carries no headers) and, once located, the source record's partition/offset."""

    error: KafkaError
    topic: str
    key: bytes | None
    value: bytes | None
    position: str | None = None

    def where(self, source: str) -> str:
        return f"record {self.position} of {source!r}" if self.position else "a record"


def _purged(error: KafkaError) -> bool:
    """A record librdkafka dropped (purge, an aborting transaction): the effect, never the cause."""
    return error.name() in ("_PURGE_QUEUE", "_PURGE_INFLIGHT")


class TransactionPolicy:
    """When a replay's transaction commits, and what a failure does to it and to the run.

    librdkafka's transactional model: retriable errors are retried within the commit deadline,
    abortable ones abort the transaction (the read loop then rewinds to the committed offsets
    and tries the batch again, at most MAX_ABORTS times), fatal ones (fenced) stop the run. An
    abort whose cause a retry cannot cure (a record at fault, a denied ACL) stops it too.
    """

    def __init__(
        self, request: ReplayRequest, props: Mapping[str, Any], targets: Mapping[str, KafkaopsError | None]
    ) -> None:
        self.request = request
        self.props = props
        # The run's targets as checked so far (the read loop fills it): an abort's denial that
        # names no topic is about the one target, when there is one.
        self._targets = targets
        self._delivery_error: Refused | None = None
        # Given by the read loop: (key, value) -> "partition/offset" of the open batch's source
        # record with these bytes, to name the record a delivery failed for.
        self.locate: Callable[[bytes | None, bytes | None], str | None] = lambda key, value: None
        self._aborts = 0

    # -- before the first batch ------------------------------------------------------------

    @property
    def transaction_timeout_ms(self) -> int:
        """The kafka section's ``transaction.timeout.ms`` when it sets one, else twice
        --commit-timeout: a commit that hangs that long is aborted by the broker."""
        configured = self.props.get("transaction.timeout.ms")
        if configured is not None:
            try:
                return int(configured)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"transaction.timeout.ms in the kafka section is not a number of milliseconds: {configured!r}"
                ) from None
        return int(self.request.commit_timeout * 2000)

    def init(self, producer: Producer) -> None:
        """init_transactions: fence any earlier producer of this transactional id and finish
        (abort) the transaction a killed run left open. Retriable errors (a coordinator moving
        or loading after a broker restart) are asked again until --commit-timeout."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + self.request.commit_timeout
        while True:
            try:
                producer.init_transactions(max(0.5, deadline - time.monotonic()))
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() == "INVALID_TRANSACTION_TIMEOUT":
                    raise self._timeout_refused(producer) from None
                if error.retriable() and time.monotonic() + 0.1 < deadline:
                    time.sleep(0.1)
                    continue
                access = {
                    "transactional id": (self.request.transactional_id, "Write"),
                    "cluster": (None, "IdempotentWrite"),
                }
                if faults.classify(error.name()).resource is not None:  # a denial: say what was denied
                    raise translate_error(
                        error, producer, action="start a transaction (init_transactions)", access=access
                    ) from None
                if error.fatal() or faults.is_fenced(error.name()):
                    raise self.producer_failure(error, producer) from None
                raise translate_error(
                    error, producer, action="start a transaction (init_transactions)", access=access
                ) from None

    def holds_id(self, producer: Producer, consumer: Consumer, partitions: Sequence[int]) -> bool:
        """Whether this run's producer still holds the transactional id: False once another
        producer initialised it since (fenced). Asked with a transaction that sends an offset
        (AddOffsetsToTxn reaches the transaction coordinator, which knows the current epoch)
        and is aborted at once: nothing of it takes effect. An answer that is neither (the
        group rebalancing, a timeout) counts as holding it: the next probe asks again."""
        from confluent_kafka import KafkaException, TopicPartition

        if not partitions:
            return True
        offsets = [TopicPartition(self.request.source, partitions[0], 0)]
        try:
            producer.begin_transaction()
            try:
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 5.0)
            finally:
                producer.abort_transaction(self.request.commit_timeout)
        except KafkaException as exc:
            error = exc.args[0]
            cause = last_error(producer)
            fenced = faults.is_fenced(error.name()) or (cause is not None and faults.is_fenced(cause.name()))
            if fenced or error.fatal() or error.name() == "_FATAL":
                log.info("replay of %r: fenced at the start (%s)", self.request.source, error.name())
                return False
            log.info("replay of %r: probing the transactional id: %s", self.request.source, error.name())
        return True

    def _timeout_refused(self, producer: Producer) -> KafkaopsError:
        ms = self.transaction_timeout_ms
        where = client_state(producer).bootstrap
        if self.props.get("transaction.timeout.ms") is not None:
            lower = "lower transaction.timeout.ms in the kafka section of the configuration"
        else:
            lower = "lower --commit-timeout (the transaction timeout is twice it)"
        return ConfigError(
            f"Kafka at {where} refused a transaction timeout of {ms} ms (INVALID_TRANSACTION_TIMEOUT): "
            "it is above the broker's transaction.max.timeout.ms; nothing was replayed",
            hint=f"{lower}, or raise transaction.max.timeout.ms on the brokers",
        )

    # -- when a batch closes ---------------------------------------------------------------

    def batch_closes(self, batch: Batch, opened: float, now: float) -> bool:
        """Commit now: the batch moved a partition and is full, or has been open batch_seconds."""
        request = self.request
        return bool(batch.moved) and (
            batch.handled >= request.batch_size or now - opened >= request.batch_seconds
        )

    # -- how it ends -----------------------------------------------------------------------

    def commit(self, producer: Producer, consumer: Consumer, batch: Batch) -> bool:
        """Commit the batch with its offsets (an empty one is aborted: nothing to commit). False
        when it was aborted: the caller rewinds to the committed offsets and tries again. Raises
        when the run must stop: fenced or fatal, a fault a retry cannot cure, or MAX_ABORTS
        aborts of the same batch."""
        from confluent_kafka import KafkaException, TopicPartition

        if not batch.moved:
            self._abort(producer, "nothing to commit")
            self._aborts = 0
            return True
        offsets = [TopicPartition(self.request.source, p, off) for p, off in sorted(batch.moved.items())]
        committing = False
        try:
            self._with_retries(
                lambda t: producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), t)
            )
            committing = True
            self._with_retries(producer.commit_transaction)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal() or faults.is_fenced(error.name()):
                raise self.producer_failure(error, producer) from None
            self._abort(producer, error.str(), committing=committing)
            self._after_abort(error)
            log.warning(
                "replay transaction aborted (%s: %s); rewinding to the committed offsets and retrying",
                error.name(),
                translate_error(error, producer).message,
            )
            self._aborts += 1
            if self._aborts >= MAX_ABORTS:
                raise KafkaClientError(
                    f"replay of {self.request.source!r} stopped: the same batch was aborted "
                    f"{self._aborts} times (what committed before stays committed; a rerun resumes)"
                ) from None
            return False
        self._delivery_error = None
        self._aborts = 0
        return True

    def on_delivery(self, error: KafkaError | None, msg: Message) -> None:
        """The producer's delivery callback (failures only): the first failure of the open
        transaction, which its abort then explains. Records purged because of it (librdkafka
        drops what is queued once the transaction must abort) do not hide it."""
        if error is None:
            return
        known = self._delivery_error
        if known is None or (_purged(known.error) and not _purged(error)):
            self._delivery_error = Refused(error, msg.topic() or "?", msg.key(), msg.value())

    def producer_failure(self, error: KafkaError, producer: Producer) -> KafkaopsError:
        """The error that ends the run when the producer cannot go on."""
        from confluent_kafka import KafkaException

        if error.name() == "_STATE" or error.txn_requires_abort():
            # produce() refused because a delivery failed (the transaction must abort): that
            # delivery's error is the cause, not "Erroneous state". Its report may still be queued.
            refused = self._delivery_failure(producer)
            if refused is not None:
                return refused
        if error.name() == "_FATAL":
            # produce() only says "fatal error"; a transactional call names it (fenced, ...).
            try:
                producer.abort_transaction(1)
            except KafkaException as exc:
                if exc.args[0].fatal():
                    error = exc.args[0]
        cause = last_error(producer)
        fenced = faults.is_fenced(error.name()) or (cause is not None and faults.is_fenced(cause.name()))
        if fenced or error.fatal() or error.name() == "_FATAL":
            shown = cause if cause is not None and cause.fatal() else error
            what = "was fenced by another replay" if fenced else "hit a fatal producer error"
            return ReplayConflictError(
                f"this replay of {self.request.source!r} {what} "
                f"({translate_error(shown, producer).message}); what it committed stays committed",
                hint="let the other replay finish, then rerun to see what is left",
            )
        return translate_error(
            error,
            producer,
            action="produce a replayed record",
            access={"transactional id": (self.request.transactional_id, "Write"), "topic": (None, "Write")},
        )

    # -- what the consumer reports ---------------------------------------------------------

    @staticmethod
    def transient(error: KafkaError | None) -> bool:
        """A consumer error the read loop waits out (librdkafka reconnects and refetches)."""
        return error is not None and (bool(error.retriable()) or faults.is_unreachable(error.name()))

    def consumer_failure(self, error: KafkaError, consumer: Consumer) -> KafkaopsError:
        """The error that ends the run for a consumer error that is not transient."""
        if error.name() == "FENCED_INSTANCE_ID":
            return ReplayConflictError(
                f"another replay of {self.request.source!r} took over group {self.request.group_id!r}; "
                "what this one committed stays committed"
            )
        return translate_error(
            error,
            consumer,
            action=f"read {self.request.source!r}",
            access={"topic": (self.request.source, "Read"), "group": (self.request.group_id, "Read")},
        )

    # -- inside ----------------------------------------------------------------------------

    def _with_retries(self, call: Callable[[float], Any]) -> None:
        """Retry what librdkafka says is retriable, within the commit deadline; a call that
        hangs past the deadline counts as failed (raised as an abortable timeout)."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + self.request.commit_timeout
        while True:
            left = deadline - time.monotonic()
            try:
                call(max(0.5, left))
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.retriable() and time.monotonic() < deadline and not error.txn_requires_abort():
                    time.sleep(0.1)
                    continue
                raise

    def _abort(self, producer: Producer, why: str, *, committing: bool = False) -> None:
        """Abort the open transaction. When the abort fails, what is said of the transaction
        depends on whether its commit was asked for (``committing``): the broker may have taken
        that commit before the failure, so whether the transaction committed is then unknown
        (with its offsets either way: a rerun resumes after whatever did)."""
        from confluent_kafka import KafkaException

        try:
            producer.abort_transaction(self.request.commit_timeout)
        except KafkaException as exc:
            error = exc.args[0]
            gone = self._deleted_targets()
            if gone:
                names = ", ".join(repr(t) for t in gone)
                raise KafkaClientError(
                    f"target topic {names} no longer exists (deleted during the run): the open "
                    f"transaction could neither commit nor abort ({error.name()}); nothing of it is "
                    "visible, and the broker aborts it within the transaction timeout "
                    f"({self.transaction_timeout_ms // 1000}s); what committed before stays committed",
                    hint="recreate the topic, or replay what is left with --to, then rerun",
                ) from None
            fate = (
                "whether its commit went through is unknown (its offsets commit with it: a rerun resumes "
                "after what committed)"
                if committing
                else "nothing of it is visible"
            )
            raise translate_error(
                error, producer, action=f"abort the replay transaction ({why}); {fate}"
            ) from None

    def _deleted_targets(self) -> list[str]:
        """The run's targets that no longer exist on the cluster (asked when an abort failed)."""
        from kafkaops.common.errors import NotFoundError
        from kafkaops.kafka.metadata import topic_metadata

        gone = []
        for topic in self._targets:
            try:
                topic_metadata(self.props, topic, 5.0)
            except NotFoundError:
                gone.append(topic)
            except KafkaopsError:
                continue  # unknown: not claimed
        return gone

    def _after_abort(self, error: KafkaError) -> None:
        """After an abort: stop at once when retrying the same bytes cannot help (a record at
        fault), nor trying again without a change (kafkaops' own principal was denied)."""
        delivery = self._delivery_error
        self._delivery_error = None
        # One target known: a denial that names no topic (the commit's) is about that one.
        topic = delivery.topic if delivery else next(iter(self._targets)) if len(self._targets) == 1 else None
        if delivery is not None and faults.is_configuration_fault(delivery.error.name()):
            raise self._denied(delivery.error, topic)
        if faults.is_configuration_fault(error.name()):
            raise self._denied(error, topic)
        if delivery is not None and faults.is_event_fault(delivery.error.name()):
            raise self._record_refused(delivery)
        if faults.is_event_fault(error.name()):
            # The transaction itself was refused for the target's sake (no such topic): the
            # same batch would be refused again.
            reason = translate_error(error, self.props, action="commit the replay transaction")
            raise KafkaClientError(
                f"{reason.message} ({error.name()}); the transaction was aborted and nothing of it is visible",
                hint="check the target topics, then rerun",
            )
        if faults.is_unreachable(error.name()) and error.name() != "_TIMED_OUT":
            raise translate_error(error, self.props, action="commit the replay transaction")

    def _delivery_failure(self, producer: Producer) -> KafkaopsError | None:
        """After produce() was refused for a failed delivery: abort the transaction and say
        which record the broker refused and why (None when no delivery failure is known)."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + 5.0
        while (
            self._delivery_error is None or _purged(self._delivery_error.error)
        ) and time.monotonic() < deadline:
            producer.poll(0.05)  # serves the delivery reports
        delivery, self._delivery_error = self._delivery_error, None
        if delivery is None:
            return None
        try:
            # What is still queued or in flight belongs to the aborted transaction: dropped, and
            # its reports served, so the abort does not wait for them.
            producer.purge()
            producer.flush(0)
            producer.abort_transaction(self.request.commit_timeout)
        except KafkaException as exc:
            log.warning("replay: could not abort the transaction: %s", translate_error(exc, producer).message)
        code = delivery.error.name()
        if faults.is_configuration_fault(code):
            return self._denied(delivery.error, delivery.topic)
        if faults.is_event_fault(code):
            return self._record_refused(delivery)
        reason = translate_error(
            delivery.error, producer, action=f"write {delivery.where(self.request.source)}"
        )
        return type(reason)(
            f"{reason.message}; the transaction was aborted and nothing of it is visible; replay stopped "
            "(a rerun resumes)",
            hint=reason.hint,
        )

    def _record_refused(self, delivery: Refused) -> KafkaopsError:
        """A record the target refuses for its own sake: the run stops at it."""
        error = delivery.error
        if delivery.position is None:
            delivery = replace(delivery, position=self.locate(delivery.key, delivery.value))
        return KafkaClientError(
            f"{delivery.where(self.request.source)} cannot be written to {delivery.topic!r}: {error.name()} "
            f"({error.str()}); the transaction was aborted and nothing of it is visible",
            hint=faults.refusal_hint(error.name()),
        )

    def _denied(self, error: KafkaError, topic: str | None) -> KafkaopsError:
        """The stop for a configuration fault, once the transaction was aborted."""
        code = error.name()
        then = ": the transaction was aborted and nothing of it is visible; replay stopped (a rerun resumes)"
        resource = faults.classify(code).resource
        if resource is None:  # credentials: the translation says it best
            return translate_error(error, self.props, action="commit the replay transaction")
        name = {
            "topic": topic,
            "group": self.request.group_id,
            "transactional id": self.request.transactional_id,
        }.get(resource)
        operation = "Write" if resource in ("topic", "transactional id") else None
        return authorization_error(code, self.props, name=name, operation=operation, then=then)
