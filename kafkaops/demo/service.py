"""A stand-in for the service's actuator endpoints (and a webhook receiver), on 127.0.0.1.

A real HTTP server (the standard library's, in a thread) serving the runbook's health JSON,
Micrometer/Resilience4j Prometheus text and the publisher-stats JSON, each changeable while it
runs: a slow answer, a 500, invalid JSON, a missing metric. Used by the tests, the status
benchmark and `kafkaops demo` / `kafkaops sandbox`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def health_body(
    status: str = "UP", breaker: str = "CLOSED", pending: int = 0, dlq_failed: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "status": status,
        "details": {
            "circuitBreakerState": breaker,
            "pendingEvents": pending,
            "dlqFailedEvents": dlq_failed,
            **extra,
        },
    }


def metrics_text(
    *,
    active: int = 3,
    pool_size: int = 10,
    max_pool: int = 50,
    queued: int = 0,
    remaining: int = 10000,
    breaker: str = "closed",
    executor: str = "kafkaPublisherExecutor",
    published: int = 1200,
    latency_buckets: dict[str, int] | None = None,
    omit: tuple[str, ...] = (),
) -> str:
    """Prometheus text as Spring Boot's /actuator/prometheus writes it; `omit` drops metrics."""
    lines: list[str] = []

    def metric(name: str, kind: str, samples: list[tuple[str, float]]) -> None:
        if any(name.startswith(o) for o in omit):
            return
        lines.append(f"# HELP {name} {name}")
        lines.append(f"# TYPE {name} {kind}")
        base = name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name
        for labels, value in samples:
            sample = name if kind != "counter" else f"{base}_total"
            lines.append(f"{sample}{labels} {value}")

    ex = f'{{name="{executor}",}}'
    metric("executor_active_threads", "gauge", [(ex, active)])
    metric("executor_pool_size_threads", "gauge", [(ex, pool_size)])
    metric("executor_pool_max_threads", "gauge", [(ex, max_pool)])
    metric("executor_queued_tasks", "gauge", [(ex, queued)])
    metric("executor_queue_remaining_tasks", "gauge", [(ex, remaining)])
    metric(
        "resilience4j_circuitbreaker_state",
        "gauge",
        [
            (f'{{name="kafka",state="{s}",}}', 1.0 if s == breaker else 0.0)
            for s in ("closed", "open", "half_open", "disabled", "forced_open", "metrics_only")
        ],
    )
    metric(
        "kafka_events_published_total",
        "counter",
        [
            ('{topic="casino.player.registered.v1",status="success",}', published),
            ('{topic="casino.player.registered.v1",status="error",}', 4),
        ],
    )
    metric(
        "kafka_events_errors_total",
        "counter",
        [('{topic="casino.player.registered.v1",error_type="TimeoutException",}', 4)],
    )
    metric("kafka_circuit_breaker_open_total", "counter", [('{topic="casino.player.registered.v1",}', 1)])
    metric("kafka_events_stored_for_retry_total", "counter", [('{topic="casino.player.registered.v1",}', 4)])
    if "kafka_publish_latency" not in omit:
        buckets = latency_buckets or {"0.005": 900, "0.01": 1150, "0.05": 1190, "0.1": 1200, "+Inf": 1200}
        lines.append("# HELP kafka_publish_latency_seconds publish latency")
        lines.append("# TYPE kafka_publish_latency_seconds histogram")
        for le, count in buckets.items():
            lines.append(
                f'kafka_publish_latency_seconds_bucket{{topic="casino.player.registered.v1",le="{le}",}} {count}'
            )
        total = list(buckets.values())[-1]
        lines.append(f'kafka_publish_latency_seconds_count{{topic="casino.player.registered.v1",}} {total}')
        lines.append(
            f'kafka_publish_latency_seconds_sum{{topic="casino.player.registered.v1",}} {total * 0.004}'
        )
    return "\n".join(lines) + "\n"


def stats_body(
    breaker: str = "CLOSED",
    active: int = 3,
    pool_size: int = 10,
    max_pool: int = 50,
    queued: int = 0,
    capacity: int = 10000,
) -> dict[str, Any]:
    return {
        "circuitBreakerState": breaker,
        "threadPool": {
            "activeCount": active,
            "poolSize": pool_size,
            "maxPoolSize": max_pool,
            "queueSize": queued,
            "queueCapacity": capacity,
        },
    }


@dataclass
class Endpoint:
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before answering (a hung service: longer than the timeout)


@dataclass
class FakeService:
    """One instance: paths -> endpoints, all changeable; POST bodies kept (webhook receiver)."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    posts: list[tuple[str, Any]] = field(default_factory=list)
    post_status: int = 200
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def set_json(self, path: str, data: Any, status: int = 200, delay: float = 0.0) -> None:
        self.endpoints[path] = Endpoint(json.dumps(data).encode(), status, "application/json", delay)

    def set_text(
        self,
        path: str,
        text: str,
        status: int = 200,
        delay: float = 0.0,
        content_type: str = "text/plain; version=0.0.4",
    ) -> None:
        self.endpoints[path] = Endpoint(text.encode(), status, content_type, delay)

    def healthy(self, **metrics: Any) -> FakeService:
        self.set_json("/actuator/health/kafka", health_body())
        self.set_text("/actuator/prometheus", metrics_text(**metrics))
        self.set_json("/publisher/stats", stats_body())
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                service.requests.append(("GET", self.path, dict(self.headers)))
                endpoint = service.endpoints.get(self.path)
                if endpoint is None:
                    self.send_error(404)
                    return
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                try:
                    self.send_response(endpoint.status)
                    self.send_header("Content-Type", endpoint.content_type)
                    self.send_header("Content-Length", str(len(endpoint.body)))
                    self.end_headers()
                    self.wfile.write(endpoint.body)
                except OSError:
                    pass  # the client gave up (timed out): fine

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    data: Any = json.loads(body)
                except ValueError:
                    data = body
                service.posts.append((self.path, data))
                self.send_response(service.post_status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the serve loop's next poll: 50 ms instead of the default 0.5 s
        # makes every stop (a test's, the demo's) quick.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
