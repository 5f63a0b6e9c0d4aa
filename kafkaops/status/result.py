"""What `status` found and judged: `Gathered` (each source's answer or error) and
`StatusResult` (the checks, the verdict and its JSON document). Alerts, rendering and the
command read it; kafkaops/status/gather.py makes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kafkaops.common.timeparse import isoformat_utc
from kafkaops.kafka.dlq_names import DlqTopic
from kafkaops.status import checks
from kafkaops.status.checks import Check
from kafkaops.status.model import DatabaseStatus, InstanceStatus, KafkaStatus, SourceError

if TYPE_CHECKING:
    from kafkaops.lag.model import LagReport
    from kafkaops.probe.model import ProbeResult


@dataclass
class Gathered:
    database: DatabaseStatus | None = None
    database_error: SourceError | None = None
    kafka: KafkaStatus | None = None
    kafka_error: SourceError | None = None
    instances: list[InstanceStatus] = field(default_factory=list)
    lag: LagReport | None = None  # consumer groups, when any is configured or discoverable
    lag_error: SourceError | None = None
    probe: ProbeResult | None = None  # status --probe
    probe_error: SourceError | None = None
    configured: dict[str, bool] = field(default_factory=dict)  # database, kafka, service
    elapsed_s: float = 0.0


@dataclass
class StatusResult:
    status: str
    checks: list[Check]
    gathered: Gathered
    dlq: list[DlqTopic]
    checked_at: datetime
    warnings: list[str] = field(default_factory=list)  # for stderr: state file, webhook

    @property
    def exit_code(self) -> int:
        return checks.EXIT_CODES[self.status]

    @property
    def pending(self) -> int | None:
        """The PENDING count: the table's, else what the service reports."""
        g = self.gathered
        if g.database is not None:
            return g.database.pending
        reported = [i.pending for i in g.instances if i.pending is not None]
        return max(reported) if reported else None

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        g = self.gathered
        return {
            "status": self.status,
            "checked_at": isoformat_utc(self.checked_at),
            "duration_s": round(g.elapsed_s, 3),
            "checks": [c.as_dict() for c in self.checks],
            "database": _database_dict(g, self.checked_at),
            "kafka": _kafka_dict(g),
            "instances": [_instance_dict(i) for i in g.instances],
            "dlq_topics": [_dlq_dict(d) for d in self.dlq],
            "consumer_lag": g.lag.as_dict() if g.lag is not None else None,
            "probe": g.probe.as_dict() if g.probe is not None else None,
        }


def _database_dict(g: Gathered, now: datetime) -> dict[str, Any] | None:
    if not g.configured.get("database"):
        return None
    if g.database is None:
        return {"reachable": False, "error": g.database_error.message if g.database_error else None}
    db = g.database
    age = db.oldest_pending_age(now)
    return {
        "reachable": True,
        "counts": dict(sorted(db.counts.items())),
        "pending": db.pending,
        "dlq_failed": db.dlq_failed,
        "oldest_pending_created_at": isoformat_utc(db.oldest_pending_at),
        "oldest_pending_since": isoformat_utc(db.oldest_pending_since),
        "oldest_pending_age_s": int(age.total_seconds()) if age is not None else None,
        "due_now": db.due_now,
        "newest_resolved_at": isoformat_utc(db.newest_resolved_at),
        "resolved_estimated": db.resolved_estimated,
        "missing_index": db.missing_index,
        "permanent": dict(sorted(db.permanent.items())),
        "last_retry_run": _run_dict(db),
        "pending_by_topic": dict(sorted(db.pending_by_topic.items(), key=lambda kv: (-kv[1], kv[0]))),
        "duration_s": round(db.elapsed_s, 3),
    }


def _run_dict(db: Any) -> dict[str, Any] | None:
    """The last retry pass recorded; None when the kafkaops_retry_runs table does not exist."""
    if not db.retry_runs_recorded:
        return None
    run = db.last_retry_run
    if run is None:
        return {"recorded": False}
    return {
        "recorded": True,
        **run.as_dict(),
        "started_at": isoformat_utc(run.started_at),
        "finished_at": isoformat_utc(run.finished_at),
    }


def _kafka_dict(g: Gathered) -> dict[str, Any] | None:
    if not g.configured.get("kafka"):
        return None
    if g.kafka is None:
        return {"reachable": False, "error": g.kafka_error.message if g.kafka_error else None}
    k = g.kafka
    return {
        "reachable": True,
        "bootstrap_servers": k.bootstrap_servers,
        "cluster_id": k.cluster_id,
        "controller_id": k.controller_id,
        "brokers": k.brokers,
        "metadata_s": round(k.metadata_s, 3),
        "topic_count": len(k.topics),
        "offsets_error": k.offsets_error,
    }


def _instance_dict(i: InstanceStatus) -> dict[str, Any]:
    return {
        "name": i.name,
        "url": i.url,
        "reachable": i.reachable,
        "health": i.health,
        "circuit_breaker": i.breaker,
        "circuit_breaker_source": i.breaker_source,
        "pending_events": i.pending,
        "dlq_failed_events": i.dlq_failed,
        "oldest_pending_age": i.oldest_pending_age,
        "thread_pools": [vars(p) for p in i.pools],
        "published": i.published,
        "errors": i.errors,
        "circuit_breaker_opened": i.breaker_opens,
        "stored_for_retry": i.stored_for_retry,
        "publish_latency_s": i.latency_s,
        "publish_latency_kind": i.latency_kind,
        "publish_latency_p99_by_topic": i.latency_by_topic,
        "endpoint_errors": i.endpoint_errors,
        "missing_metrics": i.missing,
        "invalid_figures": i.invalid,
        "left_out": i.omitted,
        "producer_settings": _producer_settings(i),
        "duration_s": round(i.elapsed_s, 3),
    }


def _producer_settings(i: InstanceStatus) -> dict[str, Any] | None:
    """The service's producer settings beside the runbook's; None when configprops is not read."""
    from kafkaops.kafka.producer_settings import compare

    if i.producer_settings is None and i.producer_settings_note is None:
        return None
    return {
        "settings": [c.as_dict() for c in compare(i.producer_settings)]
        if i.producer_settings is not None
        else [],
        "note": i.producer_settings_note,
    }


def _dlq_dict(d: DlqTopic) -> dict[str, Any]:
    return {
        "topic": d.source,
        "dlq_topic": d.name,
        "exists": d.exists,
        "denied": d.denied,
        "messages": d.messages,
        "partitions": d.partitions,
    }
