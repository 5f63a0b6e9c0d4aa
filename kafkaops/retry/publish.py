"""Putting stored events on Kafka: the exact bytes and headers stored, every delivery accounted
for, and each failure classified (kafkaops.kafka.faults): the event's own, the environment's, or
kafkaops' own configuration's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.common.jsontext import parse_json
from kafkaops.config.settings import RetrySettings
from kafkaops.dlq.record import Headers
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
    from confluent_kafka import KafkaException

    no_report = Failure("NO_DELIVERY_REPORT", f"no delivery report within {timeout:g}s")
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
            except (TypeError, ValueError) as exc:  # the client refused the record's own values
                results[index] = Failure("INVALID_RECORD", str(exc))
                break
        producer.poll(0)
    producer.flush(timeout)
    return results


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
