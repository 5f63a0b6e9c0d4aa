"""What `kafkaops status` keeps of a service that says too much (kafkaops/status/limits.py):
a 16 MiB scrape of 395,000 series, 2,000 busy executors, an 8 MB label value. Served by real
HTTP servers on loopback; each run has its own timeout, so a bound that does not hold is a red
test, never a hang.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kafkaops.common.http import MAX_BODY
from kafkaops.demo.service import FakeService, metrics_text
from tests.helpers.status import checks_by_name, configure, within


def metrics_without_publisher() -> str:
    """The service's usual metrics less the runbook's kafkaPublisherExecutor: status then judges
    every pool the service exposes, so the bounds on how many are kept apply."""
    return "".join(
        line + "\n" for line in metrics_text().splitlines() if "kafkaPublisherExecutor" not in line
    )


def executors_scrape(count: int, *, name: str = "ex{n:06d}", active: int = 3, max_pool: int = 50) -> str:
    """Micrometer's executor metrics for `count` executors, after the service's usual metrics."""
    lines = [metrics_without_publisher()]
    for metric, value in (
        ("executor_active_threads", active),
        ("executor_pool_max_threads", max_pool),
        ("executor_queued_tasks", 0),
    ):
        lines.append(f"# TYPE {metric} gauge\n")
        lines += [f'{metric}{{name="{name.format(n=n)}"}} {value}\n' for n in range(count)]
    return "".join(lines)


@pytest.mark.slow
def test_a_scrape_of_395000_series_is_read_up_to_its_bound_and_says_what_it_left(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """It took 12 s and 803 MB and gave an 88 MB JSON document."""
    lines = ["# TYPE executor_queued_tasks gauge\n"]
    lines += [f'executor_queued_tasks{{name="p{n}"}} 0\n' for n in range(395_000)]
    own = metrics_without_publisher()
    scrape = own + "".join(lines)
    assert len(scrape) < MAX_BODY  # the whole scrape is read from the wire, as the service sent it
    service.set_text("/actuator/prometheus", scrape)
    configure(
        tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}], app={"timeout": "20s"}
    )
    started = time.monotonic()
    result = within(60, lambda: cli("status", "-o", "json"))
    took = time.monotonic() - started
    assert took < 10, f"took {took:.1f} s"
    assert len(result.stdout) < 50_000, len(result.stdout)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1  # figures may be among the lines not read: not OK
    [instance] = doc["instances"]
    assert len(instance["thread_pools"]) == 50
    check = checks_by_name(doc)["service pod-a"]
    assert check["status"] == "WARNING"
    unread = len(scrape.splitlines()) - 20_000
    # Read: the usual metrics, the TYPE line, then executors p0, p1, ...
    executors = 20_000 - len(own.splitlines()) - 1
    assert check["message"] == (
        f"health UP; left out: {executors - 50:,} executors past the 50 busiest, "
        f"{unread:,} metrics lines past the first 20,000"
    )
    assert instance["missing_metrics"] == []  # what was not read is not said to be missing


@pytest.mark.slow
def test_the_nagios_line_for_2000_busy_executors_keeps_its_performance_data(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """2,000 busy executors made a 63 KB line; Nagios keeps about 8 KB and lost the perfdata.
    Four instances with long executor names also make the text itself longer than that."""
    service.set_text(
        "/actuator/prometheus", executors_scrape(2000, name="executor-{n:04d}-" + "x" * 200, active=50)
    )
    pods = [{"name": f"pod-{n}", "url": service.url} for n in range(4)]
    configure(tmp_path, monkeypatch, instances=pods, app={"timeout": "20s"})
    result = within(60, lambda: cli("status", "-o", "nagios"))
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert len(result.stdout.encode()) < 8192
    assert line.startswith("KAFKAOPS WARNING - backpressure: executor-")
    text, perf = line.split(" | ")
    assert text.endswith("…")  # the text gave way, not the performance data
    assert perf == "pending=0;1000;5000;0 dlq_failed=0;0;0;0"  # as the service reports them
    assert "all 50 threads busy; and 40 more" in text  # each instance: ten named, then a count


@pytest.mark.slow
def test_an_8_mb_label_value_is_cut_in_the_prometheus_output(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    name = "x" * 8_000_000
    service.set_text(
        "/actuator/prometheus",
        metrics_without_publisher()
        + f'# TYPE executor_active_threads gauge\nexecutor_active_threads{{name="{name}"}} 7\n',
    )
    configure(
        tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}], app={"timeout": "20s"}
    )
    result = within(60, lambda: cli("status", "-o", "prometheus"))
    assert result.exit_code == 0, result.stdout[-500:]
    assert len(result.stdout) < 20_000
    [active] = [
        line
        for line in result.stdout.splitlines()
        if line.startswith('kafkaops_service_thread_pool_active_threads{executor="x')
    ]
    label = active.split('executor="', 1)[1].split('"', 1)[0]
    assert len(label) == 256 and label.startswith("x" * 247 + "…")  # then a hash of the whole
    assert active.endswith('instance="pod-a"} 7.0')
    doc = json.loads(within(60, lambda: cli("status", "-o", "json")).stdout)
    assert checks_by_name(doc)["service pod-a"]["message"] == (
        "health UP; left out: the end of 1 label value(s) longer than 256 characters"
    )
