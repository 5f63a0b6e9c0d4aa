"""What the cluster says: reachability and brokers, topic layout, watermarks, committed offsets,
group members and topic names; and creating topics. Every call is bounded by a timeout and
raises translated kafkaops errors (`kafka.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import (
    KafkaAuthorizationError,
    KafkaopsError,
    KafkaUnavailableError,
    NotFoundError,
    UsageError,
)
from kafkaops.kafka import faults
from kafkaops.kafka.client import admin, client_state, consumer, kafka_error_of
from kafkaops.kafka.dlq_names import existing_topics
from kafkaops.kafka.errors import denied, kafka_errors, translate_error
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ClusterMetadata, TopicMetadata

    Client = Producer | Consumer | AdminClient

# check_reachable first asks for metadata with this short a wait: long enough for a refused
# connection or an unresolvable host to show, so those fail at once. Then it asks again with
# twice the wait each time, up to the deadline: what the error callback reported meanwhile (a
# TLS handshake or a SASL login that failed, after a few round trips) ends it within twice the
# time it took to learn, while a slow broker gets few abandoned requests queued ahead of the
# one that counts.
_FIRST_WINDOW = 0.25
# librdkafka rejects socket.connection.setup.timeout.ms below one second.
_MIN_SETUP_MS = 1000
SETTLE_PAUSE = 0.1
_SLICE = 0.5  # committed() is asked for this long at a time (see committed_offsets)


@dataclass(frozen=True)
class BrokerInfo:
    id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterInfo:
    """What a reachability check learnt about the cluster."""

    bootstrap_servers: str
    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]
    topic_count: int

    @property
    def broker_count(self) -> int:
        return len(self.brokers)


@dataclass(frozen=True)
class PartitionInfo:
    id: int
    leader: int | None  # None: no leader right now
    replicas: tuple[int, ...]
    isrs: tuple[int, ...]


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: tuple[PartitionInfo, ...]

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


def check_reachable(props: Mapping[str, Any], timeout: float = 5.0) -> ClusterInfo:
    """Ask the cluster for its metadata, within ``timeout`` seconds however it fails.

    Raises KafkaUnavailableError("cannot reach Kafka at <bootstrap>: <reason>") once every
    bootstrap broker has refused or the deadline has passed, and KafkaClientError when the
    cluster answers but rejects the client (e.g. bad credentials).
    """
    info, _metadata, _client = cluster_metadata(props, timeout)
    return info


def cluster_metadata(
    props: Mapping[str, Any], timeout: float = 5.0
) -> tuple[ClusterInfo, ClusterMetadata, AdminClient]:
    """As check_reachable, plus the metadata of every topic (one request) and the admin client
    that asked, for follow-up requests to the same cluster."""
    deadline = time.monotonic() + timeout
    client = admin(props, **{"socket.connection.setup.timeout.ms": _setup_timeout_ms(props, timeout)})
    metadata = _metadata_before(client, deadline, timeout)
    brokers = tuple(
        BrokerInfo(id=b.id, host=b.host or "", port=b.port)
        for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
    )
    controller = metadata.controller_id
    info = ClusterInfo(
        bootstrap_servers=client_state(client).bootstrap,
        cluster_id=metadata.cluster_id or None,
        controller_id=controller if controller is not None and controller >= 0 else None,
        brokers=brokers,
        topic_count=len(metadata.topics),
    )
    return info, metadata, client


def _setup_timeout_ms(props: Mapping[str, Any], timeout: float) -> int:
    """No connection attempt outlives the deadline (librdkafka's default allows 30 s, then
    retries forever), unless the configuration already asks for less."""
    setup_ms = max(_MIN_SETUP_MS, int(timeout * 1000))
    try:
        return min(setup_ms, int(props.get("socket.connection.setup.timeout.ms", setup_ms)))
    except (TypeError, ValueError):
        return setup_ms


def _metadata_before(client: AdminClient, deadline: float, timeout: float) -> ClusterMetadata:
    """Cluster metadata: a quick first try to fail fast, then tries twice as long each, until
    the deadline; a definite failure (credentials, TLS) ends the wait with its cause."""
    from confluent_kafka import KafkaException

    state = client_state(client)
    window = _FIRST_WINDOW
    while True:
        asked = time.monotonic()
        try:
            return client.list_topics(timeout=max(0.01, min(window, deadline - asked)))
        except KafkaException as exc:
            client.poll(0)  # serve error_cb and log lines: they carry the concrete reason
            if state.definite is not None:
                raise translate_error(state.definite, client) from None
            if deadline - time.monotonic() <= 0:
                raise _deadline_error(exc, client, timeout) from None
            # A request can also fail before its wait is over (the connection dropped);
            # ask again, without spinning.
            time.sleep(max(0.0, min(0.05 - (time.monotonic() - asked), deadline - time.monotonic())))
            window *= 2


def _deadline_error(exc: Exception, client: AdminClient, timeout: float) -> KafkaopsError:
    """The error for a deadline that passed; silence says more than "transport failure"."""
    state = client_state(client)
    error = translate_error(exc, client)
    if isinstance(error, KafkaUnavailableError) and state.detail is None:
        return KafkaUnavailableError(
            f"cannot reach Kafka at {state.bootstrap}: no answer within {timeout:g}s", hint=error.hint
        )
    return error


def topic_metadata(
    props_or_admin: Mapping[str, Any] | Client,
    topic: str,
    timeout: float = 5.0,
    *,
    operation: str = "Describe",
) -> TopicInfo:
    """Partitions, leaders and replicas of ``topic``; NotFoundError when it does not exist.

    Give properties, an admin() or a consumer(): a Producer's metadata request may make a
    broker with auto.create.topics.enable create the topic it asks about.
    """
    with _client_for(props_or_admin, admin) as client:
        found = _describe_topic(client, topic, timeout, operation)
    partitions = tuple(
        PartitionInfo(
            id=p.id,
            leader=p.leader if p.leader >= 0 else None,
            replicas=tuple(p.replicas),
            isrs=tuple(p.isrs),
        )
        for p in sorted(found.partitions.values(), key=lambda p: p.id)
    )
    return TopicInfo(name=topic, partitions=partitions)


def watermarks(
    consumer_or_props: Mapping[str, Any] | Consumer,
    topic: str,
    timeout: float = 5.0,
    *,
    operation: str = "Describe",
) -> dict[int, tuple[int, int]]:
    """``{partition: (low, high)}`` offsets of ``topic``, read from the leaders now.
    ``operation``: what the command needs on the topic (Read implies Describe), named when the
    cluster denies it."""
    from confluent_kafka import TopicPartition

    deadline = time.monotonic() + timeout
    with _client_for(consumer_or_props, consumer) as client:
        found = _describe_topic(client, topic, _left(deadline), operation)
        result: dict[int, tuple[int, int]] = {}
        with kafka_errors(client, f"read the offsets of {topic!r}", {"topic": (topic, operation)}):
            for partition in sorted(found.partitions):
                result[partition] = watermark_offsets(client, TopicPartition(topic, partition), deadline)
    return result


def watermark_offsets(client: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """``(low, high)`` of one partition, read from its leader now; asked again while its
    leadership settles (a partition created a moment ago answers NOT_LEADER_FOR_PARTITION,
    which librdkafka does not call retriable), until the deadline."""
    from confluent_kafka import KafkaException

    while True:
        try:
            low, high = client.get_watermark_offsets(partition, timeout=_left(deadline), cached=False)
            return low, high
        except KafkaException as exc:
            error = exc.args[0]
            settling = error.retriable() or faults.is_settling(error.name())
            if not settling or time.monotonic() + SETTLE_PAUSE >= deadline:
                raise
            time.sleep(SETTLE_PAUSE)


def partition_offsets(
    admin_client: AdminClient,
    layout: Mapping[str, Sequence[int]],
    timeout: float,
    *,
    low: bool = True,
    high: bool = True,
) -> dict[str, dict[int, tuple[int, int]]]:
    """``{topic: {partition: (low, high)}}`` through an admin client: one ListOffsets request
    for the earliest offsets of every partition and one for the last stable ones (what a
    read_committed reader reaches), however many topics and partitions. Never through a
    consumer: a fetching consumer's requests queue behind its fetch long-poll, one partition
    at a time. ``low=False`` or ``high=False`` skips that request (its side reads 0). A
    partition whose leader is still being elected is asked again until ``timeout``; other
    failures raise confluent-kafka's exception (wrap the call in ``kafka_errors``)."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    deadline = time.monotonic() + timeout
    wanted = [TopicPartition(t, p) for t, parts in layout.items() for p in parts]
    committed = IsolationLevel.READ_COMMITTED
    lows = _list_offsets(admin_client, wanted, OffsetSpec.earliest(), committed, deadline) if low else {}
    highs = _list_offsets(admin_client, wanted, OffsetSpec.latest(), committed, deadline) if high else {}
    result: dict[str, dict[int, tuple[int, int]]] = {t: {} for t in layout}
    for tp in wanted:
        key = (tp.topic, tp.partition)
        result[tp.topic][tp.partition] = (lows.get(key, 0), highs.get(key, 0))
    return result


def open_transaction_starts(admin_client: AdminClient, topic: str, timeout: float) -> dict[int, int]:
    """``{partition: last stable offset}`` of the partitions of ``topic`` where a transaction is
    open (the stable offset is behind the end): two batched ListOffsets requests, read_committed
    and read_uncommitted. Failures raise confluent-kafka's exception."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    deadline = time.monotonic() + timeout
    wanted = [
        TopicPartition(topic, p) for p in sorted(_describe_topic(admin_client, topic, timeout).partitions)
    ]
    latest = OffsetSpec.latest()
    stable = _list_offsets(admin_client, wanted, latest, IsolationLevel.READ_COMMITTED, deadline)
    ends = _list_offsets(admin_client, wanted, latest, IsolationLevel.READ_UNCOMMITTED, deadline)
    return {p: offset for (_, p), offset in stable.items() if offset < ends.get((topic, p), 0)}


def _list_offsets(
    client: AdminClient, wanted: list[TopicPartition], spec: Any, isolation: Any, deadline: float
) -> dict[tuple[str, int], int]:
    from confluent_kafka import KafkaException

    found: dict[tuple[str, int], int] = {}
    while wanted:
        futures = client.list_offsets(
            {tp: spec for tp in wanted}, isolation_level=isolation, request_timeout=_left(deadline)
        )
        again = []
        for tp, future in futures.items():
            try:
                info = future.result(timeout=_left(deadline) + 1)
            except KafkaException as exc:
                error = exc.args[0]
                if faults.classify(error.name()).resource is not None:  # a denial: name the topic
                    raise translate_error(exc, client, access={"topic": (tp.topic, "Describe")}) from exc
                if not asks_again(error) or time.monotonic() + SETTLE_PAUSE >= deadline:
                    raise
                again.append(tp)
                continue
            found[(tp.topic, tp.partition)] = int(info.offset)
        wanted = again
        if wanted:
            time.sleep(SETTLE_PAUSE)
    return found


# What a group or transaction coordinator answers while it moves or loads (a broker restarted
# a moment ago), and what OffsetFetch answers for a group whose transactional offsets are not
# settled yet: asked again until the deadline.
_COORDINATOR_MOVING = frozenset(
    {
        "NOT_COORDINATOR",
        "COORDINATOR_NOT_AVAILABLE",
        "COORDINATOR_LOAD_IN_PROGRESS",
        "UNSTABLE_OFFSET_COMMIT",
        "_WAIT_COORD",
    }
)


def is_coordinator_moving(code: str | None) -> bool:
    """True for the answers of a coordinator that moves or loads: asking again succeeds."""
    return code in _COORDINATOR_MOVING


def asks_again(error: KafkaError) -> bool:
    """True for an error a moment's wait may clear (retriable, settling, a coordinator moving)."""
    return bool(error.retriable()) or faults.is_settling(error.name()) or is_coordinator_moving(error.name())


def committed_offsets(
    consumer_or_props: Mapping[str, Any] | Consumer,
    group: str,
    topic: str,
    timeout: float = 5.0,
    *,
    partitions: Iterable[int] | None = None,
    stable: bool = False,
    operation: str = "Describe",
) -> dict[int, int | None]:
    """``{partition: offset}`` the group committed on ``topic`` (every partition, or
    ``partitions``), in one OffsetFetch request; None where it has none.

    Reads only: give properties (a consumer of the group is made, which never joins it, so
    members are not rebalanced) or a consumer that does not fetch (a fetching consumer's
    requests may queue behind its fetch). ``stable=True`` (properties) waits for offsets still
    inside an open transaction to be committed or aborted (the consumer reads read_committed);
    a given consumer's own isolation.level decides. Asked in short slices: a group the
    principal may not describe only times out committed(), while the consumer's queue already
    holds the coordinator's GROUP_AUTHORIZATION_FAILED, which ends the wait with the denial
    (``operation`` is what the command needed). A coordinator moving or loading, and any other
    retriable error, is asked again until ``timeout``. (Not the admin client's
    ListConsumerGroupOffsets: librdkafka 2.16 crashes the process when the coordinator answers
    it NOT_COORDINATOR, as a broker restarted a moment ago does.)"""
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + timeout
    isolation = "read_committed" if stable else "read_uncommitted"
    overrides = {"isolation.level": isolation}
    access = {"group": (group, operation), "topic": (topic, operation)}

    def build(props: Mapping[str, Any]) -> Consumer:
        return consumer(props, group_id=group, **overrides)

    action = f"read the offsets group {group!r} committed"
    with _client_for(consumer_or_props, build) as client:
        if partitions is None:
            partitions = sorted(_describe_topic(client, topic, _left(deadline)).partitions)
        wanted = [TopicPartition(topic, p) for p in partitions]
        while True:
            try:
                committed: list[TopicPartition] = client.committed(
                    wanted, timeout=min(_SLICE, _left(deadline))
                )
                break
            except KafkaException as exc:
                error = kafka_error_of(exc)
                timed_out = error is not None and error.name() == "_TIMED_OUT"
                waiting = error is not None and (timed_out or asks_again(error))
                if waiting:
                    _raise_group_error(client, access)
                if not waiting or time.monotonic() + SETTLE_PAUSE >= deadline:
                    raise translate_error(exc, client, action=action, access=access) from exc
                if not timed_out:
                    time.sleep(SETTLE_PAUSE)
        for tp in committed:
            if tp.error is not None:
                raise translate_error(tp.error, client, action=action, access=access)
    return {tp.partition: tp.offset if tp.offset >= 0 else None for tp in committed}


def _raise_group_error(client: Consumer, access: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Raise a denial the consumer's queue holds (its group's coordinator refused it), or a
    definite failure its error callback reported. The consumer has nothing assigned: poll()
    returns errors only."""
    msg = client.poll(0)
    error = msg.error() if msg is not None else None
    if error is not None and faults.classify(error.name()).resource is not None:
        raise translate_error(error, client, access=access)
    definite = client_state(client).definite
    if definite is not None and faults.is_configuration_fault(definite.name()):
        raise translate_error(definite, client)


def _left(deadline: float) -> float:
    return max(0.01, deadline - time.monotonic())


@contextmanager
def _client_for(source: Any, build: Callable[[Mapping[str, Any]], Any]) -> Iterator[Any]:
    """Use the client given, or build one from properties and close it afterwards."""
    if not isinstance(source, Mapping):
        yield source
        return
    client = build(source)
    try:
        yield client
    finally:
        _close(client)


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is None:
        return  # AdminClient: freed when the last reference goes
    with suppress(RuntimeError):  # already closed
        close()


def check_topic_name(topic: str) -> None:
    """UsageError when Kafka could never have a topic of this name (asked before the cluster
    is, whose answer would only be "Invalid topic")."""
    if not is_valid_topic_name(topic):
        raise UsageError(f"{topic!r} is not a valid Kafka topic name", hint=TOPIC_NAME_RULE)


def _describe_topic(client: Client, topic: str, timeout: float, operation: str = "Describe") -> TopicMetadata:
    check_topic_name(topic)
    access = {"topic": (topic, operation)}
    with kafka_errors(client, f"describe topic {topic!r}", access):
        metadata = client.list_topics(topic=topic, timeout=timeout)
    found = metadata.topics.get(topic)
    error = found.error if found is not None else None
    if found is None or (error is not None and error.name() == "UNKNOWN_TOPIC_OR_PART"):
        raise NotFoundError(f"topic {topic!r} does not exist on Kafka at {client_state(client).bootstrap}")
    if error is not None and error.name() == "TOPIC_AUTHORIZATION_FAILED":
        raise not_described(client, topic, operation)
    if error is not None and not found.partitions:
        raise translate_error(error, client, action=f"describe topic {topic!r}", access=access)
    return found


# ---------------------------------------------------------------------------------------
# Groups, topic names, topic creation


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None


def group_members(
    props_or_admin: Mapping[str, Any] | AdminClient, group: str, timeout: float = 10.0
) -> list[GroupMember] | None:
    """The live members of consumer group ``group`` (none when the group is empty or unknown);
    None when the cluster cannot describe groups (librdkafka's mock cluster)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    with _client_for(props_or_admin, admin) as client:
        while True:
            future = client.describe_consumer_groups([group], request_timeout=_left(deadline))[group]
            try:
                description = future.result(timeout=_left(deadline) + 1)
                break
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and error.name() == "_UNSUPPORTED_FEATURE":
                    return None
                # A coordinator moving or loading (a broker restarted a moment ago): ask again.
                if error is None or not asks_again(error) or time.monotonic() + SETTLE_PAUSE >= deadline:
                    raise translate_error(
                        exc,
                        client,
                        action=f"describe consumer group {group!r}",
                        access={"group": (group, "Describe")},
                    ) from exc
                time.sleep(SETTLE_PAUSE)
    return [
        GroupMember(
            member_id=m.member_id,
            client_id=m.client_id,
            host=m.host,
            instance_id=m.group_instance_id,
        )
        for m in description.members or ()
    ]


EXISTS, MISSING, DENIED = "exists", "missing", "denied"


def named_topics(
    props_or_admin: Mapping[str, Any] | AdminClient, names: Sequence[str], timeout: float = 10.0
) -> dict[str, str]:
    """``{name: EXISTS | MISSING | DENIED}`` for each topic named, in one request.

    A listing of every topic silently leaves out those the principal may not describe; asked
    by name, the cluster says so (TOPIC_AUTHORIZATION_FAILED: DENIED, whether or not the
    topic exists)."""
    from confluent_kafka import KafkaException, TopicCollection

    result: dict[str, str] = {name: MISSING for name in names if not is_valid_topic_name(name)}
    wanted = [name for name in dict.fromkeys(names) if name not in result]
    if not wanted:
        return result
    with _client_for(props_or_admin, admin) as client:
        with kafka_errors(client, "describe topics"):
            futures = client.describe_topics(TopicCollection(wanted), request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout=timeout + 1)
                result[name] = EXISTS
            except KafkaException as exc:
                error = kafka_error_of(exc)
                code = error.name() if error is not None else None
                if code in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC") or faults.is_invalid_topic(code):
                    result[name] = MISSING
                elif code == "TOPIC_AUTHORIZATION_FAILED":
                    result[name] = DENIED
                elif faults.is_settling(code):
                    result[name] = EXISTS  # just created: its leader is being elected
                else:
                    access = {"topic": (name, "Describe")}
                    raise translate_error(
                        exc, client, action=f"describe topic {name!r}", access=access
                    ) from exc
    return result


def not_described(source: Any, topic: str, operation: str = "Describe") -> KafkaAuthorizationError:
    """The error for a topic the principal may not describe (whether it exists is unknown);
    ``operation`` is what the command needs on it (Read and Write imply Describe)."""
    denial = denied(
        "TOPIC_AUTHORIZATION_FAILED", client_state(source).principal, name=topic, operation=operation
    )
    return KafkaAuthorizationError(
        f"not authorized to describe topic {topic!r}: {denial.message}", hint=denial.hint
    )


def topic_names(props_or_admin: Mapping[str, Any] | Client, timeout: float = 10.0) -> list[str]:
    """Every topic on the cluster except the internal ones and those the principal may not
    describe (`dlq_names.existing_topics`), sorted."""
    with _client_for(props_or_admin, admin) as client, kafka_errors(client, "list topics"):
        metadata = client.list_topics(timeout=timeout)
    return sorted(existing_topics(metadata))


# Why a cluster without CreateTopics (librdkafka's mock: the sandbox's) cannot get a topic here.
NO_CREATE_TOPICS = (
    "this cluster takes no CreateTopics requests (librdkafka's mock cluster, which kafkaops sandbox "
    "and demo run, has none): create the topic with the cluster's own tools; a sandbox creates it "
    "when it starts: kafkaops sandbox --topic NAME:PARTITIONS"
)


def create_topics(
    props_or_admin: Mapping[str, Any] | AdminClient,
    topics: Mapping[str, tuple[int, int]],
    timeout: float = 30.0,
    *,
    exist_ok: bool = False,
) -> list[str]:
    """Create ``{name: (partitions, replication_factor)}`` and wait until each exists; the
    names created. ``exist_ok``: a topic that already exists (TOPIC_ALREADY_EXISTS) is no
    error, and is not waited for (a principal that may not describe it would never see it)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    if not topics:
        return []
    created: list[str] = []
    with _client_for(props_or_admin, admin) as client:
        new = [NewTopic(name, num_partitions=p, replication_factor=r) for name, (p, r) in topics.items()]
        with kafka_errors(client, "create topics"):
            futures = client.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout=timeout + 1)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and error.name() == "TOPIC_ALREADY_EXISTS" and exist_ok:
                    continue  # made meanwhile, or one the principal may create but not describe
                access = {"topic": (name, "Create"), "cluster": (None, "Create")}
                failure = translate_error(exc, client, action=f"create topic {name!r}", access=access)
                if error is not None and error.name() == "_UNSUPPORTED_FEATURE" and failure.hint is None:
                    failure.hint = NO_CREATE_TOPICS
                raise failure from exc
            created.append(name)
        # Created is not yet known: the broker answering the next metadata request may not
        # have heard of it for a moment, and `dlq list` right after `ensure` would miss it.
        # Asked by name: one the principal may create but not describe is never seen.
        deadline = time.monotonic() + timeout
        waiting = list(created)
        while waiting and time.monotonic() < deadline:
            known = named_topics(client, waiting, _left(deadline))
            waiting = [t for t in waiting if known.get(t) == MISSING]
            if waiting:
                time.sleep(SETTLE_PAUSE)
    return created
