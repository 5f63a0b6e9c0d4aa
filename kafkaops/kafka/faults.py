"""Whose fault a Kafka error is: one table of librdkafka error names that every caller asks.

*event*: the record itself is refused (too large, invalid, no such topic): an attempt counts,
and enough of them send the event to its DLQ. *environment*: transport, timeouts, leadership
moving, clock skew, a fenced producer, and every code not listed: no attempt, try again later.
*configuration*: kafkaops' own set-up is wrong (credentials, a missing ACL): no attempt, and
the command stops. Errors are named by `KafkaError.name()`, never by their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Fault(str, Enum):
    EVENT = "event"
    ENVIRONMENT = "environment"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class KafkaErrorClass:
    """What one librdkafka error code means to kafkaops."""

    fault: Fault
    java: str | None = None  # the exception class the service (and Spring's DLQ headers) records
    unreachable: bool = False  # the cluster could not be reached (in time)
    definite: bool = False  # waiting for the cluster would not cure it
    vague: bool = False  # its text says less than the connection error reported just before
    settling: bool = False  # a partition's leadership is moving: ask again in a moment
    fenced: bool = False  # another producer with the same transactional.id took over
    credentials: bool = False  # the cluster rejected who kafkaops says it is
    tls: bool = False  # the TLS handshake failed (a certificate not trusted, a name it lacks)
    resource: str | None = None  # authorization: the kind of resource the ACL is missing on
    operation: str | None = None  # ...and the operation usually denied on it
    # The broker answers it for a whole message set when one record of the set is at fault (or
    # the set itself is too large): only a record refused alone is known to be at fault.
    whole_set: bool = False
    # The broker will never accept the same bytes for the same topic (too large, invalid, a topic
    # that does not exist or whose name Kafka refuses): no number of retries helps, a person must.
    permanent: bool = False
    # ...until the topic is created: true of the attempt that met it, not of a row stored with it.
    until_topic_exists: bool = False


_J = "org.apache.kafka.common.errors."


def _event(
    java: str, *, whole_set: bool = False, permanent: bool = True, until_topic_exists: bool = False
) -> KafkaErrorClass:
    return KafkaErrorClass(
        Fault.EVENT,
        java=java,
        whole_set=whole_set,
        permanent=permanent,
        until_topic_exists=until_topic_exists,
    )


def _unreachable(java: str | None = None, *, vague: bool = False, definite: bool = False) -> KafkaErrorClass:
    return KafkaErrorClass(Fault.ENVIRONMENT, java=java, unreachable=True, vague=vague, definite=definite)


def _denied(resource: str, java: str, operation: str | None = None) -> KafkaErrorClass:
    return KafkaErrorClass(
        Fault.CONFIGURATION, java=_J + java, definite=True, resource=resource, operation=operation
    )


def _rejected(java: str | None = None) -> KafkaErrorClass:
    return KafkaErrorClass(Fault.CONFIGURATION, java=java, definite=True, credentials=True)


ERRORS: dict[str, KafkaErrorClass] = {
    # The record itself: retrying the same bytes cannot succeed by itself. (A record over the
    # producer's own message.max.bytes is refused locally with MSG_SIZE_TOO_LARGE too.) The
    # whole_set ones fail every record of a message set: a set over the topic's
    # max.message.bytes, or one invalid record in it (librdkafka 2.16 reports even a refused
    # timestamp as INVALID_RECORD for a set of several records, INVALID_TIMESTAMP for one alone).
    "MSG_SIZE_TOO_LARGE": _event(_J + "RecordTooLargeException", whole_set=True),
    "RECORD_LIST_TOO_LARGE": _event(_J + "RecordBatchTooLargeException", whole_set=True),
    "TOPIC_EXCEPTION": _event(_J + "InvalidTopicException"),
    "UNKNOWN_TOPIC_OR_PART": _event(_J + "UnknownTopicOrPartitionException", until_topic_exists=True),
    "_UNKNOWN_TOPIC": _event(_J + "UnknownTopicOrPartitionException", until_topic_exists=True),
    "_UNKNOWN_PARTITION": _event(_J + "UnknownTopicOrPartitionException", until_topic_exists=True),
    "INVALID_RECORD": _event(_J + "InvalidRecordException", whole_set=True),
    # A policy may change, and an invalid argument is not known to be the record's for good.
    "POLICY_VIOLATION": _event(_J + "PolicyViolationException", permanent=False),
    "_INVALID_ARG": _event("java.lang.IllegalArgumentException", permanent=False),
    # Could not talk to the cluster (in time).
    "_TRANSPORT": _unreachable(vague=True),
    "_ALL_BROKERS_DOWN": _unreachable(vague=True, definite=True),  # every broker refused or timed out
    "_TIMED_OUT": _unreachable(_J + "TimeoutException", vague=True),
    "_MSG_TIMED_OUT": _unreachable(_J + "TimeoutException", vague=True),
    "_TIMED_OUT_QUEUE": _unreachable(_J + "TimeoutException"),
    "_RESOLVE": _unreachable(),
    "NETWORK_EXCEPTION": _unreachable(_J + "NetworkException"),
    "REQUEST_TIMED_OUT": _unreachable(_J + "TimeoutException"),
    "BROKER_NOT_AVAILABLE": _unreachable(_J + "BrokerNotAvailableException"),
    # What a partition whose leader is being elected (just created, or moving) answers for a
    # moment (librdkafka does not call NOT_LEADER_FOR_PARTITION retriable).
    "NOT_LEADER_FOR_PARTITION": KafkaErrorClass(
        Fault.ENVIRONMENT, java=_J + "NotLeaderOrFollowerException", settling=True
    ),
    "LEADER_NOT_AVAILABLE": KafkaErrorClass(
        Fault.ENVIRONMENT, java=_J + "LeaderNotAvailableException", settling=True
    ),
    "UNKNOWN_LEADER_EPOCH": KafkaErrorClass(
        Fault.ENVIRONMENT, java=_J + "UnknownLeaderEpochException", settling=True
    ),
    # A CRC mismatch: bytes damaged on the way, not the record (Kafka calls it retriable).
    "INVALID_MSG": KafkaErrorClass(Fault.ENVIRONMENT, java=_J + "CorruptRecordException"),
    # kafkaops sets no record timestamp: the broker refusing one means clock skew between this
    # host and the broker, or the topic's message.timestamp.* settings, never the event.
    "INVALID_TIMESTAMP": KafkaErrorClass(Fault.ENVIRONMENT, java=_J + "InvalidTimestampException"),
    # Another transactional producer took over: the run that was fenced stops, nothing is lost.
    "_FENCED": KafkaErrorClass(Fault.ENVIRONMENT, fenced=True),
    "PRODUCER_FENCED": KafkaErrorClass(Fault.ENVIRONMENT, java=_J + "ProducerFencedException", fenced=True),
    "INVALID_PRODUCER_EPOCH": KafkaErrorClass(
        Fault.ENVIRONMENT, java=_J + "InvalidProducerEpochException", fenced=True
    ),
    # kafkaops' own set-up: who it is, and what its principal may do.
    "_AUTHENTICATION": _rejected(),
    "SASL_AUTHENTICATION_FAILED": _rejected(_J + "SaslAuthenticationException"),
    # librdkafka's first report of a failed handshake (later ones may come as _TRANSPORT).
    "_SSL": KafkaErrorClass(
        Fault.CONFIGURATION, java=_J + "SslAuthenticationException", definite=True, tls=True
    ),
    "TOPIC_AUTHORIZATION_FAILED": _denied("topic", "TopicAuthorizationException"),
    "GROUP_AUTHORIZATION_FAILED": _denied("group", "GroupAuthorizationException", "Read"),
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": _denied(
        "transactional id", "TransactionalIdAuthorizationException", "Write"
    ),
    "CLUSTER_AUTHORIZATION_FAILED": _denied("cluster", "ClusterAuthorizationException"),
}

# Not listed: environment. An unknown code must never push an event toward its DLQ.
_UNLISTED = KafkaErrorClass(Fault.ENVIRONMENT)


def classify(code: str | None) -> KafkaErrorClass:
    """The table's entry for a `KafkaError.name()`; unknown codes are the environment's."""
    return ERRORS.get(code or "", _UNLISTED)


def fault_of(code: str | None) -> Fault:
    return classify(code).fault


def is_event_fault(code: str | None) -> bool:
    """True when the error belongs to the record: retrying the same bytes cannot succeed by
    itself, so an attempt counts. False for everything else, unknown codes included."""
    return classify(code).fault is Fault.EVENT


def is_whole_set_refusal(code: str | None) -> bool:
    """True when the broker gives the error to every record of a message set for the fault of
    one of them (or of the set's size): a record refused so is not yet known to be at fault,
    only one refused alone is."""
    return classify(code).whole_set


def is_configuration_fault(code: str | None) -> bool:
    """True when kafkaops' own set-up is wrong (credentials, a missing ACL): no record is to
    blame, and trying again without a change cannot succeed."""
    return classify(code).fault is Fault.CONFIGURATION


def is_unreachable(code: str | None) -> bool:
    """True when the error means the cluster could not be reached (in time)."""
    return classify(code).unreachable


def is_definite(code: str | None) -> bool:
    """True when waiting out a deadline would not help: every broker is down, or the cluster
    refused kafkaops itself (credentials, authorization)."""
    return classify(code).definite


def is_vague(code: str | None) -> bool:
    """True when the error's text ("Local: Timed out") says less than the concrete connection
    failure the client reported just before it."""
    return classify(code).vague


def is_settling(code: str | None) -> bool:
    """True while a partition's leadership moves: asking again in a moment succeeds."""
    return classify(code).settling


def is_fenced(code: str | None) -> bool:
    """True when another transactional producer with the same id took over."""
    return classify(code).fenced


def is_rejected_credentials(code: str | None) -> bool:
    """True when the cluster did not accept kafkaops' credentials."""
    return classify(code).credentials


def is_permanent(code: str | None) -> bool:
    """True when the broker will never accept the record as it is (too large, invalid, its topic
    unknown or a name Kafka refuses): retrying cannot help; a person must park or fix it. Only
    asked of a record refused alone (`is_whole_set_refusal` says when a refusal is not)."""
    return classify(code).permanent


def permanent_error_types() -> tuple[str, ...]:
    """The exception classes (the `error_type` column, as kafkaops and the service write it) of
    the permanent errors whose cause is the record itself (too large, invalid, a topic name Kafka
    refuses): how a stored row is known to be one the broker will never accept. A topic unknown
    when the row failed may have been created since: the next attempt says whether it still is."""
    return tuple(
        sorted({e.java for e in ERRORS.values() if e.permanent and not e.until_topic_exists and e.java})
    )


def is_tls_failure(code: str | None) -> bool:
    """True when the TLS handshake with a broker failed: waiting does not make a certificate
    trusted."""
    return classify(code).tls


def is_too_large(code: str | None) -> bool:
    """True when the record is too large for its topic (or the producer): sending the same
    bytes again, to any topic with the same limit, is refused again."""
    return classify(code).java in (_J + "RecordTooLargeException", _J + "RecordBatchTooLargeException")


def is_invalid_topic(code: str | None) -> bool:
    """True when Kafka refuses the topic's name itself."""
    return classify(code).java == _J + "InvalidTopicException"


def refusal_hint(code: str | None) -> str:
    """What to do about a record the target refuses for its own sake (an event fault)."""
    if is_too_large(code):
        return (
            "the record (or the set it was sent in) is over the target's max.message.bytes: raise it "
            "on the target, or pass the record over with a selection (--until, --partition)"
        )
    if code == "INVALID_RECORD":
        return (
            "the target refuses the record itself (a compacted topic takes no null key) or, when "
            "every record is refused, their timestamps (its message.timestamp.* settings, or this "
            "host's clock): fix the target's settings, or pass the record over with a selection "
            "(--until, --partition)"
        )
    if classify(code).java == _J + "UnknownTopicOrPartitionException":
        return "the target topic does not exist (deleted?): create it, or name another with --to"
    return (
        "the record itself is at fault: pass it over with a selection (--until, --partition) "
        "or fix the target's settings"
    )


def java_exception(code: str) -> str:
    """The Java exception class the service would record for this error."""
    return classify(code).java or f"KafkaError.{code}"


def denial(code: str | None, *, name: str | None, operation: str | None, principal: str | None) -> str:
    """What a `*_AUTHORIZATION_FAILED` denied, in the words of an ACL: "Write on topic
    casino.wallet.deposit.v1 denied to User:svc". ``operation`` is what the caller was doing;
    without it, the table's usual operation for that resource (Read on a group)."""
    entry = classify(code)
    what = entry.resource or "resource"
    on = f"{what} {name}" if name else "the cluster" if what == "cluster" else f"a {what}"
    op = operation or entry.operation
    return f"{op + ' on ' if op else 'access to '}{on} denied to {principal or 'the configured principal'}"


def acl_hint(code: str | None, *, name: str | None, operation: str | None, principal: str | None) -> str:
    """The `kafka-acls` command that grants what `denial` names."""
    entry = classify(code)
    op = operation or entry.operation or "<operation>"
    who = principal or "User:<principal>"
    option = {
        "topic": f"--topic {name or '<topic>'}",
        "group": f"--group {name or '<group>'}",
        "transactional id": f"--transactional-id {name or '<id>'}",
        "cluster": "--cluster",
    }.get(entry.resource or "", "")
    return (
        f"grant it, e.g. kafka-acls --bootstrap-server ... --add --allow-principal {who} "
        f"--operation {op} {option}".rstrip()
    )
