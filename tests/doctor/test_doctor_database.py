"""`kafkaops doctor`'s database side on PostgreSQL: a role missing SELECT, UPDATE or DELETE on
the table is told, with the GRANT that gives it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kafkaops.doctor import acls
from kafkaops.doctor.database import PRIVILEGES
from tests.conftest import Cli, TestDatabase
from tests.helpers.acl_scenario import make_world
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.secure_broker import Grant, KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
def role(pg_database: TestDatabase) -> Iterator[str]:
    name = f"doctor_{uuid.uuid4().hex[:8]}"
    with pg_database.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{name}" LOGIN'))
    yield name
    with pg_database.engine.begin() as conn:
        conn.execute(sa.text(f'DROP OWNED BY "{name}"'))
        conn.execute(sa.text(f'DROP ROLE "{name}"'))


@pytest.mark.parametrize("withheld", PRIVILEGES)
def test_a_privilege_the_role_lacks_on_the_table_is_named_with_its_grant(
    withheld: str,
    cli: Cli,
    role: str,
    pg_database: TestDatabase,
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(secure_broker, pg_database, kafka_user(), tmp_path)
    secure_broker.grant(world.user, *world.grants("status"))
    table = f'"{pg_database.schema}".failed_kafka_events'
    granted = ", ".join(p for p in PRIVILEGES if p != withheld)
    with pg_database.engine.begin() as conn:
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{pg_database.schema}" TO "{role}"'))
        conn.execute(sa.text(f'GRANT {granted} ON {table} TO "{role}"'))
    url = sa.make_url(pg_database.url).set(username=role, password=None)
    config = write_config(
        tmp_path / "doctor.yaml",
        None,
        kafka={**world.user.kafka, **FAST_CLIENT},
        database={"url": url.render_as_string(hide_password=False), "schema": pg_database.schema},
    )
    config.chmod(0o600)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))

    result = cli("doctor", "status", "-o", "json")

    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    database = {c["operation"]: c for c in report["checks"] if c["command"] == "database"}
    assert database["connect"]["state"] == "granted"
    assert database["columns"]["state"] == "granted"
    assert {p: database[p]["state"] for p in PRIVILEGES} == {
        p: "missing" if p == withheld else "granted" for p in PRIVILEGES
    }
    quoted = f'"{pg_database.schema}"."failed_kafka_events"'
    assert database[withheld]["fix"] == f'GRANT {withheld} ON {quoted} TO "{role}"'
    kafka = [c for c in report["checks"] if c["command"] == "status"]
    assert kafka and all(c["state"] == "granted" for c in kafka)
    assert acls.COMMANDS[0] == "status"


def test_no_grant_is_missing_for_the_tables_owner(
    cli: Cli,
    pg_database: TestDatabase,
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(secure_broker, pg_database, kafka_user(), tmp_path)
    secure_broker.grant(world.user, *world.grants("status"), Grant("broker", "kafka-cluster", "describe"))
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(world.config))
    result = cli("doctor", "status", "-o", "json")
    assert result.exit_code == 0, result.stdout
