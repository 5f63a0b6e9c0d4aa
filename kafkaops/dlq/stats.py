"""`dlq stats`: a DLQ topic's records counted per group (error signature, error class, original
topic, key, hour, day), with the oldest and newest of each and the `dlq replay` line that
replays exactly that group. One pass up to the end offsets seen at the start; memory grows
with the number of groups, never with the number of records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import UsageError
from kafkaops.common.shell import command
from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
from kafkaops.dlq.model import cause_of, record_model
from kafkaops.dlq.selection import record_timestamp_ms

if TYPE_CHECKING:
    from confluent_kafka import Message

GROUP_KEYS = ("error.signature", "error.class", "origin.topic", "key", "hour", "day")
# Model fields each group key reads.
_NEEDS = {"error.signature": "error", "error.class": "error", "origin.topic": "origin", "key": "key"}


def parse_stats_group_by(values: Sequence[str] | None) -> list[str]:
    """Group keys from `-g error.class -g hour` and `-g error.class,hour` alike, in order."""
    names = [n.strip() for value in values or ("error.signature",) for n in value.split(",") if n.strip()]
    for name in names:
        if name not in GROUP_KEYS:
            raise UsageError(f"cannot group by {name!r} (valid: {', '.join(GROUP_KEYS)})")
    if "hour" in names and "day" in names:
        raise UsageError("--group-by hour and day: give one (an hour lies within its day)")
    return list(dict.fromkeys(names))


@dataclass
class Group:
    count: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None


@dataclass
class DlqStats:
    topic: str
    group_by: list[str]
    groups: dict[tuple[Any, ...], Group] = field(default_factory=dict)
    records: int = 0  # records counted (selected)

    def rows(self, *, since: str | None, where: str | None) -> list[dict[str, Any]]:
        """Largest groups first, each with its replay line."""
        ordered = sorted(self.groups.items(), key=lambda kv: (-kv[1].count, [str(v) for v in kv[0]]))
        rows = []
        for values, group in ordered:
            row: dict[str, Any] = dict(zip(self.group_by, (_shown(v) for v in values), strict=True))
            row["count"] = group.count
            row["oldest"] = isoformat_utc(from_epoch_ms(group.oldest_ms))
            row["newest"] = isoformat_utc(from_epoch_ms(group.newest_ms))
            row["replay"] = replay_line(self.topic, self.group_by, values, since=since, where=where)
            rows.append(row)
        return rows


def _shown(value: Any) -> Any:
    if isinstance(value, tuple):  # a key that is not UTF-8: ("base64", text)
        return f"base64:{value[1]}"
    if isinstance(value, datetime):
        return isoformat_utc(value)
    return value


def group_key(names: Sequence[str], suffixes: Sequence[str]) -> Callable[[Message], tuple[Any, ...]]:
    """The function giving a record's group: its values for `names`, in order (the same values
    the record model holds: error and origin topic through `cause_of`)."""
    fields = {_NEEDS[n] for n in names if n == "key"}
    needs_cause = any(n in ("error.signature", "error.class", "origin.topic") for n in names)
    suffixes = tuple(suffixes)

    if names == ["error.signature"]:  # the default: one lookup a record
        return lambda msg: (cause_of(msg, suffixes)[2],)

    def key_of(msg: Message) -> tuple[Any, ...]:
        model = record_model(msg, suffixes, fields) if fields else {}
        cause = cause_of(msg, suffixes) if needs_cause else (None, None, None, None)
        values: list[Any] = []
        for name in names:
            if name == "error.signature":
                values.append(cause[2])
            elif name == "error.class":
                values.append(cause[0])
            elif name == "origin.topic":
                values.append(cause[3])
            elif name == "key":
                b64 = model.get("key_base64")
                values.append(("base64", b64) if b64 is not None else model.get("key"))
            else:
                values.append(_bucket(record_timestamp_ms(msg), name))
        return tuple(values)

    return key_of


def _bucket(stamp: int | None, unit: str) -> datetime | None:
    moment = from_epoch_ms(stamp)
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def count_groups(
    records: Iterable[Message], *, topic: str, group_by: Sequence[str], suffixes: Sequence[str]
) -> DlqStats:
    stats = DlqStats(topic=topic, group_by=list(group_by))
    key_of = group_key(group_by, suffixes)
    groups = stats.groups
    counted = 0
    for msg in records:  # once per record of the topic: Group.add inlined
        values = key_of(msg)
        group = groups.get(values)
        if group is None:
            group = groups[values] = Group()
        group.count += 1
        kind, stamp = msg.timestamp()
        if kind != 0 and stamp >= 0:  # as record_timestamp_ms reads it
            if group.oldest_ms is None or stamp < group.oldest_ms:
                group.oldest_ms = stamp
            if group.newest_ms is None or stamp > group.newest_ms:
                group.newest_ms = stamp
        counted += 1
    stats.records = counted
    return stats


def replay_line(
    topic: str, group_by: Sequence[str], values: Sequence[Any], *, since: str | None, where: str | None
) -> str:
    """`kafkaops dlq replay TOPIC --where ...` choosing exactly this group's records (and the
    user's own --since and --where), quoted for a shell."""
    conditions: list[str] = []
    window_since: str | None = since
    window_until: str | None = None
    for name, value in zip(group_by, values, strict=True):
        if name in ("hour", "day"):
            if value is None:
                conditions.append("timestamp == null")
                continue
            start = isoformat_utc(value)
            end = isoformat_utc(value + (timedelta(hours=1) if name == "hour" else timedelta(days=1)))
            conditions.append(f"timestamp >= {_literal(start)} && timestamp < {_literal(end)}")
        elif name == "key" and isinstance(value, tuple):
            conditions.append(f"key_base64 == {_literal(value[1])}")
        else:
            conditions.append(f"{name} == {_literal(value)}")
    if where:
        conditions.append(f"({where})")
    argv = ["kafkaops", "dlq", "replay", topic]
    if window_since:
        argv += ["--since", window_since]
    if window_until:
        argv += ["--until", window_until]
    argv += ["--where", " && ".join(conditions)]
    return command(*argv)


def _literal(value: Any) -> str:
    """A CEL literal: strings in double quotes (JSON's escapes are CEL's), null, numbers."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
