"""Gathering every source at once under deadlines, then judging: one `StatusResult`.

Each source runs in its own daemon thread. The command waits for each only until its deadline
(`status.timeout` for the database and the broker, `app.timeout` per service request), then
reports the source as unanswered and moves on: a thread stuck in a driver is left behind, and
never waited for on exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from kafkaops.common.errors import ConfigError, KafkaAuthorizationError, KafkaopsError
from kafkaops.kafka.dlq_names import DlqTopic
from kafkaops.status import checks
from kafkaops.status.checks import Check
from kafkaops.status.model import DatabaseStatus, InstanceStatus, SourceError
from kafkaops.status.result import Gathered, StatusResult
from kafkaops.status.settings import StatusConfig, status_config
from kafkaops.status.statefile import StatusState

if TYPE_CHECKING:
    from kafkaops.config.settings import Settings, Thresholds
    from kafkaops.db.connections import Connections
    from kafkaops.probe.model import ProbeResult

T = TypeVar("T")
WEBHOOK_FLOOR = 0.5  # seconds a webhook gets even when gathering used the whole deadline
PROBE_COUNT = 100  # records `status --probe` writes, as `kafkaops probe` by default
_GRACE = 0.5  # beyond a source's own deadline, for its thread to hand the answer over


class _Source(Generic[T]):
    """One source in a daemon thread, with its deadline."""

    def __init__(self, name: str, work: Callable[[], T], deadline: float) -> None:
        self.name = name
        self.deadline = deadline
        self.value: T | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"status-{name}", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self.value = work()
        except BaseException as error:
            self.error = error
        finally:
            self._done.set()

    def wait(self) -> bool:
        return self._done.wait(max(0.0, self.deadline - time.monotonic()))


def gather(settings: Settings, config: StatusConfig, conns: Connections, *, now: datetime) -> Gathered:
    """Ask every configured source at once; a source that fails or times out is recorded."""
    from kafkaops.status.broker import read_kafka
    from kafkaops.status.database import read_database
    from kafkaops.status.service import probe_instance

    started = time.monotonic()
    result = Gathered()
    source_timeout = config.timeout.total_seconds()
    app_timeout = config.app.timeout.total_seconds()
    db_source = kafka_source = None
    # A kafka section held back (an unset ${VAR}, e.g. for sasl.password) is the kafka
    # check's UNKNOWN, not the whole status's error: the database and the service still answer.
    kafka_held_back: ConfigError | None = None
    try:
        kafka_configured = bool(settings.kafka.get("bootstrap.servers"))
    except ConfigError as exc:
        kafka_held_back, kafka_configured = exc, True
    result.configured = {
        "database": bool(settings.database.url),
        "kafka": kafka_configured,
        "service": config.app.configured,
    }
    if not any(result.configured.values()):
        raise ConfigError(
            "nothing to check: no database, Kafka cluster or service instance is configured",
            hint="set database.url, kafka.bootstrap.servers or app.instances in the config file "
            "(see config.example.yaml)",
        )
    if result.configured["kafka"] and kafka_held_back is None:
        props = settings.require_kafka()
        kafka_source = _Source(
            "kafka",
            lambda: read_kafka(props, catalog=settings.retry.dlq_catalog, timeout=source_timeout),
            started + source_timeout + _GRACE,
        )
    instance_sources = [
        _Source(
            instance.name,
            lambda instance=instance: probe_instance(config.app, instance),  # type: ignore[misc]
            started + app_timeout + _GRACE,
        )
        for instance in config.app.endpoints()
    ]
    # Last: the engine imports SQLAlchemy here, while the other sources are already waiting on
    # the network.
    if result.configured["database"]:
        conns.engine  # noqa: B018 - a bad URL is a configuration error, raised here, not a source failure
        db_source = _Source(
            "database",
            lambda: read_database(conns, now=now, timeout=source_timeout, exact=config.exact_counts),
            time.monotonic() + source_timeout + _GRACE,
        )
    lag_source = None
    if (
        result.configured["kafka"]
        and kafka_held_back is None
        and (settings.consumer_groups or result.configured["database"])
    ):
        # Consumer lag when groups are configured or can be found (through the table's
        # topics), within the broker's deadline; after the engine, which it shares.
        from kafkaops.lag.report import lag_of_pipeline

        lag_left = max(0.5, started + source_timeout - time.monotonic())
        lag_source = _Source(
            "consumer_lag",
            lambda: lag_of_pipeline(settings, conns, state_dir=config.state_dir, now=now, timeout=lag_left),
            started + source_timeout + _GRACE,
        )
    probe_source: _Source[ProbeResult] | None = None
    if result.configured["kafka"] and config.probe:
        from kafkaops.probe.model import PROBE_TOPIC
        from kafkaops.probe.run import run_probe

        probe_props = settings.require_kafka()
        probe_left = max(0.5, started + source_timeout - time.monotonic())
        probe_source = _Source(
            "probe",
            lambda: run_probe(probe_props, topic=PROBE_TOPIC, count=PROBE_COUNT, timeout=probe_left),
            started + source_timeout + _GRACE,
        )
    if db_source is not None:
        db_answer = _collect(db_source, "database", source_timeout)
        result.database, result.database_error = db_answer
    if kafka_source is not None:
        kafka_answer = _collect(kafka_source, "kafka", source_timeout)
        result.kafka, result.kafka_error = kafka_answer
    elif kafka_held_back is not None:
        result.kafka_error = SourceError("kafka", kafka_held_back.message, kafka_held_back.hint)
    if lag_source is not None:
        result.lag, result.lag_error = _collect(lag_source, "consumer_lag", source_timeout)
    if probe_source is not None:
        probed = _collect(probe_source, "probe", source_timeout)
        result.probe, result.probe_error = probed
    if result.kafka is not None and result.database is not None:
        _ask_for_missing(result, settings, max(1.0, started + source_timeout - time.monotonic()))
    for source, instance in zip(instance_sources, config.app.endpoints(), strict=True):
        if source.wait() and isinstance(source.value, InstanceStatus):
            result.instances.append(source.value)
        else:
            from kafkaops.common.secrets import mask_url

            shown = mask_url(instance.health_url or instance.metrics_url or instance.stats_url or "")
            lost = InstanceStatus(name=instance.name, url=shown)
            lost.endpoint_errors["instance"] = (
                f"no answer within {app_timeout:g}s"
                if source.error is None
                else f"unexpected {type(source.error).__name__}"
            )
            result.instances.append(lost)
    result.elapsed_s = time.monotonic() - started
    return result


def _collect(source: _Source[T], name: str, timeout: float) -> tuple[T | None, SourceError | None]:
    if not source.wait():
        return None, SourceError(name, f"{name}: no answer within {timeout:g}s")
    if source.error is not None:
        error = source.error
        if isinstance(error, KafkaopsError):
            denied = isinstance(error, KafkaAuthorizationError)
            return None, SourceError(name, error.message, error.hint, denied=denied)
        return None, SourceError(name, f"{name}: unexpected {type(error).__name__}")
    return source.value, None


def judge(gathered: Gathered, settings: Settings, state: StatusState, *, now: datetime) -> StatusResult:
    """The checks, from what was gathered; `state` remembers when each breaker was first seen OPEN."""
    t = settings.thresholds
    out: list[Check] = []
    db = gathered.database
    breaker_open = any(i.breaker in checks.OPEN_STATES for i in gathered.instances)
    kafka_ok = gathered.kafka is not None and gathered.kafka_error is None

    # The table's figures; the service's own count stands in when the table cannot be read.
    reported = [i for i in gathered.instances if i.pending is not None or i.dlq_failed is not None]
    if db is not None:
        out.append(checks.dlq_failed(db.dlq_failed, t))
        change = None
        if state.last_pending is not None and state.last_pending[0] < now:
            at, count = state.last_pending
            change = (db.pending - count, now - at)
        state.last_pending = (now, db.pending)
        out.append(checks.pending_events(db.pending, t, breaker_open=breaker_open, change=change))
        out.append(checks.oldest_pending_age(db.oldest_pending_age(now), t))
        out += _retry_loop(db, now, t)
    elif reported:
        failed = [i.dlq_failed for i in reported if i.dlq_failed is not None]
        pending = [i.pending for i in reported if i.pending is not None]
        if failed:
            out.append(_as_reported(checks.dlq_failed(max(failed), t)))
        if pending:
            out.append(_as_reported(checks.pending_events(max(pending), t, breaker_open=breaker_open)))

    for instance in gathered.instances:
        if instance.reachable and instance.breaker is not None:
            if instance.breaker in checks.OPEN_STATES:
                since = state.breakers_open_since.get(instance.name)
                if since is None or since > now:
                    # Not seen open before, or seen "in the future": the clock went back (an NTP
                    # step, a restored VM), and counting from that time would keep the breaker
                    # WARNING until the clock caught up. Count from now.
                    state.breakers_open_since[instance.name] = now
            else:
                state.breakers_open_since.pop(instance.name, None)
        breaker = checks.circuit_breaker(
            instance.name,
            instance.breaker,
            state.breakers_open_since.get(instance.name),
            now,
            t,
            kafka_ok=kafka_ok,
        )
        if breaker is not None and instance.reachable:
            out.append(breaker)
        out += _publishing(instance, state, now, t)
        settings_check = checks.producer_settings(instance)
        if settings_check is not None:
            out.append(settings_check)
        pool = checks.thread_pool(instance.name, instance.pools, t)
        if pool is not None:
            out.append(pool)

    dlq = _dlq_topics(gathered, settings)
    if db is not None and gathered.kafka is not None:
        principal = gathered.kafka.principal
        out.append(checks.dlq_topics([d for d in dlq if not d.exists], principal=principal))

    if gathered.lag is not None:
        lag = checks.consumer_lag(gathered.lag)
        if lag is not None:
            out.append(lag)
    elif gathered.lag_error is not None and gathered.kafka is not None:
        e = gathered.lag_error
        out.append(checks.source_unreachable("consumer_lag", e.message, e.hint, denied=e.denied))
    if gathered.probe is not None:
        out.append(checks.probe(gathered.probe, t))
    elif gathered.probe_error is not None:
        e = gathered.probe_error
        out.append(checks.source_unreachable("probe", e.message, e.hint, denied=e.denied))
    out += _source_checks(gathered)
    return StatusResult(status=checks.overall(out), checks=out, gathered=gathered, dlq=dlq, checked_at=now)


def _retry_loop(db: DatabaseStatus, now: datetime, t: Thresholds) -> list[Check]:
    """Whether the retry job runs, what it can never deliver, what was set aside."""
    from kafkaops.status import retry_checks

    found = [
        retry_checks.retry_last_run(db.retry_runs_recorded, db.last_retry_run, due=db.due_now, now=now, t=t),
        retry_checks.permanent_failures(db.permanent),
        retry_checks.parked(db.counts.get("PARKED", 0)),
    ]
    return [check for check in found if check is not None]


def _publishing(instance: InstanceStatus, state: StatusState, now: datetime, t: Thresholds) -> list[Check]:
    """The service's publish latency and its error ratio since the previous run (whose counters
    the state keeps)."""
    out: list[Check] = []
    latency = checks.publish_latency(
        instance.name, instance.latency_s, instance.latency_kind, instance.latency_by_topic, t
    )
    if latency is not None:
        out.append(latency)
    if instance.published:
        window, ago = checks.publish_window(state.published.get(instance.name), instance.published, now)
        errors = checks.publish_error_ratio(instance.name, window, ago, t)
        if errors is not None:
            out.append(errors)
        state.published[instance.name] = (now, dict(instance.published))
    return out


def _as_reported(check: Check) -> Check:
    return Check(
        check.name, check.status, check.value, check.message + " (as the service reports)", check.next_step
    )


def _dlq_topics(gathered: Gathered, settings: Settings) -> list[DlqTopic]:
    """The DLQ topic of every topic whose rows need one (missing ones included), then every
    other DLQ topic the cluster has."""
    kafka = gathered.kafka
    if kafka is None:
        return []
    catalog = settings.retry.dlq_catalog
    found: dict[str, DlqTopic] = dict(kafka.dlq_topics)
    sources = gathered.database.failed_topics if gathered.database else []
    missing = {
        d.name: replace(d, denied=d.name in kafka.denied_topics)
        for d in catalog.missing(sources, kafka.topics)
    }
    result: list[DlqTopic] = []
    for topic in dict.fromkeys(sources):
        if catalog.is_dlq(topic):
            continue
        name = catalog.dlq_for(topic)
        known = found.pop(name, None)
        result.append(known if known is not None else missing[name])
    return result + [found[name] for name in sorted(found)]


def _ask_for_missing(result: Gathered, settings: Settings, timeout: float) -> None:
    """The DLQ topics the listing lacks, asked for by name: those the principal may not
    describe are "not authorized", never "missing". Unanswered, they stay missing."""
    from kafkaops.status.broker import denied_topics

    assert result.kafka is not None and result.database is not None
    catalog = settings.retry.dlq_catalog
    names = [d.name for d in catalog.missing(result.database.failed_topics, result.kafka.topics)]
    if not names:
        return
    try:
        result.kafka.denied_topics = denied_topics(settings.require_kafka(), names, timeout)
    except KafkaopsError:
        return


def _source_checks(gathered: Gathered) -> list[Check]:
    out: list[Check] = []
    if gathered.database_error is not None:
        e = gathered.database_error
        out.append(checks.source_unreachable("database", e.message, e.hint))
    elif gathered.database is not None:
        db = gathered.database
        message = f"answered in {db.elapsed_s * 1000:.0f} ms"
        if db.resolved_estimated:
            message += "; RESOLVED estimated (--exact counts every row)"
        if db.missing_index:
            # Said once, here: without it every run reads the whole table for the unresolved rows.
            message += f"; the unresolved rows' index is missing, which makes status fast: {db.missing_index}"
        out.append(checks.source_ok("database", message))
    if gathered.kafka_error is not None:
        e = gathered.kafka_error
        out.append(checks.source_unreachable("kafka", e.message, e.hint, denied=e.denied))
    elif gathered.kafka is not None:
        k = gathered.kafka
        controller = f"controller {k.controller_id}" if k.controller_id is not None else "no controller"
        message = f"{len(k.brokers)} broker(s), {controller}, metadata in {k.metadata_s * 1000:.0f} ms"
        if k.offsets_error:
            message += f"; DLQ counts unavailable: {k.offsets_error}"
        out.append(checks.source_ok("kafka", message))
    out += [checks.service(instance) for instance in gathered.instances]
    return out


# -- JSON shapes ------------------------------------------------------------------------------------


def run_status(
    settings: Settings,
    conns: Connections,
    *,
    now: datetime,
    config: StatusConfig | None = None,
    webhook: str | None = None,
) -> StatusResult:
    """Gather, then load the state, judge, alert and save it: one run of `kafkaops status`.

    `webhook` beats `alerts.webhook` of the config."""
    from kafkaops.status import statefile
    from kafkaops.status.alerts import maybe_alert

    started = time.monotonic()
    config = config or status_config(settings)
    webhook = webhook or config.webhook
    # The run's deadline: its longest source timeout plus 1 s. A webhook gets what is left of
    # it, at least WEBHOOK_FLOOR and at most alerts.timeout.
    ends = started + max(config.timeout, config.app.timeout).total_seconds() + 1.0
    path = statefile.state_path(config.state_dir, settings.context)
    gathered = gather(settings, config, conns, now=now)
    # The state's read-modify-write (judge, alert, save) under its lock, after gathering, so a
    # second run waits for the first one's alert, not for its sources.
    with statefile.locked(path, max(WEBHOOK_FLOOR, ends - time.monotonic())) as busy:
        state, warning = statefile.load(path)
        result = judge(gathered, settings, state, now=now)
        result.warnings += [w for w in (busy, warning) if w]
        if gathered.lag is not None:
            result.warnings += gathered.lag.warnings
        if webhook:
            longest = config.webhook_timeout.total_seconds()
            left = min(longest, max(WEBHOOK_FLOOR, ends - time.monotonic()))
            failure = maybe_alert(result, state, webhook, now=now, context=settings.context, timeout=left)
            if failure:
                result.warnings.append(failure)
        failure = statefile.save(path, state)
        if failure:
            result.warnings.append(failure)
    return result
