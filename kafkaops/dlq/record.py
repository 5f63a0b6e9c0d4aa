"""The dead-letter record: one definition of its headers, written by `retry` and read by
`dlq` (which topics are DLQs, and their names, are kafkaops/kafka/dlq_names.py's).

kafkaops writes Spring Kafka's `kafka_dlt-*` headers (so Spring tooling reads our DLQs) plus
its own `kafkaops-*` ones; the reading side also understands the headers of Spring Cloud
Stream and Kafka Connect dead-letter records.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.kafka.dlq_names import original_topic_by_name

if TYPE_CHECKING:
    from confluent_kafka import Message

Headers = list[tuple[str, str | bytes | None]]
# Headers as confluent-kafka hands them over (a list of pairs; a dict when built by hand).
HeaderInput = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None

# Spring Kafka's DeadLetterPublishingRecoverer names.
ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
ORIGINAL_TIMESTAMP = "kafka_dlt-original-timestamp"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
# The listener's own exception, when the recoverer got it wrapped (ListenerExecutionFailedException).
EXCEPTION_CAUSE_FQCN = "kafka_dlt-exception-cause-fqcn"
# kafkaops' own.
FAILED_EVENT_ID = "kafkaops-failed-event-id"
RETRY_COUNT = "kafkaops-retry-count"
REPLAYED_FROM = "kafkaops-replayed-from"
REPLAY_COUNT = "kafkaops-replay-count"


def dlq_headers(
    own: Sequence[tuple[str, str | bytes | None]],
    *,
    original_topic: str,
    exception_message: str,
    exception_fqcn: str,
    failed_event_id: object,
    retry_count: int,
) -> Headers:
    """The headers of a DLQ record `retry` writes: the event's own, then where it came from
    and why it failed."""
    return [
        *own,
        (ORIGINAL_TOPIC, original_topic.encode()),
        (EXCEPTION_MESSAGE, exception_message.encode()),
        (EXCEPTION_FQCN, exception_fqcn.encode()),
        (FAILED_EVENT_ID, str(failed_event_id).encode()),
        (RETRY_COUNT, str(retry_count).encode()),
    ]


# Spring Cloud Stream's Kafka binder.
X_ORIGINAL_TOPIC = "x-original-topic"
X_ORIGINAL_PARTITION = "x-original-partition"
X_ORIGINAL_OFFSET = "x-original-offset"
X_ORIGINAL_TIMESTAMP = "x-original-timestamp"
X_EXCEPTION_MESSAGE = "x-exception-message"
X_EXCEPTION_FQCN = "x-exception-fqcn"
# Kafka Connect's dead letter queue (errors.deadletterqueue.context.headers.enable).
CONNECT_TOPIC = "__connect.errors.topic"
CONNECT_PARTITION = "__connect.errors.partition"
CONNECT_OFFSET = "__connect.errors.offset"
CONNECT_EXCEPTION_MESSAGE = "__connect.errors.exception.message"
CONNECT_EXCEPTION_CLASS = "__connect.errors.exception.class.name"

# Where each fact is read from, most specific origin first, with the width in bytes of the
# big-endian integer the origin writes (Spring: 4 for a partition, 8 for an offset or a
# timestamp), or None when it writes decimal text (Connect).
_TOPIC_HEADERS = (ORIGINAL_TOPIC, X_ORIGINAL_TOPIC, CONNECT_TOPIC)
_PARTITION_HEADERS = ((ORIGINAL_PARTITION, 4), (X_ORIGINAL_PARTITION, 4), (CONNECT_PARTITION, None))
_OFFSET_HEADERS = ((ORIGINAL_OFFSET, 8), (X_ORIGINAL_OFFSET, 8), (CONNECT_OFFSET, None))
_TIMESTAMP_HEADERS = ((ORIGINAL_TIMESTAMP, 8), (X_ORIGINAL_TIMESTAMP, 8))
_ERROR_HEADERS = (
    (EXCEPTION_MESSAGE, EXCEPTION_FQCN),
    (X_EXCEPTION_MESSAGE, X_EXCEPTION_FQCN),
    (CONNECT_EXCEPTION_MESSAGE, CONNECT_EXCEPTION_CLASS),
)


@dataclass(frozen=True)
class DlqOrigin:
    """What a DLQ record's headers say about where it came from and why it failed."""

    topic: str | None  # the original topic (headers, else the DLQ name without its suffix)
    partition: int | None
    offset: int | None
    timestamp: int | None  # milliseconds since the epoch
    error_message: str | None
    error_class: str | None  # the failure's own class: Spring's cause class when it names one
    error_wrapper: str | None  # the class Spring wrapped it in (ListenerExecutionFailedException)
    failed_event_id: str | None
    retry_count: int | None
    replay_count: int  # how often kafkaops has replayed it already (0: never)
    replayed_from: str | None


def decode_int(value: bytes | None, *, width: int | None) -> int | None:
    """A number from a header: Spring writes big-endian integers of `width` bytes (None: the
    origin writes decimal text, as Connect does). The origin's own form is tried first, then
    the other; None when neither fits. Every number these headers carry is 0 or more (-1 is
    Kafka's "none"), so a negative one is None too."""
    if value is None:
        return None
    binary = _binary_int(value, (width,) if width else (4, 8))
    decimal = _decimal_int(value)
    first, second = (binary, decimal) if width else (decimal, binary)
    number = first if first is not None else second
    return number if number is not None and number >= 0 else None


def _binary_int(value: bytes, widths: tuple[int, ...]) -> int | None:
    if len(value) in widths:
        return int.from_bytes(value, "big", signed=True)
    return None


def _decimal_int(value: bytes) -> int | None:
    text = value.decode("ascii", "replace").strip()
    if text.lstrip("-").isdigit() and len(text) <= 20:
        return int(text)
    return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


_HEADERS = operator.methodcaller("headers")
# The last message asked and its answer: a filter (`--where`) and then the output or the
# replay of one record each ask, and only the first ask of a message is safe.
_LAST: list[Any] = [None, None]


def readable_headers(msg: Message) -> list[tuple[str, bytes | None]] | None:
    """The record's headers as read ([] when it has none), or None when confluent-kafka cannot
    read them: it fails on a header name that is not UTF-8, which a non-Java producer can write.
    Only the first call on a message fails (later ones return a list holding a NULL name, which
    crashes the interpreter when read), so this must be the first to ask; asked again of the
    last message, it gives the first answer. The failure is a result returned with an exception
    set, which Python's specialised call of `msg.headers()` may not notice at once: the generic
    call (methodcaller) always does."""
    if _LAST[0] is msg:
        last: list[tuple[str, bytes | None]] | None = _LAST[1]
        return last
    try:
        headers: Any = _HEADERS(msg)
    except (SystemError, UnicodeDecodeError):
        found = None
    else:
        found = list(headers.items()) if isinstance(headers, dict) else headers or []
    _LAST[0], _LAST[1] = msg, found
    return found


def header_values(headers: HeaderInput) -> dict[str, bytes | None]:
    """Header name -> value, the last occurrence winning (Spring appends repeated headers)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return {k: (v.encode() if isinstance(v, str) else v) for k, v in pairs}


def replay_count_of(values: Mapping[str, Any]) -> int:
    """How often kafkaops has replayed this record already (0: never)."""
    return decode_int(values.get(REPLAY_COUNT), width=None) or 0


def original_topic_of(values: Mapping[str, Any], dlq_topic: str, suffixes: Sequence[str]) -> str | None:
    """The topic a DLQ record came from: its headers (Spring, Spring Cloud Stream, Connect, in
    that order), else the DLQ topic's name without its suffix."""
    for name in _TOPIC_HEADERS:
        text = _text(values.get(name))
        if text:
            return text
    return original_topic_by_name(dlq_topic, suffixes)


def parse_origin(headers: HeaderInput, dlq_topic: str, suffixes: Sequence[str]) -> DlqOrigin:
    """Read the origin of a DLQ record written by kafkaops, the service, Spring Kafka, the
    Spring Cloud Stream binder or Kafka Connect."""
    values = header_values(headers)

    def number(candidates: Sequence[tuple[str, int | None]]) -> int | None:
        for name, width in candidates:
            found = decode_int(values.get(name), width=width)
            if found is not None:
                return found
        return None

    message = error_class = wrapper = None
    for message_header, class_header in _ERROR_HEADERS:
        message = _text(values.get(message_header))
        error_class = _text(values.get(class_header))
        if message is not None or error_class is not None:
            break
    cause = _text(values.get(EXCEPTION_CAUSE_FQCN)) if class_header == EXCEPTION_FQCN else None
    if cause:
        # A listener's failure reaches the recoverer wrapped: the cause is what went wrong.
        error_class, wrapper = cause, error_class
    return DlqOrigin(
        topic=original_topic_of(values, dlq_topic, suffixes),
        partition=number(_PARTITION_HEADERS),
        offset=number(_OFFSET_HEADERS),
        timestamp=number(_TIMESTAMP_HEADERS),
        error_message=message,
        error_class=error_class,
        error_wrapper=wrapper,
        failed_event_id=_text(values.get(FAILED_EVENT_ID)),
        retry_count=decode_int(values.get(RETRY_COUNT), width=None),
        replay_count=replay_count_of(values),
        replayed_from=_text(values.get(REPLAYED_FROM)),
    )


def replayed_from_topic(values: Mapping[str, Any], source_topic: str) -> bool:
    """Whether kafkaops replayed this record (last) from ``source_topic`` (replay_headers)."""
    where = values.get(REPLAYED_FROM)
    return isinstance(where, bytes) and where.startswith(f"{source_topic}/".encode())


def replay_headers(
    headers: HeaderInput,
    *,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    replay_count: int,
) -> Headers:
    """The headers of a replayed record: the DLQ record's own, byte for byte and in order,
    then where it was replayed from and how often it has been replayed now (the last
    occurrence counts when it is read back)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else headers or ()
    return [
        *pairs,
        (REPLAYED_FROM, f"{source_topic}/{partition}/{offset}".encode()),
        (REPLAY_COUNT, str(replay_count + 1).encode()),
    ]
