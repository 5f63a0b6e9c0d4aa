"""Putting stored events on Kafka: the exact bytes and headers stored, every delivery accounted
for, and each failure classified as the event's own fault or the transport's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.config import RetrySettings

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Producer

Headers = list[tuple[str, str | bytes | None]]
Record = tuple[str, bytes | None, bytes | None, Headers]  # topic, value, key, headers

# Errors that belong to the event itself: retrying later will not help by itself, so each one
# counts as an attempt. Every other error (timeouts, transport, leadership changes, unknown
# codes) says nothing about the event and must never push it toward the DLQ.
EVENT_ERRORS = {
    "MSG_SIZE_TOO_LARGE": "org.apache.kafka.common.errors.RecordTooLargeException",
    "_MSG_SIZE_TOO_LARGE": "org.apache.kafka.common.errors.RecordTooLargeException",
    "RECORD_LIST_TOO_LARGE": "org.apache.kafka.common.errors.RecordBatchTooLargeException",
    "TOPIC_AUTHORIZATION_FAILED": "org.apache.kafka.common.errors.TopicAuthorizationException",
    "TOPIC_EXCEPTION": "org.apache.kafka.common.errors.InvalidTopicException",
    "UNKNOWN_TOPIC_OR_PART": "org.apache.kafka.common.errors.UnknownTopicOrPartitionException",
    "_UNKNOWN_TOPIC": "org.apache.kafka.common.errors.UnknownTopicOrPartitionException",
    "_UNKNOWN_PARTITION": "org.apache.kafka.common.errors.UnknownTopicOrPartitionException",
    "INVALID_RECORD": "org.apache.kafka.common.errors.InvalidRecordException",
    "CORRUPT_MESSAGE": "org.apache.kafka.common.errors.CorruptRecordException",
    "INVALID_TIMESTAMP": "org.apache.kafka.common.errors.InvalidTimestampException",
    "POLICY_VIOLATION": "org.apache.kafka.common.errors.PolicyViolationException",
    "_INVALID_ARG": "java.lang.IllegalArgumentException",
    "INVALID_HEADERS": "java.lang.IllegalArgumentException",
}


@dataclass(frozen=True)
class Failure:
    """Why one delivery failed, and whether it is the event's fault (an attempt) or not."""

    code: str
    message: str
    counts_as_attempt: bool

    @property
    def error_type(self) -> str:
        return EVENT_ERRORS.get(self.code, f"KafkaError.{self.code}")


def record_headers(stored: str | None) -> Headers:
    """The stored JSON object of header name -> value, as Kafka headers in their stored order."""
    if not stored:
        return []
    try:
        decoded = json.loads(stored)
    except ValueError:
        decoded = None
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
    from confluent_kafka import KafkaException

    no_report = Failure(
        "NO_DELIVERY_REPORT", f"no delivery report within {timeout:g}s", counts_as_attempt=False
    )
    results: list[Failure | None] = [no_report] * len(records)

    def reporter(index: int) -> Callable[[KafkaError | None, Any], None]:
        def on_delivery(error: KafkaError | None, _msg: Any) -> None:
            results[index] = None if error is None else failure_of(error)

        return on_delivery

    for index, (topic, value, key, headers) in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=headers or None, on_delivery=reporter(index)
                )
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain, then go on
            except KafkaException as exc:
                results[index] = failure_of(exc.args[0])
                break
        producer.poll(0)
    producer.flush(timeout)
    return results


def failure_of(error: KafkaError) -> Failure:
    code = error.name() or str(error.code())
    message = error.str() or code
    return Failure(code=code, message=message, counts_as_attempt=code in EVENT_ERRORS)


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
