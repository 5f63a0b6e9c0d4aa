"""Parsing of the durations and points in time operators type: `90s`, `2h`, `7d`, `1h30m`, ISO-8601."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from kafkaops.errors import UsageError

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str | int | float, *, what: str = "duration") -> timedelta:
    """`90s`, `5m`, `2h`, `7d`, `1h30m` or a bare number of seconds, as a timedelta."""
    value = _normalised(text)
    if not is_duration(value):
        raise UsageError(
            f"invalid {what} {text!r}: expected a number with a unit, like 90s, 5m, 2h, 7d or 1h30m"
        )
    try:
        if _NUMBER.fullmatch(value):
            return timedelta(seconds=float(value))
        return sum((float(n) * _UNITS[unit] for n, unit in _PART.findall(value)), timedelta())
    except OverflowError:
        raise UsageError(f"{what} {text!r} is out of range") from None


def is_duration(text: str | int | float) -> bool:
    value = _normalised(text)
    return bool(_NUMBER.fullmatch(value) or _WHOLE.fullmatch(value))


def _normalised(text: str | int | float) -> str:
    return str(text).strip().lower().replace(" ", "")


def parse_instant(text: str, *, what: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time (UTC when no offset is given) or a duration meaning that long ago."""
    now = now or utcnow()
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        # Compared with UTC values (SQLite keeps them as text): convert, not just label.
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if not is_duration(value):
        raise UsageError(
            f"invalid {what} {text!r}: expected an ISO time (2026-11-27T10:00:00Z) "
            "or a duration ago (90m, 2h, 7d)"
        )
    try:
        return now - parse_duration(value, what=what)
    except OverflowError:
        raise UsageError(f"{what} {text!r} is out of range") from None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive: kafkaops always writes UTC, so say so."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def format_duration(delta: timedelta) -> str:
    """A compact human duration: `45s`, `12m`, `3h12m`, `2d4h`."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m{secs}s" if secs and minutes < 10 else f"{sign}{minutes}m"
    return f"{sign}{secs}s"


def isoformat_utc(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, the one time format of kafkaops' machine-readable output."""
    value = as_utc(value)
    if value is None:
        return None
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")
