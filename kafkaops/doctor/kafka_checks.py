"""The Kafka side of `kafkaops doctor`: each ACL of kafkaops/doctor/acls.py for the topics at
hand, told for the configured principal without side effects.

How each is told, the broker's own answer first:

- Describe on a topic: a metadata request naming it (TOPIC_AUTHORIZATION_FAILED when denied).
- Create on a topic: CreateTopics with ``validate_only`` (nothing is created).
- Read or Write on a topic: the operations the broker says the principal may perform on it
  (DescribeTopics with authorized operations); a topic it may not describe it may neither
  read nor write.
- Read on a group: the same for the group (DescribeGroups), else OffsetFetch of the group
  (GROUP_AUTHORIZATION_FAILED when denied).
- Anything else, from the principal's own ACLs (DescribeAcls) where it may read them
  (Describe on the cluster).
- Write on a transactional id, where the ACLs cannot be read: InitProducerId with a
  throwaway id that starts with the real one, so only an ACL that covers the real id too
  grants it (the real id is never used: that would fence a running replay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kafkaops.doctor.acls import Binding, bindings
from kafkaops.doctor.report import GRANTED, MISSING, UNKNOWN, Check
from kafkaops.kafka import faults
from kafkaops.kafka.client import kafka_error_of
from kafkaops.kafka.errors import principal as principal_of
from kafkaops.kafka.group_offsets import groups_committed_offsets

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding, AdminClient

    from kafkaops.db.connections import Connections

# The code a denial of each resource type comes back with: faults' hint for it names the ACL.
_DENIAL_CODE = {
    "topic": "TOPIC_AUTHORIZATION_FAILED",
    "group": "GROUP_AUTHORIZATION_FAILED",
    "transactional_id": "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}
# Kafka: Read, Write, Delete and Alter each imply Describe; All implies everything.
_IMPLYING = {"DESCRIBE": {"READ", "WRITE", "DELETE", "ALTER"}}
# The metadata requests of a doctor never create a topic (brokers with auto.create.topics).
NO_AUTO_CREATE = {"allow.auto.create.topics": "false"}

State = tuple[str, str]  # (granted/missing/unknown, how it was told)


def fix_for(binding: Binding, principal: str | None) -> str:
    """The `kafka-acls` command that grants ``binding`` (faults' hint, one owner)."""
    hint = faults.acl_hint(
        _DENIAL_CODE[binding.resource], name=binding.name, operation=binding.operation, principal=principal
    )
    return hint.removeprefix("grant it, e.g. ")


def own_acls(admin: AdminClient, timeout: float) -> list[AclBinding] | None:
    """Every ACL on the cluster, where the principal may read them (Describe on the cluster);
    None where it may not, or where the cluster has no authorizer."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anyone: Any = None  # the filter's "any name, principal, host" (its stubs say str)
    every = AclBindingFilter(
        ResourceType.ANY,
        anyone,
        ResourcePatternType.ANY,
        anyone,
        anyone,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        return list(admin.describe_acls(every, request_timeout=timeout).result(timeout=timeout))
    except KafkaException:
        return None


def acls_allow(acls: Iterable[AclBinding], principal: str, binding: Binding) -> bool:
    """Whether ``acls`` allow ``principal`` the operation of ``binding`` (DENY wins)."""
    operation = binding.operation.upper()
    operations = {operation, "ALL", *_IMPLYING.get(operation, ())}
    kind = binding.resource.upper()

    def matches(acl: AclBinding) -> bool:
        pattern = _name(acl.resource_pattern_type)
        return (
            _name(acl.restype) == kind
            and acl.principal in (principal, "User:*")
            and _name(acl.operation) in operations
            and (
                (pattern == "LITERAL" and acl.name in (binding.name, "*"))
                or (pattern == "PREFIXED" and binding.name.startswith(acl.name))
            )
        )

    found = [acl for acl in acls if matches(acl)]
    if any(_name(acl.permission_type) == "DENY" for acl in found):
        return False
    return any(_name(acl.permission_type) == "ALLOW" for acl in found)


def _name(value: object) -> str:
    """An enum member's name (the ACL types' fields are typed enum, str or int)."""
    return str(getattr(value, "name", value)).upper()


def _code(exc: BaseException) -> str | None:
    error = kafka_error_of(exc)
    return error.name() if error is not None else None


def _from_code(code: str | None, denied: Sequence[str], fine: Sequence[str] = (), how: str = "") -> State:
    if code is None or code in fine:
        return GRANTED, how
    if code in denied:
        return MISSING, f"{how}: {code}"
    return UNKNOWN, f"{how}: {code}"


def probe_describe(admin: AdminClient, topic: str, timeout: float) -> State:
    from confluent_kafka import KafkaException

    how = "metadata for the topic"
    try:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        return UNKNOWN, f"{how}: {_code(exc)}"
    found = metadata.topics.get(topic)
    error = found.error if found is not None else None
    code = error.name() if error is not None else None
    # A topic it may describe but that does not exist is UNKNOWN_TOPIC_OR_PART: granted.
    return _from_code(code, ("TOPIC_AUTHORIZATION_FAILED",), ("UNKNOWN_TOPIC_OR_PART",), how)


def probe_create(admin: AdminClient, topic: str, timeout: float) -> State:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    how = "CreateTopics, validate only"
    try:
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=-1)],
            validate_only=True,
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        futures[topic].result(timeout=timeout)
        code = None
    except KafkaException as exc:
        code = _code(exc)
    return _from_code(
        code, ("TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"), ("TOPIC_ALREADY_EXISTS",), how
    )


def probe_group(props: Mapping[str, Any], group: str, topic: str, timeout: float) -> State:
    from kafkaops.common.errors import KafkaopsError

    how = "OffsetFetch of the group"
    try:
        answer = groups_committed_offsets(props, {group: [(topic, 0)]}, timeout)[group]
    except KafkaopsError as failed:  # its coordinator kept moving: the check cannot tell
        return UNKNOWN, f"{how}: {failed.message}"
    if answer.timed_out:
        return UNKNOWN, f"{how}: no answer within {timeout:g}s"
    error = answer.error or next(iter(answer.partition_errors.values()), None)
    code = error.name() if error is not None else None
    # OffsetFetch asks Describe of the group; TOPIC_AUTHORIZATION_FAILED is the topic's ACL.
    return _from_code(code, ("GROUP_AUTHORIZATION_FAILED",), ("TOPIC_AUTHORIZATION_FAILED",), how)


def _granted_by(operations: Iterable[Any] | None, operation: str, how: str) -> State:
    if operations is None:
        return UNKNOWN, f"{how}: the broker did not say"
    names = {_name(op) for op in operations}
    wanted = {operation.upper(), "ALL"}
    return (GRANTED if names & wanted else MISSING), how


def probe_topic_operation(admin: AdminClient, topic: str, operation: str, timeout: float) -> State:
    from confluent_kafka import KafkaException, TopicCollection

    how = "the operations the broker authorizes on the topic"
    try:
        futures = admin.describe_topics(
            TopicCollection([topic]), include_authorized_operations=True, request_timeout=timeout
        )
        found = futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        code = _code(exc)
        if code == "TOPIC_AUTHORIZATION_FAILED":
            return MISSING, f"{how}: not even Describe ({code})"
        return UNKNOWN, f"{how}: {code}"
    return _granted_by(found.authorized_operations, operation, how)


def probe_group_operation(admin: AdminClient, group: str, operation: str, timeout: float) -> State:
    from confluent_kafka import KafkaException

    how = "the operations the broker authorizes on the group"
    try:
        found = admin.describe_consumer_groups(
            [group], include_authorized_operations=True, request_timeout=timeout
        )[group].result(timeout=timeout)
    except KafkaException as exc:
        code = _code(exc)
        if code == "GROUP_AUTHORIZATION_FAILED":
            return MISSING, f"{how}: not even Describe ({code})"
        return UNKNOWN, f"{how}: {code}"
    return _granted_by(found.authorized_operations, operation, how)


def may_read_acls(admin: AdminClient, timeout: float) -> bool:
    """Whether the broker lets the principal read ACLs (Describe on the cluster): without it,
    DescribeAcls answers an empty list, which would read as "nothing granted"."""
    from confluent_kafka import KafkaException

    try:
        found = admin.describe_cluster(include_authorized_operations=True, request_timeout=timeout).result(
            timeout=timeout
        )
    except KafkaException:
        return False
    names = {_name(op) for op in found.authorized_operations or ()}
    return bool(names & {"DESCRIBE", "ALTER", "ALL"})


def probe_transactional_id(conns: Connections, transactional_id: str, timeout: float) -> State:
    from confluent_kafka import KafkaException

    how = "InitProducerId with a throwaway id under it"
    producer = conns.transactional_producer(f"{transactional_id}.doctor-{uuid.uuid4().hex[:8]}")
    try:
        producer.init_transactions(timeout)
        code = None
    except KafkaException as exc:
        code = _code(exc)
    if code == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED":
        # A LITERAL ACL on the real id would not cover the throwaway one: not told.
        return UNKNOWN, f"{how}: denied (a literal ACL on the id itself cannot be seen this way)"
    return _from_code(code, (), (), how)


class KafkaDoctor:
    """Tells each binding once (several commands share many), the broker's answer first."""

    def __init__(self, conns: Connections, timeout: float) -> None:
        self.conns = conns
        self.timeout = timeout
        self.principal = principal_of(conns.kafka_props)
        self.admin = conns.admin(**NO_AUTO_CREATE)
        self._acls: list[AclBinding] | None = None
        self._acls_read = False
        self._told: dict[tuple[str, str, str], State] = {}

    @property
    def acls(self) -> list[AclBinding] | None:
        if not self._acls_read:
            self._acls_read = True
            readable = self.principal is not None and may_read_acls(self.admin, self.timeout)
            self._acls = own_acls(self.admin, self.timeout) if readable else None
        return self._acls

    def tell(self, binding: Binding, topic_of_group: str | None = None) -> State:
        key = (binding.resource, binding.name, binding.operation)
        if key not in self._told:
            self._told[key] = self._tell(binding, topic_of_group)
        return self._told[key]

    def _tell(self, binding: Binding, topic_of_group: str | None) -> State:
        kind, operation = binding.resource, binding.operation
        if kind == "topic" and operation == "Describe":
            return probe_describe(self.admin, binding.name, self.timeout)
        if kind == "topic" and operation == "Create":
            return probe_create(self.admin, binding.name, self.timeout)
        if kind == "topic":
            told = probe_topic_operation(self.admin, binding.name, operation, self.timeout)
            if told[0] != UNKNOWN:
                return told
        if kind == "group":
            told = probe_group_operation(self.admin, binding.name, operation, self.timeout)
            if told[0] != UNKNOWN:
                return told
        acls = self.acls
        if acls is not None and self.principal is not None:
            held = acls_allow(acls, self.principal, binding)
            return (GRANTED if held else MISSING), "the principal's ACLs"
        if kind == "group" and topic_of_group is not None:
            return probe_group(self.conns.kafka_props, binding.name, topic_of_group, self.timeout)
        if kind == "transactional_id":
            return probe_transactional_id(self.conns, binding.name, self.timeout)
        return UNKNOWN, "no probe without side effects; the principal may not read its ACLs"


def check_kafka(
    conns: Connections,
    commands: Sequence[str],
    names_of: Mapping[str, Mapping[str, Sequence[str]]],
    suffix: str,
    timeout: float,
) -> list[Check]:
    """One check per ACL the named commands need, for each command's topics (``names_of``,
    by command), in the table's order."""
    doctor = KafkaDoctor(conns, timeout)
    checks = []
    for command in commands:
        names = names_of[command]
        for binding in bindings(command, names, suffix=suffix):
            group_topic = _group_topic(binding, names) if binding.resource == "group" else None
            state, how = doctor.tell(binding, group_topic)
            words = binding.resource.replace("_", " ")
            checks.append(
                Check(
                    command,
                    f"{words} {binding.name}",
                    binding.operation,
                    state,
                    None if state == GRANTED else fix_for(binding, doctor.principal),
                    how,
                )
            )
    return checks


def _group_topic(binding: Binding, names: Mapping[str, Sequence[str]]) -> str | None:
    """The DLQ topic a replay group belongs to (its name ends with it)."""
    return next((d for d in names.get("dlq", ()) if binding.name.endswith(d)), None)
