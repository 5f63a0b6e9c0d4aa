"""kafkaops' readers of the service's endpoints, fed what the real service said.

tests/fixtures/service/<state>/ holds /actuator/prometheus, /actuator/health/kafka and
/actuator/kafkapublisher as examples/casino-events answered them with its breaker CLOSED, OPEN
and HALF_OPEN (captured by `python -m tests.service.capture`). The stand-in of the demo,
kafkaops/demo/service.py, is checked against them: same metric names, labels and JSON keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kafkaops.demo.service import FakeService, health_body, metrics_text, stats_body
from kafkaops.status.model import InstanceStatus
from kafkaops.status.service import (
    BREAKER_METRIC,
    EXECUTOR_METRICS,
    LATENCY,
    QUEUE_REMAINING,
    read_health,
    read_metrics,
    read_stats,
)
from kafkaops.status.settings import AppSettings
from tests.helpers.config import write_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "service"
STATES = ["CLOSED", "OPEN", "HALF_OPEN"]


def scrape(state: str, name: str) -> str:
    return (FIXTURES / state.lower() / name).read_text()


def read_all(state: str, app: AppSettings | None = None) -> InstanceStatus:
    status = InstanceStatus(name="casino-events", url="http://127.0.0.1:8080")
    read_metrics(status, scrape(state, "prometheus.txt"), app or AppSettings())
    read_health(status, json.loads(scrape(state, "health-kafka.json")))
    read_stats(status, json.loads(scrape(state, "kafkapublisher.json")))
    return status


@pytest.mark.parametrize("state", STATES)
def test_each_breaker_state_is_read_from_every_endpoint(state: str) -> None:
    from_metrics = InstanceStatus(name="a", url="u")
    read_metrics(from_metrics, scrape(state, "prometheus.txt"), AppSettings())
    from_health = InstanceStatus(name="a", url="u")
    read_health(from_health, json.loads(scrape(state, "health-kafka.json")))
    from_stats = InstanceStatus(name="a", url="u")
    read_stats(from_stats, json.loads(scrape(state, "kafkapublisher.json")))
    assert (from_metrics.breaker, from_health.breaker, from_stats.breaker) == (state, state, state)
    assert from_metrics.missing == [] and from_metrics.invalid == []
    assert from_health.health == ("UP" if state == "CLOSED" else "DEGRADED")


def test_the_publisher_pool_is_judged_not_springs_scheduler() -> None:
    """Spring Boot exposes its taskScheduler beside the publisher's pool (with 2^31-1 threads)."""
    status = InstanceStatus(name="a", url="u")
    read_metrics(status, scrape("CLOSED", "prometheus.txt"), AppSettings())
    (pool,) = status.pools
    assert (pool.executor, pool.max_pool, pool.queue_capacity) == ("kafkaPublisherExecutor", 50, 10_000)
    # Another pool only when asked for by name.
    chosen = InstanceStatus(name="a", url="u")
    read_metrics(chosen, scrape("CLOSED", "prometheus.txt"), AppSettings(executor="taskScheduler"))
    assert [p.executor for p in chosen.pools] == ["taskScheduler"]


def test_counters_and_latency_of_the_outage_as_the_service_counted_them() -> None:
    status = read_all("OPEN")
    health = json.loads(scrape("OPEN", "health-kafka.json"))["details"]
    assert status.pending == health["pendingEvents"] > 0
    assert status.oldest_pending_age == health["oldestPendingAge"]
    assert status.stored_for_retry == health["pendingEvents"]
    assert status.published["error"] == health["pendingEvents"]
    assert status.published["success"] > 0
    assert status.errors == {
        "TimeoutException": pytest.approx(status.published["error"] - status.breaker_opens)
    }
    assert status.latency_kind == "p99" and status.latency_s is not None and status.latency_s > 0


def families(text: str) -> dict[str, set[str]]:
    """Sample name -> its label names, for the samples kafkaops reads."""
    read = {*EXECUTOR_METRICS, QUEUE_REMAINING, BREAKER_METRIC, f"{LATENCY}_bucket", f"{LATENCY}_count"}
    read |= {f"{LATENCY}_sum", "kafka_events_published_total", "kafka_events_errors_total"}
    read |= {"kafka_circuit_breaker_open_total", "kafka_events_stored_for_retry_total"}
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in read:
                found.setdefault(sample.name, set()).update(sample.labels)
    return found


def keys(data: Any) -> set[str]:
    """Every key path of a JSON object: {"a": {"b": 1}} -> {"a", "a.b"}."""
    if not isinstance(data, dict):
        return set()
    return {k for k in data} | {f"{k}.{sub}" for k, v in data.items() for sub in keys(v)}


def test_the_demo_stand_in_says_what_the_real_service_says() -> None:
    real = families(scrape("OPEN", "prometheus.txt"))
    assert families(metrics_text()) == real
    assert keys(health_body(breaker="OPEN", oldestPendingAge="2 hours")) == keys(
        json.loads(scrape("OPEN", "health-kafka.json"))
    )
    assert keys(stats_body()) == keys(json.loads(scrape("OPEN", "kafkapublisher.json")))


def test_before_the_first_successful_publish_the_latency_timer_is_not_called_missing() -> None:
    """Micrometer registers kafka_publish_latency_seconds at the first successful publish: a
    service whose broker was unreachable since it started has no timer yet (COLD_START)."""
    assert LATENCY not in scrape("COLD_START", "prometheus.txt")
    status = read_all("COLD_START")
    assert status.breaker == "OPEN"
    assert "success" not in status.published and status.published["error"] > 0
    assert status.missing == []
    assert (status.latency_s, status.latency_kind) == (None, "no publish yet")


def test_a_service_that_has_published_without_a_latency_timer_is_missing_it() -> None:
    text = "".join(
        line for line in scrape("CLOSED", "prometheus.txt").splitlines(keepends=True) if LATENCY not in line
    )
    status = InstanceStatus(name="a", url="u")
    read_metrics(status, text, AppSettings())
    assert status.published["success"] > 0
    assert status.missing == [LATENCY]
    assert (status.latency_s, status.latency_kind) == (None, None)


@pytest.mark.slow
def test_status_shows_a_cold_start_as_no_publish_yet(cli: Any, tmp_path: Path) -> None:
    with FakeService() as service:
        service.set_text("/actuator/prometheus", scrape("COLD_START", "prometheus.txt"))
        service.set_json("/actuator/health/kafka", json.loads(scrape("COLD_START", "health-kafka.json")))
        config = write_config(
            tmp_path / "kafkaops.yaml",
            current="svc",
            app={"instances": [service.url]},
            status={"state_dir": str(tmp_path / "state")},
        )
        table = cli("status", "--config", str(config), "-o", "table")
        report = json.loads(cli("status", "--config", str(config), "-o", "json").stdout)
    (instance,) = report["instances"]
    assert instance["missing_metrics"] == []
    assert (instance["publish_latency_s"], instance["publish_latency_kind"]) == (None, "no publish yet")
    (check,) = [c for c in report["checks"] if c["name"].startswith("service")]
    assert "not exposed" not in check["message"]
    assert "no publish yet" in table.stdout and "not exposed" not in table.stdout
