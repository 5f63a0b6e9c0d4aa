"""A status check that fails because the cluster denied kafkaops' principal says to run
`kafkaops doctor` in its next step; any other failure does not."""

from __future__ import annotations

import time

from kafkaops.common.errors import KafkaAuthorizationError, KafkaUnavailableError
from kafkaops.status import checks
from kafkaops.status.gather import _collect, _Source


def _failing(error: Exception) -> _Source[None]:
    def work() -> None:
        raise error

    return _Source("consumer_lag", work, time.monotonic() + 5)


def test_a_denied_source_points_at_doctor() -> None:
    denied = KafkaAuthorizationError(
        "Read on group g denied to User:svc (GROUP_AUTHORIZATION_FAILED)",
        hint="grant it, e.g. kafka-acls ...",
    )
    _, error = _collect(_failing(denied), "consumer_lag", 5)
    assert error is not None and error.denied
    check = checks.source_unreachable("consumer_lag", error.message, error.hint, denied=error.denied)
    assert check.status == "UNKNOWN"
    assert (
        check.next_step
        == "grant it, e.g. kafka-acls ...; then every permission kafkaops needs: kafkaops doctor"
    )


def test_an_unreachable_source_does_not() -> None:
    down = KafkaUnavailableError("cannot reach Kafka at b:9092: refused", hint="check bootstrap.servers")
    _, error = _collect(_failing(down), "kafka", 5)
    assert error is not None and not error.denied
    check = checks.source_unreachable("kafka", error.message, error.hint, denied=error.denied)
    assert check.next_step == "check bootstrap.servers"
