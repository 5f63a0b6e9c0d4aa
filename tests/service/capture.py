"""Capture what the real service says, in each breaker state, as fixtures of the fast tests.

    .venv/bin/python -m tests.service.capture

Starts PostgreSQL, a Kafka broker and the service (examples/casino-events, built by
`make service`), publishes, stops the broker, and writes /actuator/prometheus,
/actuator/health/kafka and /actuator/kafkapublisher for CLOSED, OPEN and HALF_OPEN under
tests/fixtures/service/<state>/, and Hibernate's DDL of failed_kafka_events beside them. Then
a second service, started with no broker to reach, for COLD_START: an outage before any
publish succeeded, so Micrometer has not registered kafka_publish_latency_seconds yet. And
/actuator/configprops under tests/fixtures/service/configprops/: from the first service, started
a third service started with management.endpoint.configprops.show-values=always and the producer
settings of its application.yml (the harness shortens them for outages; configprops.json), and
from the second, with Spring Boot's default, every value masked (configprops-masked.json).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers.broker_fixtures import kafka_broker
from tests.service.harness import ROOT, Service, build_service, free_port, running_service, wait_until

FIXTURES = ROOT / "tests" / "fixtures" / "service"
ENDPOINTS = {
    "prometheus.txt": "/actuator/prometheus",
    "health-kafka.json": "/actuator/health/kafka",
    "kafkapublisher.json": "/actuator/kafkapublisher",
}


def capture(service: Service, state: str) -> None:
    folder = FIXTURES / state.lower()
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in ENDPOINTS.items():
        status, body = service.get(path)
        assert status == 200, (path, status)
        if name.endswith(".json"):
            body = (json.dumps(json.loads(body), indent=2) + "\n").encode()
        (folder / name).write_bytes(body)
    print(f"captured {state} in {folder.relative_to(ROOT)}")


# The producer settings of examples/casino-events' application.yml, over the harness' short
# ones, with every value shown.
AS_CONFIGURED = {
    "casino.retry.enabled": "false",
    "management.endpoint.configprops.show-values": "always",
    "spring.kafka.producer.properties.max.block.ms": "10000",
    "spring.kafka.producer.properties.request.timeout.ms": "10000",
    "spring.kafka.producer.properties.delivery.timeout.ms": "30000",
    "spring.kafka.producer.properties.reconnect.backoff.max.ms": "1000",
}


def capture_configprops(service: Service, name: str) -> None:
    folder = FIXTURES / "configprops"
    folder.mkdir(parents=True, exist_ok=True)
    status, body = service.get("/actuator/configprops")
    assert status == 200, status
    (folder / name).write_text(json.dumps(json.loads(body), indent=2) + "\n")
    print(f"captured {name} in {folder.relative_to(ROOT)}")


def table_ddl(url: str) -> str:
    """failed_kafka_events as Hibernate created it, in pg_dump's words (table and index)."""
    pg_dump = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))[-1]
    dump = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", "-t", "failed_kafka_events", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in dump.splitlines() if line.strip() and not line.startswith("--")]
    statements = " ".join(lines).split(";")
    kept = [s.strip() for s in statements if re.match(r"\s*(CREATE|ALTER) .*failed_kafka_events", s)]
    # Schema-free, so that a test can create it in a schema of its own.
    body = "".join(re.sub(r"\s+", " ", s).replace("public.", "") + ";\n" for s in kept)
    return "-- failed_kafka_events as Hibernate creates it on PostgreSQL (tests/service/capture.py)\n" + body


def capture_cold_start(jar: Path, database_url: str, workdir: Path) -> None:
    """The service's first events, with the broker unreachable since it started."""
    properties = {"casino.retry.enabled": "false"}
    nowhere = f"127.0.0.1:{free_port()}"
    with running_service(
        jar, database_url=database_url, bootstrap=nowhere, workdir=workdir, properties=properties
    ) as service:
        service.publish("casino.player.registered.v1", 10)
        wait_until(lambda: service.breaker() == "OPEN", timeout=60, what="the breaker to open")
        wait_until(
            lambda: service.get_json("/actuator/health/kafka")["details"]["pendingEvents"] == 10,
            timeout=60,
            what="10 PENDING rows",
        )
        capture(service, "COLD_START")
        capture_configprops(service, "configprops-masked.json")


def main() -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    import pgserver

    jar = build_service()
    with tempfile.TemporaryDirectory() as tmp, pgserver.postgres_server() as pg:
        work = Path(tmp)
        broker = kafka_broker.start_broker(work / "broker")
        properties = {
            "casino.retry.enabled": "false",
            "resilience4j.circuitbreaker.instances.kafka.wait-duration-in-open-state": "5s",
        }
        try:
            with running_service(
                jar,
                database_url=pg,
                bootstrap=broker.bootstrap_servers,
                workdir=work / "svc",
                properties=properties,
            ) as service:
                service.publish("casino.player.registered.v1", 5)
                wait_until(
                    lambda: b"kafka_publish_latency_seconds_count" in service.get("/actuator/prometheus")[1],
                    timeout=30,
                    what="the first publishes",
                )
                capture(service, "CLOSED")
                broker.stop()
                service.publish("casino.player.registered.v1", 10)
                wait_until(lambda: service.breaker() == "OPEN", timeout=60, what="the breaker to open")
                service.publish("casino.player.registered.v1", 5)
                wait_until(
                    lambda: service.get_json("/actuator/health/kafka")["details"]["pendingEvents"] == 15,
                    timeout=60,
                    what="15 PENDING rows",
                )
                capture(service, "OPEN")
                wait_until(lambda: service.breaker() == "HALF_OPEN", timeout=30, what="HALF_OPEN")
                capture(service, "HALF_OPEN")
        finally:
            broker.stop()
            (FIXTURES / "failed_kafka_events.sql").write_text(table_ddl(pg))
        with pgserver.postgres_server() as cold_pg:
            capture_cold_start(jar, cold_pg, work / "cold")
            nowhere = f"127.0.0.1:{free_port()}"
            with running_service(
                jar,
                database_url=cold_pg,
                bootstrap=nowhere,
                workdir=work / "configprops",
                properties=AS_CONFIGURED,
            ) as service:
                capture_configprops(service, "configprops.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
