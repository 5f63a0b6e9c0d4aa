"""The machine formats of `kafkaops status`: the Nagios plugin line and Prometheus text.

Nagios: `KAFKAOPS CRITICAL - 3 DLQ_FAILED events | pending=1500;1000;5000 ...`, one line, the
text free of `|` and control characters, short enough that Nagios keeps its performance data.
Prometheus: gauges for the node_exporter textfile collector, built with prometheus_client
(label values escaped by it, and cut).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaopsError, UsageError
from kafkaops.common.escape import safe_text
from kafkaops.status import checks
from kafkaops.status.limits import NAGIOS_MAX_BYTES, NAGIOS_MAX_PERFDATA_BYTES, cut_bytes, cut_label

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from kafkaops.config.settings import Thresholds
    from kafkaops.status.result import StatusResult


def render_nagios(result: StatusResult, thresholds: Thresholds) -> str:
    """One plugin line: state, what is wrong (worst first), then the performance data; at most
    NAGIOS_MAX_BYTES, the text cut to make room, never the performance data."""
    worst = [c for c in checks.worst_first(result.checks) if c.status == result.status]
    if result.status == checks.OK:
        summary = "all checks OK"
        pending = result.pending
        if pending is not None:
            summary += f", {pending} PENDING events"
    else:
        summary = "; ".join(c.message for c in worst)
    perf = ""
    for item in _perfdata(result, thresholds):
        if len(perf) + 1 + len(item.encode()) > NAGIOS_MAX_PERFDATA_BYTES:
            break  # whole items only: a cut one would be misread
        perf = f"{perf} {item}" if perf else item
    return nagios_line(result.status, summary, perf)


def nagios_line(status: str, text: str, perfdata: str = "") -> str:
    """`KAFKAOPS <status> - <text> | <perfdata>`, every plugin line kafkaops writes (an UNKNOWN
    for a usage error too). The text is escaped (no control characters; `|` becomes `/`, since
    Nagios reads what follows one as performance data) and cut to keep the line within
    NAGIOS_MAX_BYTES; the performance data is never cut."""
    head = f"KAFKAOPS {status} - "
    tail = f" | {perfdata}" if perfdata else ""
    room = NAGIOS_MAX_BYTES - len(head.encode()) - len(tail.encode())
    return head + cut_bytes(safe_text(text).replace("|", "/"), room) + tail


def _perfdata(result: StatusResult, t: Thresholds) -> Iterator[str]:
    db = result.gathered.database
    pending = result.pending
    if pending is not None:
        yield f"pending={pending};{t.pending_warning};{t.pending_critical};0"
    if db is not None:
        age = db.oldest_pending_age(result.checked_at)
        seconds = int(age.total_seconds()) if age is not None else 0
        warn, crit = (
            int(t.oldest_pending_warning.total_seconds()),
            int(t.oldest_pending_critical.total_seconds()),
        )
        yield f"oldest_pending_s={seconds};{warn};{crit};0"
        yield f"dlq_failed={db.dlq_failed};{t.dlq_failed_critical};{t.dlq_failed_critical};0"
        yield f"dlq={db.counts.get('DLQ', 0)};;;0"
        yield f"due_now={db.due_now};;;0"
    elif (check := result.check("dlq_failed")) is not None:
        yield f"dlq_failed={check.value};{t.dlq_failed_critical};{t.dlq_failed_critical};0"
    if result.gathered.kafka is not None:
        yield f"kafka_metadata_s={result.gathered.kafka.metadata_s:.3f}s;;;0"
    missing = result.check("dlq_topics")
    if missing is not None:
        yield f"missing_dlq_topics={missing.value};0;;0"
    probe = result.gathered.probe
    if probe is not None:
        p99 = probe.figures(probe.ack_s)["p99"]
        if p99 is not None:
            limits = (t.publish_latency_warning.total_seconds(), t.publish_latency_critical.total_seconds())
            yield f"probe_ack_p99_s={p99:.3f}s;{limits[0]:g};{limits[1]:g};0"
        yield f"probe_lost={probe.lost};;0;0"


def build_registry(result: StatusResult) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(result))
    return registry


def render_prometheus(result: StatusResult) -> str:
    from prometheus_client import generate_latest

    return generate_latest(build_registry(result)).decode("utf-8")


def write_metrics_file(path: str, result: StatusResult) -> None:
    """Atomically replace `path` (temp file beside it, then rename)."""
    from prometheus_client import generate_latest

    from kafkaops.common.filelock import replace_file

    try:
        replace_file(Path(path), generate_latest(build_registry(result)), mode=0o644)
    except OSError as exc:
        raise KafkaopsError(f"cannot write metrics to {path}: {exc.strerror or type(exc).__name__}") from None


def check_metrics_path(path: str) -> None:
    """Before gathering: a folder that does not exist is a usage error, not a late surprise."""
    target = Path(path)
    if not target.parent.is_dir():
        raise UsageError(f"--metrics-file {path}: folder {target.parent} does not exist")


class _Collector:
    def __init__(self, result: StatusResult) -> None:
        self.result = result

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        """Label values come from the service, the table and the cluster: prometheus_client
        escapes only backslash, quote and newline, so control characters (ESC, BEL, bidi
        overrides) are made visible here, before `cat` or a terminal sees the text; a value
        longer than MAX_TEXT is cut (an 8 MB label is no label)."""
        for family in self._families():
            family.samples = [
                s._replace(labels={k: cut_label(safe_text(v)) for k, v in s.labels.items()})
                for s in family.samples
            ]
            yield family

    def _families(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        r = self.result
        g = r.gathered

        def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        overall = gauge("kafkaops_status", "Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
        overall.add_metric([], checks.EXIT_CODES[r.status])
        yield overall
        per_check = gauge(
            "kafkaops_status_check", "Each check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", ["check"]
        )
        for check in r.checks:
            per_check.add_metric([check.name], checks.EXIT_CODES[check.status])
        yield per_check
        when = gauge("kafkaops_status_timestamp_seconds", "When the status was checked")
        when.add_metric([], r.checked_at.timestamp())
        yield when
        up = gauge("kafkaops_status_source_up", "1 when a configured source answered", ["source"])
        if g.configured.get("database"):
            up.add_metric(["database"], 1 if g.database is not None else 0)
        if g.configured.get("kafka"):
            up.add_metric(["kafka"], 1 if g.kafka is not None else 0)
        for instance in g.instances:
            up.add_metric([f"service {instance.name}"], 0 if instance.endpoint_errors else 1)
        yield up
        yield from self._database()
        yield from self._kafka()
        yield from self._instances()
        yield from self._consumer_lag()
        yield from self._probe()

    def _database(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        db = self.result.gathered.database
        if db is None:
            return
        counts = GaugeMetricFamily(
            "kafkaops_failed_events", "Rows of failed_kafka_events by status", labels=["status"]
        )
        for status in ("PENDING", "RESOLVED", "DLQ", "DLQ_FAILED"):
            counts.add_metric([status], db.counts.get(status, 0))
        for status, n in sorted(db.counts.items()):
            if status not in ("PENDING", "RESOLVED", "DLQ", "DLQ_FAILED"):
                counts.add_metric([status], n)
        yield counts
        age = db.oldest_pending_age(self.result.checked_at)
        oldest = GaugeMetricFamily(
            "kafkaops_failed_events_oldest_pending_age_seconds", "Age of the oldest PENDING row (0 when none)"
        )
        oldest.add_metric([], age.total_seconds() if age is not None else 0)
        yield oldest
        due = GaugeMetricFamily("kafkaops_failed_events_due", "PENDING rows due for a retry now")
        due.add_metric([], db.due_now)
        yield due
        permanent = GaugeMetricFamily(
            "kafkaops_failed_events_permanent", "PENDING and DLQ_FAILED rows the broker will never accept"
        )
        permanent.add_metric([], sum(db.permanent.values()))
        yield permanent
        if db.last_retry_run is not None:
            run = GaugeMetricFamily(
                "kafkaops_retry_last_pass_end_timestamp_seconds", "When the last recorded retry pass ended"
            )
            run.add_metric([], db.last_retry_run.finished_at.timestamp())
            yield run
        if db.newest_resolved_at is not None:
            resolved = GaugeMetricFamily(
                "kafkaops_failed_events_last_resolved_timestamp_seconds", "Newest RESOLVED row's time"
            )
            resolved.add_metric([], db.newest_resolved_at.timestamp())
            yield resolved
        by_topic = GaugeMetricFamily(
            "kafkaops_failed_events_pending", "PENDING rows by topic", labels=["topic"]
        )
        for topic, n in sorted(db.pending_by_topic.items()):
            by_topic.add_metric([topic], n)
        yield by_topic

    def _kafka(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        k = self.result.gathered.kafka
        if k is None:
            return
        brokers = GaugeMetricFamily("kafkaops_kafka_brokers", "Brokers in the cluster's metadata")
        brokers.add_metric([], len(k.brokers))
        yield brokers
        took = GaugeMetricFamily("kafkaops_kafka_metadata_seconds", "How long the metadata request took")
        took.add_metric([], k.metadata_s)
        yield took
        exists = GaugeMetricFamily(
            "kafkaops_dlq_topic_exists", "1 when the topic's DLQ topic exists", labels=["topic", "dlq_topic"]
        )
        messages = GaugeMetricFamily(
            "kafkaops_dlq_topic_messages",
            "Records in a DLQ topic (its offsets up to the last stable one)",
            labels=["dlq_topic"],
        )
        for d in self.result.dlq:
            exists.add_metric([d.source, d.name], 1 if d.exists else 0)
            if d.messages is not None:
                messages.add_metric([d.name], d.messages)
        yield exists
        yield messages

    def _consumer_lag(self) -> Iterator[Any]:
        """Per group and topic (a topic's partitions summed, its oldest waiting record), as
        kafka-lag-exporter's and kminion's gauges are; the verdict per group."""
        from prometheus_client.core import GaugeMetricFamily

        from kafkaops.lag.model import VERDICTS, rank

        report = self.result.gathered.lag
        if report is None:
            return
        records = GaugeMetricFamily(
            "kafkaops_consumer_lag_records", "Records not yet consumed", labels=["group", "topic"]
        )
        seconds = GaugeMetricFamily(
            "kafkaops_consumer_lag_seconds",
            "Age of the oldest record not yet consumed (0 when none waits)",
            labels=["group", "topic"],
        )
        verdict = GaugeMetricFamily(
            "kafkaops_consumer_group_verdict",
            "The group's verdict: " + ", ".join(f"{rank(v)} {v}" for v in VERDICTS),
            labels=["group"],
        )
        for g in report.groups:
            verdict.add_metric([g.group], rank(g.verdict))
            for topic in g.topics():
                parts = [p for p in g.partitions if p.topic == topic]
                known = [p.lag for p in parts if p.lag is not None]
                if known:
                    records.add_metric([g.group, topic], sum(known))
                ages = [p.time_lag_s for p in parts if p.time_lag_s is not None]
                if ages:
                    seconds.add_metric([g.group, topic], max(ages))
        yield records
        yield seconds
        yield verdict

    def _probe(self) -> Iterator[Any]:
        """`status --probe`: the probe's latencies (seconds, by quantile), records lost, and
        the time to connect and to read metadata."""
        from prometheus_client.core import GaugeMetricFamily

        probe = self.result.gathered.probe
        if probe is None:
            return
        latency = GaugeMetricFamily(
            "kafkaops_probe_latency_seconds",
            "The probe's produce acknowledgement (ack) and written-to-read-back (end_to_end) latency",
            labels=["kind", "quantile"],
        )
        for kind, samples in (("ack", probe.ack_s), ("end_to_end", probe.end_to_end_s)):
            for quantile, value in probe.figures(samples).items():
                if value is not None:
                    latency.add_metric([kind, quantile], value)
        yield latency
        lost = GaugeMetricFamily("kafkaops_probe_records_lost", "Probe records not read back")
        lost.add_metric([], probe.lost)
        yield lost
        steps = GaugeMetricFamily(
            "kafkaops_probe_step_seconds",
            "Time to connect and to read the probe topic's metadata",
            labels=["step"],
        )
        for step, value in (("connect", probe.connect_s), ("metadata", probe.metadata_s)):
            if value is not None:
                steps.add_metric([step], value)
        yield steps

    def _instances(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        instances = self.result.gathered.instances
        if not instances:
            return
        breaker = GaugeMetricFamily(
            "kafkaops_service_circuit_breaker_state",
            "1 for the state the service's circuit breaker is in",
            labels=["instance", "state"],
        )
        active = GaugeMetricFamily(
            "kafkaops_service_thread_pool_active_threads",
            "Busy publisher threads",
            labels=["instance", "executor"],
        )
        queued = GaugeMetricFamily(
            "kafkaops_service_thread_pool_queued_tasks",
            "Tasks waiting in the queue",
            labels=["instance", "executor"],
        )
        for i in instances:
            if i.breaker is not None:
                for state in ("CLOSED", "OPEN", "HALF_OPEN"):
                    breaker.add_metric([i.name, state], 1 if i.breaker == state else 0)
                if i.breaker not in ("CLOSED", "OPEN", "HALF_OPEN"):
                    breaker.add_metric([i.name, i.breaker], 1)
            for pool in i.pools:
                if pool.active is not None:
                    active.add_metric([i.name, pool.executor], pool.active)
                if pool.queued is not None:
                    queued.add_metric([i.name, pool.executor], pool.queued)
        yield breaker
        yield active
        yield queued
