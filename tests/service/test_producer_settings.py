"""`status` reading the real service's producer settings from its /actuator/configprops
(examples/casino-events, Spring Boot 3.5), beside the runbook's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.status import checks_by_name, configure
from tests.service.harness import running_service

pytestmark = [pytest.mark.service, pytest.mark.kafka, pytest.mark.timeout(300)]


def test_status_shows_the_services_producer_settings_and_their_differences_as_information(
    cli: Any,
    service_jar: Path,
    new_database: Any,
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    properties = {
        "casino.retry.enabled": "false",
        "management.endpoint.configprops.show-values": "always",
        "spring.kafka.producer.properties.linger.ms": "0",  # the runbook says 10
    }
    with running_service(
        service_jar,
        database_url=new_database(),
        bootstrap=kafka_bootstrap,
        workdir=tmp_path / "svc",
        properties=properties,
    ) as service:
        app = {"configprops_path": "/actuator/configprops"}
        configure(tmp_path, monkeypatch, instances=[{"name": "svc", "url": service.base_url}], app=app)
        result = cli("status", "-o", "json")
    doc = json.loads(result.stdout)
    check = checks_by_name(doc)["producer_settings svc"]
    assert check["status"] == "OK"
    # delivery.timeout.ms: the harness shortens it (2500) for its outage tests.
    assert check["message"] == (
        "differs (information): linger.ms 0 (runbook 10), delivery.timeout.ms 2500 (reference service 30000)"
    )
    shown = {s["setting"]: s["service"] for s in doc["instances"][0]["producer_settings"]["settings"]}
    assert shown["batch.size"] == "32768" and shown["acks"] == "all"
    assert doc["status"] == "OK" and result.exit_code == 0
