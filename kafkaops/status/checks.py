"""Judging what was gathered against the runbook's thresholds: pure functions, one per check.

Each check has a name, a status (OK, WARNING, CRITICAL, UNKNOWN), the value it judged, a
message, and, when it is not OK, the runbook's next step as a command a person can paste: every
command is built by `command()`, so a value from the table or a service is one quoted word.
Thresholds are exclusive, as the runbook writes them: pending "> 1000" warns at 1001.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kafkaops.common.shell import command
from kafkaops.common.timeparse import format_duration
from kafkaops.config.settings import Thresholds
from kafkaops.kafka.dlq_names import DlqTopic
from kafkaops.kafka.faults import acl_hint
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name
from kafkaops.status.limits import cut
from kafkaops.status.model import InstanceStatus, ThreadPool

if TYPE_CHECKING:
    from kafkaops.lag.model import LagReport
    from kafkaops.probe.model import ProbeResult

OK, WARNING, CRITICAL, UNKNOWN = "OK", "WARNING", "CRITICAL", "UNKNOWN"
# Monitoring Plugins exit codes: `status`' own contract, for what it judged. It is apart from
# `common.errors.ExitStatus` (every other command's, 1 for a runtime and 2 for a usage error),
# and meets it in one place: an error that stops status from judging exits UNKNOWN, 3, which is
# `ExitStatus.UNKNOWN` (cli/status.py), never 1 or 2, read here as WARNING or CRITICAL.
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}
# A problem known beats a problem not known: UNKNOWN only wins over OK.
_RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}

OPEN_STATES = ("OPEN", "FORCED_OPEN")
MAX_LISTED = 10  # names a message lists before "and N more"
# Resilience4j's states; CLOSED, DISABLED and METRICS_ONLY let every call through.
KNOWN_STATES = ("CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED", "METRICS_ONLY")
# Spring Boot's health statuses: DOWN and OUT_OF_SERVICE are what it answers 503 for.
HEALTH_CRITICAL = ("DOWN", "OUT_OF_SERVICE")
HEALTH_WARNING = ("DEGRADED", "UNKNOWN")


PENDING_BY_TOPIC = command("kafkaops", "failed", "--status", "PENDING", "--group-by", "topic")
PENDING_BY_CAUSE = command("kafkaops", "failed", "--status", "PENDING", "--group-by", "topic,error_signature")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    value: Any
    message: str
    next_step: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "value": self.value,
            "message": self.message,
            "next_step": self.next_step,
        }


def overall(checks: Iterable[Check]) -> str:
    worst = OK
    for check in checks:
        if _RANK[check.status] > _RANK[worst]:
            worst = check.status
    return worst


def worst_first(checks: Sequence[Check]) -> list[Check]:
    return sorted(checks, key=lambda c: -_RANK[c.status])


def pending_events(
    count: int, t: Thresholds, *, breaker_open: bool = False, change: tuple[int, timedelta] | None = None
) -> Check:
    """`change`: how the count moved since the previous run, and how long ago that was."""
    trend = ""
    if change is not None:
        delta, ago = change
        trend = f", {delta:+d} since {format_duration(ago)} ago"
    if count > t.pending_critical:
        status, limit = CRITICAL, t.pending_critical
    elif count > t.pending_warning:
        status, limit = WARNING, t.pending_warning
    else:
        return Check("pending_events", OK, count, f"{count} PENDING events{trend}")
    growing = change is not None and change[0] > 0
    if breaker_open:
        step = (
            f"{'pending growing while ' if growing else ''}the service's circuit breaker is OPEN: Kafka "
            f"is down for it; look at the kafka check, then: {PENDING_BY_CAUSE}"
        )
    else:
        step = PENDING_BY_CAUSE
    return Check("pending_events", status, count, f"{count} PENDING events (> {limit}){trend}", step)


def oldest_pending_age(age: timedelta | None, t: Thresholds) -> Check:
    if age is None:
        return Check("oldest_pending_age", OK, None, "no PENDING events")
    seconds = int(age.total_seconds())
    shown = format_duration(age)
    if age < timedelta(0):  # judged by its age, it is new: say what is odd about it
        return Check(
            "oldest_pending_age",
            OK,
            seconds,
            f"oldest PENDING event is dated {format_duration(-age)} in the future",
        )
    if age > t.oldest_pending_critical:
        status, limit = CRITICAL, t.oldest_pending_critical
    elif age > t.oldest_pending_warning:
        status, limit = WARNING, t.oldest_pending_warning
    else:
        return Check("oldest_pending_age", OK, seconds, f"oldest PENDING event has been PENDING for {shown}")
    return Check(
        "oldest_pending_age",
        status,
        seconds,
        f"oldest PENDING event has been PENDING for {shown} (> {format_duration(limit)})",
        f"{command('kafkaops', 'retry', '--dry-run', '--limit', '20')}  (what is due; is the retry "
        f"job running?), then {command('kafkaops', 'failed', 'list', '--status', 'PENDING')}",
    )


def dlq_failed(count: int, t: Thresholds) -> Check:
    if count > t.dlq_failed_critical:
        return Check(
            "dlq_failed",
            CRITICAL,
            count,
            f"{count} DLQ_FAILED events require manual intervention",
            f"{command('kafkaops', 'failed', 'list', '--status', 'DLQ_FAILED')}, then "
            f"{command('kafkaops', 'failed', 'requeue')}",
        )
    return Check("dlq_failed", OK, count, f"{count} DLQ_FAILED events")


def circuit_breaker(
    instance: str,
    state: str | None,
    open_since: datetime | None,
    now: datetime,
    t: Thresholds,
    *,
    kafka_ok: bool = False,
) -> Check | None:
    """OPEN is WARNING until it has been seen open for longer than the threshold, then CRITICAL.

    `kafka_ok`: kafkaops itself reached the brokers (the kafka check is OK): an OPEN breaker
    then points between the service and Kafka, not at the brokers.
    None when the instance reports no breaker state (its service check says so)."""
    name = f"circuit_breaker {instance}"
    if state is None:
        return None
    if state in OPEN_STATES:
        since = open_since or now
        open_for = max(timedelta(0), now - since)
        step = (
            "Kafka is down or unreachable for the service: look at the kafka check; "
            f"pending events wait in the table: {PENDING_BY_TOPIC}"
        )
        where = ""
        if kafka_ok:
            where = (
                "; the kafka check is OK: the problem is between the service and Kafka (network, "
                "credentials, the service's producer), not the brokers"
            )
            step = (
                "look at the service's log for its producer's errors and at its route and credentials "
                f"to the brokers; pending events wait in the table: {PENDING_BY_TOPIC}"
            )
        if open_for > t.breaker_open_critical:
            return Check(
                name,
                CRITICAL,
                state,
                f"circuit breaker {state} for {format_duration(open_for)} "
                f"(> {format_duration(t.breaker_open_critical)}){where}",
                step,
            )
        return Check(
            name,
            WARNING,
            state,
            f"circuit breaker {state} for {format_duration(open_for)} "
            f"(critical after {format_duration(t.breaker_open_critical)}){where}",
            step,
        )
    if state == "HALF_OPEN":
        return Check(
            name,
            WARNING,
            state,
            "circuit breaker HALF_OPEN: the service is testing whether Kafka is back",
            f"{command('kafkaops', 'status', '--watch')}  (it should close within minutes; if it "
            "reopens, look at the kafka check)",
        )
    if state not in KNOWN_STATES:
        return Check(name, UNKNOWN, state, f"unrecognised circuit breaker state {state!r}")
    return Check(name, OK, state, f"circuit breaker {state}")


def thread_pool(instance: str, pools: Sequence[ThreadPool], t: Thresholds) -> Check | None:
    """WARNING when a queue is above its limit (or its share of capacity) or every thread is busy.

    The publisher-stats pool, when the service gives one, is the publisher's: only it is judged.
    """
    name = f"thread_pool {instance}"
    judged = [p for p in pools if p.executor == "publisher"] or list(pools)
    if not judged:
        return None
    problems: list[str] = []
    for pool in judged:
        label = pool.executor
        if pool.queued is not None and pool.queued > t.thread_pool_queue_warning:
            problems.append(f"{label}: queue {pool.queued} (> {t.thread_pool_queue_warning})")
        elif (
            pool.queued is not None
            and pool.queue_capacity
            and pool.queued > t.thread_pool_queue_warning_ratio * pool.queue_capacity
        ):
            problems.append(
                f"{label}: queue {pool.queued} of {pool.queue_capacity} "
                f"(> {t.thread_pool_queue_warning_ratio:.0%})"
            )
        if pool.active is not None and pool.max_pool and pool.active >= pool.max_pool:
            problems.append(f"{label}: all {pool.max_pool} threads busy")
    value = max((p.queued or 0 for p in judged), default=0)
    if problems:
        more = f"; and {len(problems) - MAX_LISTED:,} more" if len(problems) > MAX_LISTED else ""
        return Check(
            name,
            WARNING,
            value,
            "backpressure: " + "; ".join(problems[:MAX_LISTED]) + more,
            "publishing is slower than events arrive: look at the kafka check (metadata time) and "
            "the service's publish latency; "
            + command("kafkaops", "failed", "--status", "PENDING", "--group-by", "error_signature"),
        )
    summary = ", ".join(
        f"{p.executor}: {p.active if p.active is not None else '?'}/{p.max_pool if p.max_pool is not None else '?'}"
        f" threads, queue {p.queued if p.queued is not None else '?'}"
        for p in judged[:MAX_LISTED]
    )
    if len(judged) > MAX_LISTED:
        summary += f", and {len(judged) - MAX_LISTED:,} more"
    return Check(name, OK, value, summary)


LATENCY_STEP = (
    "the runbook's High latency steps: the service's producer batch.size (32768) and linger.ms (10), "
    "the network to the brokers (the kafka check's metadata time), slow consumers; per topic: "
    + command("kafkaops", "status", "-o", "json")
    + " | "
    + command("jq", ".instances[] | {name, publish_latency_p99_by_topic}")
)


def _ms(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def latency_level(seconds: float, t: Thresholds) -> tuple[str, timedelta] | None:
    """WARNING or CRITICAL, with the limit passed, for a publish latency over
    thresholds.publish_latency; None when within it."""
    if seconds > t.publish_latency_critical.total_seconds():
        return CRITICAL, t.publish_latency_critical
    if seconds > t.publish_latency_warning.total_seconds():
        return WARNING, t.publish_latency_warning
    return None


def publish_latency(
    instance: str, latency_s: float | None, kind: str | None, by_topic: dict[str, float], t: Thresholds
) -> Check | None:
    """The service's publish latency (p99 from its timer's histogram, per topic where it tags
    the timer; a mean when it gives nothing else) against thresholds.publish_latency.
    None when the service gives no figure (its service check says so)."""
    if latency_s is None:
        return None
    name = f"publish_latency {instance}"
    what = kind or "p99"
    worst_topic, worst = max(by_topic.items(), key=lambda tq: tq[1], default=(None, latency_s))
    where = f" on {worst_topic}" if worst_topic else ""
    level = latency_level(worst, t)
    if level is None:
        return Check(name, OK, round(worst, 6), f"publish {what} {_ms(worst)}{where}")
    status, limit = level
    slow = [tp for tp, q in by_topic.items() if q > limit.total_seconds()]
    more = f" ({len(slow)} topics over)" if len(slow) > 1 else ""
    return Check(
        name,
        status,
        round(worst, 6),
        f"publish {what} {_ms(worst)}{where} (> {_ms(limit.total_seconds())}){more}",
        LATENCY_STEP,
    )


def publish_window(
    previous: tuple[datetime, dict[str, float]] | None, current: dict[str, float], now: datetime
) -> tuple[dict[str, float], timedelta | None]:
    """The publishes per status since the previous run, and how long ago that was (None: the
    counters since the service started: no previous run, a clock that went back, or a counter
    that went down, which is a restarted service)."""
    if previous is None or previous[0] >= now:
        return dict(current), None
    at, before = previous
    if any(current.get(k, 0.0) < v for k, v in before.items()):
        return dict(current), None
    return {k: v - before.get(k, 0.0) for k, v in current.items()}, now - at


def publish_error_ratio(
    instance: str, window: dict[str, float], ago: timedelta | None, t: Thresholds
) -> Check | None:
    """Errors / all publishes (kafka_events_published_total by status: every status but
    `success` is an error) over the window between two runs, against
    thresholds.publish_error_ratio. None when the service counts no publishes."""
    if not window:
        return None
    name = f"publish_errors {instance}"
    total = sum(window.values())
    errors = total - window.get("success", 0.0)
    span = f"in the last {format_duration(ago)}" if ago is not None else "since the service started"
    if total <= 0:
        return Check(name, OK, 0.0, f"no publishes {span}")
    ratio = errors / total
    shown = f"{errors:,.0f} of {total:,.0f} publishes failed {span} ({ratio:.1%})"
    if ratio > t.publish_error_ratio_critical:
        status, limit = CRITICAL, t.publish_error_ratio_critical
    elif ratio > t.publish_error_ratio_warning:
        status, limit = WARNING, t.publish_error_ratio_warning
    else:
        return Check(name, OK, round(ratio, 6), shown)
    return Check(
        name,
        status,
        round(ratio, 6),
        f"{shown[:-1]}, > {limit:.1%})",
        "why the service's publishes fail, by error type: "
        + command("kafkaops", "status", "-o", "json")
        + " | "
        + command("jq", ".instances[] | {name, errors}")
        + "; what waits for a retry: "
        + PENDING_BY_CAUSE,
    )


def dlq_topics(missing: Sequence[DlqTopic], *, principal: str | None = None) -> Check:
    """Topics whose rows need a DLQ topic that is not there (`DlqCatalog.missing`). A name Kafka cannot have (a space, `$(...)`,
    250 characters) gets no `dlq ensure` to paste: it is said to be invalid instead. One the
    principal may not describe is "not authorized to describe", with the ACL that grants it."""
    if not missing:
        return Check("dlq_topics", OK, 0, "every topic with failed events has its DLQ topic")
    denied = [m for m in missing if m.denied]
    fixable = [
        m for m in missing if not m.denied and is_valid_topic_name(m.source) and is_valid_topic_name(m.name)
    ]
    invalid = [m for m in missing if not m.denied and m not in fixable]
    parts: list[str] = []
    steps: list[str] = []
    if denied:
        more = f" and {len(denied) - MAX_LISTED:,} more" if len(denied) > MAX_LISTED else ""
        names = ", ".join(m.name for m in denied[:MAX_LISTED]) + more
        who = principal or "the configured principal"
        parts.append(f"not authorized to describe DLQ topic(s): {names}: Describe denied to {who}")
        steps += [
            acl_hint("TOPIC_AUTHORIZATION_FAILED", name=m.name, operation="Describe", principal=principal)
            for m in denied[:MAX_LISTED]
        ]
    if fixable:
        # A table with thousands of topics made a line of thousands of names (Nagios keeps 4 kB).
        more = f" and {len(fixable) - MAX_LISTED:,} more" if len(fixable) > MAX_LISTED else ""
        names = ", ".join(m.name for m in fixable[:MAX_LISTED]) + more
        parts.append(f"missing DLQ topic(s): {names}: the next DLQ send for them fails")
        steps += [command("kafkaops", "dlq", "ensure", m.source) for m in fixable[:MAX_LISTED]]
        if more:
            steps.append(
                f"the other {len(fixable) - MAX_LISTED:,}: "
                + command("kafkaops", "status", "-o", "json")
                + " | "
                + command("jq", ".dlq_topics[] | select(.exists | not)")
            )
    if invalid:
        more = f" and {len(invalid) - MAX_LISTED:,} more" if len(invalid) > MAX_LISTED else ""
        names = ", ".join(repr(cut(_invalid_name(m), 80)) for m in invalid[:MAX_LISTED]) + more
        parts.append(f"not a valid Kafka topic name: {names}: no DLQ topic can be created for it")
        steps.append(f"no command for an invalid topic name ({TOPIC_NAME_RULE}): fix the rows' topic")
    return Check("dlq_topics", WARNING, len(missing), "; ".join(parts), "; ".join(steps))


def _invalid_name(topic: DlqTopic) -> str:
    return topic.source if not is_valid_topic_name(topic.source) else topic.name


# `kafkaops lag`'s verdicts as checks: STALL, STOP and ERROR mean nobody is consuming.
_LAG_STATUS = {"OK": OK, "WARNING": WARNING, "STALL": CRITICAL, "STOP": CRITICAL, "ERROR": CRITICAL}


def consumer_lag(report: LagReport) -> Check | None:
    """The consumer groups' verdicts (kafkaops/lag): the worst group first, the next step
    `kafkaops lag` on it. None when no group was judged."""
    groups = report.worst_first()
    if not groups:
        return None
    worst = groups[0]
    status = _LAG_STATUS[worst.verdict]
    lag = sum(g.lag for g in groups)
    if status == OK:
        return Check("consumer_lag", OK, lag, f"{len(groups)} consumer group(s) OK, {lag:,} records waiting")
    bad = [g for g in groups if g.verdict != "OK"]
    parts = [f"group {g.group} {g.verdict}: {g.reason}" for g in bad[:3]]
    if len(bad) > 3:
        parts.append(f"and {len(bad) - 3:,} more not OK")
    return Check(
        "consumer_lag",
        status,
        lag,
        "; ".join(parts),
        command("kafkaops", "lag", "--group", worst.group, "--partitions"),
    )


def probe(result: ProbeResult, t: Thresholds) -> Check:
    """`kafkaops probe`'s records: CRITICAL when they could not go through (lost, refused),
    else their acknowledgement p99 against thresholds.publish_latency, as the service's."""
    ack = result.figures(result.ack_s)
    e2e = result.figures(result.end_to_end_s)
    if result.problem is not None:
        step = PROBE_REPLICAS_STEP if "NOT_ENOUGH_REPLICAS" in result.problem else LATENCY_STEP
        return Check("probe", CRITICAL, result.lost, f"{result.topic}: {result.problem}", step)
    p99 = ack["p99"] or 0.0
    figures = (
        f"{result.count} records to {result.topic}: ack p99 {_ms(p99)}, end to end p99 "
        f"{_ms(e2e['p99'] or 0.0)}, connect {_ms(result.connect_s or 0.0)}, metadata "
        f"{_ms(result.metadata_s or 0.0)}"
    )
    level = latency_level(p99, t)
    if level is None:
        return Check("probe", OK, round(p99, 6), figures)
    status, limit = level
    return Check(
        "probe", status, round(p99, 6), f"{figures} (ack p99 > {_ms(limit.total_seconds())})", LATENCY_STEP
    )


PROBE_REPLICAS_STEP = "bring the missing replicas back in sync (the brokers' health), then: " + command(
    "kafkaops", "probe"
)


def producer_settings(instance: InstanceStatus) -> Check | None:
    """The service's producer settings (from /actuator/configprops) beside the runbook's:
    information, always OK; a difference or an endpoint that could not be read is said. None
    when configprops is not configured."""
    from kafkaops.kafka.producer_settings import compare

    name = f"producer_settings {instance.name}"
    if instance.producer_settings is None:
        if instance.producer_settings_note is None:
            return None
        return Check(name, OK, None, f"not read: {instance.producer_settings_note}")
    compared = compare(instance.producer_settings)
    differ = [c for c in compared if c.differs]
    if not differ:
        shown = ", ".join(f"{c.setting} {c.service}" for c in compared if c.service is not None)
        return Check(name, OK, 0, f"as expected: {shown}")
    parts = [f"{c.setting} {c.service or 'not set'} ({c.source} {c.expected})" for c in differ]
    return Check(name, OK, len(differ), "differs (information): " + ", ".join(parts))


DOCTOR = command("kafkaops", "doctor")


def source_unreachable(source: str, message: str, hint: str | None = None, *, denied: bool = False) -> Check:
    """A source status could not read; ``denied``: because the cluster denied kafkaops'
    principal something, so the next step also checks every permission (`kafkaops doctor`)."""
    if denied:
        hint = f"{hint}; then every permission kafkaops needs: {DOCTOR}" if hint else DOCTOR
    return Check(source, UNKNOWN, None, message, hint)


def source_ok(source: str, message: str) -> Check:
    return Check(source, OK, None, message)


def service(instance: InstanceStatus) -> Check:
    """One instance: what its health endpoint says it is (DOWN is CRITICAL, whatever the other
    endpoints say), its endpoints that failed (UNKNOWN), figures that are no counts or given
    inconsistently (WARNING, not judged), metrics lines left unread (WARNING), what is not
    exposed and what the bounds left out (said)."""
    name = f"service {instance.name}"
    state, parts, step = OK, [], None
    health = (instance.health or "").strip().upper()
    if instance.health is not None:
        parts.append(f"health {instance.health}")
        if health in HEALTH_CRITICAL:
            state = CRITICAL
            step = (
                "the service says it cannot publish: look at the kafka check and the service's "
                f"log; pending events wait in the table: {PENDING_BY_TOPIC}"
            )
        elif health in HEALTH_WARNING:
            state = WARNING
        elif health != "UP":
            state = UNKNOWN
            parts[-1] = f"unrecognised health status {instance.health!r}"
    elif instance.health_http == 503 and "health" in instance.endpoint_errors:
        # Spring answers 503 for DOWN and OUT_OF_SERVICE: no body to read does not make it UP.
        state = CRITICAL
        parts.append("health endpoint answers 503 Service Unavailable")
    if instance.endpoint_errors:
        parts.append("; ".join(f"{kind}: {why}" for kind, why in instance.endpoint_errors.items()))
        state = _worst(state, UNKNOWN)
    elif instance.health is None:
        parts.append("answered")
    if instance.missing:
        parts.append(f"not exposed: {', '.join(instance.missing)}")
    if instance.invalid:
        parts.append("; ".join(instance.invalid) + ": not judged")
        state = _worst(state, WARNING)
    if instance.omitted:
        parts.append("left out: " + ", ".join(instance.omitted))
        if instance.unread_lines:
            state = _worst(state, WARNING)
    if step is None and state == WARNING and (instance.invalid or instance.unread_lines):
        step = f"look at what the service answers: {command('curl', '-s', instance.url)}"
    return Check(name, state, instance.health, "; ".join(parts), step)


def _worst(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b
