"""Which DLQ records a command acts on: partitions, key, text, time window and JSON fields.

`dlq tail` and `dlq replay` share one selection, so a filter means the same in both. Matching
works on the record's bytes: nothing is decoded that does not have to be.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from kafkaops.common.errors import UsageError
from kafkaops.common.jsontext import parse_json
from kafkaops.common.timeparse import epoch_ms, from_epoch_ms, isoformat_utc

if TYPE_CHECKING:
    from confluent_kafka import Message

T = TypeVar("T")


class RecordPredicate(Protocol):
    def matches(self, msg: Message) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Selection:
    partitions: frozenset[int] | None = None
    key: bytes | None = None
    grep: bytes | None = None
    since_ms: int | None = None  # record timestamp, inclusive
    until_ms: int | None = None  # record timestamp, exclusive
    match: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    where: RecordPredicate | None = None  # --where (dlq/model.py's RecordFilter)

    @property
    def filters_records(self) -> bool:
        """True when records of the chosen partitions may still be passed over."""
        return any(
            v is not None for v in (self.key, self.grep, self.since_ms, self.until_ms, self.where)
        ) or bool(self.match)

    def chosen_partitions(self, topic: str, marks: Mapping[int, T]) -> dict[int, T]:
        """`marks` (per partition of `topic`) narrowed to the chosen partitions; one the topic
        does not have is a usage error, never an empty result."""
        if self.partitions is None:
            return dict(marks)
        unknown = sorted(self.partitions - set(marks))
        if unknown:
            raise UsageError(f"topic {topic!r} has no partition {unknown[0]} (it has {len(marks)})")
        return {p: m for p, m in marks.items() if p in self.partitions}

    def matches(self, msg: Message) -> bool:
        if self.partitions is not None and msg.partition() not in self.partitions:
            return False
        if self.key is not None and msg.key() != self.key:
            return False
        if self.since_ms is not None or self.until_ms is not None:
            stamp = record_timestamp_ms(msg)
            if self.since_ms is not None and (stamp is None or stamp < self.since_ms):
                return False
            if self.until_ms is not None and (stamp is None or stamp >= self.until_ms):
                return False
        if self.grep is not None:
            value, key = msg.value(), msg.key()
            if not ((value is not None and self.grep in value) or (key is not None and self.grep in key)):
                return False
        if self.match and not _fields_match(msg.value(), self.match):
            return False
        return self.where is None or self.where.matches(msg)

    def describe(self) -> str:
        """The selection in words, for the summary printed before acting."""
        parts = []
        if self.partitions is not None:
            parts.append("partitions " + ",".join(str(p) for p in sorted(self.partitions)))
        if self.key is not None:
            parts.append(f"key {self.key.decode('utf-8', 'replace')!r}")
        if self.grep is not None:
            parts.append(f"containing {self.grep.decode('utf-8', 'replace')!r}")
        if self.since_ms is not None:
            parts.append(f"since {isoformat_utc(from_epoch_ms(self.since_ms))}")
        if self.until_ms is not None:
            parts.append(f"until {isoformat_utc(from_epoch_ms(self.until_ms))}")
        parts += [f"{name}={value}" for name, value in self.match]
        if self.where is not None:
            parts.append(self.where.describe())
        return ", ".join(parts) if parts else "every record"


def build_selection(
    *,
    partitions: Sequence[int] | None = None,
    key: str | None = None,
    grep: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    match: Sequence[str] | None = None,
) -> Selection:
    """A Selection from command-line values; a filter that cannot mean anything is a UsageError."""
    if since is not None and until is not None and until <= since:
        raise UsageError("--until must be later than --since")
    if partitions and any(p < 0 for p in partitions):
        raise UsageError("--partition must be 0 or more")
    if grep == "":
        raise UsageError("--grep needs some text to look for")
    return Selection(
        partitions=frozenset(partitions) if partitions else None,
        key=key.encode() if key is not None else None,
        grep=grep.encode() if grep is not None else None,
        since_ms=epoch_ms(since),
        until_ms=epoch_ms(until),
        match=tuple(parse_match(m) for m in match or ()),
    )


def parse_match(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(
            f"--match {text!r} is not FIELD=VALUE",
            hint="e.g. --match brandId=casino-7 (a top-level JSON field)",
        )
    return name.strip(), value


def _fields_match(value: bytes | None, wanted: Sequence[tuple[str, str]]) -> bool:
    if value is None:
        return False
    document, is_json = parse_json(value)  # a value that is not JSON (or too deep) matches no field
    if not is_json or not isinstance(document, dict):
        return False
    for name, expected in wanted:
        if name not in document:
            return False
        actual: Any = document[name]
        shown = actual if isinstance(actual, str) else json.dumps(actual)
        if shown != expected:
            return False
    return True


def record_timestamp_ms(msg: Message) -> int | None:
    kind, stamp = msg.timestamp()
    return stamp if kind != 0 and stamp >= 0 else None  # 0: TIMESTAMP_NOT_AVAILABLE
