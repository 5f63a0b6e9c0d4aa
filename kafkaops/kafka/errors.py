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
from kafkaops.kafka import faults
from kafkaops.kafka.client import ClientState, client_state, error_text, kafka_error_of, one_line

if TYPE_CHECKING:
    from confluent_kafka import KafkaError


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


def _reason(kafka_error: KafkaError | None, error: object, state: ClientState) -> str:
    text = error_text(kafka_error if kafka_error is not None else error)
    code = kafka_error.name() if kafka_error is not None else None
    # A vague code ("Local: Timed out") is told with the connection error reported before it.
    if faults.is_vague(code) and state.detail is not None and state.detail not in text:
        # "N/M brokers are down" adds nothing to the reason, and its counts confuse.
        text = state.detail if code == "_ALL_BROKERS_DOWN" else f"{state.detail}; {text}"
    return state.hide(one_line(text))
