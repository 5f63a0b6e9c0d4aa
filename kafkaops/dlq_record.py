"""The dead-letter record: one definition of its topic name and headers, written by `retry`
and read by `dlq`.

kafkaops writes Spring Kafka's `kafka_dlt-*` headers (so Spring tooling reads our DLQs) plus
its own `kafkaops-*` ones; the reading side also understands the headers of Spring Cloud
Stream and Kafka Connect dead-letter records.
"""

from __future__ import annotations

from collections.abc import Sequence

Headers = list[tuple[str, str | bytes | None]]

# Spring Kafka's DeadLetterPublishingRecoverer names.
ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
ORIGINAL_TIMESTAMP = "kafka_dlt-original-timestamp"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
# kafkaops' own.
FAILED_EVENT_ID = "kafkaops-failed-event-id"
RETRY_COUNT = "kafkaops-retry-count"
REPLAYED_FROM = "kafkaops-replayed-from"
REPLAY_COUNT = "kafkaops-replay-count"


def dlq_topic_for(topic: str, suffix: str) -> str:
    """The dead-letter topic `retry` writes to for `topic`."""
    return f"{topic}{suffix}"


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
