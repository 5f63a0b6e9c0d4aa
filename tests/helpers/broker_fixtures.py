"""pytest plugin owning the real Apache Kafka broker fixtures of the test suite.

* ``kafka_libs`` (session): the cached Kafka jars (scripts/kafka_broker.py fetches them once
  through Maven); skips, with one line saying why, when ``java`` or ``mvn`` is missing.
* ``kafka_bootstrap`` (session): ``bootstrap.servers`` of a broker for the whole session,
  ``$KAFKAOPS_TEST_BOOTSTRAP_SERVERS`` if set, otherwise a single-node KRaft broker started in
  a temp dir and stopped at the end. A failed download or start on a machine that has Java
  and Maven is an error, never a skip: a silently skipped Kafka suite proves nothing.
* ``new_topic`` (function): a factory for uniquely named topics, so no two tests share one.

Loaded by tests/conftest.py (``pytest_plugins``) or with ``-p tests.helpers.broker_fixtures``. Tests
that use these fixtures carry ``@pytest.mark.kafka``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_ENV = "KAFKAOPS_TEST_BOOTSTRAP_SERVERS"
SKIP_PREFIX = "real Kafka broker tests skipped"


def _load_kafka_broker() -> ModuleType:
    # scripts/ is not a package; reuse the module if conftest already made it importable so
    # that there is only ever one copy of its classes (isinstance checks on its exceptions).
    existing = sys.modules.get("kafka_broker")
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location("kafka_broker", ROOT / "scripts" / "kafka_broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kafka_broker"] = module
    spec.loader.exec_module(module)
    return module


kafka_broker = _load_kafka_broker()

NewTopicFactory = Callable[..., str]


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The Kafka jars for the default version, fetched on first use."""
    try:
        libs: Path = kafka_broker.ensure_kafka()
    except kafka_broker.KafkaToolMissingError as exc:
        pytest.skip(f"{SKIP_PREFIX}: {exc}")
    return libs


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``bootstrap.servers`` of a real broker shared by the whole session."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    try:
        kafka_broker.ensure_kafka()
    except kafka_broker.KafkaToolMissingError as exc:
        pytest.skip(f"{SKIP_PREFIX}: {exc}")
    workdir = tmp_path_factory.mktemp("kafka-broker")
    broker = kafka_broker.start_broker(workdir)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def _wait_for_topic(admin: Any, name: str, partitions: int, deadline: float) -> None:
    # CreateTopics returns once the controller accepted the topic; the partition leaders
    # reach the broker's metadata cache a moment later, and a producer started in that gap
    # would see UNKNOWN_TOPIC_OR_PART.
    while True:
        metadata = admin.list_topics(topic=name, timeout=5)
        topic = metadata.topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} has no leaders for all {partitions} partitions yet")
        time.sleep(0.05)


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[NewTopicFactory]:
    """``new_topic(partitions=1, *, name_prefix="t") -> str``: create a fresh topic."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def factory(partitions: int = 1, *, name_prefix: str = "t") -> str:
        name = f"{name_prefix}-{uuid.uuid4().hex[:12]}"
        # replication_factor=-1: the broker's default, so an external multi-broker cluster
        # given through $KAFKAOPS_TEST_BOOTSTRAP_SERVERS works too.
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=-1)],
            operation_timeout=30,
            request_timeout=30,
        )
        futures[name].result(timeout=30)
        _wait_for_topic(admin, name, partitions, time.monotonic() + 30)
        created.append(name)
        return name

    yield factory

    if created:
        # Best effort: keeps a long-lived external broker tidy; a failure here is not the
        # test's failure.
        for future in admin.delete_topics(created, operation_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)
