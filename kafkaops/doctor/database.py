"""The database side of `kafkaops doctor`: a connection, the table's columns as `db check`
compares them (kafkaops/db/schema.py), and on PostgreSQL the privileges kafkaops uses on the
table (`has_table_privilege`): SELECT (every command), UPDATE (`retry`, `failed requeue`,
`park`, `unpark`), DELETE (`failed purge`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafkaops.doctor.report import GRANTED, MISSING, Check

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.db.connections import Connections

PRIVILEGES = ("SELECT", "UPDATE", "DELETE")
COMMAND = "database"


def check_database(conns: Connections) -> tuple[list[Check], list[str]]:
    """The checks, and the topics of the rows that need a DLQ (the doctor's targets)."""
    from kafkaops.db.schema import inspect_table
    from kafkaops.dlq.catalogue import topics_needing_dlq

    db = conns.settings.database
    name = f"{db.schema}.{db.table}" if db.schema else db.table
    checks: list[Check] = []
    with conns.db_errors(), conns.connect() as conn:
        checks.append(Check(COMMAND, f"database {conns.dialect}", "connect", GRANTED))
        problems = inspect_table(conn, db).problems
        for p in problems:
            checks.append(
                Check(COMMAND, f"table {name}", f"column {p.column}", MISSING, "kafkaops db check", p.problem)
            )
        if not problems:
            checks.append(Check(COMMAND, f"table {name}", "columns", GRANTED, None, "as kafkaops db check"))
        privileges = _privileges(conn, db.schema, db.table, name) if conn.dialect.name == "postgresql" else []
        checks += privileges
        readable = not any(c.operation == "SELECT" and c.state != GRANTED for c in privileges)
        topics = topics_needing_dlq(conn, conns.table) if not problems and readable else []
    return checks, topics


def _privileges(conn: Connection, schema: str | None, table: str, name: str) -> list[Check]:
    from sqlalchemy import text

    quoted = '"' + table.replace('"', '""') + '"'
    if schema:
        quoted = '"' + schema.replace('"', '""') + '".' + quoted
    user = conn.execute(text("SELECT current_user")).scalar_one()
    checks = []
    for privilege in PRIVILEGES:
        held = conn.execute(
            text("SELECT has_table_privilege(:t, :p)"), {"t": quoted, "p": privilege}
        ).scalar_one()
        fix = None if held else f'GRANT {privilege} ON {quoted} TO "{user}"'
        checks.append(Check(COMMAND, f"table {name}", privilege, GRANTED if held else MISSING, fix))
    return checks
