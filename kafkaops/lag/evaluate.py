"""The verdict of each partition and group, by Burrow's evaluation rules over the observations
kafkaops keeps between runs (kafkaops/lag/observations.py).

Burrow (linkedin/Burrow, core/internal/evaluator) judges a window of commits; kafkaops judges
a window of its own runs, each one observation of (committed offset, end offset). The rules,
in order, for a partition with records waiting now:

1. STOP: its committed offset has not moved for longer than `thresholds.consumer_lag.critical`,
   and the end offset did not come down to it during the window (Burrow's "recent lag zero").
2. When the lag was zero at any observation of the window, the partition is OK (rule 1).
3. STALL: over two or more observations, the committed offset did not move.
4. WARNING: over two or more observations, offsets moved but the lag never decreased.
5. WARNING: the oldest record not yet consumed waited longer than the warning threshold.

A group is ERROR when it is empty or rebalancing (nobody consumes its partitions); otherwise,
and unless a partition is worse, it takes its worst partition's verdict.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from kafkaops.common.timeparse import format_duration
from kafkaops.lag.model import (
    ERROR,
    OK,
    REBALANCING,
    STALL,
    STOP,
    WARNING,
    GroupLag,
    PartitionLag,
    rank,
    worst,
)

# The broker drops a deleted topic's committed offsets with it: a group that read only deleted
# topics is left with none, and nothing says which topics they were.
NO_OFFSETS = "no committed offset on any topic (none committed yet, or the topics it read were deleted)"

# One observation: (when, committed offset, end offset).
Observation = tuple[float, int, int]


def judge_partition(
    p: PartitionLag,
    window: Sequence[Observation],
    moved_at: float | None,
    now: datetime,
    *,
    warning: timedelta,
    critical: timedelta,
) -> tuple[str, str]:
    """The verdict and its one-line reason. `window` ends with this run's observation;
    `moved_at`: when the committed offset was first seen at its current value."""
    if p.problem is not None:
        return p.problem_verdict, p.problem
    if p.beyond_end:
        return ERROR, (
            f"committed offset {p.committed} is beyond the end ({p.end}): the topic was recreated "
            "or truncated; the consumer resets by its auto.offset.reset"
        )
    lag = p.lag or 0
    if lag == 0:
        return OK, "up to date"
    now_s = now.timestamp()
    still_for = timedelta(seconds=max(0.0, now_s - moved_at)) if moved_at is not None else None
    recent_zero = any(end <= p.committed for _, _, end in window)
    if still_for is not None and still_for > critical and not recent_zero:
        return STOP, (
            f"no commit for {format_duration(still_for)} (> {format_duration(critical)}) "
            f"with {lag:,} records waiting"
        )
    waited = _waited(p)
    if not any(end - committed <= 0 for _, committed, end in window) and len(window) >= 2:
        span = format_duration(timedelta(seconds=max(0.0, window[-1][0] - window[0][0])))
        if all(committed == window[0][1] for _, committed, _ in window):
            return STALL, (
                f"committed offset stuck at {p.committed} over {len(window)} runs ({span}) "
                f"with {lag:,} records waiting{waited}"
            )
        lags = [end - committed for _, committed, end in window]
        if all(b >= a for a, b in itertools.pairwise(lags)):
            return WARNING, f"lag growing: {lags[0]:,} to {lags[-1]:,} records over {span}{waited}"
    if p.time_lag_s is not None and p.time_lag_s > warning.total_seconds():
        return WARNING, (
            f"oldest record not yet consumed is {format_duration(timedelta(seconds=p.time_lag_s))} old "
            f"(> {format_duration(warning)}), {lag:,} records waiting"
        )
    return OK, f"{lag:,} records waiting{waited}"


def _waited(p: PartitionLag) -> str:
    if p.time_lag_s is None:
        return ""
    return f", oldest {format_duration(timedelta(seconds=p.time_lag_s))} old"


def judge_group(g: GroupLag) -> tuple[str, str]:
    """The group's verdict: ERROR when empty or rebalancing, unless a partition is worse."""
    if g.problem is not None:
        return ERROR, g.problem
    worst_partition = max(g.partitions, key=lambda p: rank(p.verdict), default=None)
    group_verdict, group_reason = OK, ""
    if g.state in REBALANCING:
        group_verdict, group_reason = ERROR, f"rebalancing ({g.state}): no member consumes until it ends"
    elif not g.members:
        state = "" if g.state in ("EMPTY", "UNKNOWN") else f" ({g.state})"
        group_verdict, group_reason = ERROR, f"group is empty{state}: no member consumes its partitions"
    if not g.partitions:
        none = NO_OFFSETS if not group_reason else f"{group_reason}; {NO_OFFSETS}"
        return worst([group_verdict, WARNING]), none
    assert worst_partition is not None
    if rank(worst_partition.verdict) > rank(group_verdict):
        where = f"{worst_partition.topic}[{worst_partition.partition}]"
        reason = f"{where}: {worst_partition.reason}"
        if group_reason:
            reason += f"; {group_reason}"
        return worst_partition.verdict, reason
    if group_verdict != OK:
        return group_verdict, group_reason
    return OK, _summary(g)


def _summary(g: GroupLag) -> str:
    lag = g.lag
    if lag == 0:
        return "up to date"
    oldest = g.time_lag_s
    waited = f", oldest {format_duration(timedelta(seconds=oldest))} old" if oldest is not None else ""
    return f"{lag:,} records waiting{waited}"
