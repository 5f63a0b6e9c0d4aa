"""What a retry pass knows of its topics' configuration: each topic's `max.message.bytes`,
asked once per topic per pass (DescribeConfigs through the admin client). A topic whose
configuration cannot be read (describe not authorized, a broker that does not answer it) is
sent as librdkafka batches by itself, and whole-set refusals are isolated all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

# librdkafka's own batch.size: a topic that takes sets this large needs no smaller ones.
LIBRDKAFKA_BATCH_BYTES = 1_000_000


class TopicLimits:
    """Each topic's `max.message.bytes` (None: unknown), described at most once per pass."""

    def __init__(self, make_admin: Callable[[], AdminClient], *, timeout: float = 5.0) -> None:
        self._make_admin = make_admin
        self._admin: AdminClient | None = None
        self._timeout = timeout
        self._known: dict[str, int | None] = {}

    def set_bytes(self, topics: Iterable[str]) -> dict[str, int | None]:
        """The largest message set each topic takes, where that is below what librdkafka
        sends by itself; None where librdkafka's own batching fits (or the limit is unknown)."""
        wanted = set(topics)
        self._describe(sorted(wanted - self._known.keys()))
        return {
            topic: limit if limit is not None and limit < LIBRDKAFKA_BATCH_BYTES else None
            for topic in wanted
            for limit in (self._known[topic],)
        }

    def _describe(self, topics: list[str]) -> None:
        from concurrent.futures import TimeoutError as FutureTimeout

        from confluent_kafka import KafkaException
        from confluent_kafka.admin import ConfigResource

        if not topics:
            return
        for topic in topics:
            self._known[topic] = None  # asked once: a failure is not asked again this pass
        try:
            if self._admin is None:
                self._admin = self._make_admin()
            futures = self._admin.describe_configs(
                [ConfigResource("topic", topic) for topic in topics], request_timeout=self._timeout
            )
        except (KafkaException, ValueError, TypeError):
            return
        for resource, future in futures.items():
            try:
                entry = future.result(timeout=self._timeout).get("max.message.bytes")
                self._known[resource.name] = int(entry.value) if entry is not None else None
            except (KafkaException, FutureTimeout, ValueError, TypeError):
                continue  # not authorized, no such topic, no answer in time: librdkafka's batching
