"""The one place kafkaops builds Kafka clients, and turns their failures into kafkaops errors.

Owns client defaults, routing librdkafka's logs into ``logging``, secret-safe one-line error
translation, and the metadata helpers every command needs (reachability, topic layout,
watermarks, committed offsets). confluent_kafka is imported on first use, not at import.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import (
    ConfigError,
    KafkaAuthorizationError,
    KafkaClientError,
    KafkaopsError,
    KafkaUnavailableError,
    NotFoundError,
    UsageError,
)
from kafkaops.common.secrets import is_secret_key, redact
from kafkaops.kafka import faults
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_internal_topic, is_valid_topic_name

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ClusterMetadata, TopicMetadata

    Client = Producer | Consumer | AdminClient

__all__ = [
    "BrokerInfo",
    "ClusterInfo",
    "PartitionInfo",
    "TopicInfo",
    "admin",
    "authorization_error",
    "check_reachable",
    "check_topic_name",
    "cluster_metadata",
    "committed_offsets",
    "consumer",
    "is_internal_topic",
    "kafka_errors",
    "last_error",
    "principal",
    "producer",
    "topic_metadata",
    "translate_error",
    "watermark_offsets",
    "watermarks",
]

log = logging.getLogger(__name__)
LIBRDKAFKA_LOGGER = "kafkaops.kafka.librdkafka"
_librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)

_STATE_ATTR = "_kafkaops_state"
_NO_BOOTSTRAP = "<no bootstrap.servers>"

# Properties confluent-kafka spells with underscores; every other keyword override has its
# underscores turned into dots, so linger_ms=5 means linger.ms=5.
_UNDERSCORE_KEYS = frozenset(
    {"log_level", "error_cb", "throttle_cb", "stats_cb", "oauth_cb", "on_delivery", "logger"}
)

# Properties of confluent-kafka itself, not librdkafka: it wants their Python values.
_PYTHON_CLIENT_KEYS = frozenset({"delivery.report.only.error"})

# check_reachable first asks for metadata with this short a wait: long enough for a refused
# connection or an unresolvable host to show, so those fail at once. Then it asks once more
# with the rest of the deadline (one request, not many short ones: each abandoned request
# would still queue at a slow broker ahead of the one that counts).
_FIRST_WINDOW = 0.25
# librdkafka rejects socket.connection.setup.timeout.ms below one second.
_MIN_SETUP_MS = 1000

# kafkaops' first reconnect.backoff.ms unless configured (see _first_backoff_ms).
_FIRST_BACKOFF_MS = 20
# Log lines start with the thread that wrote them.
_THREAD_PREFIX = re.compile(r"^\[thrd:[^\]]*\]: ")
# librdkafka prefixes broker errors with the broker's name, which repeats the bootstrap.
_BROKER_PREFIX = re.compile(r"^\S+/(?:bootstrap|-?\d+): ")
SETTLE_PAUSE = 0.1


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


@dataclass
class _ClientState:
    """What kafkaops knows about a client it built: where it points, what to hide, and what
    went wrong lately (error_cb and log lines, both served by poll/flush)."""

    bootstrap: str
    secrets: list[str]
    chained_error_cb: Callable[[KafkaError], object] | None = None
    last: KafkaError | None = None
    detail: str | None = None  # latest concrete failure, e.g. "Connect to ... refused"
    definite: KafkaError | None = None  # first error that waiting would not cure

    def on_error(self, error: KafkaError) -> None:
        log.debug("kafka client error: %s", self.hide(str(error)))
        self.last = error
        if error.name() != "_ALL_BROKERS_DOWN":
            self.detail = _error_text(error)
        # Sticky: librdkafka reports failures, never recoveries. Definite: waiting out a
        # reachability check's deadline would not help (faults.is_definite).
        if self.definite is None and (error.fatal() or faults.is_definite(error.name())):
            self.definite = error
        if self.chained_error_cb is not None:
            self.chained_error_cb(error)

    def on_failure_log(self, text: str) -> None:
        # Some failures (a connection setup timeout) reach error_cb only as "all brokers
        # are down"; the FAIL log line before it says why.
        self.detail = _BROKER_PREFIX.sub("", _THREAD_PREFIX.sub("", text))

    def hide(self, text: str) -> str:
        return redact(text, self.secrets)


class _LibrdkafkaLog:
    """Given to confluent-kafka as the client's ``logger``: it calls ``.log(level, fmt, *args)``.

    Every line goes to DEBUG, secrets removed: failures reach the user as one translated
    error, so librdkafka's own ``FAIL`` lines are diagnostics, not messages.
    """

    def __init__(self, state: _ClientState) -> None:
        self._state = state

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        # confluent-kafka passes ("%s [%s] %s", facility, client name, text).
        if len(args) == 3 and args[0] == "FAIL":
            self._state.on_failure_log(str(args[2]))
        if _librdkafka_log.isEnabledFor(logging.DEBUG):
            text = msg % args if args else msg
            _librdkafka_log.debug("%s %s", logging.getLevelName(level), self._state.hide(text))


# ---------------------------------------------------------------------------------------
# Building clients


def producer(props: Mapping[str, Any], **overrides: Any) -> Producer:
    """A Producer for the cluster in ``props`` (librdkafka properties); overrides win."""
    return _build(_client_class("Producer"), props, {}, overrides)


def consumer(props: Mapping[str, Any], *, group_id: str | None = None, **overrides: Any) -> Consumer:
    """A Consumer that commits only when told to and starts from the earliest offset.

    Without ``group_id`` (and no ``group.id`` in props) it uses a throwaway group,
    ``kafkaops-<uuid>``, so looking at a topic never disturbs a real group.
    """
    import uuid  # here, not at the top: it costs start-up time and only consumers need it

    defaults = {
        "group.id": f"kafkaops-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if group_id is not None:
        overrides = {**overrides, "group.id": group_id}
    return _build(_client_class("Consumer"), props, defaults, overrides)


def admin(props: Mapping[str, Any], **overrides: Any) -> AdminClient:
    """An AdminClient; its metadata requests never auto-create the topic they name."""
    return _build(_client_class("AdminClient"), props, {"allow.auto.create.topics": False}, overrides)


def _build(
    cls: type[Any],
    props: Mapping[str, Any],
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> Any:
    conf = {"client.id": "kafkaops", **defaults}
    conf.update(props)
    conf.update({_property_name(k): v for k, v in overrides.items()})
    if "reconnect.backoff.ms" not in conf:
        conf["reconnect.backoff.ms"] = _first_backoff_ms(conf.get("reconnect.backoff.max.ms"))
    conf = {
        k: v if k in _PYTHON_CLIENT_KEYS else _property_value(v) for k, v in conf.items() if v is not None
    }
    state = _ClientState(
        bootstrap=_bootstrap(conf),
        secrets=_secret_values(conf),
        chained_error_cb=conf.pop("error_cb", None),
    )
    conf["error_cb"] = state.on_error
    conf.setdefault("logger", _LibrdkafkaLog(state))
    try:
        client = cls(conf)
    except Exception as exc:  # KafkaException, ValueError, TypeError: all mean bad config
        reason = state.hide(_one_line(_error_text(exc)))
        raise ConfigError(f"invalid Kafka client configuration for {state.bootstrap}: {reason}") from None
    setattr(client, _STATE_ATTR, state)
    return client


def _first_backoff_ms(configured_max: Any) -> int:
    """kafkaops' reconnect.backoff.ms when the configuration sets none: 20, not librdkafka's 100.

    librdkafka holds a request that finds no broker up yet for max(reconnect.backoff.ms / 2,
    10) ms: at 100 every client's first request waited ~50 ms on loopback, and a command-line
    tool starts clients often. Reconnects still back off exponentially to
    reconnect.backoff.max.ms (10 s), which must not be below it: a configured lower maximum
    wins (librdkafka would refuse the pair)."""
    try:
        ceiling = int(configured_max) if configured_max is not None else _FIRST_BACKOFF_MS
    except (TypeError, ValueError):
        return _FIRST_BACKOFF_MS  # librdkafka names the bad value itself
    return max(0, min(_FIRST_BACKOFF_MS, ceiling))


@functools.cache
def _client_class(name: str) -> type[Any]:
    """A subclass of the confluent_kafka client, so an instance can carry its _ClientState
    (the C types refuse new attributes)."""
    import confluent_kafka
    from confluent_kafka import admin as ck_admin

    base = ck_admin.AdminClient if name == "AdminClient" else getattr(confluent_kafka, name)
    return type(f"Kafkaops{name}", (base,), {"__module__": __name__})


def _property_name(key: str) -> str:
    return key if "." in key or key in _UNDERSCORE_KEYS else key.replace("_", ".")


def _property_value(value: Any) -> Any:
    """Values as librdkafka expects them; callables and logger objects pass untouched."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def _bootstrap(conf: Mapping[str, Any]) -> str:
    servers = conf.get("bootstrap.servers") or conf.get("metadata.broker.list")
    return str(servers) if servers else _NO_BOOTSTRAP


def _secret_values(conf: Mapping[str, Any]) -> list[str]:
    return [str(v) for k, v in conf.items() if is_secret_key(k) and isinstance(v, (str, bytes))]


def _state(source: object) -> _ClientState:
    """The state of a client built here, or a fresh one for a property mapping."""
    state = getattr(source, _STATE_ATTR, None)
    if isinstance(state, _ClientState):
        return state
    if isinstance(source, Mapping):
        conf = {k: _property_value(v) for k, v in source.items()}
        return _ClientState(bootstrap=_bootstrap(conf), secrets=_secret_values(conf))
    return _ClientState(bootstrap="the configured cluster", secrets=[])


def last_error(client: object) -> KafkaError | None:
    """The most recent error librdkafka reported for a client built here (after a poll)."""
    return _state(client).last


# ---------------------------------------------------------------------------------------
# Errors


def translate_error(
    error: BaseException | KafkaError,
    source: object = None,
    *,
    action: str | None = None,
) -> KafkaopsError:
    """The one-line kafkaops error for a confluent-kafka failure, secrets removed.

    ``source`` is the client built here or the property mapping (it names the bootstrap
    servers and the secrets to hide); ``action`` is a verb phrase, e.g. "read offsets".
    Transport failures become KafkaUnavailableError, everything else KafkaClientError.
    """
    state = _state(source)
    kafka_error = _kafka_error_of(error)
    code = kafka_error.name() if kafka_error is not None else None
    reason = _reason(kafka_error, error, state)
    where = f"Kafka at {state.bootstrap}"
    if faults.is_unreachable(code):
        target = f"{where} to {action}" if action else where
        return KafkaUnavailableError(
            f"cannot reach {target}: {reason}",
            hint="check bootstrap.servers, the network path and that the brokers are up",
        )
    if faults.is_rejected_credentials(code):
        return KafkaClientError(
            f"{where} rejected the credentials: {reason}",
            hint="check sasl.mechanism, sasl.username and sasl.password",
        )
    doing = f" failed to {action}" if action else ""
    if faults.classify(code).resource is not None:
        return KafkaAuthorizationError(
            f"{where}{doing}: {reason}",
            hint="the cluster denied kafkaops' principal: an ACL for it is missing",
        )
    return KafkaClientError(f"{where}{doing}: {reason}")


def principal(props: Mapping[str, Any]) -> str | None:
    """The principal the cluster knows kafkaops as, where the configuration says it
    (``User:<sasl.username>``); None when only the broker knows (TLS client certificates,
    OAUTHBEARER)."""
    username = props.get("sasl.username")
    return f"User:{username}" if username else None


def authorization_error(
    code: str, props: Mapping[str, Any], *, name: str | None, operation: str | None, then: str = ""
) -> KafkaAuthorizationError:
    """The one line for a ``*_AUTHORIZATION_FAILED``: what was denied to whom ("Write on topic
    orders denied to User:svc"), ``then`` what the command did about it, and the ACL to add."""
    who = principal(props)
    return KafkaAuthorizationError(
        f"{faults.denial(code, name=name, operation=operation, principal=who)} ({code}){then}",
        hint=faults.acl_hint(code, name=name, operation=operation, principal=who),
    )


@contextmanager
def kafka_errors(source: object, action: str | None = None) -> Iterator[None]:
    """Re-raise any confluent-kafka exception in the block as the translated kafkaops error."""
    from confluent_kafka import KafkaException

    try:
        yield
    except KafkaException as exc:
        raise translate_error(exc, source, action=action) from exc


def _kafka_error_of(error: object) -> KafkaError | None:
    from confluent_kafka import KafkaError

    if isinstance(error, KafkaError):
        return error
    args = getattr(error, "args", ())
    if args and isinstance(args[0], KafkaError):
        return args[0]
    return None


def _reason(kafka_error: KafkaError | None, error: object, state: _ClientState) -> str:
    text = _error_text(kafka_error if kafka_error is not None else error)
    code = kafka_error.name() if kafka_error is not None else None
    # A vague code ("Local: Timed out") is told with the connection error reported before it.
    if faults.is_vague(code) and state.detail is not None and state.detail not in text:
        # "N/M brokers are down" adds nothing to the reason, and its counts confuse.
        text = state.detail if code == "_ALL_BROKERS_DOWN" else f"{state.detail}; {text}"
    return state.hide(_one_line(text))


def _error_text(error: object) -> str:
    kafka_error = _kafka_error_of(error)
    text = kafka_error.str() if kafka_error is not None else str(error)
    return _BROKER_PREFIX.sub("", text) or type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------
# Helpers every command needs


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
        bootstrap_servers=_state(client).bootstrap,
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
    """Cluster metadata: a quick first try to fail fast, then the rest of the deadline."""
    from confluent_kafka import KafkaException

    state = _state(client)
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
            window = timeout


def _deadline_error(exc: Exception, client: AdminClient, timeout: float) -> KafkaopsError:
    """The error for a deadline that passed; silence says more than "transport failure"."""
    state = _state(client)
    error = translate_error(exc, client)
    if isinstance(error, KafkaUnavailableError) and state.detail is None:
        return KafkaUnavailableError(
            f"cannot reach Kafka at {state.bootstrap}: no answer within {timeout:g}s", hint=error.hint
        )
    return error


def topic_metadata(props_or_admin: Mapping[str, Any] | Client, topic: str, timeout: float = 5.0) -> TopicInfo:
    """Partitions, leaders and replicas of ``topic``; NotFoundError when it does not exist.

    Give properties, an admin() or a consumer(): a Producer's metadata request may make a
    broker with auto.create.topics.enable create the topic it asks about.
    """
    with _client_for(props_or_admin, admin) as client:
        found = _describe_topic(client, topic, timeout)
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
    consumer_or_props: Mapping[str, Any] | Consumer, topic: str, timeout: float = 5.0
) -> dict[int, tuple[int, int]]:
    """``{partition: (low, high)}`` offsets of ``topic``, read from the leaders now."""
    from confluent_kafka import TopicPartition

    deadline = time.monotonic() + timeout
    with _client_for(consumer_or_props, consumer) as client:
        found = _describe_topic(client, topic, _left(deadline))
        result: dict[int, tuple[int, int]] = {}
        with kafka_errors(client, f"read the offsets of {topic!r}"):
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


def committed_offsets(
    props: Mapping[str, Any], group: str, topic: str, timeout: float = 5.0
) -> dict[int, int | None]:
    """``{partition: offset}`` the group committed on ``topic``; None where it has none.

    Reads only: the consumer it uses never joins the group, so members are not rebalanced.
    """
    from confluent_kafka import TopicPartition

    deadline = time.monotonic() + timeout
    with _client_for(props, functools.partial(consumer, group_id=group)) as client:
        found = _describe_topic(client, topic, _left(deadline))
        wanted = [TopicPartition(topic, p) for p in sorted(found.partitions)]
        with kafka_errors(client, f"read the offsets group {group!r} committed"):
            committed: list[TopicPartition] = client.committed(wanted, timeout=_left(deadline))
    for tp in committed:
        if tp.error is not None:
            raise translate_error(tp.error, props, action=f"read group {group!r} offsets")
    return {tp.partition: tp.offset if tp.offset >= 0 else None for tp in committed}


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


def _describe_topic(client: Client, topic: str, timeout: float) -> TopicMetadata:
    check_topic_name(topic)
    with kafka_errors(client, f"describe topic {topic!r}"):
        metadata = client.list_topics(topic=topic, timeout=timeout)
    found = metadata.topics.get(topic)
    error = found.error if found is not None else None
    if found is None or (error is not None and error.name() == "UNKNOWN_TOPIC_OR_PART"):
        raise NotFoundError(f"topic {topic!r} does not exist on Kafka at {_state(client).bootstrap}")
    if error is not None and not found.partitions:
        raise translate_error(error, client, action=f"describe topic {topic!r}")
    return found


# ---------------------------------------------------------------------------------------
# What `dlq` needs: group members, topic creation, and listing topics


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

    with _client_for(props_or_admin, admin) as client:
        future = client.describe_consumer_groups([group], request_timeout=timeout)[group]
        try:
            description = future.result(timeout=timeout + 1)
        except KafkaException as exc:
            error = _kafka_error_of(exc)
            if error is not None and error.name() == "_UNSUPPORTED_FEATURE":
                return None
            raise translate_error(exc, client, action=f"describe consumer group {group!r}") from exc
    return [
        GroupMember(
            member_id=m.member_id,
            client_id=m.client_id,
            host=m.host,
            instance_id=m.group_instance_id,
        )
        for m in description.members or ()
    ]


def topic_names(props_or_admin: Mapping[str, Any] | Client, timeout: float = 10.0) -> list[str]:
    """Every topic on the cluster except the internal ones, sorted."""
    with _client_for(props_or_admin, admin) as client, kafka_errors(client, "list topics"):
        metadata = client.list_topics(timeout=timeout)
    return sorted(t for t in metadata.topics if not is_internal_topic(t))


def create_topics(
    props_or_admin: Mapping[str, Any] | AdminClient,
    topics: Mapping[str, tuple[int, int]],
    timeout: float = 30.0,
) -> None:
    """Create ``{name: (partitions, replication_factor)}`` and wait until each exists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    if not topics:
        return
    with _client_for(props_or_admin, admin) as client:
        new = [NewTopic(name, num_partitions=p, replication_factor=r) for name, (p, r) in topics.items()]
        with kafka_errors(client, "create topics"):
            futures = client.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout=timeout + 1)
            except KafkaException as exc:
                raise translate_error(exc, client, action=f"create topic {name!r}") from exc
        # Created is not yet known: the broker answering the next metadata request may not
        # have heard of it for a moment, and `dlq list` right after `ensure` would miss it.
        deadline = time.monotonic() + timeout
        waiting = set(topics)
        while waiting and time.monotonic() < deadline:
            with kafka_errors(client, "list topics"):
                known = client.list_topics(timeout=_left(deadline)).topics
            waiting = {t for t in waiting if t not in known or not known[t].partitions}
            if waiting:
                time.sleep(SETTLE_PAUSE)
