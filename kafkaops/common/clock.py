"""What time it is: the one clock of kafkaops, read as an aware UTC datetime.

Every "now" of the core reads it: which rows are due, ages, cutoffs, the times kafkaops writes.
Tests and reproducible demos set it: `KAFKAOPS_NOW=2026-11-27T10:00:00Z` holds a process at that
instant, `frozen_at(moment)` holds one block of code there. How long something takes (deadlines,
timeouts) is measured with time.monotonic, never with this clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from kafkaops.common.errors import ConfigError

ENV = "KAFKAOPS_NOW"

_frozen: datetime | None = None


def now() -> datetime:
    """The current time in UTC: the one set (`frozen_at`, then `$KAFKAOPS_NOW`), else the system's."""
    if _frozen is not None:
        return _frozen
    text = os.environ.get(ENV, "").strip()
    if text:
        return _from_env(text)
    return datetime.now(timezone.utc)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    """`now()` answers `moment` (a naive one is UTC) until the block ends."""
    global _frozen
    from kafkaops.common.timeparse import as_utc

    before, _frozen = _frozen, as_utc(moment)
    try:
        yield moment
    finally:
        _frozen = before


def _from_env(text: str) -> datetime:
    from kafkaops.common.timeparse import parse_iso

    try:
        return parse_iso(text)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"${ENV} {text!r} is not an ISO time",
            hint=f"for example {ENV}=2026-11-27T10:00:00Z; unset it to use the system's clock",
        ) from None
