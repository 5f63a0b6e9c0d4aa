"""The one output layer: every byte kafkaops prints goes through `Output`.

Data goes to stdout in the chosen format (`table`: rich on a terminal, plain aligned text when
piped; `json`, `yaml`, `csv`, `tsv` for scripts); messages, hints and errors go to stderr, so a
pipe only ever receives data. JSON is stable: lists of objects, ISO-8601 UTC times, integers.
"""

from __future__ import annotations

import csv
import json
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from kafkaops.timeparse import format_duration, isoformat_utc, utcnow


class Format(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    tsv = "tsv"


@dataclass(frozen=True)
class Field:
    """One column of tabular output. `kind` says how the table shows it: text, time, age, long."""

    name: str
    header: str | None = None
    kind: str = "text"
    source: str | None = None  # for `age`: the time column it is computed from

    @property
    def title(self) -> str:
        return self.header or self.name


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


class Output:
    """Formats and writes command results; knows nothing about what the data means."""

    def __init__(
        self,
        fmt: Format = Format.table,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        long_width: int = 60,
    ) -> None:
        self.fmt = fmt
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.long_width = long_width

    @property
    def is_terminal(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    # -- messages (stderr) -------------------------------------------------------------------

    def info(self, text: str) -> None:
        self.stderr.write(text + "\n")
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

    def rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> int:
        """Write rows (streamed for the machine formats); returns how many were written.

        A generator is closed before this returns, however it returns: a database stream left
        open would hold the driver's lock while its connection rolls back (`| head`, Ctrl-C).
        """
        writer = {
            Format.json: self._json_rows,
            Format.yaml: self._yaml_rows,
            Format.csv: self._csv_rows,
            Format.tsv: self._csv_rows,
            Format.table: self._table_rows,
        }[self.fmt]
        try:
            return writer(rows, fields)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def record(self, record: Mapping[str, Any], *, blocks: Mapping[str, str] | None = None) -> None:
        """One object: key/value lines in a table, the object itself in machine formats.

        `blocks` are long pre-formatted texts (a pretty-printed payload) shown after the table.
        """
        if self.fmt is Format.json:
            self._write(json.dumps(to_jsonable(record), ensure_ascii=False, indent=2) + "\n")
        elif self.fmt is Format.yaml:
            self._write(_yaml_dump(to_jsonable(record)))
        elif self.fmt in (Format.csv, Format.tsv):
            self._csv_rows([record], [Field(k) for k in record])
        else:
            pairs = [(k, self._text(v, Field(k))) for k, v in record.items()]
            width = max((len(k) for k, _ in pairs), default=0)
            lines = [f"{k.ljust(width)}  {v}" for k, v in pairs]
            for title, text in (blocks or {}).items():
                lines += ["", f"{title}:", text]
            self._write("\n".join(lines) + "\n")

    def document(self, data: Any) -> None:
        """A nested document (a summary, a report) in the machine formats; tables get key/values."""
        if self.fmt is Format.yaml:
            self._write(_yaml_dump(to_jsonable(data)))
        elif self.fmt is Format.json or not isinstance(data, Mapping):
            self._write(json.dumps(to_jsonable(data), ensure_ascii=False, indent=2) + "\n")
        else:
            self.record(data)

    # -- formats -----------------------------------------------------------------------------

    def _json_rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> int:
        count = 0
        names = [f.name for f in fields if f.kind != "age"]
        self._write("[")
        for row in rows:
            item = {name: to_jsonable(row.get(name)) for name in names}
            self._write(("\n  " if count == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False))
            count += 1
        self._write("\n]\n" if count else "]\n")
        return count

    def _yaml_rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> int:
        count = 0
        names = [f.name for f in fields if f.kind != "age"]
        for row in rows:
            self._write(_yaml_dump([{name: to_jsonable(row.get(name)) for name in names}]))
            count += 1
        if not count:
            self._write("[]\n")
        return count

    def _csv_rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> int:
        names = [f.name for f in fields if f.kind != "age"]
        dialect = "excel-tab" if self.fmt is Format.tsv else "excel"
        writer = csv.writer(self.stdout, dialect=dialect, lineterminator="\n")
        writer.writerow(names)
        count = 0
        for row in rows:
            writer.writerow(["" if row.get(n) is None else _plain(to_jsonable(row.get(n))) for n in names])
            count += 1
        return count

    def _table_rows(self, rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> int:
        cells = [[self._cell(row, field) for field in fields] for row in rows]
        if not cells:
            return 0
        headers = [f.title for f in fields]
        if self.is_terminal:
            self._rich_table(headers, cells, fields)
        else:
            from tabulate import tabulate

            self._write(tabulate(cells, headers=headers, tablefmt="plain", disable_numparse=True) + "\n")
        return len(cells)

    def _rich_table(self, headers: list[str], cells: list[list[str]], fields: Sequence[Field]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=self.stdout, soft_wrap=False)
        # Ids, topics and times stay whole; long text (errors) gets the width that is left.
        widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
        fixed = sum(w for w, f in zip(widths, fields, strict=True) if f.kind != "long") + 2 * (
            len(fields) - 1
        )
        table = Table(box=None, header_style="bold", pad_edge=False)
        for width, header, field in zip(widths, headers, fields, strict=True):
            table.add_column(
                header,
                justify="right" if field.kind == "int" else "left",
                overflow="ellipsis",
                no_wrap=True,
                width=min(width, max(20, console.width - fixed)) if field.kind == "long" else width,
            )
        for row in cells:
            table.add_row(*row)
        console.print(table)

    def _cell(self, row: Mapping[str, Any], field: Field) -> str:
        if field.kind == "age":
            value = row.get(field.source or "created_at")
            return format_duration(utcnow() - value) if isinstance(value, datetime) else ""
        return self._text(row.get(field.name), field)

    def _text(self, value: Any, field: Field) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            # People read seconds; the machine formats keep the full precision.
            return (isoformat_utc(value.replace(microsecond=0)) or "").replace("T", " ")
        text = _plain(to_jsonable(value))
        if field.kind == "long":
            text = " ".join(text.split())
            if not self.is_terminal and len(text) > self.long_width:
                text = text[: self.long_width - 1] + "…"
        return text

    def _write(self, text: str) -> None:
        self.stdout.write(text)


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
