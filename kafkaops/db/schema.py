"""The `failed_kafka_events` table as kafkaops sees it: logical columns over physical names.

Every query in kafkaops goes through the `Table` built here, whose columns are keyed by their
logical name (`table.c.event_key`) whatever the service calls them. `db init` and `db check`
live here too, since both are about the table's shape.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    inspect,
    literal_column,
    text,
    type_coerce,
    types,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from kafkaops.common.timeparse import read_stored_time
from kafkaops.config.settings import LOGICAL_COLUMNS, OPTIONAL_COLUMNS, DatabaseSettings
from kafkaops.db.statuses import STATUSES
from kafkaops.db.text import decode_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


# What kind of type each logical column must have, for `db check`.
_KINDS: dict[str, str] = {
    "id": "id",
    "event_id": "text",
    "topic": "text",
    "event_key": "text",
    "payload": "text",
    "headers": "text",
    "status": "text",
    "retry_count": "integer",
    "last_error": "text",
    "error_type": "text",
    "created_at": "timestamp",
    "updated_at": "timestamp",
    "next_retry_at": "timestamp",
    "resolved_at": "timestamp",
}


class JsonAsText(types.TypeDecorator[str]):
    """A json/jsonb column read as the database's own text form (what `retry` publishes)."""

    impl = Text
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return cast(column, Text)


class BytesAsText(types.TypeDecorator[str]):
    """A bytea column read as text for people (UTF-8, undecodable bytes as \\xNN escapes);
    `retry` reads the raw bytes through its own expression."""

    impl = LargeBinary
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else bytes(value).decode("utf-8", "backslashreplace")


TIME_COLUMNS = ("created_at", "updated_at", "next_retry_at", "resolved_at")
# How SQLite tables hold times (SQLite types values, not columns): what `db check` reports.
TIME_FORMS = {"epoch_ms": "epoch milliseconds", "epoch_s": "epoch seconds", "text": "ISO-8601 text"}
_ORDERING = (operator.lt, operator.le, operator.gt, operator.ge)


class StoredTime(types.TypeDecorator[datetime]):
    """A time column. PostgreSQL's timestamps pass as they are. SQLite holds whatever the
    service wrote (epoch milliseconds from sqlite-jdbc, epoch seconds, ISO text with or
    without `T` and zone): read as UTC datetimes (a value that is no time: its raw text),
    written in the table's own `stored` form, and compared as instants, never as text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def __init__(self, stored: str = "text") -> None:
        super().__init__()
        self.stored = stored  # epoch_ms, epoch_s or text: what kafkaops writes on SQLite

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def read(value: Any) -> datetime | str | None:
            # A blob where a time was expected: its bytes read as all stored text is.
            return read_stored_time(decode_text(value) if isinstance(value, bytes) else value)

        return read

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        stored = self.stored

        def write(value: datetime | None) -> Any:
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            seconds = value.replace(tzinfo=timezone.utc).timestamp()
            if stored == "epoch_ms":
                return round(seconds * 1000)
            if stored == "epoch_s":
                return int(seconds)
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's own form

        return write

    class comparator_factory(types.TypeDecorator.Comparator[datetime]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _ORDERING:
                value = other[0]
                if not isinstance(value, ColumnElement):
                    value = bindparam(None, value, type_=self.type, unique=True)
                return op(ComparableTime(self.expr), ComparableTime(value))
            return super().operate(op, *other, **kwargs)


class _WrappedOnSQLite(ColumnElement[Any]):
    """A column expression other databases take as it is and SQLite takes wrapped in
    `sqlite_template`: one query for both."""

    inherit_cache = True
    sqlite_template = "{}"
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, value: ColumnElement[Any]) -> None:
        self.value = value

    @property
    def _from_objects(self) -> Any:
        return self.value._from_objects


@compiles(_WrappedOnSQLite)
def _compile_as_is(element: _WrappedOnSQLite, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.value, **kw))


@compiles(_WrappedOnSQLite, "sqlite")
def _compile_wrapped(element: _WrappedOnSQLite, compiler: Any, **kw: Any) -> str:
    return element.sqlite_template.format(compiler.process(element.value, **kw))


class ComparableTime(_WrappedOnSQLite):
    """A time as SQL compares it: the value itself on PostgreSQL; on SQLite its epoch seconds
    (`kafkaops_time`, the same reading as the result rows'), NULL when it is no time, so that
    an unreadable value never passes a cutoff. As a blob: the function then gets the stored
    bytes even when they are not UTF-8."""

    inherit_cache = True
    type = types.NullType()
    sqlite_template = "kafkaops_time(CAST({} AS BLOB))"


class StoredText(_WrappedOnSQLite):
    """A text column as SQL functions take it: itself on PostgreSQL; on SQLite its stored
    bytes, since sqlite3 hands a Python function only text that is valid UTF-8 and fails the
    query otherwise. kafkaops' functions (regexp_replace, lower) decode it as every reader does
    (`text.decode_text`) and give bytes back."""

    inherit_cache = True
    type = Text()
    sqlite_template = "CAST({} AS BLOB)"


class StoredTextResult(_WrappedOnSQLite):
    """The result of kafkaops' SQL functions over StoredText as text again: on SQLite the bytes
    they return, read back as the column's own text would be."""

    inherit_cache = True
    type = Text()
    sqlite_template = "CAST({} AS TEXT)"


class ContainsFolded(ColumnElement[bool]):
    """`column ILIKE pattern` (escaped with `\\`) on text as stored. On SQLite `lower()` gets the
    stored bytes (StoredText) and its result is text again for LIKE, which matches no blob."""

    inherit_cache = True
    type = types.Boolean()
    _traverse_internals = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        self.column = column
        self.pattern = bindparam(None, pattern, type_=Text(), unique=True)

    @property
    def _from_objects(self) -> Any:
        return self.column._from_objects


@compiles(ContainsFolded)
def _compile_ilike(element: ContainsFolded, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.ilike(element.pattern, escape="\\"), **kw))


@compiles(ContainsFolded, "sqlite")
def _compile_folded_like(element: ContainsFolded, compiler: Any, **kw: Any) -> str:
    folded = StoredTextResult(func.lower(StoredText(element.column)))
    return str(compiler.process(folded.like(func.lower(element.pattern), escape="\\"), **kw))


def instant(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A time column to sort or aggregate (min, max) by instant, read back as a time: on
    SQLite, epoch numbers and ISO text of any zone then order as the times they are."""
    return type_coerce(ComparableTime(column), column.type)


def stored_type(kind: str) -> types.TypeEngine[Any]:
    """How kafkaops reads a payload or headers column of this live kind."""
    return JsonAsText() if kind == "json" else BytesAsText() if kind == "bytes" else Text()


def build_table(
    db: DatabaseSettings,
    *,
    id_type: str = "bigint",
    stored_kinds: dict[str, str] | None = None,
    optional: tuple[str, ...] = (),
) -> Table:
    """The SQLAlchemy table for this mapping.

    `id_type` is `bigint` or `uuid` to create the table; `any` (for queries on a table whose id
    type was not configured) declares no type, so bound ids are typed by their Python value.
    `stored_kinds`: the live kind (`json`, `bytes`) of the payload and headers columns when
    they are not text, so every reader gets text, and under `times` the form SQLite holds
    times in (see `live_stored_kinds`). `optional`: the OPTIONAL_COLUMNS the table has (see
    `live_optional_columns`); only those are in the Table, so `"dlq_offset" in table.c` says
    whether kafkaops can record and show it.
    """
    kinds = stored_kinds or {}
    ts = StoredTime(kinds.get("times", "text"))
    id_column: types.TypeEngine[Any]
    if id_type == "uuid":
        # SQLite has no UUID type: text, as the service would store it.
        id_column = Uuid(as_uuid=True).with_variant(String(36), "sqlite")
    elif id_type == "bigint":
        # SQLite autoincrements only an INTEGER PRIMARY KEY.
        id_column = BigInteger().with_variant(Integer, "sqlite")
    else:
        id_column = types.NullType()
    col = db.physical
    table = Table(
        db.table,
        MetaData(),
        Column(col("id"), id_column, key="id", primary_key=True, autoincrement=id_type != "uuid"),
        Column(col("event_id"), String(100), key="event_id"),
        Column(col("topic"), String(255), key="topic", nullable=False),
        Column(col("event_key"), String(255), key="event_key"),
        Column(col("payload"), stored_type(kinds.get("payload", "text")), key="payload", nullable=False),
        Column(col("headers"), stored_type(kinds.get("headers", "text")), key="headers"),
        Column(col("status"), String(20), key="status", nullable=False),
        Column(col("retry_count"), Integer, key="retry_count", nullable=False, server_default="0"),
        Column(col("last_error"), Text, key="last_error"),
        Column(col("error_type"), String(255), key="error_type"),
        Column(col("created_at"), ts, key="created_at", nullable=False),
        Column(col("updated_at"), ts, key="updated_at", nullable=False),
        Column(col("next_retry_at"), ts, key="next_retry_at"),
        Column(col("resolved_at"), ts, key="resolved_at"),
        *_optional_columns(db, optional, ts),
        Index(f"ix_{db.table}_status_next_retry_at", "status", "next_retry_at"),
        schema=db.schema,
    )
    unresolved_index(table, db)
    return table


def _optional_columns(db: DatabaseSettings, present: tuple[str, ...], ts: StoredTime) -> list[Column[Any]]:
    types_of: dict[str, types.TypeEngine[Any]] = {
        "dlq_topic": String(255),
        "dlq_partition": Integer(),
        "dlq_offset": BigInteger(),
        "dlq_acked_at": ts,
        "resolved_by": String(50),
    }
    return [
        Column(db.physical(name), types_of[name], key=name) for name in OPTIONAL_COLUMNS if name in present
    ]


def live_optional_columns(
    conn: Connection, db: DatabaseSettings, *, declared: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The OPTIONAL_COLUMNS the live table has, under their mapped names (one catalog query,
    none when `declared` is `declared_types`' answer already)."""
    found = declared if declared is not None else declared_types(conn, db)
    return tuple(name for name in OPTIONAL_COLUMNS if db.physical(name).lower() in found)


def init_table(engine: Engine, db: DatabaseSettings, *, id_type: str = "bigint") -> bool:
    """Create the table (with every optional column) and its indexes ((status, next_retry_at),
    and the unresolved rows' index `status` reads) if missing; True if created."""
    table = build_table(db, id_type=id_type, optional=OPTIONAL_COLUMNS)
    with engine.begin() as conn:
        existed = inspect(conn).has_table(db.table, schema=db.schema)
        table.metadata.create_all(conn, checkfirst=True)
    return not existed


# -- the unresolved rows' index ---------------------------------------------------------------------
# `status` and `failed` count what is not yet RESOLVED; a year of RESOLVED history must not be
# read for it. A partial index over the other rows keeps those counts (per status and topic,
# the oldest PENDING, the rows due) proportional to what is unresolved. The predicate is
# written as a literal, in the queries too: a planner proves a partial index usable only from
# the same term, never from a bound parameter (SQLite) or a generic plan (PostgreSQL).
RESOLVED_LITERAL = "'RESOLVED'"


def unresolved(table: Table) -> ColumnElement[bool]:
    """`status <> 'RESOLVED'`, as the unresolved rows' index has it."""
    return table.c.status != literal_column(RESOLVED_LITERAL)


def resolved(table: Table) -> ColumnElement[bool]:
    return table.c.status == literal_column(RESOLVED_LITERAL)


def unresolved_index_name(db: DatabaseSettings) -> str:
    return f"ix_{db.table}_unresolved"[:63]  # PostgreSQL's longest name


def unresolved_index(table: Table, db: DatabaseSettings) -> Index:
    """(status, created_at) over the rows not RESOLVED: the counts per status and topic, the
    oldest PENDING (and each status' oldest and newest row for `failed`) from it alone."""
    where = unresolved(table)
    return Index(
        unresolved_index_name(db),
        table.c.status,
        table.c.created_at,
        postgresql_where=where,
        sqlite_where=where,
    )


def unresolved_index_statement(db: DatabaseSettings, dialect: str) -> str:
    """The one statement that creates the index: CONCURRENTLY on PostgreSQL, so the service's
    writes go on while it builds."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex

    table = build_table(db, id_type="any")
    index = next(i for i in table.indexes if i.name == unresolved_index_name(db))
    if dialect == "postgresql":
        index.dialect_options["postgresql"]["concurrently"] = True
        compiled = CreateIndex(index, if_not_exists=True).compile(dialect=postgresql.dialect())
    else:
        compiled = CreateIndex(index, if_not_exists=True).compile(dialect=sqlite.dialect())
    return " ".join(str(compiled).split())


def add_unresolved_index(engine: Engine, db: DatabaseSettings) -> str | None:
    """Create the unresolved rows' index on an existing table that lacks it (outside a
    transaction: CONCURRENTLY takes none); its name when created."""
    with engine.connect() as conn:
        if has_unresolved_index(conn, db):
            return None
        dialect = conn.dialect.name
    statement = unresolved_index_statement(db, dialect)
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(statement)
    else:  # kafkaops begins SQLite's transactions itself: commit this one
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    return unresolved_index_name(db)


def has_unresolved_index(conn: Connection, db: DatabaseSettings) -> bool:
    """Whether the live table has a usable (valid) index led by the status column over the rows
    `status <> 'RESOLVED'`, whatever its name."""
    status = db.physical("status").lower()
    wanted = f"{status}<>'resolved'"
    if conn.dialect.name == "postgresql":
        name = f"{db.schema}.{db.table}" if db.schema else db.table
        query = text(
            "SELECT pg_get_expr(i.indpred, i.indrelid), lower(a.attname) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = to_regclass(:name) AND i.indisvalid AND i.indpred IS NOT NULL"
        )
        found = [(str(p), str(c)) for p, c in conn.execute(query, {"name": _quoted(name)})]
    elif conn.dialect.name == "sqlite":
        # The index's own statement, as SQLite keeps it (the inspector misses the predicate of
        # an index made with IF NOT EXISTS); its first column from index_info.
        prefix = f"{_quoted(db.schema)}." if db.schema else ""
        master = text(
            f"SELECT name, sql FROM {prefix}sqlite_master "
            "WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
        )
        found = []
        for name, sql in conn.execute(master, {"table": db.table}).all():
            parts = re.split(r"\bwhere\b", str(sql), maxsplit=1, flags=re.IGNORECASE)
            info = conn.exec_driver_sql(f"PRAGMA {prefix}index_info({_quoted(str(name))})").all()
            first = [str(row[2]).lower() for row in info if row[0] == 0]
            if len(parts) == 2 and first:
                found.append((parts[1], first[0]))
    else:
        return False
    return any(column == status and _predicate(where) == wanted for where, column in found)


def _predicate(where: str) -> str:
    """A partial index's predicate in one spelling: PostgreSQL's `((status)::text <>
    'RESOLVED'::text)` and SQLite's `"status" != 'RESOLVED'` alike."""
    plain = re.sub(r"::[a-z ]+", "", where.lower())
    return re.sub(r'[()"\s`\[\]]', "", plain).replace("!=", "<>")


@dataclass(frozen=True)
class ColumnProblem:
    column: str  # logical name
    physical: str
    problem: str


@dataclass(frozen=True)
class LiveColumn:
    """One mapped column as the live table has it: its kind and, for text, its room."""

    physical: str
    kind: str  # id kinds, text, integer, timestamp, json, bytes, or the type's own name
    type_name: str
    max_length: int | None = None  # characters a text column takes; None: unbounded


@dataclass(frozen=True)
class TableShape:
    """The live table under the mapping: what `db check` reports and `retry` checks first."""

    columns: dict[str, LiveColumn]  # logical name -> live column; missing ones absent
    problems: list[ColumnProblem]

    def max_length(self, logical: str) -> int | None:
        found = self.columns.get(logical)
        return found.max_length if found is not None else None

    def kind(self, logical: str) -> str:
        found = self.columns.get(logical)
        return found.kind if found is not None else _KINDS[logical]


# Payloads and headers may be stored as JSON or bytes (a Spring/JPA service often uses jsonb).
_ALSO_ACCEPTED = {"payload": {"json", "bytes"}, "headers": {"json", "bytes"}}
# The longest value kafkaops writes to a column of a fixed size it does not cut.
_MUST_HOLD = {"status": max(len(s) for s in STATUSES)}


def inspect_table(conn: Connection, db: DatabaseSettings) -> TableShape:
    """The live table compared with the mapping: every mapped column, its kind and its room.

    One checker for `db check` and for the retry pass's preflight: an empty `problems` means
    every query kafkaops makes, and every value it writes (cut to fit), will be accepted.
    """
    inspector = inspect(conn)
    if not inspector.has_table(db.table, schema=db.schema):
        where = f"{db.schema}.{db.table}" if db.schema else db.table
        return TableShape({}, [ColumnProblem("*", where, "table does not exist (run: kafkaops db init)")])
    live = {c["name"].lower(): c for c in _reflected_columns(conn, db)}
    declared: dict[str, str] | None = None
    problems: list[ColumnProblem] = []
    columns: dict[str, LiveColumn] = {}
    for logical in LOGICAL_COLUMNS:
        physical = db.physical(logical)
        found = live.get(physical.lower())
        if found is None:
            # Every query selects through the full mapping, so any missing column breaks them.
            problems.append(ColumnProblem(logical, physical, "missing"))
            continue
        sql_type = found["type"]
        actual = kind_of(sql_type)
        type_name = _type_name(sql_type, conn)
        if isinstance(sql_type, types.NullType | types.ARRAY):
            # SQLAlchemy says NULL (a type it does not know: xml, tsvector) or ARRAY: the
            # database's own name says which (xml, text[], timestamp with time zone[]).
            declared = declared if declared is not None else declared_types(conn, db)
            type_name = declared.get(physical.lower(), type_name)
            actual = "array" if isinstance(sql_type, types.ARRAY) else type_name.lower()
        length = getattr(sql_type, "length", None) if actual == "text" else None
        columns[logical] = LiveColumn(found["name"], actual, type_name, length)
        expected = _KINDS[logical]
        if expected == "id":
            if actual not in {"integer", "uuid", "text"}:
                problem = f"type {type_name} is not an integer or UUID"
                problems.append(ColumnProblem(logical, physical, problem))
        elif actual != expected and actual not in _ALSO_ACCEPTED.get(logical, ()):
            accepted = " or ".join([expected, *sorted(_ALSO_ACCEPTED.get(logical, ()))])
            problem = f"type {type_name} where {accepted} is expected"
            problems.append(ColumnProblem(logical, physical, problem))
        elif logical in _MUST_HOLD and length is not None and length < _MUST_HOLD[logical]:
            problem = f"type {type_name} cannot hold {_MUST_HOLD[logical]} characters (DLQ_FAILED)"
            problems.append(ColumnProblem(logical, physical, problem))
    return TableShape(columns, problems)


def _reflected_columns(conn: Connection, db: DatabaseSettings) -> list[Any]:
    """The inspector's columns, without the warning SQLAlchemy prints for a type it does not
    know (`Did not recognize type 'xml'`): `db check` names that type itself, in one line."""
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Did not recognize type", category=SAWarning)
        return list(inspect(conn).get_columns(db.table, schema=db.schema))


def declared_types(conn: Connection, db: DatabaseSettings) -> dict[str, str]:
    """Each column's type as the database names it (lower-cased column -> type): PostgreSQL's
    `format_type`, SQLite's declared type."""
    if conn.dialect.name == "postgresql":
        name = f"{db.schema}.{db.table}" if db.schema else db.table
        query = text(
            "SELECT lower(attname), format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped"
        )
        return {str(k): str(v) for k, v in conn.execute(query, {"name": _quoted(name)})}
    if conn.dialect.name == "sqlite":
        prefix = f"{_quoted(db.schema)}." if db.schema else ""
        rows = conn.exec_driver_sql(f"PRAGMA {prefix}table_info({_quoted(db.table)})")
        return {str(row[1]).lower(): str(row[2]) for row in rows}
    return {}


def _type_name(sql_type: Any, conn: Connection) -> str:
    """The type in the database's own words: `TIMESTAMP(6) WITH TIME ZONE` as Hibernate makes
    it on PostgreSQL, where str() would say only `TIMESTAMP`."""
    try:
        return str(sql_type.compile(dialect=conn.dialect))
    except Exception:  # a type the dialect cannot render (reflected as NullType)
        return str(sql_type)


def check_table(conn: Connection, db: DatabaseSettings) -> list[ColumnProblem]:
    """Compare the live table with the mapping; an empty list means it is fit for use."""
    return inspect_table(conn, db).problems


def kind_of(sql_type: Any) -> str:
    if isinstance(sql_type, types.Uuid):
        return "uuid"
    if isinstance(sql_type, types.Integer):
        return "integer"
    if isinstance(sql_type, (types.DateTime, types.TIMESTAMP)):
        return "timestamp"
    if isinstance(sql_type, types.JSON):
        return "json"
    if isinstance(sql_type, types._Binary):
        return "bytes"
    if isinstance(sql_type, (types.String, types.Text)):
        return "text"
    name = str(sql_type).lower()
    if "uuid" in name:
        return "uuid"
    if name in ("json", "jsonb"):
        return "json"
    return name


TRUNCATION_MARKER = "…[truncated]"


def fit(value: str | None, max_length: int | None) -> str | None:
    """`value` cut to `max_length` characters, ending with a marker, when it is longer."""
    if value is None or max_length is None or len(value) <= max_length:
        return value
    if max_length <= len(TRUNCATION_MARKER):
        return value[:max_length]
    return value[: max_length - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def detect_id_type(conn: Connection, db: DatabaseSettings) -> str:
    """`uuid` or `bigint`, read from the live table (the service may use either)."""
    physical = db.physical("id").lower()
    if conn.dialect.name == "postgresql":
        # One catalog lookup instead of the inspector's full reflection.
        name = f"{db.schema}.{db.table}" if db.schema else db.table
        query = text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(:name) AND lower(attname) = :column AND NOT attisdropped"
        )
        found = conn.execute(query, {"name": _quoted(name), "column": physical}).scalar()
    else:
        found = declared_types(conn, db).get(physical)
    if found is None:
        return "bigint"
    # SQLite keeps UUIDs as text; any non-integer id is treated as a UUID.
    return "bigint" if any(word in found.lower() for word in ("int", "serial")) else "uuid"


def live_stored_kinds(
    conn: Connection, db: DatabaseSettings, *, declared: dict[str, str] | None = None
) -> dict[str, str]:
    """`json` or `bytes` for a payload/headers column stored that way on PostgreSQL (one
    catalog query). SQLite types values, not columns: text and blobs are read as they come,
    and `times` is the form of the newest row's created_at, the form kafkaops then writes."""
    if conn.dialect.name == "sqlite":
        return {"times": _newest_time_form(conn, db)}
    if conn.dialect.name != "postgresql":
        return {}
    found = declared if declared is not None else declared_types(conn, db)
    kinds: dict[str, str] = {}
    for logical in ("payload", "headers"):
        type_name = found.get(db.physical(logical).lower(), "")
        if type_name in ("json", "jsonb"):
            kinds[logical] = "json"
        elif type_name == "bytea":
            kinds[logical] = "bytes"
    return kinds


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _time_form_sql(column: str) -> str:
    """SQL naming the form of one SQLite time value: epoch_ms, epoch_s, text or unreadable."""
    return (
        f"CASE WHEN typeof({column}) IN ('integer', 'real') "
        f"THEN CASE WHEN abs({column}) >= 1e11 THEN 'epoch_ms' ELSE 'epoch_s' END "
        f"WHEN kafkaops_time(CAST({column} AS BLOB)) IS NULL THEN 'unreadable' ELSE 'text' END"
    )


def _sqlite_name(db: DatabaseSettings, logical: str) -> str:
    return '"' + db.physical(logical).replace('"', '""') + '"'


def _newest_time_form(conn: Connection, db: DatabaseSettings) -> str:
    if not inspect(conn).has_table(db.table):
        return "text"  # SQLAlchemy's own form, as `db init` leaves an empty table
    created, key = _sqlite_name(db, "created_at"), _sqlite_name(db, "id")
    query = text(
        f"SELECT {_time_form_sql(created)} FROM {_quoted(db.table)} "
        f"WHERE {created} IS NOT NULL ORDER BY {key} DESC LIMIT 1"
    )
    form = conn.execute(query).scalar()
    return form if form in TIME_FORMS else "text"


@dataclass(frozen=True)
class TimeStorage:
    """How the live table holds its times, for `db check`."""

    forms: list[str]  # in words, most used first: "epoch milliseconds", "timestamp with time zone"
    unreadable: int = 0  # SQLite values that are no time (shown as stored, never past a cutoff)


def time_storage(conn: Connection, db: DatabaseSettings, shape: TableShape) -> TimeStorage:
    """PostgreSQL types its columns: their type. SQLite types values: each form found."""
    if conn.dialect.name != "sqlite":
        found = shape.columns.get("created_at")
        return TimeStorage([found.type_name.lower()] if found else [])
    counts = _time_forms(conn, db)
    unreadable = counts.pop("unreadable", 0)
    forms = sorted(counts, key=lambda form: -counts[form])
    return TimeStorage([TIME_FORMS[form] for form in forms], unreadable)


def _time_forms(conn: Connection, db: DatabaseSettings) -> dict[str, int]:
    """How many time values (all four columns) the SQLite table holds in each form."""
    parts = " UNION ALL ".join(
        f"SELECT {_time_form_sql(_sqlite_name(db, c))} AS form FROM {_quoted(db.table)} "
        f"WHERE {_sqlite_name(db, c)} IS NOT NULL"
        for c in TIME_COLUMNS
    )
    query = text(f"SELECT form, count(*) FROM ({parts}) GROUP BY form")
    return {str(form): int(n) for form, n in conn.execute(query)}
