"""Kafka failures as kafkaops errors: one secret-free line per confluent-kafka failure, sorted by
its librdkafka code (`faults`) into unreachable, rejected credentials, denied, or other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import (
    KafkaAuthorizationError,
    KafkaClientError,
    KafkaopsError,
    KafkaUnavailableError,
)
from kafkaops.kafka import faults, tls
from kafkaops.kafka.client import (
    ClientState,
    client_state,
    error_text,
    kafka_error_of,
    one_line,
    principal_of,
)

if TYPE_CHECKING:
    from confluent_kafka import KafkaError


# What a request asked for, by the resource type an authorization error names ("topic",
# "group", "transactional id", "cluster"): (its name, the operation), e.g.
# {"topic": ("orders.dlq", "Read"), "group": ("kafkaops-replay.orders.dlq", "Read")}.
Access = Mapping[str, tuple[str | None, str | None]]


def translate_error(
    error: BaseException | KafkaError,
    source: object = None,
    *,
    action: str | None = None,
    access: Access | None = None,
) -> KafkaopsError:
    """The one-line kafkaops error for a confluent-kafka failure, secrets removed.

    ``source`` is the client built here or the property mapping (it names the bootstrap
    servers, the principal and the secrets to hide); ``action`` is a verb phrase, e.g. "read
    offsets"; ``access`` what the request asked for, so that a ``*_AUTHORIZATION_FAILED``
    names what was denied ("Read on topic orders.dlq denied to User:svc").
    Transport failures become KafkaUnavailableError, a denial KafkaAuthorizationError,
    everything else KafkaClientError.
    """
    state = client_state(source)
    kafka_error = kafka_error_of(error)
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
    if faults.is_tls_failure(code) and kafka_error is not None:
        return tls_error(kafka_error.str(), reason, state)
    resource = faults.classify(code).resource
    if resource is not None and code is not None:
        name, operation = (access or {}).get(resource, (None, None))
        return denied(code, state.principal, name=name, operation=operation)
    doing = f" failed to {action}" if action else ""
    return KafkaClientError(f"{where}{doing}: {reason}")


def principal(props: Mapping[str, Any]) -> str | None:
    """The principal the cluster knows kafkaops as (``User:<sasl.username>``), or None."""
    return principal_of(props)


def authorization_error(
    code: str, props: Mapping[str, Any], *, name: str | None, operation: str | None, then: str = ""
) -> KafkaAuthorizationError:
    """The one line for a ``*_AUTHORIZATION_FAILED``: what was denied to whom ("Write on topic
    orders denied to User:svc"), ``then`` what the command did about it, and the ACL to add."""
    return denied(code, principal_of(props), name=name, operation=operation, then=then)


def denied(
    code: str, who: str | None, *, name: str | None, operation: str | None, then: str = ""
) -> KafkaAuthorizationError:
    """`authorization_error` for a principal already known (None: only the broker knows it)."""
    return KafkaAuthorizationError(
        f"{faults.denial(code, name=name, operation=operation, principal=who)} ({code}){then}",
        hint=faults.acl_hint(code, name=name, operation=operation, principal=who),
    )


def tls_error(raw: str, reason: str, state: ClientState) -> KafkaClientError:
    """A TLS handshake that failed: the certificate (or its name) the client would not trust,
    or a listener that speaks no TLS. The reason is librdkafka's, told plainly where it can be."""
    why, hint = tls.explain(raw, reason, state.tls)
    return KafkaClientError(
        f"TLS handshake with Kafka at {state.bootstrap} failed: {state.hide(why)}", hint=hint
    )


@contextmanager
def kafka_errors(source: object, action: str | None = None, access: Access | None = None) -> Iterator[None]:
    """Re-raise any confluent-kafka exception in the block as the translated kafkaops error."""
    from confluent_kafka import KafkaException

    try:
        yield
    except KafkaException as exc:
        raise translate_error(exc, source, action=action, access=access) from exc


def _reason(kafka_error: KafkaError | None, error: object, state: ClientState) -> str:
    text = error_text(kafka_error if kafka_error is not None else error)
    code = kafka_error.name() if kafka_error is not None else None
    # A vague code ("Local: Timed out") is told with the connection error reported before it.
    if faults.is_vague(code) and state.detail is not None and state.detail not in text:
        # "N/M brokers are down" adds nothing to the reason, and its counts confuse.
        text = state.detail if code == "_ALL_BROKERS_DOWN" else f"{state.detail}; {text}"
    return state.hide(one_line(text))
