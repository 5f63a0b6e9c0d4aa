"""One run of `kafkaops lag` (and `status`' consumer_lag check): choose the groups, read them
(kafkaops/lag/read.py), add this run to the kept observations and judge (evaluate.py).

Which groups: the names or globs given (`--group`), else `kafka.consumer_groups`, else every
group with a committed offset on a topic of `failed_kafka_events` or on its DLQ topic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.kafka.metadata import cluster_metadata
from kafkaops.lag import observations
from kafkaops.lag.evaluate import Observation, judge_group, judge_partition
from kafkaops.lag.model import GroupLag, LagReport
from kafkaops.lag.read import describe, list_groups, read_committed, read_ends, read_oldest, select_groups

if TYPE_CHECKING:
    from kafkaops.config.settings import Settings, Thresholds
    from kafkaops.db.connections import Connections
    from kafkaops.kafka.dlq_names import DlqCatalog

# kafkaops' own groups (throwaway readers `kafkaops-<uuid>`, `dlq replay`'s `kafkaops-replay.<topic>`)
# are not the pipeline's consumers: a finished replay's empty group must not alarm. Named with
# --group or kafka.consumer_groups, they are judged like any other.
OWN_GROUP_PREFIX = "kafkaops-"
_LOCK_WAIT = 1.0  # seconds a run waits for another one's hold on the observations file


def failed_event_topics(conns: Connections, catalog: DlqCatalog, *, timeout: float) -> list[str]:
    """Every topic of `failed_kafka_events`, and the DLQ topic of each: the topics whose
    consumers `lag` judges when no group is named."""
    import sqlalchemy as sa

    from kafkaops.db.connections import bound_transaction

    column = conns.table.c.topic
    with conns.connect() as conn:
        bound_transaction(conn, statement=timedelta(seconds=timeout), lock=timedelta(seconds=timeout))
        topics = [str(r[0]) for r in conn.execute(sa.select(column).where(column.is_not(None)).distinct())]
        conn.rollback()
    found = set(topics)
    found.update(catalog.dlq_for(t) for t in topics if not catalog.is_dlq(t))
    return sorted(found)


def run_lag(
    props: Mapping[str, Any],
    *,
    patterns: Sequence[str] = (),
    topics: Sequence[str] = (),
    thresholds: Thresholds,
    state_path: Path | None,
    now: datetime,
    timeout: float,
    selection: str = "",
) -> LagReport:
    """Judge the groups `patterns` name, or (without patterns) those consuming `topics`.
    `state_path`: the observations file (None: judge this run alone)."""
    started = time.monotonic()
    deadline = started + timeout
    # Unreachable, rejected credentials or TLS: one translated error at once, with its cause.
    _info, _metadata, client = cluster_metadata(props, timeout)
    known = list_groups(client, deadline)
    warnings: list[str] = []
    if patterns:
        names, unmatched = select_groups(patterns, known)
        warnings += [f"no consumer group matches {p!r}" for p in unmatched]
        groups = read_committed(client, props, [n for n in names if n in known], deadline)
        for name in names:
            if name not in known:
                groups[name] = GroupLag(name, problem=f"no consumer group named {name!r} on this cluster")
        groups = {n: groups[n] for n in names}
    else:
        wanted = set(topics)
        everything = read_committed(
            client, props, [g for g in known if not g.startswith(OWN_GROUP_PREFIX)], deadline
        )
        groups = {
            n: g
            for n, g in everything.items()
            if g.problem is None and any(p.topic in wanted for p in g.partitions)
        }
    describe(client, groups, deadline)
    read_ends(client, groups, deadline)
    # The record reads get what is left, less a moment for the state file and the judgement.
    missed = read_oldest(props, groups, now, deadline - 0.3)
    if missed:
        warnings.append(
            f"lag in time not read for {missed:,} partition(s) within the deadline ({timeout:g}s)"
        )
    report = LagReport(list(groups.values()), checked_at=now, selection=selection, warnings=warnings)
    _judge(report, thresholds, state_path, now)
    report.elapsed_s = time.monotonic() - started
    return report


def _judge(report: LagReport, t: Thresholds, path: Path | None, now: datetime) -> None:
    if path is None:
        _judge_with(report, observations.Observations(), t, now)
        return
    with observations.locked(path, _LOCK_WAIT) as busy:
        kept, warning = observations.load(path)
        _judge_with(report, kept, t, now)
        kept.forget_old(now.timestamp())
        failure = observations.save(path, kept)
    report.warnings += [w for w in (busy, warning, failure) if w]


def _judge_with(report: LagReport, kept: observations.Observations, t: Thresholds, now: datetime) -> None:
    at = now.timestamp()
    for g in report.groups:
        for p in g.partitions:
            window: list[Observation] = []
            moved_at = None
            if p.problem is None and p.end is not None:
                track = kept.track(g.group, p.topic, p.partition)
                track.observe(at, p.committed, p.end)
                window, moved_at = track.window, track.moved_at
            p.verdict, p.reason = judge_partition(
                p, window, moved_at, now, warning=t.consumer_lag_warning, critical=t.consumer_lag_critical
            )
            if p.note:
                p.reason = f"{p.reason}; {p.note}"
        g.verdict, g.reason = judge_group(g)


def lag_of_pipeline(
    settings: Settings,
    conns: Connections,
    *,
    groups: Sequence[str] = (),
    state_dir: Path,
    now: datetime,
    timeout: float,
) -> LagReport | None:
    """The groups `lag` and `status` judge: `groups` (names or globs), else
    `kafka.consumer_groups`, else those consuming the failed events' topics and their DLQ
    topics. None when there is no way to choose any (no group named and no database)."""
    started = time.monotonic()
    patterns = list(groups) or list(settings.consumer_groups)
    topics: list[str] = []
    if groups:
        selection = "--group " + " ".join(groups)
    elif patterns:
        selection = "kafka.consumer_groups"
    elif settings.database.url:
        topics = failed_event_topics(conns, settings.retry.dlq_catalog, timeout=timeout)
        selection = "groups consuming the topics of failed_kafka_events and their DLQ topics"
        if not topics:
            return LagReport([], checked_at=now, selection="no topic in failed_kafka_events yet")
    else:
        return None
    return run_lag(
        settings.require_kafka(),
        patterns=patterns,
        topics=topics,
        thresholds=settings.thresholds,
        state_path=observations.observations_path(state_dir, settings.context),
        now=now,
        timeout=max(0.5, timeout - (time.monotonic() - started)),
        selection=selection,
    )
