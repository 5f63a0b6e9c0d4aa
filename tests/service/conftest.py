"""Fixtures of the service tests: the casino-events jar, its own database, its own broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from kafkaops.db.engine import create_engine
from tests.helpers.broker_fixtures import kafka_broker
from tests.service.harness import SKIP_PREFIX, ServiceMissing, build_service


@pytest.fixture(scope="session")
def service_jar() -> Path:
    """examples/casino-events/target/casino-events.jar, built by `make service`."""
    try:
        return build_service()
    except ServiceMissing as exc:
        pytest.skip(f"{SKIP_PREFIX}: {exc}")


@pytest.fixture(scope="module")
def new_database(pg_url: str) -> Iterator[Callable[[], str]]:
    """`new_database() -> url`: an empty PostgreSQL database, dropped after the module."""
    admin = create_engine(pg_url).execution_options(isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def factory() -> str:
        name = f"svc_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))

    yield factory
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class OwnBroker:
    """A broker of the module's own, which a test may stop and start again on its port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = kafka_broker.start_broker(workdir)
        self.port = self.broker.port

    @property
    def bootstrap_servers(self) -> str:
        return str(self.broker.bootstrap_servers)

    def stop(self) -> None:
        self.broker.stop()

    def start(self) -> None:
        """Start again on the same port (an empty log: topics come back as they are used)."""
        self.broker = kafka_broker.start_broker(self.workdir, port=self.port)


@pytest.fixture(scope="module")
def own_broker(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path_factory.mktemp("service-broker"))
    try:
        yield broker
    finally:
        broker.stop()
