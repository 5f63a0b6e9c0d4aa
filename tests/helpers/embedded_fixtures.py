"""pytest plugin: an in-process Kafka (librdkafka's mock cluster) for every test that asks.

No install and no Docker: each test gets its own cluster on fresh loopback ports, so tests
can break brokers without disturbing one another. See kafkaops.demo.cluster for what it lacks.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kafkaops.demo.cluster import EmbeddedKafka

__all__ = ["closed_port", "embedded_kafka", "embedded_props"]

# Short client timeouts: against a loopback mock, anything slower than this is a failure.
FAST_CLIENT = {"socket.connection.setup.timeout.ms": "1000", "reconnect.backoff.max.ms": "200"}


@pytest.fixture
def embedded_kafka(request: pytest.FixtureRequest) -> Iterator[EmbeddedKafka]:
    """A started single-broker EmbeddedKafka; ``indirect=True`` with an int asks for more."""
    brokers = getattr(request, "param", 1)
    with EmbeddedKafka(brokers=brokers) as cluster:
        yield cluster


@pytest.fixture
def embedded_props(embedded_kafka: EmbeddedKafka) -> dict[str, str]:
    """The ``kafka:`` section of a context pointing at ``embedded_kafka``."""
    return {"bootstrap.servers": embedded_kafka.bootstrap_servers, **FAST_CLIENT}


def free_port() -> int:
    """A loopback TCP port nobody listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    return free_port()
