"""Whose fault a Kafka error is: the one decision every caller asks here.

An *event* error belongs to the record itself (too large, not authorised, no such topic): an
attempt counts, and enough of them send the event to its DLQ. Every other error (timeouts,
transport, leadership changes, clock skew, unknown codes) says nothing about the event: it
must never push one toward the DLQ. Errors are named by `KafkaError.name()`, never by text.
"""

from __future__ import annotations

# Event errors, with the Java exception class the service (and Spring's DLQ headers) records.
EVENT_ERRORS: dict[str, str] = {
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
    "POLICY_VIOLATION": "org.apache.kafka.common.errors.PolicyViolationException",
    "_INVALID_ARG": "java.lang.IllegalArgumentException",
    "INVALID_HEADERS": "java.lang.IllegalArgumentException",
}

# Errors that mean "could not talk to the cluster in time" rather than "the cluster said no".
UNREACHABLE_ERRORS = frozenset(
    {
        "_TRANSPORT",
        "_ALL_BROKERS_DOWN",
        "_TIMED_OUT",
        "_TIMED_OUT_QUEUE",
        "_MSG_TIMED_OUT",
        "_RESOLVE",
        "NETWORK_EXCEPTION",
        "REQUEST_TIMED_OUT",
        "BROKER_NOT_AVAILABLE",
    }
)

# Not the event's fault, though the broker refused the record: kafkaops sets no record
# timestamp, so INVALID_TIMESTAMP can only mean clock skew between this host and the broker.
# Listed for the reader; like every code outside EVENT_ERRORS, it counts no attempt.
ENVIRONMENTAL_REFUSALS = frozenset({"INVALID_TIMESTAMP"})


def is_event_fault(code: str | None) -> bool:
    """True when the error belongs to the record: retrying the same bytes cannot succeed by
    itself, so an attempt counts. False for everything else, unknown codes included."""
    return code in EVENT_ERRORS


def is_unreachable(code: str | None) -> bool:
    """True when the error means the cluster could not be reached (in time)."""
    return code in UNREACHABLE_ERRORS


def java_exception(code: str) -> str:
    """The Java exception class the service would record for this error."""
    return EVENT_ERRORS.get(code, f"KafkaError.{code}")
