"""The journal's table, `kafkaops_audit`, beside the failed-events table (same database and
schema): created by `kafkaops db init`, reported by `kafkaops db check`.

Times are ISO 8601 UTC text (`2026-12-06T09:13:28.123456Z`): sorted and compared as text the
same way on PostgreSQL and SQLite. Selection and details are JSON text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, Identity, Index, Integer, MetaData, String, Table, Text, inspect

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from kafkaops.config.settings import DatabaseSettings

NAME = "kafkaops_audit"


def audit_table(db: DatabaseSettings) -> Table:
    return Table(
        NAME,
        MetaData(),
        # An identity, not a serial: a user granted INSERT on the table needs no grant on a sequence.
        Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
        Column("started_at", String(32), nullable=False),
        Column("ended_at", String(32)),
        Column("actor", String(255), nullable=False),
        Column("context", String(255)),
        Column("version", String(32), nullable=False),
        Column("command", String(100), nullable=False),  # `failed purge`
        Column("command_line", Text, nullable=False),  # as typed, secrets masked
        Column("selection", Text, nullable=False),  # JSON
        Column("rows", BigInteger, nullable=False, server_default="0"),
        Column("details", Text, nullable=False),  # JSON: ids (bounded), their SHA-256, archive, offsets
        Column("outcome", Text),  # None until the command ends: ok, failed: ..., interrupted
        Column("exit_code", Integer),
        Column("duration_ms", BigInteger),
        Index(f"ix_{NAME}_started_at", "started_at"),
        schema=db.schema,
    )


def create_audit_table(engine: Engine, db: DatabaseSettings) -> bool:
    """Create the table if missing; True if created."""
    table = audit_table(db)
    with engine.begin() as conn:
        existed = inspect(conn).has_table(NAME, schema=db.schema)
        table.metadata.create_all(conn, checkfirst=True)
    return not existed


def missing_columns(conn: Connection, db: DatabaseSettings) -> list[str] | None:
    """None when there is no journal table; else the columns it lacks (empty: usable)."""
    inspector = inspect(conn)
    if not inspector.has_table(NAME, schema=db.schema):
        return None
    have = {c["name"] for c in inspector.get_columns(NAME, schema=db.schema)}
    return [c.name for c in audit_table(db).c if c.name not in have]
