"""`dlq ensure`: which DLQ topics are missing, and creating them with their source's layout
(partition count, replication up to the number of brokers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import UsageError
from kafkaops.dlq.catalogue import topics_needing_dlq
from kafkaops.kafka.dlq_names import DlqCatalog, DlqTopic
from kafkaops.kafka.metadata import check_reachable, create_topics, topic_metadata, topic_names
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name

if TYPE_CHECKING:
    from kafkaops.db.connections import Connections


@dataclass(frozen=True)
class EnsurePlan:
    source: str
    dlq: str
    partitions: int | None
    replication_factor: int | None
    action: str  # create | exists | no-source | is-dlq | bad-name


def topics_without_dlq(conns: Connections, props: Mapping[str, Any], catalog: DlqCatalog) -> list[DlqTopic]:
    """The DLQ topics missing for the topics whose rows need one (`dlq list` warns of them)."""
    with conns.connect() as conn:
        sources = topics_needing_dlq(conn, conns.table)
    return catalog.missing(sources, set(topic_names(props)))


def plan_ensure(
    props: Mapping[str, Any],
    sources: Sequence[str],
    catalog: DlqCatalog,
    *,
    strict: bool,
    timeout: float = 10.0,
) -> list[EnsurePlan]:
    """What `ensure` would do for each source topic. `strict`: a source the user named that
    does not exist, or is itself a DLQ, is a usage error (exit 2); one taken from the table is
    only reported."""
    info = check_reachable(props, timeout)
    existing = set(topic_names(props, timeout))
    plans = []
    for source in dict.fromkeys(sources):
        dlq = catalog.dlq_for(source)
        if not is_valid_topic_name(dlq):
            if strict:
                raise UsageError(
                    f"topic {source!r} can have no DLQ topic: {dlq!r} is not a valid Kafka topic name "
                    f"({len(dlq)} characters)",
                    hint=TOPIC_NAME_RULE,
                )
            plans.append(EnsurePlan(source, dlq, None, None, "bad-name"))
            continue
        if catalog.is_dlq(source):
            if strict:
                raise UsageError(
                    f"topic {source!r} is itself a dead-letter topic: it gets no DLQ of its own",
                    hint=f"name its source topic ({catalog.source_of(source)})",
                )
            plans.append(EnsurePlan(source, dlq, None, None, "is-dlq"))
            continue
        if dlq in existing:
            plans.append(EnsurePlan(source, dlq, None, None, "exists"))
            continue
        if source not in existing:
            if strict:
                raise UsageError(
                    f"topic {source!r} does not exist on Kafka at {info.bootstrap_servers}",
                    hint="name an existing topic: its DLQ copies its partition count",
                )
            plans.append(EnsurePlan(source, dlq, None, None, "no-source"))
            continue
        layout = topic_metadata(props, source, timeout)
        replicas = max((len(p.replicas) for p in layout.partitions), default=1)
        factor = max(1, min(replicas, info.broker_count or 1))
        plans.append(EnsurePlan(source, dlq, layout.partition_count, factor, "create"))
    return plans


def create_missing(props: Mapping[str, Any], plans: Sequence[EnsurePlan], timeout: float = 30.0) -> list[str]:
    todo = {p.dlq: (p.partitions or 1, p.replication_factor or 1) for p in plans if p.action == "create"}
    create_topics(props, todo, timeout)
    return list(todo)
