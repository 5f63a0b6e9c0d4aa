"""Prometheus metrics of a retry pass, named after the service's own (RUNBOOK.md, Key Metrics).

A batch job's metrics go either to a file for node_exporter's textfile collector (written
atomically) or to a Pushgateway. `kafkaops_retry_last_success_timestamp_seconds` is only moved
forward by a pass that completed, so an alert on its age catches a retry job that keeps failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kafkaops.common import clock
from kafkaops.common.errors import KafkaopsError, UsageError
from kafkaops.config.settings import RetrySettings

if TYPE_CHECKING:
    from datetime import timedelta

    from prometheus_client import CollectorRegistry

    from kafkaops.retry.job import PassSummary

LAST_SUCCESS = "kafkaops_retry_last_success_timestamp_seconds"
JOB = "kafkaops_retry"


COUNTERS = ("kafka_retry_attempts_total", "kafka_retry_success_total", "kafka_dlq_sent_total")


def build_registry(
    summary: PassSummary,
    *,
    last_success: float | None,
    previous: Mapping[tuple[str, str], float] | None = None,
) -> CollectorRegistry:
    """The pass's metrics; `previous` counter values ((name, topic) -> value) are added, so the
    counters of a textfile keep counting across passes as Prometheus expects."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

    # A fresh `*_created` beside counters carried over from the last file would read as a
    # counter reset to any server that honours created timestamps.
    disable_created_metrics()
    registry = CollectorRegistry()
    attempts = Counter("kafka_retry_attempts", "Retry attempts by topic", ["topic"], registry=registry)
    success = Counter("kafka_retry_success", "Successful retries by topic", ["topic"], registry=registry)
    dlq = Counter(
        "kafka_dlq_sent",
        "Events sent to the dead-letter topic by original topic",
        ["topic"],
        registry=registry,
    )
    previous = previous or {}
    for name, counter, values in (
        (COUNTERS[0], attempts, summary.attempts_by_topic),
        (COUNTERS[1], success, summary.resolved_by_topic),
        (COUNTERS[2], dlq, summary.dlq_by_topic),
    ):
        topics = set(values) | {topic for (sample, topic) in previous if sample == name}
        for topic in topics:
            counter.labels(topic=topic).inc(values.get(topic, 0) + previous.get((name, topic), 0.0))
    outcome = Gauge(
        "kafkaops_retry_events",
        "Rows settled by the last retry pass, by outcome",
        ["outcome"],
        registry=registry,
    )
    for name, value in summary.as_dict().items():
        if isinstance(value, int):
            outcome.labels(outcome=name).set(value)
    Gauge("kafkaops_retry_duration_seconds", "Duration of the last retry pass", registry=registry).set(
        summary.duration_s
    )
    Gauge(
        "kafkaops_retry_circuit_breaker_open",
        "1 when the last pass stopped on its circuit breaker",
        registry=registry,
    ).set(1 if summary.circuit_breaker == "OPEN" else 0)
    if last_success is not None:
        Gauge(LAST_SUCCESS, "Unix time of the last retry pass that completed", registry=registry).set(
            last_success
        )
    return registry


def previous_values(path: Path) -> tuple[float | None, dict[tuple[str, str], float]]:
    """What a previous pass wrote to the textfile: its last-success time and its counters."""
    from prometheus_client.parser import text_string_to_metric_families

    last_success: float | None = None
    counters: dict[tuple[str, str], float] = {}
    try:
        text = path.read_text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    last_success = float(sample.value)
                elif sample.name in COUNTERS and "topic" in sample.labels:
                    counters[(sample.name, sample.labels["topic"])] = float(sample.value)
    except (OSError, ValueError):
        return None, {}  # no previous file, or not ours: start counting afresh
    return last_success, counters


def check_textfile(path: str) -> None:
    """Before the pass publishes anything: the folder exists and can take the file."""
    import os

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--metrics-file {path} is a folder, not a file")
    if not target.parent.is_dir():
        raise UsageError(f"--metrics-file {path}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(f"--metrics-file {path}: folder {target.parent} is not writable")
    if os.path.islink(lock_path_for(target)):  # refused before the pass; open_nofollow holds the line
        from kafkaops.common.filelock import refused_link

        raise refused_link(lock_path_for(target))


def check_pushgateway(url: str) -> None:
    """Before the pass publishes anything: a URL prometheus_client can push to."""
    from urllib.parse import urlsplit

    from kafkaops.common.secrets import url_without_password

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--pushgateway {url_without_password(url)!r} is not an http(s) URL",
            hint="for example --pushgateway http://pushgateway:9091",
        )


def write_textfile(
    path: str, summary: PassSummary, *, lock_timeout: timedelta = RetrySettings.metrics_lock_timeout
) -> None:
    """Atomically replace `path` (write a temp file beside it, then rename), under an exclusive
    lock on `.NAME.lock` beside it (node_exporter reads only `*.prom`), so concurrent passes
    add to each other's counters: none is lost, none goes backwards. A lock still held after
    `lock_timeout` (retry.metrics_lock_timeout) is an error; the file is then left as it was."""
    import os

    from prometheus_client import generate_latest

    from kafkaops.common.filelock import flock_within, open_nofollow, replace_file

    check_textfile(path)
    target = Path(path)
    lock_path = lock_path_for(target)
    try:
        with os.fdopen(open_nofollow(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), "a") as lock:
            if not flock_within(lock.fileno(), lock_timeout.total_seconds()):
                raise KafkaopsError(
                    f"cannot write metrics to {path}: its lock {lock_path} is held by another process "
                    f"after {lock_timeout.total_seconds():g}s; this pass's counts are not in the file (the rows were settled)"
                )
            previous_success, previous = previous_values(target)
            last = clock.now().timestamp() if summary.completed else previous_success
            registry = build_registry(summary, last_success=last, previous=previous)
            replace_file(target, generate_latest(registry), mode=0o644)  # node_exporter may be another user
    except OSError as exc:
        raise KafkaopsError(f"cannot write metrics to {path}: {exc.strerror}") from None


def lock_path_for(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def push(url: str, summary: PassSummary, *, timeout: float = 10.0) -> None:
    """Push to a Pushgateway, grouped by host so that two cron hosts do not overwrite each
    other. Pushed counters are per pass (the gateway keeps the last push). A failed pass uses
    pushadd, so the last-success value of the previous push stays."""
    import socket

    from prometheus_client import push_to_gateway, pushadd_to_gateway

    from kafkaops.common.secrets import url_without_password

    registry = build_registry(summary, last_success=clock.now().timestamp() if summary.completed else None)
    send = push_to_gateway if summary.completed else pushadd_to_gateway
    try:
        send(
            url, job=JOB, registry=registry, timeout=timeout, grouping_key={"instance": socket.gethostname()}
        )
    except OSError as exc:
        raise KafkaopsError(f"cannot push metrics to {url_without_password(url)}: {exc}") from None
