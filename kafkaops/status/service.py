"""The service's own view: its health endpoint, its Prometheus metrics, its publisher stats.

Each instance's endpoints are asked concurrently, each request under `app.timeout`. The health
JSON and the stats JSON are the runbook's; the metrics are those Spring Boot exposes through
Micrometer and Resilience4j, parsed with prometheus_client's parser.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from kafkaops.common.http import Auth, HttpError, get
from kafkaops.common.secrets import mask_url
from kafkaops.status.limits import (
    MAX_EXECUTORS,
    MAX_LABEL_VALUES,
    MAX_METRICS_LINES,
    MAX_NOTES,
    MAX_TEXT,
    OTHER,
    cut,
    cut_label,
)
from kafkaops.status.model import InstanceStatus, ThreadPool
from kafkaops.status.settings import AppSettings, ServiceInstance

EXECUTOR_METRICS = {
    "executor_active_threads": "active",
    "executor_pool_size_threads": "pool_size",
    "executor_pool_max_threads": "max_pool",
    "executor_queued_tasks": "queued",
}
QUEUE_REMAINING = "executor_queue_remaining_tasks"
BREAKER_METRIC = "resilience4j_circuitbreaker_state"
LATENCY = "kafka_publish_latency_seconds"
NO_PUBLISH_YET = "no publish yet"  # the latency's kind before the timer exists
# The runbook's names. A Spring service also exposes Spring's own pools (taskScheduler,
# applicationTaskExecutor) and any other breaker: unless app.executor / app.circuit_breaker
# say otherwise, these are the ones judged when the service has them.
PUBLISHER_EXECUTOR = "kafkaPublisherExecutor"
KAFKA_BREAKER = "kafka"


def probe_instance(app: AppSettings, instance: ServiceInstance) -> InstanceStatus:
    """Ask one instance's endpoints at once; each failure is recorded, never raised."""
    shown = instance.health_url or instance.metrics_url or instance.stats_url or ""
    status = InstanceStatus(name=instance.name, url=mask_url(shown))
    auth = Auth(app.username, app.password, app.token) if (app.username or app.token) else None
    timeout = app.timeout.total_seconds()
    started = time.monotonic()
    answers: dict[str, Any] = {}

    def fetch(kind: str, url: str) -> None:
        try:
            answers[kind] = get(url, timeout=timeout, auth=auth)
        except HttpError as error:
            answers[kind] = error
        except Exception as error:  # a bug must not take the other sources down
            answers[kind] = HttpError(f"{mask_url(url)}: {type(error).__name__}", kind="protocol")

    wanted = [
        (kind, url)
        for kind, url in (
            ("health", instance.health_url),
            ("metrics", instance.metrics_url),
            ("stats", instance.stats_url),
            ("configprops", instance.configprops_url),
        )
        if url
    ]
    threads = [threading.Thread(target=fetch, args=w, daemon=True) for w in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 1)
    for kind, url in wanted:
        answer = answers.get(kind)
        if kind == "configprops":
            read_configprops(status, answer, mask_url(url), timeout)
        elif answer is None:
            status.endpoint_errors[kind] = f"{mask_url(url)}: no answer within {timeout:g}s"
        elif isinstance(answer, HttpError):
            status.endpoint_errors[kind] = answer.message
        else:
            _read(status, kind, answer, mask_url(url), app)
    if len(status.invalid) > MAX_NOTES:
        more = len(status.invalid) - (MAX_NOTES - 1)
        status.invalid[MAX_NOTES - 1 :] = [f"and {more:,} more figures like these"]
    status.elapsed_s = time.monotonic() - started
    return status


def read_configprops(status: InstanceStatus, answer: Any, shown: str, timeout: float) -> None:
    """The producer's settings, or the one line that says why they could not be read."""
    from kafkaops.status.configprops import EXPOSE, NotProducerSettings, producer_settings

    note = None
    if answer is None:
        note = f"{shown}: no answer within {timeout:g}s"
    elif isinstance(answer, HttpError):
        note = answer.message
    elif answer.status == 404:
        note = f"{shown}: HTTP 404, the service does not expose configprops: set {EXPOSE} on it"
    elif answer.status in (401, 403):
        note = (
            f"{shown}: HTTP {answer.status}, the service refused kafkaops' credentials "
            "(app.username and app.password, or app.token)"
        )
    elif not 200 <= answer.status < 300:
        note = f"{shown}: HTTP {answer.status}"
    elif "html" in answer.content_type.lower() or answer.body.lstrip()[:1] == b"<":
        note = f"{shown}: answered HTML, not configprops' JSON (a login page or a proxy in front of the actuator?)"
    else:
        try:
            status.producer_settings = producer_settings(_json(answer.body, status, "configprops"))
        except NotProducerSettings as error:
            note = f"{shown}: {error}"
        except ValueError as error:
            note = f"{shown}: {error}"
    status.producer_settings_note = note


def _read(status: InstanceStatus, kind: str, response: Any, shown: str, app: AppSettings) -> None:
    body: bytes = response.body
    # Spring answers 503 with its JSON when the health is DOWN: that is an answer, not a failure.
    if kind == "health":
        status.health_http = response.status
    usable = 200 <= response.status < 300 or (kind == "health" and response.status == 503)
    if not usable:
        status.endpoint_errors[kind] = f"{shown}: HTTP {response.status}"
        return
    try:
        if kind == "health":
            read_health(status, _json(body, status, "health"))
        elif kind == "stats":
            read_stats(status, _json(body, status, "stats"))
        else:
            read_metrics(status, body.decode("utf-8", errors="replace"), app)
    except ValueError as error:
        http = f"HTTP {response.status}, " if response.status != 200 else ""
        status.endpoint_errors[kind] = f"{shown}: {http}{error}"
        return
    status.answered.append(kind)


class _Conflicted(dict[str, Any]):
    """A JSON object that gave a key more than once with different values: those keys are
    left out, their values kept in `conflicts` to be named."""

    conflicts: dict[str, list[Any]]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: a key given twice with the same value counts once; with
    different values nobody can tell which is right, so the key is not kept (as a series the
    metrics endpoint gives twice with different values is not used)."""
    given: dict[str, list[Any]] = {}
    for key, value in pairs:
        given.setdefault(key, []).append(value)
    if len(given) == len(pairs):
        return dict(pairs)
    obj = _Conflicted()
    obj.conflicts = {}
    for key, values in given.items():
        first = values[0]
        if all(type(v) is type(first) and v == first for v in values[1:]):
            obj[key] = first
        else:
            obj.conflicts[key] = values
    return obj


def _json(body: bytes, status: InstanceStatus, endpoint: str) -> dict[str, Any]:
    """The body as a JSON object; each key given twice with different values, at any depth, is
    left out and named in `status.invalid`."""
    conflicted: list[dict[str, Any]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = _object(pairs)
        if isinstance(obj, _Conflicted):
            conflicted.append(obj)
        return obj

    try:
        data = json.loads(body, object_pairs_hook=hook)
    except (ValueError, RecursionError):
        raise ValueError("invalid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("unexpected JSON (not an object)")
    if not conflicted:
        return data
    status.invalid += [
        f"{where} given {'twice' if len(values) == 2 else f'{len(values)} times'} with different "
        f"values ({', '.join(_shown(v) for v in values[:5])}): "
        f"the {endpoint} endpoint is inconsistent"
        for where, values in _conflicts(data)
    ]
    return data


def _shown(value: Any) -> str:
    try:
        return cut(json.dumps(value, default=str), 40)
    except (ValueError, RecursionError):
        return type(value).__name__


def _conflicts(data: dict[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """Each key given twice with different values, by its path (`details.circuitBreakerState`),
    found without recursion: json.loads took whatever depth it allowed."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, values in getattr(value, "conflicts", {}).items():
                yield cut(f"{path}.{key}" if path else key), values
            stack.extend(
                (f"{path}.{k}" if path else k, v) for k, v in value.items() if isinstance(v, (dict, list))
            )
        elif isinstance(value, list):
            stack.extend((f"{path}[{n}]", v) for n, v in enumerate(value) if isinstance(v, (dict, list)))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return cut(str(value))


MAX_COUNT = 2**53  # beyond what a JSON number holds exactly: no service counts that many events


def _int(value: Any) -> int | None:
    """A count: a non-negative whole number (1500, 1500.0 or "1500"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_COUNT else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and 0 <= value <= MAX_COUNT:
        return int(value)
    return None


def _count(status: InstanceStatus, data: dict[str, Any], key: str, where: str = "") -> int | None:
    """`data[key]` as a count; a value that is there but is no count is named in `status.invalid`
    (-3, "lots", 1e300, 12.5, true), never judged and never silently dropped."""
    value = data.get(key)
    count = _int(value)
    if count is None and value is not None:
        shown = json.dumps(value, default=str)
        if len(shown) > 40:
            shown = shown[:39] + "…"
        status.invalid.append(f"{where}{key} is not a count ({shown})")
    return count


def _breaker_name(value: Any) -> str | None:
    text = _text(value)
    return text.strip().upper().replace("-", "_") if text else None


def read_health(status: InstanceStatus, data: dict[str, Any]) -> None:
    """`{"status": "UP", "details": {"circuitBreakerState": ..., "pendingEvents": ...}}`."""
    status.health = _text(data.get("status"))
    details = data.get("details")
    if not isinstance(details, dict):
        details = {}
    breaker = _breaker_name(details.get("circuitBreakerState"))
    if breaker and status.breaker_source != "stats":
        status.breaker, status.breaker_source = breaker, "health"
    status.pending = _count(status, details, "pendingEvents")
    status.dlq_failed = _count(status, details, "dlqFailedEvents")
    status.oldest_pending_age = _text(details.get("oldestPendingAge"))


def read_stats(status: InstanceStatus, data: dict[str, Any]) -> None:
    """The runbook's getPublisherStats(): the breaker and the publisher's own thread pool."""
    breaker = _breaker_name(data.get("circuitBreakerState"))
    if breaker:
        status.breaker, status.breaker_source = breaker, "stats"
    pool = data.get("threadPool")
    if isinstance(pool, dict):
        queued = _count(status, pool, "queueSize", "threadPool.")
        capacity = _count(status, pool, "queueCapacity", "threadPool.")
        status.pools = [p for p in status.pools if p.executor != "publisher"]
        status.pools.insert(
            0,
            ThreadPool(
                executor="publisher",
                active=_count(status, pool, "activeCount", "threadPool."),
                pool_size=_count(status, pool, "poolSize", "threadPool."),
                max_pool=_count(status, pool, "maxPoolSize", "threadPool."),
                queued=queued,
                queue_capacity=capacity,
            ),
        )


def read_metrics(status: InstanceStatus, text: str, app: AppSettings) -> None:
    """Thread pools, the breaker, the publisher's counters and latency from Prometheus text.

    Bounded (kafkaops/status/limits.py): the first MAX_METRICS_LINES lines are read, label
    values are cut, the busiest MAX_EXECUTORS executors are kept; `status.omitted` says what
    was left out."""
    from prometheus_client.parser import text_string_to_metric_families

    text, unread = _first_lines(text, MAX_METRICS_LINES)
    pools: dict[str, dict[str, float]] = defaultdict(dict)
    breakers: dict[str, str] = {}
    published: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    opens: float | None = None
    stored: float | None = None
    buckets: dict[float, float] = defaultdict(float)
    topic_buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    quantiles: list[float] = []
    latency_sum = latency_count = 0.0
    seen_latency = False
    long_labels = 0

    def label(labels: dict[str, str], key: str) -> str:
        nonlocal long_labels
        value = labels.get(key, "")
        if len(value) > MAX_TEXT:
            long_labels += 1
            return cut_label(value)
        return value

    try:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except Exception:  # the parser raises ValueError, and worse on garbage
        raise ValueError("invalid Prometheus text") from None
    samples, inconsistent = _unique_series(samples, status)
    for sample in samples:
        name, labels, value = sample.name, sample.labels, float(sample.value)
        if not math.isfinite(value):
            continue  # NaN or ±Inf: no figure to show or judge (and JSON has no NaN)
        if name in EXECUTOR_METRICS or name == QUEUE_REMAINING:
            executor = label(labels, "name")
            if app.executor is None or executor == app.executor:
                pools[executor][name] = value
        elif name == BREAKER_METRIC:
            breaker = label(labels, "name")
            if value >= 1 and (app.circuit_breaker is None or breaker == app.circuit_breaker):
                breakers[breaker] = label(labels, "state").upper()
        elif name == "kafka_events_published_total":
            published[label(labels, "status")] += value
        elif name == "kafka_events_errors_total":
            errors[label(labels, "error_type")] += value
        elif name == "kafka_circuit_breaker_open_total":
            opens = (opens or 0.0) + value
        elif name == "kafka_events_stored_for_retry_total":
            stored = (stored or 0.0) + value
        elif name == f"{LATENCY}_bucket":
            seen_latency = True
            buckets[_le(labels.get("le", "+Inf"))] += value
            if "topic" in labels:
                topic_buckets[label(labels, "topic")][_le(labels.get("le", "+Inf"))] += value
        elif name == LATENCY and labels.get("quantile") == "0.99":
            seen_latency = True
            quantiles.append(value)
        elif name == f"{LATENCY}_sum":
            seen_latency, latency_sum = True, latency_sum + value
        elif name == f"{LATENCY}_count":
            seen_latency, latency_count = True, latency_count + value
    if app.executor is None and PUBLISHER_EXECUTOR in pools:
        pools = {PUBLISHER_EXECUTOR: pools[PUBLISHER_EXECUTOR]}
    if app.circuit_breaker is None and KAFKA_BREAKER in breakers:
        breakers = {KAFKA_BREAKER: breakers[KAFKA_BREAKER]}
    metric_pools = _busiest(
        status, [_pool(status, executor, values) for executor, values in sorted(pools.items())]
    )
    status.pools = [p for p in status.pools if p.executor == "publisher"] + metric_pools
    if breakers and status.breaker_source not in ("stats", "health"):
        status.breaker, status.breaker_source = worst_breaker(breakers.values()), "metrics"
    status.published = _folded(status, published, "published statuses")
    status.errors = _folded(status, errors, "error types")
    status.breaker_opens, status.stored_for_retry = opens, stored
    p99 = _bucket_quantile(buckets, 0.99) if buckets else None
    if p99 is not None:
        status.latency_s, status.latency_kind = p99, "p99"
        status.latency_by_topic = _slowest(topic_buckets)
    elif quantiles:
        status.latency_s, status.latency_kind = max(quantiles), "p99"
    elif latency_count > 0:
        status.latency_s, status.latency_kind = latency_sum / latency_count, "mean"
    if long_labels:
        status.omitted.append(f"the end of {long_labels:,} label value(s) longer than {MAX_TEXT} characters")
    if unread:
        # What was not read may hold any metric: none is said to be missing.
        status.unread_lines = unread
        status.omitted.append(f"{unread:,} metrics lines past the first {MAX_METRICS_LINES:,}")
        return
    missing = []
    if not pools:
        missing.append("executor_* (thread pool)")
    if not breakers:
        missing.append(BREAKER_METRIC)
    if not published:
        missing.append("kafka_events_published_total")
    if not seen_latency:
        if published and not published.get("success"):
            # Micrometer registers the timer at the first successful publish: a service that
            # counts its publishes and has had none succeed has no timer yet, by design.
            status.latency_kind = NO_PUBLISH_YET
        else:
            missing.append(LATENCY)
    # Exposed, but inconsistently: said in `invalid`, not as missing.
    status.missing = [
        m for m in missing if not any(name.startswith(m.split("*")[0]) for name in inconsistent)
    ]


def _first_lines(text: str, limit: int) -> tuple[str, int]:
    """The first `limit` lines of `text` and how many lines follow them, found without
    splitting the rest (a 16 MiB scrape is 400,000 lines)."""
    end = 0
    for _ in range(limit):
        found = text.find("\n", end)
        if found < 0:
            return text, 0
        end = found + 1
    partial = 1 if end < len(text) and not text.endswith("\n") else 0
    return text[:end], text.count("\n", end) + partial


def _busiest(status: InstanceStatus, pools: list[ThreadPool]) -> list[ThreadPool]:
    """At most MAX_EXECUTORS pools, the busiest (longest queue, then most threads in use) kept,
    shown by name."""
    if len(pools) > MAX_EXECUTORS:

        def load(pool: ThreadPool) -> tuple[int, float]:
            busy = (pool.active or 0) / pool.max_pool if pool.max_pool else 0.0
            return (-(pool.queued or 0), -busy)

        status.omitted.append(f"{len(pools) - MAX_EXECUTORS:,} executors past the {MAX_EXECUTORS} busiest")
        pools = sorted(pools, key=lambda p: (*load(p), p.executor))[:MAX_EXECUTORS]
    return sorted(pools, key=lambda p: p.executor)


def _folded(status: InstanceStatus, counts: dict[str, float], what: str) -> dict[str, float]:
    """At most MAX_LABEL_VALUES entries: the largest kept, the rest summed under OTHER, so the
    total (and an error ratio) stays right."""
    if len(counts) <= MAX_LABEL_VALUES:
        return dict(counts)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: MAX_LABEL_VALUES - 1])
    rest = ranked[MAX_LABEL_VALUES - 1 :]
    kept[OTHER] = kept.get(OTHER, 0.0) + sum(v for _, v in rest)
    status.omitted.append(f"{len(rest):,} {what}, summed under {OTHER}")
    return kept


def _unique_series(samples: list[Any], status: InstanceStatus) -> tuple[list[Any], set[str]]:
    """Each series once. A series given twice (two registries exposing one meter) with the
    same value counts once; with different values nobody can tell which is right, so no
    sample of that metric is used (half of a counter would skew a ratio), and
    `status.invalid` says so. Returns the samples kept and the metrics set aside."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
    kept: list[Any] = []
    for sample in samples:
        series = (sample.name, tuple(sorted(sample.labels.items())))
        given = values.setdefault(series, [])
        if not given:
            kept.append(sample)
        given.append(float(sample.value))
    inconsistent: set[str] = set()
    for (name, labels), given in values.items():
        if len(set(given)) > 1 and name not in inconsistent:
            inconsistent.add(name)
            pairs = ",".join(f'{key}="{value}"' for key, value in labels)
            shown_series = f"{name}{{{pairs}}}"
            times = "twice" if len(given) == 2 else f"{len(given)} times"
            shown = ", ".join(f"{v:g}" for v in given[:5])
            status.invalid.append(
                f"{cut(shown_series)} given {times} with different values ({shown}): "
                "the metrics endpoint is inconsistent"
            )
    return [s for s in kept if s.name not in inconsistent], inconsistent


_BREAKER_ORDER = ("FORCED_OPEN", "OPEN", "HALF_OPEN", "METRICS_ONLY", "DISABLED", "CLOSED")


def worst_breaker(states: Any) -> str:
    ranked = sorted(states, key=lambda s: _BREAKER_ORDER.index(s) if s in _BREAKER_ORDER else 0)
    return str(ranked[0])


def _pool(status: InstanceStatus, executor: str, values: dict[str, float]) -> ThreadPool:
    def value(name: str) -> int | None:
        # A negative thread or task count is no count ("all -1 threads busy"): named, not judged.
        return _count(status, values, name, f"{executor or '(unnamed)'}: ") if name in values else None

    queued, remaining = value("executor_queued_tasks"), value(QUEUE_REMAINING)
    return ThreadPool(
        executor=executor or "(unnamed)",
        active=value("executor_active_threads"),
        pool_size=value("executor_pool_size_threads"),
        max_pool=value("executor_pool_max_threads"),
        queued=queued,
        queue_capacity=queued + remaining if queued is not None and remaining is not None else None,
    )


def _le(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


def _slowest(topic_buckets: dict[str, dict[float, float]]) -> dict[str, float]:
    """p99 per topic the timer is tagged with, the slowest MAX_LABEL_VALUES kept."""
    found = {t: _bucket_quantile(b, 0.99) for t, b in topic_buckets.items()}
    ranked = sorted(((t, q) for t, q in found.items() if q is not None), key=lambda tq: (-tq[1], tq[0]))
    return dict(ranked[:MAX_LABEL_VALUES])


def _bucket_quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets summed across series."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the +Inf bucket: the highest finite bound is all we know
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None
