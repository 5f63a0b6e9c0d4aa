"""The `failed_kafka_events` table as kafkaops sees it: logical columns over physical names.

Every query in kafkaops goes through the `Table` built here, whose columns are keyed by their
logical name (`table.c.event_key`) whatever the service calls them. `db init` and `db check`
live here too, since both are about the table's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    inspect,
    text,
    types,
)

from kafkaops.config import LOGICAL_COLUMNS, DatabaseSettings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

STATUSES = ("PENDING", "RESOLVED", "DLQ", "DLQ_FAILED")

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


def build_table(db: DatabaseSettings, *, id_type: str = "bigint") -> Table:
    """The SQLAlchemy table for this mapping.

    `id_type` is `bigint` or `uuid` to create the table; `any` (for queries on a table whose id
    type was not configured) declares no type, so bound ids are typed by their Python value.
    """
    ts = DateTime(timezone=True)
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
    return Table(
        db.table,
        MetaData(),
        Column(col("id"), id_column, key="id", primary_key=True, autoincrement=id_type != "uuid"),
        Column(col("event_id"), String(100), key="event_id"),
        Column(col("topic"), String(255), key="topic", nullable=False),
        Column(col("event_key"), String(255), key="event_key"),
        Column(col("payload"), Text, key="payload", nullable=False),
        Column(col("headers"), Text, key="headers"),
        Column(col("status"), String(20), key="status", nullable=False),
        Column(col("retry_count"), Integer, key="retry_count", nullable=False, server_default="0"),
        Column(col("last_error"), Text, key="last_error"),
        Column(col("error_type"), String(255), key="error_type"),
        Column(col("created_at"), ts, key="created_at", nullable=False),
        Column(col("updated_at"), ts, key="updated_at", nullable=False),
        Column(col("next_retry_at"), ts, key="next_retry_at"),
        Column(col("resolved_at"), ts, key="resolved_at"),
        Index(f"ix_{db.table}_status_next_retry_at", "status", "next_retry_at"),
        schema=db.schema,
    )


def init_table(engine: Engine, db: DatabaseSettings, *, id_type: str = "bigint") -> bool:
    """Create the table and its (status, next_retry_at) index if missing; True if created."""
    table = build_table(db, id_type=id_type)
    with engine.begin() as conn:
        existed = inspect(conn).has_table(db.table, schema=db.schema)
        table.metadata.create_all(conn, checkfirst=True)
    return not existed


@dataclass(frozen=True)
class ColumnProblem:
    column: str  # logical name
    physical: str
    problem: str


def check_table(conn: Connection, db: DatabaseSettings) -> list[ColumnProblem]:
    """Compare the live table with the mapping; an empty list means it is fit for use."""
    inspector = inspect(conn)
    if not inspector.has_table(db.table, schema=db.schema):
        where = f"{db.schema}.{db.table}" if db.schema else db.table
        return [ColumnProblem("*", where, "table does not exist (run: kafkaops db init)")]
    live = {c["name"].lower(): c for c in inspector.get_columns(db.table, schema=db.schema)}
    problems: list[ColumnProblem] = []
    for logical in LOGICAL_COLUMNS:
        physical = db.physical(logical)
        found = live.get(physical.lower())
        if found is None:
            # Every query selects through the full mapping, so any missing column breaks them.
            problems.append(ColumnProblem(logical, physical, "missing"))
            continue
        expected = _KINDS[logical]
        actual = kind_of(found["type"])
        if expected == "id":
            if actual not in {"integer", "uuid", "text"}:
                problem = f"type {found['type']} is not an integer or UUID"
                problems.append(ColumnProblem(logical, physical, problem))
        elif actual != expected:
            problem = f"type {found['type']} where {expected} is expected"
            problems.append(ColumnProblem(logical, physical, problem))
    return problems


def kind_of(sql_type: Any) -> str:
    if isinstance(sql_type, types.Uuid):
        return "uuid"
    if isinstance(sql_type, types.Integer):
        return "integer"
    if isinstance(sql_type, (types.DateTime, types.TIMESTAMP)):
        return "timestamp"
    if isinstance(sql_type, (types.String, types.Text)):
        return "text"
    name = str(sql_type).lower()
    if "uuid" in name:
        return "uuid"
    return name


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
        columns = inspect(conn).get_columns(db.table, schema=db.schema)
        found = next((str(c["type"]) for c in columns if c["name"].lower() == physical), None)
    if found is None:
        return "bigint"
    # SQLite keeps UUIDs as text; any non-integer id is treated as a UUID.
    return "bigint" if any(word in found.lower() for word in ("int", "serial")) else "uuid"


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
