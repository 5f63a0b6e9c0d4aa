"""What `kafkaops status` gathered from each source: plain data, no judgement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kafkaops.db.retry_runs import RetryRun
from kafkaops.kafka.dlq_names import DlqTopic


@dataclass
class DatabaseStatus:
    counts: dict[str, int] = field(default_factory=dict)  # status -> rows
    oldest_pending_at: datetime | None = None  # the oldest PENDING row's created_at
    # When the longest-waiting PENDING row became PENDING (`table_counts.pending_since`).
    oldest_pending_since: datetime | None = None
    due_now: int = 0
    newest_resolved_at: datetime | None = None
    pending_by_topic: dict[str, int] = field(default_factory=dict)
    failed_topics: list[str] = field(default_factory=list)  # topics with rows that need a DLQ topic
    resolved_estimated: bool = False  # counts["RESOLVED"] is the planner's estimate
    missing_index: str | None = None  # the statement creating the index a large table lacks
    # PENDING and DLQ_FAILED rows whose error_type the broker gives a record it never accepts.
    permanent: dict[str, int] = field(default_factory=dict)  # error class (simple name) -> rows
    retry_runs_recorded: bool = False  # the kafkaops_retry_runs table exists
    last_retry_run: RetryRun | None = None
    elapsed_s: float = 0.0

    @property
    def pending(self) -> int:
        return self.counts.get("PENDING", 0)

    @property
    def dlq_failed(self) -> int:
        return self.counts.get("DLQ_FAILED", 0)

    def oldest_pending_age(self, now: datetime) -> timedelta | None:
        """How long the longest-waiting PENDING row has been PENDING (since stored, or since
        requeued or unparked when not attempted since)."""
        since = self.oldest_pending_since or self.oldest_pending_at
        if since is None:
            return None
        return max(timedelta(0), now - since)


@dataclass
class KafkaStatus:
    bootstrap_servers: str
    cluster_id: str | None
    controller_id: int | None
    brokers: list[str]  # "id host:port"
    metadata_s: float
    topics: set[str] = field(default_factory=set)
    dlq_topics: dict[str, DlqTopic] = field(default_factory=dict)  # every DLQ topic, by name
    offsets_error: str | None = None
    principal: str | None = None  # User:<sasl.username>, where the configuration says it
    # Topics asked for by name that the principal may not describe (a listing leaves them out).
    denied_topics: set[str] = field(default_factory=set)


@dataclass
class ThreadPool:
    executor: str
    active: int | None = None
    pool_size: int | None = None
    max_pool: int | None = None
    queued: int | None = None
    queue_capacity: int | None = None  # the queue's total size, when known


@dataclass
class InstanceStatus:
    name: str
    url: str  # masked
    health: str | None = None  # UP, DEGRADED, DOWN, ...
    health_http: int | None = None  # the health endpoint's HTTP status (503: DOWN, by Spring)
    breaker: str | None = None  # CLOSED, OPEN, HALF_OPEN, ...
    breaker_source: str | None = None  # stats | health | metrics
    pending: int | None = None  # as the service reports them
    dlq_failed: int | None = None
    oldest_pending_age: str | None = None
    pools: list[ThreadPool] = field(default_factory=list)
    published: dict[str, float] = field(default_factory=dict)  # status -> events
    errors: dict[str, float] = field(default_factory=dict)  # error_type -> events
    breaker_opens: float | None = None
    stored_for_retry: float | None = None
    latency_s: float | None = None
    latency_kind: str | None = None  # p99 | mean | "no publish yet" (latency_s None)
    latency_by_topic: dict[str, float] = field(default_factory=dict)  # p99 per topic tag, slowest first
    endpoint_errors: dict[str, str] = field(default_factory=dict)  # health|metrics|stats -> why
    missing: list[str] = field(default_factory=list)  # metrics the endpoint did not expose
    invalid: list[str] = field(default_factory=list)  # figures given that are no count ("lots", -3)
    omitted: list[str] = field(default_factory=list)  # what the bounds (status/limits.py) left out
    unread_lines: int = 0  # metrics lines past the bound, not read: any metric may be among them
    answered: list[str] = field(default_factory=list)  # endpoints that gave a usable answer
    # The producer's settings from /actuator/configprops (Kafka names), or why they were not
    # read: information only, never a failure of the instance.
    producer_settings: dict[str, str] | None = None
    producer_settings_note: str | None = None
    elapsed_s: float = 0.0

    @property
    def reachable(self) -> bool:
        return bool(self.answered)


@dataclass
class SourceError:
    """A source that was configured but gave no answer (or an unusable one)."""

    source: str  # database | kafka
    message: str
    hint: str | None = None
    denied: bool = False  # the cluster denied kafkaops' principal (a missing ACL)
