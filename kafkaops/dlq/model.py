"""The DLQ record as users see and filter it: one model for `dlq tail -o json`, `--where`
and `dlq stats`.

`key`, `value` (parsed JSON when it parses, else text; `value_base64` for bytes that are not
UTF-8), `headers` (name -> text, the numbers Spring writes as binary decoded; the last
occurrence wins), `timestamp`, `topic`, `partition`, `offset`, `origin` {topic, partition,
offset, timestamp}, `error` {class, message, signature, wrapper}, `replay_count`,
`failed_event_id` (the row it came from, when a header names it). Headers are
read through dlq/record.py, the signature is `failed --group-by error_signature`'s.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from kafkaops.common.jsontext import parse_json
from kafkaops.common.signature import error_signature
from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
from kafkaops.dlq import record as dlq_record
from kafkaops.dlq.selection import record_timestamp_ms

if TYPE_CHECKING:
    from confluent_kafka import Message

    from kafkaops.common.where import Where

_UNREAD = object()
FIELDS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "key_base64",
    "headers",
    "headers_base64",
    "origin",
    "error",
    "replay_count",
    "failed_event_id",
    "value",
    "value_base64",
)
# Headers Spring writes as big-endian integers (Connect's are decimal text): shown as numbers.
_NUMBER_HEADERS = {
    **{name: width for name, width in dlq_record._PARTITION_HEADERS},
    **{name: width for name, width in dlq_record._OFFSET_HEADERS},
    **{name: width for name, width in dlq_record._TIMESTAMP_HEADERS},
}


def record_model(
    msg: Message,
    suffixes: Sequence[str],
    names: Collection[str] = FIELDS,
    *,
    headers: frozenset[str] | None = None,
    pairs: Any = _UNREAD,
) -> dict[str, Any]:
    """The model of one record, with only the top-level `names` asked for (an expression's
    own, so a predicate on a header decodes no value) and, given `headers`, only those header
    names decoded. `pairs`: the headers when the caller has read them already."""
    model: dict[str, Any] = {"_only": headers}
    if pairs is not _UNREAD:
        model["_pairs"] = pairs
    for name in names:
        build = _BUILDERS.get(name)
        if build is not None:
            build(msg, suffixes, model)
    return _clean(model)


def full_model(msg: Message, suffixes: Sequence[str]) -> dict[str, Any]:
    """Every field, in the documented order (`key_base64` instead of `key` for bytes that are
    not UTF-8, the same for `value`; `headers_base64` only when a header value is such)."""
    model = record_model(msg, suffixes)
    return {k: model[k] for k in FIELDS if k in model}


def _where(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    model["topic"] = msg.topic()
    model["partition"] = msg.partition()
    model["offset"] = msg.offset()


def _timestamp(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    model["timestamp"] = isoformat_utc(from_epoch_ms(record_timestamp_ms(msg)))


def _key(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    raw = msg.key()
    if raw is None:
        model["key"] = None
        return
    try:
        model["key"] = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        model["key_base64"] = base64.b64encode(raw).decode("ascii")


def _value(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    raw = msg.value()
    if raw is None:
        model["value"] = None
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        model["value_base64"] = base64.b64encode(raw).decode("ascii")
        return
    parsed, is_json = parse_json(text)
    model["value"] = parsed if is_json else text


def _headers(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    pairs = _readable(msg, model)
    if pairs is None:
        model["headers"] = None  # the client could not read them (a header name that is not UTF-8)
        return
    shown: dict[str, Any] = {}
    binary: dict[str, str] = {}
    only = model["_only"]
    for name, raw in pairs:
        if only is not None and name not in only:
            continue
        shown.pop(name, None)
        binary.pop(name, None)
        if raw is None:
            shown[name] = None
            continue
        data = raw.encode() if isinstance(raw, str) else raw
        if name in _NUMBER_HEADERS:
            number = dlq_record.decode_int(data, width=_NUMBER_HEADERS[name])
            if number is not None:
                shown[name] = number
                continue
        try:
            shown[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            binary[name] = base64.b64encode(data).decode("ascii")
    model["headers"] = shown
    if binary:
        model["headers_base64"] = binary


def _readable_once(msg: Message) -> list[tuple[str, bytes | None]] | None:
    return dlq_record.readable_headers(msg)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _readable(msg: Message, model: dict[str, Any]) -> list[tuple[str, bytes | None]] | None:
    """The headers, asked of the message once (`readable_headers` must be the first to ask)."""
    if "_pairs" not in model:
        model["_pairs"] = dlq_record.readable_headers(msg)
    pairs: list[tuple[str, bytes | None]] | None = model["_pairs"]
    return pairs


def _origin(msg: Message, suffixes: Sequence[str], model: dict[str, Any]) -> None:
    if "_origin" not in model:
        model["_origin"] = dlq_record.parse_origin(_readable(msg, model), msg.topic() or "", suffixes)
    origin = model["_origin"]
    model["origin"] = {
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "timestamp": isoformat_utc(from_epoch_ms(origin.timestamp)),
    }
    model["replay_count"] = origin.replay_count
    # The failed_kafka_events row it came from (kafkaops-failed-event-id), when it says.
    model["failed_event_id"] = origin.failed_event_id
    model["error"] = {
        "class": origin.error_class,
        "message": origin.error_message,
        "signature": error_signature(origin.error_message) if origin.error_message is not None else None,
        "wrapper": origin.error_wrapper,
    }


# The headers that say why a record failed and where it came from (not at which offset).
_CAUSE_HEADERS = frozenset(
    (
        *dlq_record._TOPIC_HEADERS,
        *(name for pair in dlq_record._ERROR_HEADERS for name in pair),
        dlq_record.EXCEPTION_CAUSE_FQCN,
    )
)


# (cause headers, DLQ topic, suffixes) -> cause; cleared when full (a DLQ holds few causes).
_CAUSES: dict[Any, tuple[str | None, str | None, str | None, str | None]] = {}
_CAUSES_MAX = 4096


def cause_of(
    msg: Message, suffixes: tuple[str, ...]
) -> tuple[str | None, str | None, str | None, str | None]:
    """(error class, message, signature, original topic) of a record, as `parse_origin` reads
    them, computed once per distinct set of those headers. It runs once per record of `dlq
    stats`: a plain dict lookup, no `lru_cache` bookkeeping."""
    pairs = dlq_record.readable_headers(msg)
    cause = None if pairs is None else tuple([pair for pair in pairs if pair[0] in _CAUSE_HEADERS])
    topic = msg.topic() or ""
    key = (cause, topic, suffixes)
    found = _CAUSES.get(key)
    if found is None:
        if len(_CAUSES) >= _CAUSES_MAX:
            _CAUSES.clear()
        origin = dlq_record.parse_origin(list(cause) if cause is not None else None, topic, suffixes)
        message = origin.error_message
        signature = None if message is None else error_signature(message)
        found = _CAUSES[key] = (origin.error_class, message, signature, origin.topic)
    return found


_Builder = Callable[["Message", Sequence[str], dict[str, Any]], None]
_BUILDERS: dict[str, _Builder] = {
    "topic": _where,
    "partition": _where,
    "offset": _where,
    "timestamp": _timestamp,
    "key": _key,
    "key_base64": _key,
    "value": _value,
    "value_base64": _value,
    "headers": _headers,
    "headers_base64": _headers,
    "origin": _origin,
    "error": _origin,
    "replay_count": _origin,
    "failed_event_id": _origin,
}


def _clean(model: dict[str, Any]) -> dict[str, Any]:
    model.pop("_pairs", None)
    model.pop("_origin", None)
    model.pop("_only", None)
    return model


class RecordFilter:
    """`--where` over DLQ records: builds only the fields the expression reads."""

    def __init__(self, where: Where, suffixes: Sequence[str]) -> None:
        from kafkaops.common.where import header_equalities, header_names_read

        self.where = where
        self.suffixes = tuple(suffixes)
        self.names = tuple(n for n in FIELDS if n in where.names)
        self.headers = header_names_read(where.source) if "headers_base64" not in where.names else None
        # Header texts that, when a record holds another, make the expression false: such a
        # record is passed over without evaluating it (numbers Spring writes are left to CEL).
        self.quick = tuple(
            (name, text.encode())
            for name, text in header_equalities(where.source)
            if name not in _NUMBER_HEADERS
        )
        self._quick_names = frozenset(name for name, _ in self.quick)

    def matches(self, msg: Message) -> bool:
        pairs: Any = _UNREAD
        if self.quick:
            pairs = _readable_once(msg)
            if pairs is not None and self._other_text(pairs):
                return False
        model = record_model(msg, self.suffixes, self.names, headers=self.headers, pairs=pairs)
        return self.where.test(model, f"partition {msg.partition()} offset {msg.offset()}")

    def _other_text(self, pairs: list[tuple[str, bytes | None]]) -> bool:
        found: dict[str, bytes | None] = {}
        names = self._quick_names
        for name, raw in pairs:
            if name in names:
                found[name] = raw  # the last occurrence counts
        for name, text in self.quick:
            raw = found.get(name)
            if raw is not None and raw != text and _is_utf8(raw):
                return True
        return False

    @property
    def failures(self) -> Any:
        return self.where.failures

    def describe(self) -> str:
        return f"where {self.where.source}"


def compile_record_filter(text: str | None, *, saved: Any, suffixes: Sequence[str]) -> RecordFilter | None:
    """`--where` for DLQ records (None without it)."""
    from kafkaops.common.where import compile_where

    where = compile_where(text, saved=saved, names=FIELDS)
    return None if where is None else RecordFilter(where, suffixes)
