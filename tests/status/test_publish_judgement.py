"""`status` judges what the service says about its publishing: the p99 publish latency (per
topic where the timer is tagged) against thresholds.publish_latency, the error ratio between two
runs against thresholds.publish_error_ratio, and a breaker OPEN while kafkaops reaches the
brokers itself.

The service's answers are the real captured scrapes (tests/fixtures/service/), served by a
loopback HTTP stand-in; Kafka is the embedded cluster over TCP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.cluster import EmbeddedKafka
from kafkaops.demo.service import FakeService, metrics_text
from tests.helpers.status import checks_by_name, configure, status_json
from tests.status.test_service_scrapes import scrape

TOPIC = "casino.player.registered.v1"
LATENCY_STEP_START = "the runbook's High latency steps: the service's producer batch.size (32768)"


def captured(state: str) -> FakeService:
    service = FakeService()
    service.set_text("/actuator/prometheus", scrape(state, "prometheus.txt"))
    service.set_json("/actuator/health/kafka", json.loads(scrape(state, "health-kafka.json")))
    service.set_json("/actuator/kafkapublisher", json.loads(scrape(state, "kafkapublisher.json")))
    return service


def _app(service: FakeService) -> dict[str, Any]:
    return {"instances": [{"name": "pod-0", "url": service.url}], "stats_path": "/actuator/kafkapublisher"}


def _counters(success: float, error: float, *, scrape_of: str = "OPEN") -> str:
    """The captured scrape with its publish counters set (as the service's would grow)."""
    text = scrape(scrape_of, "prometheus.txt")
    text = re.sub(r'(kafka_events_published_total\{status="success"[^}]*\}) \S+', rf"\1 {success}", text)
    return re.sub(r'(kafka_events_published_total\{status="error"[^}]*\}) \S+', rf"\1 {error}", text)


def _histogram(p99_by_topic: dict[str, float]) -> str:
    """A timer tagged per topic, each topic's 100 publishes all at the given latency."""
    lines = ["# TYPE kafka_publish_latency_seconds histogram"]
    for topic, seconds in p99_by_topic.items():
        for le in ("0.05", "0.5", "2.0", "8.0", "+Inf"):
            n = 100 if le == "+Inf" or float(le) >= seconds else 0
            lines.append(f'kafka_publish_latency_seconds_bucket{{topic="{topic}",le="{le}",}} {n}')
        lines.append(f'kafka_publish_latency_seconds_count{{topic="{topic}",}} 100')
        lines.append(f'kafka_publish_latency_seconds_sum{{topic="{topic}",}} {100 * seconds}')
    return "\n".join(lines) + "\n"


# -- latency ----------------------------------------------------------------------------------------


def test_the_captured_p99_is_judged_against_the_default_thresholds(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured("CLOSED") as service:
        configure(tmp_path, monkeypatch, app=_app(service))
        code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["publish_latency pod-0"]
    # The service's own histogram: p99 268 ms, over the 100 ms warning.
    assert check["status"] == "WARNING"
    assert check["message"] == f"publish p99 268 ms on {TOPIC} (> 100 ms)"
    assert check["next_step"].startswith(LATENCY_STEP_START)
    assert doc["instances"][0]["publish_latency_p99_by_topic"] == {TOPIC: pytest.approx(0.268, abs=0.001)}
    assert code == 1


def test_latency_thresholds_come_from_the_config(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured("CLOSED") as service:
        configure(
            tmp_path, monkeypatch, app=_app(service), thresholds={"publish_latency": {"warning": "300ms"}}
        )
        code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["publish_latency pod-0"]
    assert (check["status"], check["message"]) == ("OK", f"publish p99 268 ms on {TOPIC}")
    assert code == 0


def test_the_slowest_topic_is_named_and_a_p99_of_seconds_is_critical(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeService().healthy() as service:
        text = metrics_text(omit=("kafka_publish_latency",)) + _histogram(
            {"casino.wallet.deposit.v1": 0.02, "casino.bets.v1": 4.9, "casino.player.registered.v1": 1.5}
        )
        service.set_text("/actuator/prometheus", text)
        configure(tmp_path, monkeypatch, instances=[service.url])
        code, doc, _ = status_json(cli)
        table = cli("status")
    (name,) = [n for n in checks_by_name(doc) if n.startswith("publish_latency")]
    check = checks_by_name(doc)[name]
    assert check["status"] == "CRITICAL" and code == 2
    assert re.fullmatch(
        r"publish p99 \d\.\d s on casino\.bets\.v1 \(> 1\.0 s\) \(2 topics over\)", check["message"]
    )
    assert 2.0 < check["value"] <= 8.0  # within the bucket that holds 4.9 s
    # The table says it on a CRITICAL line with its next step, not as a figure on an OK line.
    line = next(x for x in table.stdout.splitlines() if "publish_latency" in x)
    assert line.startswith("CRITICAL")
    assert LATENCY_STEP_START in table.stdout


# -- error ratio ------------------------------------------------------------------------------------


def test_errors_are_judged_since_the_start_then_over_the_window_between_runs(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured("OPEN") as service:
        configure(tmp_path, monkeypatch, app=_app(service))
        _, first, _ = status_json(cli)
        # The outage as captured: 15 errors, 5 successes, no previous run to compare with.
        check = checks_by_name(first)["publish_errors pod-0"]
        assert check["status"] == "CRITICAL"
        assert check["message"] == "15 of 20 publishes failed since the service started (75.0%, > 10.0%)"
        assert "kafkaops failed --status PENDING --group-by topic,error_signature" in check["next_step"]

        # Between two runs: 1,500 errors against 1,000 successes.
        service.set_text("/actuator/prometheus", _counters(1005, 1515))
        _, second, _ = status_json(cli)
        check = checks_by_name(second)["publish_errors pod-0"]
        assert check["status"] == "CRITICAL" and check["value"] == pytest.approx(0.6)
        assert re.fullmatch(
            r"1,500 of 2,500 publishes failed in the last \d+s \(60\.0%, > 10\.0%\)", check["message"]
        )

        # The errors stop: 2 of 102 is a warning (> 1 %), then none is OK.
        service.set_text("/actuator/prometheus", _counters(1105, 1517))
        _, third, _ = status_json(cli)
        check = checks_by_name(third)["publish_errors pod-0"]
        assert check["status"] == "WARNING"
        assert re.fullmatch(
            r"2 of 102 publishes failed in the last \d+s \(2\.0%, > 1\.0%\)", check["message"]
        )
        service.set_text("/actuator/prometheus", _counters(1205, 1517))
        _, fourth, _ = status_json(cli)
        check = checks_by_name(fourth)["publish_errors pod-0"]
        assert check["status"] == "OK"
        assert re.fullmatch(r"0 of 100 publishes failed in the last \d+s \(0\.0%\)", check["message"])

        # A restarted service's counters start again: judged since its start, not as negative.
        service.set_text("/actuator/prometheus", _counters(40, 0))
        _, fifth, _ = status_json(cli)
        check = checks_by_name(fifth)["publish_errors pod-0"]
        assert check["message"] == "0 of 40 publishes failed since the service started (0.0%)"


def test_error_ratio_thresholds_take_percentages(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured("OPEN") as service:
        configure(
            tmp_path,
            monkeypatch,
            app=_app(service),
            thresholds={"publish_error_ratio": {"warning": "50%", "critical": 0.8}},
        )
        _, doc, _ = status_json(cli)
    check = checks_by_name(doc)["publish_errors pod-0"]
    assert check["message"] == "15 of 20 publishes failed since the service started (75.0%, > 50.0%)"
    assert check["status"] == "WARNING"


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"publish_latency": {"warn": "1s"}}, "thresholds.publish_latency"),
        ({"publish_latency": {"warning": "soon"}}, "thresholds.publish_latency.warning"),
        (
            {"publish_latency": {"warning": "2s", "critical": "1s"}},
            "thresholds.publish_latency: warning must not be above critical",
        ),
        (
            {"publish_error_ratio": {"critical": "150%"}},
            "thresholds.publish_error_ratio.critical must be a share",
        ),
        (
            {"publish_error_ratio": {"warning": 5}},
            "thresholds.publish_error_ratio.warning must be a number above 0",
        ),
        ({"publish_error_ratio": "1%"}, "thresholds.publish_error_ratio must be a mapping"),
    ],
)
def test_bad_publish_thresholds_are_one_line_and_exit_code_3(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thresholds: dict[str, Any], message: str
) -> None:
    configure(tmp_path, monkeypatch, app={"instances": ["http://127.0.0.1:9"]}, thresholds=thresholds)
    result = cli("status")
    assert result.exit_code == 3  # status' usage and configuration errors (Monitoring Plugins)
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_gives_the_publish_thresholds(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, thresholds={"publish_error_ratio": {"warning": "2%"}})
    shown = cli("config", "show").stdout
    assert "p99 warning > 100 ms, critical > 1000 ms" in shown
    assert "warning > 2.0%, critical > 10.0%" in shown


# -- the breaker ------------------------------------------------------------------------------------


def test_an_open_breaker_with_the_brokers_reachable_points_between_service_and_kafka(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_kafka: EmbeddedKafka
) -> None:
    with captured("OPEN") as service:
        configure(tmp_path, monkeypatch, kafka=embedded_kafka.bootstrap_servers, app=_app(service))
        _, doc, _ = status_json(cli)
    checks = checks_by_name(doc)
    assert checks["kafka"]["status"] == "OK"
    breaker = checks["circuit_breaker pod-0"]
    assert breaker["status"] == "WARNING"
    assert breaker["message"].endswith(
        "; the kafka check is OK: the problem is between the service and Kafka (network, credentials, "
        "the service's producer), not the brokers"
    )
    assert breaker["next_step"].startswith("look at the service's log for its producer's errors")


def test_an_open_breaker_with_the_brokers_unreachable_says_kafka(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    with captured("OPEN") as service:
        configure(
            tmp_path,
            monkeypatch,
            kafka=f"127.0.0.1:{closed_port}",
            app=_app(service),
            status={"timeout": "1s"},
        )
        _, doc, _ = status_json(cli)
    checks = checks_by_name(doc)
    assert checks["kafka"]["status"] == "UNKNOWN"
    breaker = checks["circuit_breaker pod-0"]
    assert "not the brokers" not in breaker["message"]
    assert breaker["next_step"].startswith("Kafka is down or unreachable for the service")
