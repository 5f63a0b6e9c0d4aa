"""The runbook's backoff: when a failed attempt is tried again (1 min, 5 min, 15 min, then 60 min
by default, from `retry.schedule`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetrySchedule:
    """Attempt N+1 is due `delays[N]` after attempt N failed; the last delay repeats."""

    delays: Sequence[timedelta]

    def next_retry_at(self, now: datetime, retry_count: int) -> datetime:
        return now + self.delays[min(retry_count, len(self.delays) - 1)]
