"""Fixtures of the status tests: the service stand-in on loopback, and a port that never answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kafkaops.demo.service import FakeService


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService().healthy() as running:
        yield running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]
