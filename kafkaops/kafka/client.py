"""Building Kafka clients: kafkaops' defaults over the configured properties, librdkafka's logs
routed into ``logging`` (secrets removed), and what each client last reported through its
error callback. confluent_kafka is imported on first use, not at import.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ConfigError
from kafkaops.common.secrets import is_secret_key, redact
from kafkaops.kafka import faults
from kafkaops.kafka.tls import tls_settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Producer
    from confluent_kafka.admin import AdminClient

__all__ = [
    "ClientState",
    "admin",
    "client_state",
    "consumer",
    "error_text",
    "kafka_error_of",
    "last_error",
    "one_line",
    "principal_of",
    "producer",
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

# kafkaops' first reconnect.backoff.ms unless configured (see _first_backoff_ms).
_FIRST_BACKOFF_MS = 20
# Log lines start with the thread that wrote them.
_THREAD_PREFIX = re.compile(r"^\[thrd:[^\]]*\]: ")
# librdkafka prefixes broker errors with the broker's name, which repeats the bootstrap.
_BROKER_PREFIX = re.compile(r"^\S+/(?:bootstrap|-?\d+): ")


@dataclass
class ClientState:
    """What kafkaops knows about a client it built: where it points, what to hide, and what
    went wrong lately (error_cb and log lines, both served by poll/flush)."""

    bootstrap: str
    secrets: list[str]
    principal: str | None = None  # User:<sasl.username>, where the configuration says it
    tls: dict[str, str] = field(default_factory=dict)  # trust settings (kafka.tls.TLS_KEYS)
    chained_error_cb: Callable[[KafkaError], object] | None = None
    last: KafkaError | None = None
    detail: str | None = None  # latest concrete failure, e.g. "Connect to ... refused"
    definite: KafkaError | None = None  # first error that waiting would not cure

    def on_error(self, error: KafkaError) -> None:
        log.debug("kafka client error: %s", self.hide(str(error)))
        self.last = error
        if error.name() != "_ALL_BROKERS_DOWN":
            self.detail = error_text(error)
        # Sticky: librdkafka reports failures, never recoveries. Definite: waiting out a
        # reachability check's deadline would not help (faults.is_definite).
        # A configuration fault (credentials, TLS, a denial) says more than "all brokers are
        # down", which librdkafka may report first.
        if self._more_definite(error):
            self.definite = error
        if self.chained_error_cb is not None:
            self.chained_error_cb(error)

    def _more_definite(self, error: KafkaError) -> bool:
        if not (error.fatal() or faults.is_definite(error.name())):
            return False
        if self.definite is None:
            return True
        return faults.is_configuration_fault(error.name()) and not faults.is_configuration_fault(
            self.definite.name()
        )

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

    def __init__(self, state: ClientState) -> None:
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
    state = ClientState(
        bootstrap=_bootstrap(conf),
        secrets=_secret_values(conf),
        principal=principal_of(conf),
        tls=tls_settings(conf),
        chained_error_cb=conf.pop("error_cb", None),
    )
    conf["error_cb"] = state.on_error
    conf.setdefault("logger", _LibrdkafkaLog(state))
    try:
        client = cls(conf)
    except Exception as exc:  # KafkaException, ValueError, TypeError: all mean bad config
        reason = state.hide(one_line(error_text(exc)))
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
    """A subclass of the confluent_kafka client, so an instance can carry its ClientState
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


def client_state(source: object) -> ClientState:
    """The state of a client built here, or a fresh one for a property mapping."""
    state = getattr(source, _STATE_ATTR, None)
    if isinstance(state, ClientState):
        return state
    if isinstance(source, Mapping):
        conf = {k: _property_value(v) for k, v in source.items()}
        return ClientState(
            bootstrap=_bootstrap(conf),
            secrets=_secret_values(conf),
            principal=principal_of(conf),
            tls=tls_settings(conf),
        )
    return ClientState(bootstrap="the configured cluster", secrets=[])


def principal_of(props: Mapping[str, Any]) -> str | None:
    """The principal the cluster knows kafkaops as, where the configuration says it
    (``User:<sasl.username>``); None when only the broker knows (TLS client certificates,
    OAUTHBEARER)."""
    username = props.get("sasl.username")
    return f"User:{username}" if username else None


def last_error(client: object) -> KafkaError | None:
    """The most recent error librdkafka reported for a client built here (after a poll)."""
    return client_state(client).last


# ---------------------------------------------------------------------------------------
# What a failure says


def kafka_error_of(error: object) -> KafkaError | None:
    from confluent_kafka import KafkaError

    if isinstance(error, KafkaError):
        return error
    args = getattr(error, "args", ())
    if args and isinstance(args[0], KafkaError):
        return args[0]
    return None


def error_text(error: object) -> str:
    kafka_error = kafka_error_of(error)
    text = kafka_error.str() if kafka_error is not None else str(error)
    return _BROKER_PREFIX.sub("", text) or type(error).__name__


def one_line(text: str) -> str:
    return " ".join(text.split())
