"""What `kafkaops lag` found and judged, per group, topic and partition: plain data.

Verdicts, worst last: OK, WARNING (lag growing, or records waiting longer than the warning
threshold), STALL (offsets committed but not moving while records wait), ERROR (the group is
empty or rebalancing, or a partition cannot be judged), STOP (no commit for longer than the
critical threshold while records wait). WARNING exits 1; STALL, ERROR and STOP exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafkaops.common.timeparse import isoformat_utc

OK, WARNING, STALL, ERROR, STOP = "OK", "WARNING", "STALL", "ERROR", "STOP"
VERDICTS = (OK, WARNING, STALL, ERROR, STOP)
_RANK = {v: n for n, v in enumerate(VERDICTS)}
# As `status` maps its checks (Monitoring Plugins): 0 OK, 1 WARNING, 2 CRITICAL.
EXIT_CODES = {OK: 0, WARNING: 1, STALL: 2, ERROR: 2, STOP: 2}
# Group states in which no member consumes: the group is moving its partitions around.
REBALANCING = ("PREPARING_REBALANCING", "COMPLETING_REBALANCING")


def worst(verdicts: Any) -> str:
    return max(verdicts, key=lambda v: _RANK[v], default=OK)


def rank(verdict: str) -> int:
    return _RANK[verdict]


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...] = ()


@dataclass
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int | None = None  # None: not known (no leader, deleted topic, error)
    oldest_timestamp: datetime | None = None  # of the record at the committed offset
    time_lag_s: float | None = None  # now - oldest_timestamp, 0 when nothing waits
    problem: str | None = None  # why the partition could not be fully read, one line
    problem_verdict: str = ERROR  # the verdict that problem deserves
    note: str | None = None  # what is odd but judged anyway (a timestamp in the future, or none)
    verdict: str = OK
    reason: str = ""

    @property
    def lag(self) -> int | None:
        """Records not yet consumed; None when the end is not known. Never negative: a
        committed offset beyond the end is a problem of its own (`beyond_end`)."""
        if self.end is None:
            return None
        return max(0, self.end - self.committed)

    @property
    def beyond_end(self) -> bool:
        return self.end is not None and self.committed > self.end


@dataclass
class GroupLag:
    group: str
    state: str = "UNKNOWN"  # STABLE, EMPTY, PREPARING_REBALANCING, DEAD, ...
    members: list[Member] = field(default_factory=list)
    partitions: list[PartitionLag] = field(default_factory=list)
    problem: str | None = None  # the group itself could not be read
    verdict: str = OK
    reason: str = ""

    @property
    def lag(self) -> int:
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def time_lag_s(self) -> float | None:
        known = [p.time_lag_s for p in self.partitions if p.time_lag_s is not None]
        return max(known) if known else None

    def topics(self) -> list[str]:
        return sorted({p.topic for p in self.partitions})

    @property
    def hosts(self) -> list[str]:
        return sorted({m.host for m in self.members})


@dataclass
class LagReport:
    groups: list[GroupLag]
    checked_at: datetime
    elapsed_s: float = 0.0
    selection: str = ""  # how the groups were chosen: --group, kafka.consumer_groups, discovered
    warnings: list[str] = field(default_factory=list)  # state file, time lag not read in time

    @property
    def verdict(self) -> str:
        return worst(g.verdict for g in self.groups)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def worst_first(self) -> list[GroupLag]:
        return sorted(self.groups, key=lambda g: (-_RANK[g.verdict], -(g.time_lag_s or 0), -g.lag, g.group))

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checked_at": isoformat_utc(self.checked_at),
            "duration_s": round(self.elapsed_s, 3),
            "selection": self.selection,
            "groups": [group_dict(g) for g in self.worst_first()],
        }


def group_dict(g: GroupLag) -> dict[str, Any]:
    return {
        "group": g.group,
        "verdict": g.verdict,
        "reason": g.reason,
        "state": g.state,
        "lag": g.lag,
        "time_lag_s": _seconds(g.time_lag_s),
        "members": [
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "partitions": [f"{t}-{p}" for t, p in m.partitions],
            }
            for m in g.members
        ],
        "partitions": [partition_dict(p) for p in g.partitions],
    }


def partition_dict(p: PartitionLag) -> dict[str, Any]:
    return {
        "topic": p.topic,
        "partition": p.partition,
        "committed": p.committed,
        "end": p.end,
        "lag": p.lag,
        "time_lag_s": _seconds(p.time_lag_s),
        "oldest_unconsumed_at": isoformat_utc(p.oldest_timestamp),
        "verdict": p.verdict,
        "reason": p.reason,
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
