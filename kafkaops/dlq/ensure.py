"""`dlq ensure`: which DLQ topics are missing, and creating them with their source's layout
(partition count, replication up to the number of brokers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import UsageError
from kafkaops.dlq.catalogue import topics_needing_dlq
from kafkaops.kafka.dlq_names import DlqCatalog, DlqTopic
from kafkaops.kafka.metadata import (
    DENIED,
    EXISTS,
    check_reachable,
    create_topics,
    named_topics,
    not_described,
    topic_metadata,
    topic_names,
)
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name

if TYPE_CHECKING:
    from kafkaops.db.connections import Connections


@dataclass(frozen=True)
class EnsurePlan:
    source: str
    dlq: str
    partitions: int | None
    replication_factor: int | None
    action: str  # create | exists | no-source | no-describe | is-dlq | bad-name


def topics_without_dlq(conns: Connections, props: Mapping[str, Any], catalog: DlqCatalog) -> list[DlqTopic]:
    """The DLQ topics missing for the topics whose rows need one (`dlq list` warns of them).
    Those the listing lacks are asked for by name: one the principal may not describe comes
    back `denied` (whether it exists is unknown), never missing."""
    with conns.connect() as conn:
        sources = topics_needing_dlq(conn, conns.table)
    missing = catalog.missing(sources, set(topic_names(props)))
    asked = named_topics(props, [m.name for m in missing if is_valid_topic_name(m.name)])
    return [
        replace(m, denied=True) if asked.get(m.name) == DENIED else m
        for m in missing
        if asked.get(m.name) != EXISTS
    ]


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
    # What the listing lacks, asked for by name: a topic the principal may not describe is
    # left out of a listing, but answered "denied" by name.
    unseen = [
        name
        for source in sources
        for name in (source, catalog.dlq_for(source))
        if name not in existing and is_valid_topic_name(name)
    ]
    asked = named_topics(props, unseen, timeout) if unseen else {}
    existing |= {name for name, state in asked.items() if state == EXISTS}
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
        if asked.get(source) == DENIED:
            if strict:
                raise not_described(props, source)
            plans.append(EnsurePlan(source, dlq, None, None, "no-describe"))
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
    """Create the planned DLQ topics; the names created. One the cluster says already exists
    (TOPIC_ALREADY_EXISTS: made meanwhile, or one the principal may create but not describe)
    is not created and no error: `ensure` stays idempotent."""
    todo = {p.dlq: (p.partitions or 1, p.replication_factor or 1) for p in plans if p.action == "create"}
    return create_topics(props, todo, timeout, exist_ok=True)
