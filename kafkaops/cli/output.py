"""The one output layer: every byte kafkaops prints goes through `Output`.

Data goes to stdout through one writer per format (`WRITERS`: table, json, jsonl, yaml, csv,
tsv; a new format is one class with `@register_writer`); messages, hints and errors go to
stderr, so a pipe only ever receives data. Values from the database or Kafka are never read
as rich markup, and their control characters are shown (`\\x1b`), never emitted, in every
human format: `safe_text` does it, for any message that quotes data too.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, TextIO

from kafkaops.escape import _JSON_UNSAFE, _VISIBLE, safe_text
from kafkaops.timeparse import format_duration, isoformat_utc, utcnow


class Format(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    yaml = "yaml"
    csv = "csv"
    tsv = "tsv"


# -- terminal safety: one definition, in the core (status and messages use it too) ------------


def safe_log_formatter(fmt: str) -> Any:
    """A logging.Formatter whose lines are safe text: log lines quote topics and errors too."""
    import logging

    class SafeFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return safe_text(super().format(record), keep_lines=True)

    return SafeFormatter(fmt)


def _tsv_field(text: str) -> str:
    """TSV: `\\\\`, `\\t`, `\\n`, `\\r` and other control characters as escapes (PostgreSQL COPY's text
    form), so every record is one line and `cut -f` and `awk -F'\\t'` just work."""
    return text.replace("\\", "\\\\").translate(_VISIBLE)


# -- fields and values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One column of tabular output.

    `kind` says how a table shows it: `text`, `long` (free text that gives way first on a narrow
    terminal), `int` (a count), `id`, `status` (coloured), `time`, `age` (computed from `source`,
    a time column; left out of machine formats). A `text` field named `status`, `id`/`*_id` or
    `count` is taken as that kind.
    """

    name: str
    header: str | None = None
    kind: str = "text"
    source: str | None = None  # for `age`: the time column it is computed from

    @property
    def title(self) -> str:
        return self.header or self.name

    @property
    def role(self) -> str:
        if self.kind != "text":
            return self.kind
        if self.name == "status":
            return "status"
        if self.name == "id" or self.name.endswith("_id"):
            return "id"
        if self.name == "count":
            return "int"
        return "text"


STATUS_STYLES = {"DLQ_FAILED": "bold red", "PENDING": "yellow", "DLQ": "magenta", "RESOLVED": "green"}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _plain(value: Any) -> str:
    if value is None:
        return ""
    value = to_jsonable(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _machine_names(fields: Sequence[Field]) -> list[str]:
    return [f.name for f in fields if f.kind != "age"]


# -- the output object -------------------------------------------------------------------------


class Output:
    """Formats and writes command results; knows nothing about what the data means."""

    def __init__(
        self,
        fmt: Enum | str = Format.table,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        # Any str-valued Enum names a format (a command may offer its own, e.g. `nagios`).
        self.fmt: Enum = Format(fmt) if isinstance(fmt, str) and not isinstance(fmt, Enum) else fmt
        self.format_name = str(self.fmt.value)
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        try:
            self.writer = WRITERS[self.format_name](self)
        except KeyError:
            raise ValueError(f"no writer for output format {self.format_name!r}") from None

    @property
    def is_terminal(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    # -- messages (stderr): ours, but they may quote data ------------------------------------

    def info(self, text: str) -> None:
        self.stderr.write(safe_text(text, keep_lines=True) + "\n")
        self.stderr.flush()

    def warning(self, text: str) -> None:
        self.info(f"Warning: {text}")

    def error(self, text: str, hint: str | None = None) -> None:
        self.info(f"Error: {text}")
        if hint:
            self.info(f"Hint: {hint}")

    # -- data (stdout) ---------------------------------------------------------------------

    def text(self, text: str) -> None:
        """Text that is itself the result (a walk-through), written and flushed as it comes."""
        self.stdout.write(text)
        self.stdout.flush()

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        """Write rows (streamed for the machine formats); returns how many were written.

        `live`: rows arrive over time (a tail): each is flushed as it is written.
        A generator is closed before this returns, however it returns: a database stream left
        open would hold the driver's lock while its connection rolls back (`| head`, Ctrl-C).
        """
        try:
            return self.writer.rows(rows, fields, live=live)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str] | None = None) -> None:
        """One object: key/value lines in a table, the object itself in machine formats.

        `blocks` are long pre-formatted texts (a pretty-printed payload) shown after the table.
        """
        self.writer.record(record, blocks=blocks or {})

    def separator(self) -> None:
        """A blank line between records of one result (`failed show 1 2`)."""
        self.write("\n")

    def document(self, data: Any) -> None:
        """A nested document (a summary, a report) in the machine formats; tables get key/values."""
        self.writer.document(data)

    def write(self, text: str) -> None:
        """Text already rendered in a format of its own (status' nagios and prometheus)."""
        self.stdout.write(text)


# -- writers -----------------------------------------------------------------------------------


class Writer:
    """One output format. `rows` streams where the format allows; `record` and `document`
    default to what most formats want."""

    name: ClassVar[str]

    def __init__(self, out: Output) -> None:
        self.out = out

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        raise NotImplementedError

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        self.rows([record], [Field(k) for k in record])

    def document(self, data: Any) -> None:
        if isinstance(data, Mapping):
            self.record(data, blocks={})
        else:
            self.out.write(_json_text(data, indent=2) + "\n")


WRITERS: dict[str, type[Writer]] = {}


def register_writer(name: str) -> Callable[[type[Writer]], type[Writer]]:
    def register(cls: type[Writer]) -> type[Writer]:
        cls.name = name
        WRITERS[name] = cls
        return cls

    return register


def _json_text(data: Any, *, indent: int | None = None) -> str:
    text = json.dumps(to_jsonable(data), ensure_ascii=False, indent=indent)
    # JSON escapes C0 controls itself; C1 and bidi controls too, so a terminal never obeys them.
    return text.translate(_JSON_UNSAFE)


@register_writer("json")
class JsonWriter(Writer):
    """A list of objects, streamed one object per line inside `[ ]`."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        names = _machine_names(fields)
        count = 0
        self.out.write("[")
        for row in rows:
            item = {name: row.get(name) for name in names}
            self.out.write(("\n  " if count == 0 else ",\n  ") + _json_text(item))
            count += 1
            if live:
                self.out.stdout.flush()
        self.out.write("\n]\n" if count else "]\n")
        return count

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        self.out.write(_json_text(record, indent=2) + "\n")

    def document(self, data: Any) -> None:
        self.out.write(_json_text(data, indent=2) + "\n")


@register_writer("jsonl")
class JsonLinesWriter(Writer):
    """JSON Lines: one compact object per line, for streams (`dlq tail`) and `jq -c`."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        names = _machine_names(fields)
        count = 0
        for row in rows:
            self.out.write(_json_text({name: row.get(name) for name in names}) + "\n")
            count += 1
            if live:
                self.out.stdout.flush()
        return count

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        self.out.write(_json_text(record) + "\n")

    def document(self, data: Any) -> None:
        self.out.write(_json_text(data) + "\n")


def _yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(to_jsonable(data), sort_keys=False, allow_unicode=True, default_flow_style=False)


@register_writer("yaml")
class YamlWriter(Writer):
    """A YAML list of mappings, streamed one item at a time; control characters are escaped by
    the YAML emitter (`"\\e]0;..."`)."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        names = _machine_names(fields)
        count = 0
        for row in rows:
            self.out.write(_yaml_dump([{name: row.get(name) for name in names}]))
            count += 1
            if live:
                self.out.stdout.flush()
        if not count:
            self.out.write("[]\n")
        return count

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        self.out.write(_yaml_dump(record))

    def document(self, data: Any) -> None:
        self.out.write(_yaml_dump(data))


@register_writer("csv")
class CsvWriter(Writer):
    """RFC 4180 CSV with a header line. Piped, values are exact; on a terminal their control
    characters are shown escaped, as in every format a person reads."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        import csv

        names = _machine_names(fields)
        writer = csv.writer(self.out.stdout, lineterminator="\n")
        writer.writerow(names)
        show: Callable[[str], str] = safe_text if self.out.is_terminal else str
        count = 0
        for row in rows:
            writer.writerow([show(_plain(row.get(n))) for n in names])
            count += 1
            if live:
                self.out.stdout.flush()
        return count


@register_writer("tsv")
class TsvWriter(Writer):
    """Tab-separated, one record per line, no quoting: tab, newline, carriage return and
    backslash inside values are written `\\t`, `\\n`, `\\r`, `\\\\` (other control characters
    `\\xHH`), so `cut`, `awk` and PostgreSQL's COPY read it back."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        names = _machine_names(fields)
        self.out.write("\t".join(_tsv_field(n) for n in names) + "\n")
        count = 0
        for row in rows:
            self.out.write("\t".join(_tsv_field(_plain(row.get(n))) for n in names) + "\n")
            count += 1
            if live:
                self.out.stdout.flush()
        return count


@register_writer("table")
class TableWriter(Writer):
    """For people: a rich table on a terminal (status in colour, ids, statuses, counts and times
    never cut, topics and error text cut to fit), plain aligned text when piped (nothing cut:
    the reader decides). Times to the second, control characters shown escaped."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        from kafkaops.cli.tables import render_plain, render_terminal

        roles = [f.role for f in fields]
        seen: list[set[type]] = [set() for _ in fields]
        cells = []
        for row in rows:
            cells.append([self._cell(row, field) for field in fields])
            for i, field in enumerate(fields):
                seen[i].add(type(row.get(field.name)))
        if not cells:
            return 0
        for i, types in enumerate(seen):
            # A plain field holding times or whole numbers is kept whole, like its declared kinds.
            if roles[i] == "text" and types - {type(None)}:
                if all(issubclass(t, datetime) for t in types - {type(None)}):
                    roles[i] = "time"
                elif all(t is int for t in types - {type(None)}):
                    roles[i] = "int"
        if self.out.is_terminal:
            render_terminal(self.out.stdout, fields, cells, roles)
        else:
            self.out.write(render_plain(fields, cells, roles))
        return len(cells)

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        from kafkaops.cli.tables import render_record

        pairs = [(safe_text(k), self._text(v)) for k, v in record.items()]
        render_record(self.out.stdout, pairs, terminal=self.out.is_terminal)
        for title, text in blocks.items():
            self.out.write(f"\n{safe_text(title)}:\n{safe_text(text, keep_lines=True)}\n")

    def _cell(self, row: Mapping[str, Any], field: Field) -> str:
        if field.kind == "age":
            value = row.get(field.source or "created_at")
            return format_duration(utcnow() - value) if isinstance(value, datetime) else ""
        return self._text(row.get(field.name))

    @staticmethod
    def _text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return (isoformat_utc(value) or "").replace("T", " ")
        return safe_text(_plain(value))
