"""What `failed purge` keeps of the rows it deletes, and `failed restore` puts back.

An archive is JSON Lines (gzip when its name ends in `.gz`): a header line naming the table
and its columns, then one line per deleted row holding every column of the live table, values
a JSON type cannot carry marked (`{"$time": ...}`, `{"$bytes": base64}`). Each batch's lines
are written, flushed and fsynced before its DELETE commits: a crash at any moment leaves every
deleted row in the archive (a row may be in the archive and still in the table, never in
neither). The file is created new (O_EXCL, never through a link): an archive is never
overwritten.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ArchiveError, UsageError
from kafkaops.common.escape import safe_text
from kafkaops.common.filelock import open_nofollow
from kafkaops.db.text import encode_text, is_utf8

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Connection

    from kafkaops.config.settings import DatabaseSettings

FORMAT = 1
# Ids are bound one parameter each; PostgreSQL takes at most 65,535 per statement.
ID_CHUNK = 30_000
RESTORE_BATCH = 1_000


def refuse_existing(path: Path) -> None:
    """Before anyone is asked: an archive path that is taken (a file, a link, anything) is
    refused, since an archive is never overwritten. Creating it (O_EXCL) refuses again."""
    if os.path.lexists(path):
        what = "a symbolic link" if path.is_symlink() else "already there"
        raise UsageError(
            f"archive {safe_text(str(path))} is {what}: an archive is never overwritten",
            hint="name a new file (--archive PATH), or move the old one away",
        )
    if not path.parent.is_dir():
        raise UsageError(f"archive folder {safe_text(str(path.parent))} does not exist")


class ArchiveWriter:
    """One archive being written: `write` a batch of rows (flushed and fsynced when it
    returns), `close` at the end. `sha256` is of the bytes on disk so far."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.rows = 0
        self._hash = hashlib.sha256()
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 31) if path.name.endswith(".gz") else None
        try:
            self._fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            refuse_existing(path)
            raise
        except OSError as error:
            raise self._failed("cannot create", error) from None
        self._put(_line({"kafkaops_archive": FORMAT, **header}))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Every row, then flush and fsync: when this returns, the rows are on disk."""
        self._put(b"".join(_line({k: encode(v) for k, v in row.items()}) for row in rows))
        self.rows += len(rows)

    def write_json(self, lines: Sequence[str]) -> None:
        """Rows the database already wrote as JSON objects (PostgreSQL's row_to_json), then
        flush and fsync."""
        self._put(("\n".join(lines) + "\n").encode() if lines else b"")
        self.rows += len(lines)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if self._zip is not None:
                self._raw(self._zip.flush(zlib.Z_FINISH))
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    def _put(self, data: bytes) -> None:
        if self._zip is not None:
            data = self._zip.compress(data) + self._zip.flush(zlib.Z_SYNC_FLUSH)
        self._raw(data)
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise self._failed("cannot write", error) from None

    def _raw(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            raise self._failed("cannot write", error) from None
        self._hash.update(data)

    def _failed(self, what: str, error: OSError) -> ArchiveError:
        return ArchiveError(f"{what} the archive {safe_text(str(self.path))}: {error.strerror or error}")


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"


def encode(value: Any) -> Any:
    """A column's value as JSON, its type kept where JSON has none."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        # SQLite may hold bytes that are not UTF-8 (read as lone surrogates: db.text).
        return value if is_utf8(value) else {"$text_bytes": base64.b64encode(encode_text(value)).decode()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict | list):
        return {"$json": value}
    return {"$text": str(value)}


def decode(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((kind, inner),) = value.items()
    if kind == "$bytes":
        return base64.b64decode(inner)
    if kind == "$text_bytes":
        return base64.b64decode(inner)  # restored as the very bytes
    if kind == "$time":
        return datetime.fromisoformat(inner)
    if kind == "$date":
        return date.fromisoformat(inner)
    if kind == "$uuid":
        return uuid.UUID(inner)
    if kind == "$decimal":
        return Decimal(inner)
    if kind in ("$json", "$text"):
        return inner
    return value


# -- the live table, every column of it --------------------------------------------------------


def live_table(conn: Connection, db: DatabaseSettings) -> Table:
    """The table as the database has it, every column (the service's own too). On SQLite each
    value is read and written as stored (no type conversion), so it comes back byte for byte."""
    from sqlalchemy import MetaData, Table, types

    table = Table(db.table, MetaData(), autoload_with=conn, schema=db.schema)
    table.info["dialect"] = conn.dialect.name
    if conn.dialect.name == "sqlite":
        for column in table.c:
            column.type = types.NullType()
    return table


def archive_header(
    table: Table, db: DatabaseSettings, *, context: str | None, now: datetime
) -> dict[str, Any]:
    return {
        # PostgreSQL writes each row as JSON itself (row_to_json: times in ISO 8601, bytea as
        # \\x hex, json as JSON), read back by the live column's type; SQLite's values are marked.
        "values": "row_to_json" if table.info.get("dialect") == "postgresql" else "marked",
        "table": db.table,
        "schema": db.schema,
        "id_column": db.physical("id"),
        "columns": [c.name for c in table.c],
        "context": context,
        "created_at": now.isoformat(),
    }


def archived_purge_batch(
    conn: Connection,
    table: Table,
    live: Table,
    *,
    where: Sequence[ColumnElement[bool]],
    id_column: str,
    batch_size: int,
    archive: ArchiveWriter,
) -> list[Any]:
    """One batch of a purge that keeps what it deletes: lock the batch's rows (SKIP LOCKED),
    delete exactly those, returning every column, and write them to the archive (fsynced).
    The caller commits after this returns; the ids deleted, in the archive's order."""
    from sqlalchemy import delete, select

    chosen = select(table.c.id).where(*where).limit(batch_size).with_for_update(skip_locked=True)
    key = live.c[id_column]
    if conn.dialect.name == "postgresql":
        # One statement, as a purge without archive runs it (the batch chosen and locked in a
        # subquery), every deleted row returned as the JSON the server writes: no id list to
        # bind, no Python work per value.
        from sqlalchemy import Text, cast, func, literal_column

        whole: Any = literal_column(f"{conn.dialect.identifier_preparer.quote(live.name)}.*")
        deleting = (
            delete(live)
            .where(key.in_(chosen.scalar_subquery()))
            .returning(key, cast(func.row_to_json(whole), Text))
        )
        returned = conn.execute(deleting).all()
        if returned:
            archive.write_json([row[1] for row in returned])
        return [row[0] for row in returned]
    ids = [row[0] for row in conn.execute(chosen)]
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_CHUNK):
        statement = delete(live).where(key.in_(ids[start : start + ID_CHUNK])).returning(*live.c)
        rows += [dict(r._mapping) for r in conn.execute(statement)]
    if rows:
        archive.write(rows)
    return [row[id_column] for row in rows]


# -- reading an archive back ------------------------------------------------------------------


@dataclass
class ArchiveContents:
    """An archive read back: its header, its rows, and whether it ended early (the tail of a
    batch a killed purge never committed: those rows are still in the table)."""

    header: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    cut_short: bool = False


def read_archive(path: Path) -> ArchiveContents:
    shown = safe_text(str(path))
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        raise UsageError(f"no archive at {shown}") from None
    except OSError as error:
        raise ArchiveError(f"cannot read the archive {shown}: {error.strerror or error}") from None
    with os.fdopen(fd, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: Any = gzip.GzipFile(fileobj=raw) if gz else raw
        lines = _lines(stream)
        try:
            first = next(lines, None)
            header = _parse(first, shown) if first is not None else None
            if not isinstance(header, dict) or header.get("kafkaops_archive") != FORMAT:
                raise UsageError(f"{shown} is not a kafkaops purge archive")
            contents = ArchiveContents(header)
            by_server = header.get("values") == "row_to_json"
            for line in lines:
                if not line.endswith(b"\n"):  # a line a killed purge never finished
                    contents.cut_short = True
                    break
                if by_server:
                    contents.rows.append(_parse(line, shown, exact=True))
                else:
                    contents.rows.append({k: decode(v) for k, v in _parse(line, shown).items()})
        except (EOFError, zlib.error, gzip.BadGzipFile):
            contents.cut_short = True  # the compressed stream ends inside a batch never committed
    return contents


def _lines(stream: Any) -> Iterator[bytes]:
    yield from stream


def _parse(line: bytes, shown: str, *, exact: bool = False) -> Any:
    try:
        return json.loads(line, parse_float=Decimal) if exact else json.loads(line)
    except ValueError:
        raise UsageError(f"{shown} is not a kafkaops purge archive (a line is not JSON)") from None


def from_row_to_json(live: Table, row: dict[str, Any]) -> dict[str, Any]:
    """A row PostgreSQL wrote with row_to_json, each value back to the type of its live column
    (numbers were read as Decimal: numeric keeps every digit)."""
    from sqlalchemy import types

    out: dict[str, Any] = {}
    for name, value in row.items():
        column = live.c.get(name)
        kind = column.type if column is not None else None
        if isinstance(value, str) and isinstance(kind, types.DateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(value, str) and isinstance(kind, types.Date):
            value = date.fromisoformat(value)
        elif isinstance(value, str) and isinstance(kind, types.LargeBinary) and value.startswith("\\x"):
            value = bytes.fromhex(value[2:])
        elif isinstance(value, str) and isinstance(kind, types.Uuid):
            value = uuid.UUID(value)
        elif isinstance(value, Decimal) and isinstance(kind, types.Integer):
            value = int(value)
        elif isinstance(value, Decimal) and isinstance(kind, types.Float):
            value = float(value)
        out[name] = value
    return out


def restore_rows(
    conn: Connection, live: Table, rows: Sequence[dict[str, Any]], *, id_column: str, dry_run: bool
) -> tuple[list[Any], list[str]]:
    """Insert the rows whose id is not in the table; the ids inserted, and those already there
    (never overwritten)."""
    from sqlalchemy import insert, select

    key = live.c[id_column]
    wanted = [row[id_column] for row in rows]
    present = {str(r[0]) for r in conn.execute(select(key).where(key.in_(wanted)))}
    fresh = [row for row in rows if str(row[id_column]) not in present]
    unknown = sorted({name for row in fresh for name in row} - set(live.c.keys()))
    if unknown:
        raise UsageError(
            f"the archive has column(s) the table has not: {', '.join(map(safe_text, unknown))}",
            hint="restore into the table the rows came from (database.table, database.schema)",
        )
    if fresh and not dry_run:
        conn.execute(insert(live), fresh)
    return [row[id_column] for row in fresh], [str(i) for i in wanted if str(i) in present]
