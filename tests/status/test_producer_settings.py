"""The service's producer settings, read from its /actuator/configprops on a real loopback HTTP
server serving what the reference service (Spring Boot 3.5, examples/casino-events) answered
(tests/fixtures/service/configprops/: with management.endpoint.configprops.show-values=always,
and masked, Spring Boot's default), shown beside the runbook's; `status` says a difference as
information only; an endpoint not exposed, refused or answering HTML is one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.service import FakeService
from kafkaops.kafka.producer_settings import compare
from kafkaops.status.configprops import producer_settings
from tests.helpers.status import checks_by_name, configure, status_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "service" / "configprops"
PATH = "/actuator/configprops"


def captured(name: str = "configprops.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def kafka_bean(data: dict[str, Any]) -> dict[str, Any]:
    beans = data["contexts"]["casino-events"]["beans"]
    return next(b for b in beans.values() if b["prefix"] == "spring.kafka")["properties"]  # type: ignore[no-any-return]


def test_the_reference_services_settings_are_read_with_spring_boots_precedence() -> None:
    data = captured()
    assert producer_settings(data) == {
        "batch.size": "32768",  # "32768B", a Spring DataSize
        "linger.ms": "10",
        "acks": "all",
        "delivery.timeout.ms": "30000",
    }
    kafka = kafka_bean(data)
    kafka["properties"] = {"linger.ms": "50", "compression.type": "lz4"}  # spring.kafka.properties.*
    kafka["producer"]["batchSize"] = "64KB"
    assert producer_settings(data)["linger.ms"] == "10"  # producer.properties.* wins
    assert producer_settings(data)["compression.type"] == "lz4"
    assert producer_settings(data)["batch.size"] == "65536"


def test_differences_from_the_runbook_are_marked() -> None:
    marked = {c.setting: c.differs for c in compare({"batch.size": "16384", "acks": "-1", "linger.ms": "10"})}
    assert marked == {
        "batch.size": True,
        "linger.ms": False,
        "acks": False,  # -1 is all
        "compression.type": False,  # not set: the client's default, no claim made
        "max.in.flight.requests.per.connection": False,
        "delivery.timeout.ms": False,
    }
    assert compare({})[0].differs  # batch.size not set cannot meet the runbook's 32768


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    with FakeService() as svc:
        svc.healthy()
        app = {"configprops_path": PATH}
        configure(tmp_path, monkeypatch, instances=[{"name": "svc", "url": svc.url}], app=app)
        yield svc


def settings_check(cli: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    code, doc, _ = status_json(cli)
    return code, checks_by_name(doc)["producer_settings svc"], doc["instances"][0]["producer_settings"]


def test_status_shows_the_services_settings_as_expected(cli: Any, service: FakeService) -> None:
    service.set_json(PATH, captured())
    code, check, shown = settings_check(cli)
    assert (check["status"], check["value"]) == ("OK", 0)
    assert (
        check["message"] == "as expected: batch.size 32768, linger.ms 10, acks all, delivery.timeout.ms 30000"
    )
    assert shown["settings"][0] == {
        "setting": "batch.size",
        "service": "32768",
        "expected": "32768",
        "source": "runbook",
        "differs": False,
    }
    assert code == 0


def test_a_difference_is_information_and_never_a_failure(cli: Any, service: FakeService) -> None:
    data = captured()
    producer = kafka_bean(data)["producer"]
    producer["batchSize"] = "16KB"
    producer["properties"]["linger.ms"] = "0"
    service.set_json(PATH, data)
    code, check, shown = settings_check(cli)
    assert check["status"] == "OK" and check["value"] == 2
    assert (
        check["message"]
        == "differs (information): batch.size 16384 (runbook 32768), linger.ms 0 (runbook 10)"
    )
    assert [s["setting"] for s in shown["settings"] if s["differs"]] == ["batch.size", "linger.ms"]
    assert code == 0


@pytest.mark.parametrize(
    ("serve", "said"),
    [
        (
            None,
            "HTTP 404, the service does not expose configprops: set management.endpoints.web.exposure.include=configprops on it",
        ),
        (
            (401, "application/json", "{}"),
            "HTTP 401, the service refused kafkaops' credentials (app.username and app.password, or app.token)",
        ),
        (
            (200, "text/html", "<html><body>Sign in</body></html>"),
            "answered HTML, not configprops' JSON (a login page or a proxy in front of the actuator?)",
        ),
        (
            (200, "application/json", json.dumps(captured("configprops-masked.json"))),
            "configprops masks the values (******): set management.endpoint.configprops.show-values=always on the service",
        ),
        (
            (200, "application/json", '{"status": "UP"}'),
            'unexpected JSON (no "contexts": not Spring Boot\'s configprops)',
        ),
    ],
    ids=["not-exposed", "401", "html", "masked", "not-configprops"],
)
def test_settings_that_cannot_be_read_are_one_line_and_the_service_stays_ok(
    cli: Any, service: FakeService, serve: tuple[int, str, str] | None, said: str
) -> None:
    if serve is not None:
        status, content_type, body = serve
        service.set_text(PATH, body, status=status, content_type=content_type)
    code, check, shown = settings_check(cli)
    assert check["status"] == "OK"
    assert check["message"] == f"not read: {service.url}{PATH}: {said}"
    assert shown == {"settings": [], "note": f"{service.url}{PATH}: {said}"}
    assert code == 0
    assert "configprops" not in json.dumps(checks_by_name(status_json(cli)[1])["service svc"])


def test_without_configprops_configured_nothing_is_asked(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeService() as svc:
        svc.healthy()
        configure(tmp_path, monkeypatch, instances=[{"name": "svc", "url": svc.url}])
        _, doc, _ = status_json(cli)
    assert "producer_settings svc" not in checks_by_name(doc)
    assert doc["instances"][0]["producer_settings"] is None
    assert not [r for r in svc.requests if r[1] == PATH]
