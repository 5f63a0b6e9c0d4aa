"""The service's endpoints as `kafkaops status` reads them, against real HTTP servers on loopback.

A slow instance, a 500, invalid JSON, a missing metric, a server that accepts and never
answers; credentials sent and never shown.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kafkaops.common.http import HttpError, get
from kafkaops.common.secrets import mask_url, redact, secrets_of
from kafkaops.demo.service import FakeService, health_body, metrics_text, stats_body
from kafkaops.status.service import probe_instance
from kafkaops.status.settings import AppSettings, ServiceInstance
from tests.helpers.status import configure, within

T = TypeVar("T")


def app_for(*urls: str, timeout: float = 2.0, **kwargs: object) -> AppSettings:
    return AppSettings(
        instances=tuple((u.split("//")[1], u) for u in urls),
        timeout=timedelta(seconds=timeout),
        **kwargs,  # type: ignore[arg-type]
    )


def probe(app: AppSettings) -> list:  # type: ignore[type-arg]
    return [probe_instance(app, instance) for instance in app.endpoints()]


def test_a_healthy_instance_gives_health_breaker_pool_counters_and_latency(service: FakeService) -> None:
    [status] = probe(app_for(service.url))
    assert status.endpoint_errors == {}
    assert status.health == "UP"
    assert (status.breaker, status.breaker_source) == ("CLOSED", "health")
    assert status.pending == 0 and status.dlq_failed == 0
    [pool] = status.pools
    assert (pool.executor, pool.active, pool.pool_size, pool.max_pool, pool.queued, pool.queue_capacity) == (
        "kafkaPublisherExecutor",
        3,
        10,
        50,
        0,
        10000,
    )
    assert status.published == {"success": 1200.0, "error": 4.0}
    assert status.errors == {"TimeoutException": 4.0}
    assert status.breaker_opens == 1.0 and status.stored_for_retry == 4.0
    # 1,200 observations: the 1,188th lies in the (0.01, 0.05] bucket, 38/40 of the way up.
    assert status.latency_kind == "p99"
    assert status.latency_s == pytest.approx(0.01 + 0.04 * 38 / 40)
    assert status.missing == []


def test_the_stats_endpoint_gives_the_publishers_own_pool_and_breaker(service: FakeService) -> None:
    service.set_json("/publisher/stats", stats_body(breaker="HALF_OPEN", active=50, max_pool=50, queued=9500))
    [status] = probe(app_for(service.url, stats_path="/publisher/stats"))
    assert (status.breaker, status.breaker_source) == ("HALF_OPEN", "stats")
    assert status.pools[0].executor == "publisher"
    assert (status.pools[0].active, status.pools[0].queued, status.pools[0].queue_capacity) == (
        50,
        9500,
        10000,
    )


def test_breaker_state_from_resilience4j_metric_when_health_has_none(service: FakeService) -> None:
    service.set_json("/actuator/health/kafka", {"status": "UP"})
    service.set_text("/actuator/prometheus", metrics_text(breaker="open"))
    [status] = probe(app_for(service.url))
    assert (status.breaker, status.breaker_source) == ("OPEN", "metrics")


@pytest.mark.slow
def test_a_slow_instance_is_reported_within_its_timeout(service: FakeService) -> None:
    service.set_json("/actuator/health/kafka", health_body(), delay=5)
    service.set_text("/actuator/prometheus", metrics_text(), delay=5)
    started = time.monotonic()
    [status] = within(10, lambda: probe(app_for(service.url, timeout=0.5)))
    took = time.monotonic() - started
    assert took < 2.5, f"a 0.5 s timeout took {took:.1f} s"
    assert status.endpoint_errors["health"].endswith("no answer within 0.5s")
    assert status.endpoint_errors["metrics"].endswith("no answer within 0.5s")
    assert not status.reachable


def test_a_server_that_accepts_and_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete in the backlog; nobody ever reads them
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/actuator/health/kafka"
        started = time.monotonic()
        with pytest.raises(HttpError) as caught:
            within(10, lambda: get(url, timeout=0.5))
        assert time.monotonic() - started < 2.5
        assert caught.value.kind == "timeout"


def test_500_invalid_json_and_missing_metrics_are_each_named(service: FakeService) -> None:
    service.set_text("/actuator/health/kafka", "Internal Server Error", status=500)
    service.set_text("/publisher/stats", '{"circuitBreakerState": "CLOS', content_type="application/json")
    service.set_text(
        "/actuator/prometheus", metrics_text(omit=("executor_", "resilience4j_", "kafka_publish_latency"))
    )
    [status] = probe(app_for(service.url, stats_path="/publisher/stats"))
    assert status.endpoint_errors["health"] == f"{service.url}/actuator/health/kafka: HTTP 500"
    assert status.endpoint_errors["stats"] == f"{service.url}/publisher/stats: invalid JSON"
    assert "metrics" not in status.endpoint_errors
    assert status.missing == [
        "executor_* (thread pool)",
        "resilience4j_circuitbreaker_state",
        "kafka_publish_latency_seconds",
    ]
    assert status.pools == []
    assert status.breaker is None


def test_garbage_instead_of_prometheus_text_is_an_endpoint_error(service: FakeService) -> None:
    service.set_text("/actuator/prometheus", "this is { not prometheus")
    [status] = probe(app_for(service.url))
    assert status.endpoint_errors["metrics"].endswith("invalid Prometheus text")


def test_a_503_health_with_its_json_is_an_answer_not_a_failure(service: FakeService) -> None:
    service.set_json(
        "/actuator/health/kafka", health_body(status="DOWN", breaker="OPEN", pending=1500), status=503
    )
    [status] = probe(app_for(service.url))
    assert "health" not in status.endpoint_errors
    assert (status.health, status.breaker, status.pending) == ("DOWN", "OPEN", 1500)


def test_mean_latency_when_there_are_no_buckets(service: FakeService) -> None:
    text = metrics_text(omit=("kafka_publish_latency",)) + (
        "# TYPE kafka_publish_latency_seconds summary\n"
        'kafka_publish_latency_seconds_count{topic="a"} 4\n'
        'kafka_publish_latency_seconds_sum{topic="a"} 0.2\n'
    )
    service.set_text("/actuator/prometheus", text)
    [status] = probe(app_for(service.url))
    assert (status.latency_kind, status.latency_s) == ("mean", pytest.approx(0.05))


@pytest.mark.parametrize(
    ("app_kwargs", "expected"),
    [
        (
            {"username": "ops", "password": "AppSECRET"},
            "Basic " + base64.b64encode(b"ops:AppSECRET").decode(),
        ),
        ({"token": "TokenSECRET"}, "Bearer TokenSECRET"),
    ],
)
def test_credentials_are_sent_and_never_shown(service: FakeService, app_kwargs: dict, expected: str) -> None:  # type: ignore[type-arg]
    service.set_text("/actuator/prometheus", "nope", status=500)
    [status] = probe(app_for(service.url, **app_kwargs))
    sent = [headers.get("Authorization") for method, path, headers in service.requests]
    assert sent and all(value == expected for value in sent)
    assert "SECRET" not in repr(status)


def test_user_info_in_the_url_is_basic_auth_and_masked(service: FakeService) -> None:
    base = service.url.replace("http://", "http://admin:p%40ssSECRET@")
    service.set_text("/actuator/prometheus", "nope", status=500)
    app = AppSettings(instances=(("pod", base),))
    [status] = probe(app)
    [auth] = {headers.get("Authorization") for _, _, headers in service.requests}
    assert auth == "Basic " + base64.b64encode(b"admin:p@ssSECRET").decode()
    assert "SECRET" not in repr(status)
    assert "****@127.0.0.1" in status.endpoint_errors["metrics"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:p@ssw0rdSECRET@10.0.0.1:8080/x", "http://admin:****@10.0.0.1:8080/x"),
        ("http://h/x?sig=SECRET&auth=SECRET&key=SECRET", "http://h/x?sig=****&auth=****&key=****"),
        ("https://h:8443/x?token=SECRET&view=1", "https://h:8443/x?token=****&view=1"),
        ("http://h/x?api_key=SECRET", "http://h/x?api_key=****"),
        ("https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com/services/T0/B0/SECRET"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_webhook_url_is_masked_whole() -> None:
    url = "https://hooks.slack.com/services/T0/B0/SECRET"
    assert mask_url(url, hide_path=True) == "https://hooks.slack.com/****"
    assert "SECRET" not in redact(f"POST {url} failed", secrets_of("alerts.webhook", url))


@pytest.mark.slow
def test_instances_are_probed_concurrently_across_endpoints(service: FakeService) -> None:
    # Three endpoints each 0.6 s slow: asked at once, the instance answers in about 0.6 s, not 1.8 s.
    for path in ("/actuator/health/kafka", "/actuator/prometheus", "/publisher/stats"):
        endpoint = service.endpoints[path]
        endpoint.delay = 0.6
    app = app_for(service.url, timeout=5, stats_path="/publisher/stats")
    started = time.monotonic()
    [status] = probe(app)
    assert status.endpoint_errors == {}
    assert time.monotonic() - started < 1.7


def test_endpoints_follow_the_configured_paths() -> None:
    app = AppSettings(
        instances=(("a", "http://a:8080"),), health_path="/h", metrics_path=None, stats_path="/s"
    )
    assert app.endpoints() == (ServiceInstance("a", "http://a:8080/h", None, "http://a:8080/s"),)
    shorthand = AppSettings(health_url="http://b:9090/health")
    assert shorthand.endpoints() == (ServiceInstance("b:9090", "http://b:9090/health", None, None),)


def test_fetching_never_leaves_a_request_thread_behind(service: FakeService) -> None:
    before = threading.active_count()
    probe(app_for(service.url))
    time.sleep(0.05)
    assert threading.active_count() <= before + 1  # the server's own handler thread may linger


@pytest.mark.slow
def test_a_server_that_trickles_its_answer_cannot_outlast_the_deadline() -> None:
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)

        def trickle() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                    if stop.is_set():
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return
                    time.sleep(0.2)  # each byte well within the socket timeout

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(HttpError) as caught:
            within(10, lambda: get(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=1.0))
        took = time.monotonic() - started
        stop.set()
    assert caught.value.kind == "timeout"
    assert took < 2.0, f"a 1 s deadline took {took:.1f} s"


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_an_answer_whose_body_does_not_arrive_in_time_says_the_server_answered() -> None:
    # It answered (status and headers) and then its body trickled past the deadline: "no answer
    # within 1s" sent the on-call looking for a dead instance.
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)

        def slow_body() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
                )
                while not stop.wait(0.2):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        return

        threading.Thread(target=slow_body, daemon=True).start()
        with pytest.raises(HttpError) as caught:
            within(10, lambda: get(f"http://127.0.0.1:{listener.getsockname()[1]}/health", timeout=1.0))
        stop.set()
    assert caught.value.kind == "timeout"
    assert caught.value.message.endswith(": answered (HTTP 200) but its body did not arrive within 1s")


def test_nan_and_infinite_samples_are_ignored(service: FakeService) -> None:
    text = metrics_text(omit=("kafka_events_published",)) + (
        "# TYPE kafka_events_published_total counter\n"
        'kafka_events_published_total{topic="a",status="success"} NaN\n'
        'kafka_events_published_total{topic="a",status="error"} +Inf\n'
        'kafka_events_published_total{topic="b",status="success"} 5\n'
    )
    service.set_text("/actuator/prometheus", text)
    [status] = probe(app_for(service.url))
    assert status.published == {"success": 5.0}


# -- keys given twice ------------------------------------------------------------------------------


def test_a_json_key_given_twice_with_different_values_is_not_used_and_named(service: FakeService) -> None:
    service.set_text(
        "/actuator/health/kafka",
        '{"status":"UP","details":{"circuitBreakerState":"OPEN","circuitBreakerState":"CLOSED",'
        '"pendingEvents":3}}',
        content_type="application/json",
    )
    service.set_text("/actuator/prometheus", metrics_text(omit=("resilience4j_",)))
    [status] = probe(app_for(service.url))
    assert status.breaker is None  # neither OPEN nor CLOSED: nobody can tell which is right
    assert status.pending == 3
    assert status.invalid == [
        'details.circuitBreakerState given twice with different values ("OPEN", "CLOSED"): '
        "the health endpoint is inconsistent"
    ]


def test_a_json_key_given_twice_deep_in_a_list_is_found(service: FakeService) -> None:
    service.set_text(
        "/publisher/stats",
        '{"circuitBreakerState":"CLOSED","threadPool":{"queueSize":1,"queueSize":9500,"activeCount":2},'
        '"extra":[{"a":1},{"b":{"c":1,"c":2,"c":3}}]}',
        content_type="application/json",
    )
    [status] = probe(app_for(service.url, stats_path="/publisher/stats"))
    publisher = status.pools[0]
    assert (publisher.executor, publisher.queued, publisher.active) == ("publisher", None, 2)
    assert sorted(status.invalid) == [
        "extra[1].b.c given 3 times with different values (1, 2, 3): the stats endpoint is inconsistent",
        "threadPool.queueSize given twice with different values (1, 9500): the stats endpoint is inconsistent",
    ]


def test_a_json_key_given_twice_with_the_same_value_counts_once(service: FakeService) -> None:
    service.set_text(
        "/actuator/health/kafka",
        '{"status":"UP","status":"UP","details":{"pendingEvents":7,"pendingEvents":7}}',
        content_type="application/json",
    )
    [status] = probe(app_for(service.url))
    assert (status.health, status.pending, status.invalid) == ("UP", 7, [])


def test_a_503_health_without_a_json_body_is_recorded_as_503(service: FakeService) -> None:
    service.set_text("/actuator/health/kafka", "<html>Service Unavailable</html>", status=503)
    [status] = probe(app_for(service.url))
    assert status.health is None and status.health_http == 503
    assert status.endpoint_errors["health"] == f"{service.url}/actuator/health/kafka: HTTP 503, invalid JSON"


# -- bounds ---------------------------------------------------------------------------------------


def test_label_values_are_cut_and_long_ones_stay_distinct(service: FakeService) -> None:
    from kafkaops.status.limits import MAX_TEXT

    long_a, long_b = "a" * 5000 + "-one", "a" * 5000 + "-two"
    text = metrics_text(executor=long_a) + metrics_text(executor=long_b).replace(
        "kafka_events_published_total", "unrelated_total"
    )
    service.set_text("/actuator/prometheus", text)
    [status] = probe(app_for(service.url))
    names = [pool.executor for pool in status.pools]
    assert len(names) == 2 and len(set(names)) == 2
    assert all(len(name) == MAX_TEXT and name.startswith("a" * 200) for name in names)
    assert status.omitted == ["the end of 10 label value(s) longer than 256 characters"]


def test_counters_keep_their_largest_label_values_and_sum_the_rest(service: FakeService) -> None:
    errors = "".join(
        f'kafka_events_errors_total{{topic="t",error_type="E{n:03d}",}} {n + 1}\n' for n in range(120)
    )
    service.set_text("/actuator/prometheus", metrics_text(omit=("kafka_events_errors",)) + errors)
    [status] = probe(app_for(service.url))
    assert len(status.errors) == 50
    assert status.errors["E119"] == 120.0 and "E000" not in status.errors
    assert sum(status.errors.values()) == sum(range(1, 121))  # the total is kept
    assert status.errors["(other)"] == sum(range(1, 72))
    assert status.omitted == ["71 error types, summed under (other)"]


def test_only_the_busiest_executors_are_kept(service: FakeService) -> None:
    lines = ["# TYPE executor_queued_tasks gauge"]
    lines += [f'executor_queued_tasks{{name="ex{n:04d}",}} {n}' for n in range(2000)]
    # A service without the runbook's kafkaPublisherExecutor: every pool is judged, within bounds.
    own = "".join(line + "\n" for line in metrics_text().splitlines() if "kafkaPublisherExecutor" not in line)
    service.set_text("/actuator/prometheus", own + "\n".join(lines) + "\n")
    [status] = probe(app_for(service.url))
    # The longest queues.
    assert [pool.executor for pool in status.pools] == [f"ex{n:04d}" for n in range(1950, 2000)]
    assert status.omitted == ["1,950 executors past the 50 busiest"]


def test_an_instance_with_an_invalid_host_name_says_so(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": "http://exa..mple:8080"}])
    result = cli("status", "-o", "json")
    assert result.exit_code == 3
    [instance] = json.loads(result.stdout)["instances"]
    assert instance["endpoint_errors"]["health"] == (
        "http://exa..mple:8080/actuator/health/kafka: invalid host name"
    )


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (
            {"token": "abc\nX-Injected: 1"},
            "cannot send the request: a credential or header holds a line break",
        ),
        (
            {"health_path": "/actuator/héalth"},
            "cannot send the request: the URL or a header holds characters",
        ),
    ],
    ids=["token-with-newline", "non-ascii-path"],
)
@pytest.mark.slow
def test_a_request_http_cannot_carry_is_named_not_unexpected(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service: FakeService,
    app: dict,
    expected: str,  # type: ignore[type-arg]
) -> None:
    """They read `health: ...: ValueError`; the token must not be repeated."""
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}], app=app)
    result = cli("status", "-o", "json")
    assert result.exit_code == 3
    errors = json.loads(result.stdout)["instances"][0]["endpoint_errors"]
    assert expected in errors["health"]
    assert "X-Injected" not in result.stdout + result.stderr
    assert not [r for r in service.requests if "X-Injected" in r[2]]


@pytest.mark.slow
def test_control_characters_in_service_labels_never_reach_prometheus_text_raw(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """prometheus_client escapes backslash, quote and newline only: ESC reached the terminal."""
    from prometheus_client.parser import text_string_to_metric_families

    service.set_text(
        "/actuator/prometheus",
        metrics_text(executor="pool\x1b]0;pwned\x07\x9b31m"),
    )
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "prometheus")
    assert result.exit_code == 0
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in result.stdout
    executors = {
        s.labels["executor"]
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
        if "executor" in s.labels
    }
    assert executors == {"pool\\x1b]0;pwned\\x07\\x9b31m"}


@pytest.mark.parametrize(
    "bogus",
    [-3, "lots", 1e300, True, 12.5, "NaN", [], {"n": 1}],
    ids=["negative", "text", "huge", "bool", "fraction", "nan", "list", "object"],
)
@pytest.mark.slow
def test_a_count_that_is_not_a_count_is_named_not_judged(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, bogus: Any
) -> None:
    """1e300 pending events was CRITICAL with a 300-digit figure; -3 DLQ_FAILED events was OK;
    "lots" vanished without a word."""
    service.set_json(
        "/actuator/health/kafka",
        {"status": "UP", "details": {"pendingEvents": bogus, "dlqFailedEvents": bogus}},
    )
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "json")
    doc = json.loads(result.stdout)
    names = {c["name"]: c for c in doc["checks"]}
    assert "pending_events" not in names and "dlq_failed" not in names
    [instance] = doc["instances"]
    assert instance["pending_events"] is None and instance["dlq_failed_events"] is None
    service_check = names["service pod-a"]
    assert service_check["status"] == "WARNING"
    assert "pendingEvents is not a count" in service_check["message"]
    assert "dlqFailedEvents is not a count" in service_check["message"]
    assert result.exit_code == 1


@pytest.mark.slow
def test_a_negative_thread_count_is_named_not_judged(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """executor_pool_max_threads -1 with 3 active threads read as "all -1 threads busy"."""
    service.set_text("/actuator/prometheus", metrics_text(max_pool=-1, remaining=-50))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "json")
    doc = json.loads(result.stdout)
    names = {c["name"]: c for c in doc["checks"]}
    assert names["thread_pool pod-a"]["status"] == "OK", names["thread_pool pod-a"]
    assert names["service pod-a"]["status"] == "WARNING"
    assert doc["instances"][0]["invalid_figures"] == [
        "kafkaPublisherExecutor: executor_queue_remaining_tasks is not a count (-50.0)",
        "kafkaPublisherExecutor: executor_pool_max_threads is not a count (-1.0)",
    ]
    assert result.exit_code == 1


@pytest.mark.parametrize(("given", "expected"), [(0, 0), (1500, 1500), (1500.0, 1500), ("1500", 1500)])
def test_counts_in_any_honest_form_are_read(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, given: Any, expected: int
) -> None:
    service.set_json("/actuator/health/kafka", health_body(pending=given))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    doc = json.loads(cli("status", "-o", "json").stdout)
    assert doc["instances"][0]["pending_events"] == expected
    assert {c["name"]: c for c in doc["checks"]}["service pod-a"]["status"] == "OK"
