"""An outage end to end, against the real service: the broker stops, the service's breaker
opens and Hibernate writes PENDING rows; `kafkaops status` reports it as the service does;
the broker comes back and `kafkaops retry` (the service's own job off) publishes each event
once. The same table, made by JPA, is what `db check`, `failed` and `retry` run on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from kafkaops.audit.table import create_audit_table
from kafkaops.config.settings import DatabaseSettings
from kafkaops.db.engine import create_engine
from tests.service.conftest import OwnBroker
from tests.service.harness import Service, records_of, running_service, wait_until

pytestmark = [pytest.mark.service, pytest.mark.kafka, pytest.mark.timeout(300)]

TOPIC = "casino.game.round-completed.v1"


class Outage:
    """The module's shared state: the service, its database and broker, what it published."""

    def __init__(self, service: Service, database_url: str, broker: OwnBroker, workdir: Path) -> None:
        self.service = service
        self.database_url = database_url
        self.broker = broker
        self.workdir = workdir
        self.event_ids: list[str] = []

    def config(self, tmp_path: Path) -> Path:
        """A kafkaops config with nothing but where things are: every other key its default."""
        context = {
            "database": {"url": self.database_url},
            "kafka": {"bootstrap.servers": self.broker.bootstrap_servers},
            "app": {"instances": [self.service.base_url]},
            "status": {"state_dir": str(tmp_path / "state")},
        }
        path = tmp_path / "kafkaops.yaml"
        path.write_text(yaml.safe_dump({"current-context": "svc", "contexts": {"svc": context}}))
        engine = create_engine(self.database_url)
        create_audit_table(engine, DatabaseSettings(url=self.database_url))  # as `kafkaops db init` would
        engine.dispose()
        return path

    def rows(self) -> list[dict[str, Any]]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text("SELECT * FROM failed_kafka_events ORDER BY id"))
                return [dict(r._mapping) for r in result]
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def outage(
    service_jar: Path, new_database: Any, own_broker: OwnBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outage]:
    database_url = new_database()
    workdir = tmp_path_factory.mktemp("outage-service")
    properties = {
        "casino.retry.enabled": "false",  # kafkaops retry is the only retry pass here
        "casino.retry.schedule": "1s,5m,15m,60m",  # stored rows are due a second later
        "resilience4j.circuitbreaker.instances.kafka.wait-duration-in-open-state": "60s",
    }
    with running_service(
        service_jar,
        database_url=database_url,
        bootstrap=own_broker.bootstrap_servers,
        workdir=workdir,
        properties=properties,
    ) as service:
        yield Outage(service, database_url, own_broker, workdir)


def test_outage_status_then_retry_publishes_each_event_once(outage: Outage, cli: Any, tmp_path: Path) -> None:
    service = outage.service
    assert service.breaker() == "CLOSED"
    outage.broker.stop()

    # The first sends time out (max.block.ms) and open the breaker; later ones are rejected by it.
    outage.event_ids += service.publish(TOPIC, 10)
    wait_until(lambda: service.breaker() == "OPEN", timeout=60, what="the breaker to open")
    outage.event_ids += service.publish(TOPIC, 10)
    wait_until(lambda: len(outage.rows()) == 20, timeout=60, what="20 rows stored for retry")

    rows = outage.rows()
    assert {r["status"] for r in rows} == {"PENDING"}
    assert sorted(r["event_id"] for r in rows) == sorted(outage.event_ids)
    assert {r["error_type"] for r in rows} == {
        "org.apache.kafka.common.errors.TimeoutException",
        "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
    }
    health = service.get_json("/actuator/health/kafka")
    assert health["status"] == "DEGRADED"
    assert health["details"]["circuitBreakerState"] == "OPEN"
    assert health["details"]["pendingEvents"] == 20

    config = outage.config(tmp_path)
    result = cli("status", "--config", str(config), "-o", "json")
    report = json.loads(result.stdout)
    # Every publish since the service started failed: the error ratio is CRITICAL, whatever the
    # breaker (OPEN for less than 5 minutes: WARNING) and the broker (unreachable: UNKNOWN) say.
    assert result.exit_code == 2, result.stdout + result.stderr
    assert report["status"] == "CRITICAL"
    (instance,) = report["instances"]
    assert instance["circuit_breaker"] == "OPEN"
    assert instance["pending_events"] == 20
    assert re.fullmatch(r"\d+ seconds?", instance["oldest_pending_age"])
    assert report["database"]["pending"] == 20
    assert report["database"]["oldest_pending_age_s"] < 120
    checks = {c["name"].split()[0]: c for c in report["checks"]}
    assert checks["circuit_breaker"]["status"] == "WARNING"
    assert checks["circuit_breaker"]["message"].startswith("circuit breaker OPEN for ")
    assert checks["kafka"]["status"] == "UNKNOWN"
    assert checks["pending_events"]["message"] == "20 PENDING events"
    assert checks["publish_errors"]["status"] == "CRITICAL"
    assert checks["publish_errors"]["message"].startswith("20 of 20 publishes failed")

    outage.broker.start()
    result = cli("retry", "--config", str(config), "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["resolved"] == 20, summary
    assert {r["status"] for r in outage.rows()} == {"RESOLVED"}

    on_topic = records_of(outage.broker.bootstrap_servers, TOPIC)
    assert sorted(json.loads(value)["eventId"] for value, _ in on_topic) == sorted(outage.event_ids)
    # The headers the service stored go out as they were: its eventId, eventType and source.
    for value, headers in on_topic:
        assert headers == {
            "eventId": json.loads(value)["eventId"].encode(),
            "eventType": TOPIC.encode(),
            "source": b"casino-events",
        }


def test_db_check_accepts_the_table_hibernate_made(outage: Outage, cli: Any, tmp_path: Path) -> None:
    result = cli("db", "check", "--config", str(outage.config(tmp_path)))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Table failed_kafka_events matches the mapping." in result.stderr
    # Hibernate maps Instant to timestamp(6) with time zone: said as the database says it.
    assert "Times are stored as timestamp(6) with time zone." in result.stderr


def test_failed_reads_the_rows_hibernate_wrote(outage: Outage, cli: Any, tmp_path: Path) -> None:
    config = str(outage.config(tmp_path))
    stored = outage.rows()
    result = cli("failed", "--config", config, "-o", "json")
    assert result.exit_code == 0, result.stderr
    counts = {row["status"]: row["count"] for row in json.loads(result.stdout)}
    assert sum(counts.values()) == len(stored) > 0
    result = cli("failed", "list", "--config", config, "--all", "-o", "json")
    assert result.exit_code == 0, result.stderr
    listed = {row["id"]: row for row in json.loads(result.stdout)}
    for row in stored:
        shown = listed[row["id"]]
        assert (shown["event_id"], shown["topic"], shown["event_key"], shown["error_type"]) == (
            row["event_id"],
            row["topic"],
            row["event_key"],
            row["error_type"],
        )
        # Hibernate's Instant (microseconds, UTC) shown to the second, in UTC.
        assert shown["created_at"] == row["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
