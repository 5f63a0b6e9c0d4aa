"""The secure test broker itself: SASL_SSL logins (PLAIN and SCRAM-SHA-512) over TLS from the
test CA, and ACLs that the broker enforces as soon as the helpers return."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers.secure_broker import Grant, KafkaUser, SecureBroker

pytestmark = pytest.mark.kafka


def _visible(user: KafkaUser, topic: str) -> str:
    """What the broker says of ``topic`` to ``user``: "ok" or the error's name."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(user.kafka).list_topics(topic=topic, timeout=10)
    error = metadata.topics[topic].error
    return "ok" if error is None else error.name()


def test_a_scram_user_sees_a_topic_only_while_it_holds_describe(
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    secure_topic: Callable[..., str],
) -> None:
    topic = secure_topic()
    user = kafka_user()

    assert _visible(user, topic) == "TOPIC_AUTHORIZATION_FAILED"
    secure_broker.grant(user, Grant("topic", topic, "describe"))
    assert _visible(user, topic) == "ok"
    assert secure_broker.acls(user.principal) == {Grant("topic", topic, "describe")}
    secure_broker.revoke(user, Grant("topic", topic, "describe"))
    assert _visible(user, topic) == "TOPIC_AUTHORIZATION_FAILED"


def test_the_plain_user_logs_in_and_a_prefixed_acl_covers_its_topics(
    secure_broker: SecureBroker, secure_topic: Callable[..., str]
) -> None:
    topic = secure_topic(name_prefix="pfx")
    user = secure_broker.plain_user()
    grant = Grant("topic", "pfx-", "describe", "PREFIXED")
    secure_broker.grant(user, grant)
    try:
        assert _visible(user, topic) == "ok"
    finally:
        secure_broker.revoke(user, grant)


def test_a_wrong_password_is_refused(
    secure_broker: SecureBroker, kafka_user: Callable[..., KafkaUser]
) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    user = kafka_user()
    errors: list[KafkaError] = []
    client = AdminClient({**user.kafka, "sasl.password": "wrong", "log_level": 0, "error_cb": errors.append})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=3)
    client.poll(0)
    assert "_AUTHENTICATION" in {e.name() for e in errors}
