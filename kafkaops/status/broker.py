"""The broker's side of the status: one metadata request for every topic, then the DLQ offsets.

One `list_topics()` answers reachability, the brokers, the controller and which topics exist;
which of them are DLQ topics and how many records each holds is the DLQ catalogue's
(kafkaops/dlq/catalogue.py: two ListOffsets requests for all DLQ partitions at once).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from kafkaops.common.errors import KafkaopsError
from kafkaops.dlq.catalogue import read_dlq_topics, uncounted
from kafkaops.kafka.client import principal_of
from kafkaops.kafka.dlq_names import DlqCatalog, existing_topics
from kafkaops.kafka.errors import translate_error
from kafkaops.kafka.metadata import DENIED, cluster_metadata, named_topics
from kafkaops.status.model import KafkaStatus


def read_kafka(props: Mapping[str, str], *, catalog: DlqCatalog, timeout: float) -> KafkaStatus:
    """Raises KafkaUnavailableError / KafkaClientError when the cluster cannot be asked."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    info, metadata, client = cluster_metadata(props, timeout)
    elapsed = time.monotonic() - started
    status = KafkaStatus(
        bootstrap_servers=info.bootstrap_servers,
        cluster_id=info.cluster_id,
        controller_id=info.controller_id,
        brokers=[f"{b.id} {b.host}:{b.port}" for b in info.brokers],
        metadata_s=elapsed,
        topics=existing_topics(metadata),
        principal=principal_of(props),
    )
    layout = catalog.layout(metadata)
    try:
        status.dlq_topics = read_dlq_topics(client, layout, catalog, max(0.1, deadline - time.monotonic()))
    except Exception as error:  # the counts are extra: reachability already answered
        status.dlq_topics = uncounted(layout, catalog)
        known = (
            error
            if isinstance(error, KafkaopsError)
            else translate_error(error, client, action="read DLQ offsets")
        )
        status.offsets_error = known.message
    return status


def denied_topics(props: Mapping[str, str], names: list[str], timeout: float) -> set[str]:
    """Of topics a listing did not show, those the principal may not describe: asked for by
    name, the cluster answers TOPIC_AUTHORIZATION_FAILED instead of leaving them out."""
    found = named_topics(props, names, timeout)
    return {name for name, state in found.items() if state == DENIED}
