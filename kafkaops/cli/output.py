"""The one output layer: every byte kafkaops prints goes through `Output`.

Data goes to stdout through one writer per format (`WRITERS`: table, json, jsonl, yaml, csv,
tsv; a new format is one class with `@register_writer`); messages, hints and errors go to
stderr, so a pipe only ever receives data. Values from the database or Kafka are never read
as rich markup, and their control characters are shown (`\\x1b`), never emitted, in every
human format: `safe_text` does it, for any message that quotes data too.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, TextIO, TypeVar

from kafkaops.cli.fields import Field, exists_word
from kafkaops.common import clock
from kafkaops.common.errors import OutputError
from kafkaops.common.escape import _BIDI, _JSON_UNSAFE, _VISIBLE, safe_text, shown_text
from kafkaops.common.timeparse import format_age, format_utc, isoformat_utc

_F = TypeVar("_F", bound=Callable[..., Any])


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


# -- the standard streams -----------------------------------------------------------------------


class ClosedStream:
    """Stands for a standard stream that was closed when kafkaops started (`>&-`): writing
    data to it is an error the user is told about, never a traceback."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, f"{self.name} is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def guard_standard_streams() -> None:
    """Make file descriptors 0, 1 and 2 safe before anything is opened.

    A descriptor closed by the caller (`2>&-`) would be handed to the next file opened: the
    SQLite database or a socket to PostgreSQL would become "stderr", and whatever a library
    writes there would go into it. Each closed one is pointed at /dev/null; closed stdout makes
    writing data an error (exit 1), closed stderr only loses the messages.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    if sys.stdout is None:
        sys.stdout = ClosedStream("standard output")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    # Bytes that were not UTF-8 in the database (kept by surrogateescape) go out as they were
    # stored in the formats that write values exact (csv piped), never as an encoding error.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")


def _writes_data(method: _F) -> _F:
    """Turns a failed write to stdout (closed, disk full) into an OutputError. A reader that
    went away (BrokenPipeError, `| head`) is left to the caller, which stops quietly."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BrokenPipeError:
            raise
        except OSError as error:
            reason = error.strerror or str(error)
            raise OutputError(f"cannot write the output: {reason}") from None

    return wrapper  # type: ignore[return-value]


# -- fields and values -------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    if value is None or type(value) in (str, int, float, bool):  # most values: no checks to make
        return value
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, bytes):  # a BLOB where text was expected (SQLite): its bytes, bad ones kept
        return value.decode("utf-8", "surrogateescape")
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


# A cell a spreadsheet runs as a formula when the file is opened (`=HYPERLINK(...)`, `@SUM(...)`):
# OWASP's list of first characters, and its cure, a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any, *, raw: bool) -> str:
    """One csv/tsv cell: text that starts like a formula gets a leading `'` unless `raw`.
    Only text is changed; a number (-3), a time or a JSON document is written as it is."""
    text = _plain(value)
    if raw or not isinstance(value, (str, bytes)) or not text.startswith(FORMULA_STARTS):
        return text
    return "'" + text


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
        raw_cells: bool = False,
    ) -> None:
        """`raw_cells`: csv and tsv write text cells exactly as stored, formulas included."""
        # Any str-valued Enum names a format (a command may offer its own, e.g. `nagios`).
        self.fmt: Enum = Format(fmt) if isinstance(fmt, str) and not isinstance(fmt, Enum) else fmt
        self.format_name = str(self.fmt.value)
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.raw_cells = raw_cells
        try:
            self.writer = WRITERS[self.format_name](self)
        except KeyError:
            raise ValueError(f"no writer for output format {self.format_name!r}") from None

    @property
    def is_terminal(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    # -- messages (stderr): ours, but they may quote data ------------------------------------

    def info(self, text: str) -> None:
        try:
            self.stderr.write(safe_text(text, keep_lines=True) + "\n")
            self.stderr.flush()
        except OSError:  # stderr full or gone: the message is lost, the exit code still tells
            pass

    def warning(self, text: str) -> None:
        self.info(f"Warning: {text}")

    def error(self, text: str, hint: str | None = None) -> None:
        self.info(f"Error: {text}")
        if hint:
            self.info(f"Hint: {hint}")

    # -- data (stdout) ---------------------------------------------------------------------

    @_writes_data
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

    @_writes_data
    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str] | None = None) -> None:
        """One object: key/value lines in a table, the object itself in machine formats.

        `blocks` are long pre-formatted texts (a pretty-printed payload) shown after the table.
        """
        self.writer.record(record, blocks=blocks or {})

    @_writes_data
    def separator(self) -> None:
        """A blank line between records of one result (`failed show 1 2`)."""
        self.write("\n")

    @_writes_data
    def document(self, data: Any) -> None:
        """A nested document (a summary, a report) in the machine formats; tables get key/values."""
        self.writer.document(data)

    @_writes_data
    def write(self, text: str) -> None:
        """Text already rendered in a format of its own (status' nagios and prometheus)."""
        self.stdout.write(text)

    @_writes_data
    def json_list(self, objects: Iterable[Mapping[str, Any]]) -> int:
        """One JSON document: a list of objects, streamed (each flushed as it is written)."""
        return _json_list(self, objects, live=True)

    @_writes_data
    def jsonl(self, objects: Iterable[Mapping[str, Any]]) -> int:
        """JSON Lines: one compact object per line, flushed as it goes (for `--follow` pipes)."""
        count = 0
        for item in objects:
            self.stdout.write(_json_text(item) + "\n")
            self.stdout.flush()
            count += 1
        return count

    @_writes_data
    def text(self, text: str) -> None:
        """Pre-formatted text to stdout as it is, flushed; the caller made it safe for a terminal."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()


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
        return _json_list(self.out, ({name: row.get(name) for name in names} for row in rows), live=live)

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        self.out.write(_json_text(record, indent=2) + "\n")

    def document(self, data: Any) -> None:
        self.out.write(_json_text(data, indent=2) + "\n")


def _json_list(out: Output, items: Iterable[Any], *, live: bool) -> int:
    """One JSON document: a list, streamed one compact item per line inside `[ ]`."""
    count = 0
    out.write("[")
    for item in items:
        out.write(("\n  " if count == 0 else ",\n  ") + _json_text(item))
        count += 1
        if live:
            out.stdout.flush()
    out.write("\n]\n" if count else "]\n")
    return count


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


_BIDI_CHARS = frozenset(chr(c) for c in _BIDI)


def _yaml_dump(data: Any) -> str:
    """YAML through libyaml when it is there (a million rows: 460 s in pure Python). The emitter
    escapes control characters but writes bidirectional overrides raw; a document holding one
    is written with every non-ASCII character escaped instead, so a terminal never obeys it."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    value = to_jsonable(data)
    try:
        text = yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    except UnicodeEncodeError:  # a byte that was not UTF-8: libyaml refuses, Python's emitter escapes it
        dumper = yaml.SafeDumper
        text = yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if not _BIDI_CHARS.isdisjoint(text):
        text = yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=False, default_flow_style=False)
    return text


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
    """RFC 4180 CSV with a header line. Piped, values are exact (text that starts like a
    formula with a leading `'`, unless raw_cells); on a terminal their control characters are
    shown escaped, as in every format a person reads."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        import csv

        names = _machine_names(fields)
        writer = csv.writer(self.out.stdout, lineterminator="\n")
        # With "\n" as line end, csv quotes a field holding "\n" but not one holding a lone "\r",
        # which every reader takes for a line end: such a row is written with every field quoted.
        quoted = csv.writer(self.out.stdout, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(names)
        show: Callable[[str], str] = safe_text if self.out.is_terminal else str
        raw = self.out.raw_cells
        count = 0
        for row in rows:
            cells = [show(spreadsheet_cell(row.get(n), raw=raw)) for n in names]
            (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)
            count += 1
            if live:
                self.out.stdout.flush()
        return count


@register_writer("tsv")
class TsvWriter(Writer):
    """Tab-separated, one record per line, no quoting: tab, newline, carriage return and
    backslash inside values are written `\\t`, `\\n`, `\\r`, `\\\\` (other control characters
    `\\xHH`), so `cut`, `awk` and PostgreSQL's COPY read it back. Text that starts like a formula
    gets a leading `'`, as in csv."""

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        names = _machine_names(fields)
        self.out.write("\t".join(_tsv_field(n) for n in names) + "\n")
        raw = self.out.raw_cells
        count = 0
        for row in rows:
            cells = (_tsv_field(spreadsheet_cell(row.get(n), raw=raw)) for n in names)
            self.out.write("\t".join(cells) + "\n")
            count += 1
            if live:
                self.out.stdout.flush()
        return count


@register_writer("table")
class TableWriter(Writer):
    """For people: a rich table on a terminal (status in colour, ids, statuses, counts and times
    never cut, topics and error text cut to fit), plain aligned text when piped (nothing cut to
    fit: the reader decides). Times to the second, control characters shown escaped, and no
    text longer than SHOWN_CHARACTERS: it is cut, saying how much was left out."""

    # Rows are laid out this many at a time, so memory does not grow with `failed list --all`
    # (a million rows took 1 GB): columns only widen from one block to the next, as psql's
    # FETCH_COUNT does. Results of up to this many rows are aligned as one.
    BLOCK = 1000

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field], *, live: bool = False) -> int:
        count = 0
        roles: list[str] | None = None
        widths: list[int] | None = None
        # A block keeps its cells (each bounded), not its rows: a row may hold megabytes.
        block: list[list[str]] = []
        seen: list[set[type]] = [set() for _ in fields]  # value types of the first block
        for row in rows:
            block.append([self._cell(row, field) for field in fields])
            if roles is None:
                for kinds, field in zip(seen, fields, strict=True):
                    kinds.add(type(row.get(field.name)))
            if len(block) >= self.BLOCK or live:
                roles = roles or self._roles(seen, fields)
                widths = self._render(block, fields, roles, widths)
                count += len(block)
                block = []
        if block:
            roles = roles or self._roles(seen, fields)
            self._render(block, fields, roles, widths)
            count += len(block)
        return count

    @staticmethod
    def _roles(seen: list[set[type]], fields: Sequence[Field]) -> list[str]:
        """How each column is shown, from its declared kind and, for plain fields, the values of
        the first block: a plain field holding times or whole numbers is kept whole too."""
        roles = [f.role for f in fields]
        for i, kinds in enumerate(seen):
            types = kinds - {type(None)}
            if roles[i] == "text" and types:
                if all(issubclass(t, datetime) for t in types):
                    roles[i] = "time"
                elif all(t is int for t in types):
                    roles[i] = "int"
        return roles

    def _render(
        self,
        cells: list[list[str]],
        fields: Sequence[Field],
        roles: list[str],
        widths: list[int] | None,
    ) -> list[int]:
        from kafkaops.cli.tables import render_plain, render_terminal

        if self.out.is_terminal:
            return render_terminal(self.out.stdout, fields, cells, roles, floor=widths)
        text, used = render_plain(fields, cells, roles, floor=widths)
        self.out.write(text)
        return used

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str]) -> None:
        from kafkaops.cli.tables import render_record

        pairs = [(safe_text(k), self._text(v)) for k, v in record.items()]
        render_record(self.out.stdout, pairs, terminal=self.out.is_terminal)
        for title, text in blocks.items():
            self.out.write(f"\n{safe_text(title)}:\n{shown_text(text, keep_lines=True)}\n")

    def _cell(self, row: Mapping[str, Any], field: Field) -> str:
        if field.kind == "age":
            value = row.get(field.source or "created_at")
            if isinstance(value, datetime):
                return format_age(clock.now() - value)
            return "" if value is None else safe_text(value)  # a stored value that is no time
        if field.kind == "exists" and (row.get(field.name) is None or isinstance(row.get(field.name), bool)):
            return exists_word(row.get(field.name))
        return self._text(row.get(field.name))

    @staticmethod
    def _text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return format_utc(value)
        return shown_text(_plain(value))
