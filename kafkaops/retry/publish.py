"""Putting stored events on Kafka: the exact bytes and headers stored, every delivery accounted
for, and each failure classified (kafkaops.kafka.faults): the event's own, the environment's, or
kafkaops' own configuration's.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kafkaops.common import clock
from kafkaops.common.jsontext import parse_json
from kafkaops.config.settings import RetrySettings
from kafkaops.dlq.record import Headers
from kafkaops.kafka import faults
from kafkaops.kafka.faults import Fault, fault_of, java_exception

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Producer

Record = tuple[str, bytes | None, bytes | None, Headers]  # topic, value, key, headers


@dataclass(frozen=True)
class Failure:
    """Why one delivery failed (a `KafkaError.name()`, or kafkaops' own INVALID_RECORD and
    NO_DELIVERY_REPORT), and whose fault that is."""

    code: str
    message: str

    @property
    def fault(self) -> Fault:
        return fault_of(self.code)

    @property
    def counts_as_attempt(self) -> bool:
        """The event's own fault: an attempt counts."""
        return self.fault is Fault.EVENT

    @property
    def error_type(self) -> str:
        return java_exception(self.code)


def record_headers(stored: str | bytes | None) -> Headers:
    """The stored JSON object of header name -> value, as Kafka headers in their stored order
    (bytes: a bytea column, JSON in UTF-8)."""
    if not stored:
        return []
    decoded, _ = parse_json(stored)
    if not isinstance(decoded, dict):
        raise ValueError("the headers column is not a JSON object of name -> value")
    return [(str(k), _header_value(v)) for k, v in decoded.items()]


def _header_value(value: Any) -> bytes | None:
    # Strings go out as stored; anything else (numbers, true, objects) as its JSON text.
    if value is None:
        return None
    return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode("utf-8")


def publish(producer: Producer, records: Sequence[Record], *, timeout: float) -> list[Failure | None]:
    """Produce all records asynchronously, then wait up to `timeout` seconds for their delivery
    reports: per record None (acknowledged by the broker) or the Failure. A record without a
    report by then may still have been written; it is reported as a transport failure."""
    results: list[Failure | None] = [_no_report(timeout)] * len(records)

    def reporter(index: int) -> Callable[[KafkaError | None, Any], None]:
        def on_delivery(error: KafkaError | None, _msg: Any) -> None:
            results[index] = None if error is None else failure_of(error)

        return on_delivery

    for index, record in enumerate(records):
        refused = _produce(producer, record, reporter(index))
        if refused is not None:
            results[index] = refused
    producer.flush(timeout)
    return results


def _no_report(timeout: float) -> Failure:
    return Failure("NO_DELIVERY_REPORT", f"no delivery report within {max(timeout, 0):g}s")


def _produce(
    producer: Producer, record: Record, on_delivery: Callable[[KafkaError | None, Any], None]
) -> Failure | None:
    """Queue one record; the Failure when the client refuses it before anything is sent."""
    from confluent_kafka import KafkaException

    topic, value, key, headers = record
    try:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=headers or None, on_delivery=on_delivery
                )
                return None
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain, then go on
    except KafkaException as exc:
        return failure_of(exc.args[0])
    except (TypeError, ValueError) as exc:  # the client refused the record's own values
        return Failure("INVALID_RECORD", str(exc))
    finally:
        producer.poll(0)


# The message sets an isolation goes through, in records: the records of a refused set are sent
# again in sets of at most 64, those refused again in sets of 8, then each alone.
ISOLATION_SETS = (64, 8, 1)


@dataclass
class SetRefusal:
    """What became of one topic's records that the broker refused as part of a message set
    (an error it gives the whole set for one record's fault, or for the set's size)."""

    topic: str
    code: str  # the first such error, e.g. INVALID_RECORD
    rows: int = 0  # records refused so
    resolved: int = 0  # ...then acknowledged in a smaller set or alone
    charged: int = 0  # ...refused alone for their own fault: an attempt each
    not_charged: int = 0  # ...refused alone for the environment's (a timestamp), or unanswered
    environment: Counter[str] = field(default_factory=Counter)  # the codes of those

    @property
    def cause(self) -> str:
        """event: the guilty records were found; environment: no record was refused for its
        own fault (a refused timestamp: clock skew or the topic's settings); batch: every
        record went through in smaller sets."""
        if self.charged and self.not_charged:
            return "event+environment"
        if self.charged:
            return "event"
        if self.not_charged:
            return "environment"
        return "batch"

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "error": self.code,
            "rows": self.rows,
            "resolved": self.resolved,
            "charged": self.charged,
            "not_charged": self.not_charged,
            "cause": self.cause,
        }


@dataclass(frozen=True)
class Acked:
    """Where the broker put a record, and when it said so."""

    topic: str
    partition: int
    offset: int
    at: datetime


class Publisher:
    """Publishes a batch's records and finds the guilty ones: message sets sized to each topic's
    `max.message.bytes` where it is known, and the records of a set the broker refused as a
    whole (for one record's fault, or for its size) sent again in smaller sets down to single
    records, so that only a record refused alone carries the refusal.

    `make_producer(**overrides)` builds a producer (the pass's settings, plus a `batch.size`
    or `batch.num.messages`); `set_bytes(topics)` says the largest set each topic takes (None:
    librdkafka's own batching). What the isolations found accumulates in `refusals`, by topic.
    """

    def __init__(
        self,
        producer: Producer,
        make_producer: Callable[..., Producer],
        *,
        set_bytes: Callable[[Iterable[str]], Mapping[str, int | None]] | None = None,
        refusals: dict[str, SetRefusal] | None = None,
    ) -> None:
        self._make_producer = make_producer
        self._producers: dict[tuple[int | None, int | None], Producer] = {(None, None): producer}
        self._set_bytes = set_bytes
        self.refusals = refusals if refusals is not None else {}
        # Where each record of the last publish() was acknowledged, by index: its topic,
        # partition and offset, and when the acknowledgement came.
        self.acked: dict[int, Acked] = {}

    def publish(self, records: Sequence[Record], *, timeout: float) -> list[Failure | None]:
        """Per record None (acknowledged) or its Failure, as `publish` says. The first sending
        waits up to `timeout`; the isolation of refused sets up to `timeout` more. A record
        refused in a set and not yet sent alone when that time is up is not called guilty."""
        self.acked = {}
        limits = dict(self._set_bytes(record[0] for record in records)) if self._set_bytes else {}
        results, local = self._wave(records, range(len(records)), None, limits, timeout)
        refused = self._refused_in_sets(records, results, local, sets_of=None)
        first = list(refused)
        for index in first:
            topic = records[index][0]
            refusal = self.refusals.setdefault(topic, SetRefusal(topic, _code(results[index])))
            refusal.rows += 1
        ends = time.monotonic() + timeout
        for sets_of in ISOLATION_SETS:
            if not refused or time.monotonic() >= ends:
                break
            if sets_of > 1 and len(refused) <= sets_of:
                continue
            wave, local = self._wave(records, refused, sets_of, limits, ends - time.monotonic())
            results.update(wave)
            refused = self._refused_in_sets(records, wave, local, sets_of=sets_of)
        for index in refused:
            failure = results[index]
            assert failure is not None
            results[index] = Failure(
                "NOT_ISOLATED",
                f"refused as part of a message set ({failure.code}: {failure.message}) and not yet "
                "sent alone: which record is at fault is not known",
            )
        for index in first:
            self._account(self.refusals[records[index][0]], results[index])
        return [results[index] for index in range(len(records))]

    @staticmethod
    def _account(refusal: SetRefusal, result: Failure | None) -> None:
        if result is None:
            refusal.resolved += 1
        elif result.counts_as_attempt:
            refusal.charged += 1
        else:
            refusal.not_charged += 1
            refusal.environment[result.code] += 1

    @staticmethod
    def _refused_in_sets(
        records: Sequence[Record],
        results: Mapping[int, Failure | None],
        local: set[int],
        *,
        sets_of: int | None,
    ) -> list[int]:
        """The records refused with a whole-set error in a set of more than one record: a
        record alone in its wave's topic, or refused by the client itself, was alone."""
        if sets_of == 1:
            return []
        per_topic = Counter(records[index][0] for index in results)
        return [
            index
            for index, failure in results.items()
            if failure is not None
            and faults.is_whole_set_refusal(failure.code)
            and index not in local
            and per_topic[records[index][0]] > 1
        ]

    def _wave(
        self,
        records: Sequence[Record],
        indices: Iterable[int],
        sets_of: int | None,
        limits: Mapping[str, int | None],
        timeout: float,
    ) -> tuple[dict[int, Failure | None], set[int]]:
        """Produce the records at `indices` (each topic through the producer of its set size),
        then wait for their reports: the results, and the records the client refused itself."""
        results: dict[int, Failure | None] = {}
        local: set[int] = set()
        used: list[Producer] = []

        acked = self.acked

        def reporter(index: int) -> Callable[[KafkaError | None, Any], None]:
            def on_delivery(error: KafkaError | None, msg: Any) -> None:
                results[index] = None if error is None else failure_of(error)
                if error is None:
                    acked[index] = Acked(msg.topic(), msg.partition(), msg.offset(), clock.now())

            return on_delivery

        for index in indices:
            results[index] = _no_report(timeout)
            producer = self._producer(limits.get(records[index][0]), sets_of)
            if not any(producer is p for p in used):
                used.append(producer)
            refused = _produce(producer, records[index], reporter(index))
            if refused is not None:
                results[index] = refused
                local.add(index)
        ends = time.monotonic() + timeout
        for producer in used:
            producer.flush(max(ends - time.monotonic(), 0))
        return dict(results), local

    def _producer(self, set_bytes: int | None, sets_of: int | None) -> Producer:
        key = (set_bytes, sets_of)
        if key not in self._producers:
            overrides: dict[str, Any] = {}
            if set_bytes is not None:
                overrides["batch.size"] = set_bytes
            if sets_of is not None:
                overrides["batch.num.messages"] = sets_of
            self._producers[key] = self._make_producer(**overrides)
        return self._producers[key]


def _code(failure: Failure | None) -> str:
    return failure.code if failure is not None else ""


def failure_of(error: KafkaError) -> Failure:
    code = error.name() or str(error.code())
    message = error.str() or code
    return Failure(code=code, message=message)


def producer_overrides(settings: RetrySettings) -> dict[str, Any]:
    """Idempotent, acks=all, and a delivery timeout after which a record counts as not delivered."""
    timeout_ms = int(settings.delivery_timeout.total_seconds() * 1000)
    return {
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": min(timeout_ms, 10_000),
        "queue.buffering.max.messages": 1_000_000,
    }
