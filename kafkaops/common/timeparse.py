"""Parsing of the durations and points in time operators type: `90s`, `2h`, `7d`, `1h30m`, ISO-8601."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from kafkaops.common.errors import UsageError

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
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?")

DURATION_FORMS = "90s, 30m, 12h, 7d or 1h30m"
INSTANT_FORMS = "30d, 12h, 90m (that long ago) or an ISO time (2026-11-27T10:00:00Z)"


def parse_duration(
    text: str | int | float, *, what: str = "duration", forms: str = DURATION_FORMS
) -> timedelta:
    """`90s`, `5m`, `2h`, `7d`, `1h30m` as a timedelta. A bare number is refused: `--older-than
    30` meant 30 days to the person who typed it, and 30 seconds to a parser."""
    value = _normalised(text)
    if _NUMBER.fullmatch(value):
        raise UsageError(
            f"invalid {what} {text!r}: a duration needs a unit; accepted forms: {forms}",
            hint=f"add a unit: {value}d, {value}h, {value}m or {value}s" if value.isdigit() else None,
        )
    if not is_duration(value):
        raise UsageError(f"invalid {what} {text!r}: accepted forms: {forms}")
    try:
        return sum((float(n) * _UNITS[unit] for n, unit in _PART.findall(value)), timedelta())
    except OverflowError:
        raise UsageError(f"{what} {text!r} is out of range") from None


def is_duration(text: str | int | float) -> bool:
    """A duration with its unit(s): `90m`, `1h30m`; never a bare number."""
    return bool(_WHOLE.fullmatch(_normalised(text)))


def _normalised(text: str | int | float) -> str:
    return str(text).strip().lower().replace(" ", "")


def parse_instant(text: str, *, what: str, now: datetime) -> datetime:
    """An ISO-8601 time (UTC when no offset is given) or a duration meaning that long before
    `now` (the caller reads kafkaops.common.clock, which itself parses with this module)."""
    value = text.strip()
    try:
        return parse_iso(value)
    except ValueError:
        pass
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the first representable UTC time
        raise UsageError(f"{what} {text!r} is out of range") from None
    delta = parse_duration(value, what=what, forms=INSTANT_FORMS)
    try:
        return now - delta
    except OverflowError:
        raise UsageError(f"{what} {text!r} is out of range") from None


def parse_iso(text: str) -> datetime:
    """An ISO-8601 time (`T` or a space, `Z` or an offset, none: UTC) as an aware UTC datetime.
    ValueError when the text is no ISO time, OverflowError when it has no UTC equivalent."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    # Compared with UTC values (SQLite keeps them as text): convert, not just label.
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


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


def format_age(delta: timedelta) -> str:
    """How old something is, for people: `3h12m`; a time ahead of now (a service whose clock
    runs fast, a value written by hand) reads `in the future (3h12m)`, never `-3h12m`."""
    if delta < timedelta(0):
        return f"in the future ({format_duration(-delta)})"
    return format_duration(delta)


def isoformat_utc(value: datetime | None, *, timespec: str = "seconds") -> str | None:
    """`2026-11-27T14:07:40Z`: the one time format of kafkaops' machine-readable output (json,
    yaml, csv, tsv), to the second, the form jq's `fromdateiso8601` reads. `timespec=
    "milliseconds"` (`2026-11-27T14:07:40.123Z`) for a Kafka record's own time, kept whole."""
    value = as_utc(value)
    if value is None:
        return None
    return value.isoformat(timespec=timespec).replace("+00:00", "Z")


def format_utc(value: datetime | None) -> str:
    """`2026-11-27 14:07:40Z`: a time for people (tables, messages, alerts), to the second."""
    return (isoformat_utc(value) or "").replace("T", " ")


def from_epoch_ms(ms: int | None) -> datetime | None:
    """A Kafka timestamp (epoch milliseconds) as a UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def epoch_ms(moment: datetime | None) -> int | None:
    """A time as epoch milliseconds, as Kafka timestamps are (a naive one is UTC)."""
    moment = as_utc(moment)
    return None if moment is None else int(moment.timestamp() * 1000)


# Epoch numbers at or above this are milliseconds: 1e11 seconds is the year 5138, 1e11
# milliseconds March 1973. sqlite-jdbc stores a Java service's timestamps as milliseconds.
_EPOCH_MS_FROM = 10**11


def read_stored_time(value: Any) -> datetime | str | None:
    """A time as a database stored it, as a UTC datetime: a datetime, epoch seconds or
    milliseconds (numbers or digits), or ISO-8601 text with `T` or a space, with or without
    a zone (none: UTC). A value that is no time comes back as its text, to be shown as it is."""
    if value is None or isinstance(value, datetime):
        return as_utc(value)
    text = str(value)
    seconds = _epoch_seconds(value if isinstance(value, int | float) else text.strip())
    try:
        if seconds is not None:
            return datetime.fromtimestamp(seconds, timezone.utc)
        return parse_iso(text)
    except (ValueError, OverflowError, OSError):
        return text


def stored_epoch(value: Any) -> float | None:
    """Epoch seconds of a stored time, None when it is no time: what SQL compares on SQLite."""
    read = read_stored_time(value)
    return read.timestamp() if isinstance(read, datetime) else None


def _epoch_seconds(value: str | int | float) -> float | None:
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            return None
        value = float(value)
    return value / 1000 if abs(value) >= _EPOCH_MS_FROM else float(value)


def time_or_none(value: Any) -> datetime | None:
    """A time read from the database for computing with: None when it could not be read."""
    return as_utc(value) if isinstance(value, datetime) else None
