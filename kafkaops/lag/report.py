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

from kafkaops.kafka.client import admin
from kafkaops.lag import observations
from kafkaops.lag.evaluate import Observation, judge_group, judge_partition
from kafkaops.lag.model import GroupLag, LagReport
from kafkaops.lag.read import describe, list_groups, read_committed, read_ends, read_oldest, select_groups

if TYPE_CHECKING:
    from kafkaops.config.settings import Thresholds
    from kafkaops.db.connections import Connections
    from kafkaops.kafka.dlq_names import DlqCatalog

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
    client = admin(props)
    known = list_groups(client, deadline)
    warnings: list[str] = []
    if patterns:
        names, unmatched = select_groups(patterns, known)
        warnings += [f"no consumer group matches {p!r}" for p in unmatched]
        groups = read_committed(client, [n for n in names if n in known], deadline)
        for name in names:
            if name not in known:
                groups[name] = GroupLag(name, problem=f"no consumer group named {name!r} on this cluster")
        groups = {n: groups[n] for n in names}
    else:
        wanted = set(topics)
        everything = read_committed(client, known, deadline)
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
