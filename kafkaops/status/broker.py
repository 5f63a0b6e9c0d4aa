"""The broker's side of the status: one metadata request for every topic, then the DLQ offsets.

One `list_topics()` answers reachability, the brokers, the controller and which topics exist;
the message count of each DLQ topic comes from one ListOffsets request for the earliest offsets
and one for the latest, for all DLQ partitions at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kafkaops import kafka
from kafkaops.status.model import DlqTopic, KafkaStatus


def read_kafka(props: Mapping[str, str], *, dlq_suffix: str, timeout: float) -> KafkaStatus:
    """Raises KafkaUnavailableError / KafkaClientError when the cluster cannot be asked."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    info, metadata, client = kafka.cluster_metadata(props, timeout)
    elapsed = time.monotonic() - started
    status = KafkaStatus(
        bootstrap_servers=info.bootstrap_servers,
        cluster_id=info.cluster_id,
        controller_id=info.controller_id,
        brokers=[f"{b.id} {b.host}:{b.port}" for b in info.brokers],
        metadata_s=elapsed,
        topics={name for name, t in metadata.topics.items() if t.error is None or t.partitions},
    )
    dlq_partitions: dict[str, list[int]] = {}
    for name in sorted(status.topics):
        if name.endswith(dlq_suffix) and len(name) > len(dlq_suffix):
            dlq_partitions[name] = sorted(metadata.topics[name].partitions)
            status.dlq_topics[name] = DlqTopic(
                topic=name[: -len(dlq_suffix)],
                dlq_topic=name,
                exists=True,
                partitions=len(dlq_partitions[name]),
            )
    if dlq_partitions:
        try:
            counts = message_counts(client, dlq_partitions, max(0.1, deadline - time.monotonic()))
        except Exception as error:  # the counts are extra: reachability already answered
            status.offsets_error = kafka.translate_error(error, client, action="read DLQ offsets").message
        else:
            for name, count in counts.items():
                status.dlq_topics[name].messages = count
    return status


def message_counts(client: Any, partitions: Mapping[str, list[int]], timeout: float) -> dict[str, int]:
    """`{topic: high - low}` summed over its partitions, in two ListOffsets requests."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    wanted = [TopicPartition(t, p) for t, parts in partitions.items() for p in parts]
    deadline = time.monotonic() + timeout
    low = _offsets(client, wanted, OffsetSpec.earliest(), deadline)
    high = _offsets(client, wanted, OffsetSpec.latest(), deadline)
    counts: dict[str, int] = {}
    for (topic, partition), end in high.items():
        start = low.get((topic, partition), 0)
        counts[topic] = counts.get(topic, 0) + max(0, end - start)
    return counts


def _offsets(client: Any, wanted: list[Any], spec: Any, deadline: float) -> dict[tuple[str, int], int]:
    left = max(0.1, deadline - time.monotonic())
    futures = client.list_offsets({tp: spec for tp in wanted}, request_timeout=left)
    result: dict[tuple[str, int], int] = {}
    for tp, future in futures.items():
        info = future.result(timeout=max(0.1, deadline - time.monotonic()))
        result[(tp.topic, tp.partition)] = int(info.offset)
    return result
