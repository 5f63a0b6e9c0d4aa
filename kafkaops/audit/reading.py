"""Reading the journal back: entries chosen by time, actor, command and context, newest first;
one entry whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kafkaops.audit.table import audit_table
from kafkaops.common.errors import NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.config.settings import DatabaseSettings

NO_OUTCOME = "none: the command never finished (killed, or still running)"


def list_entries(
    conn: Connection,
    db: DatabaseSettings,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    command: str | None = None,
    context: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    table = audit_table(db)
    query = select(table).order_by(table.c.id.desc())
    if since is not None:
        query = query.where(table.c.started_at >= since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if actor:
        query = query.where(table.c.actor == actor)
    if command:
        query = query.where(table.c.command == command)
    if context:
        query = query.where(table.c.context == context)
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execute(query):
        yield entry_doc(dict(row._mapping))


def get_entry(conn: Connection, db: DatabaseSettings, entry_id: int) -> dict[str, Any]:
    table = audit_table(db)
    row = conn.execute(select(table).where(table.c.id == entry_id)).first()
    if row is None:
        raise NotFoundError(f"no audit entry {entry_id}")
    return entry_doc(dict(row._mapping))


def entry_doc(row: dict[str, Any]) -> dict[str, Any]:
    """A stored entry as the commands show it: JSON columns parsed, a missing outcome said."""
    for key in ("selection", "details"):
        with suppress(ValueError):  # not JSON: shown as stored
            row[key] = json.loads(row[key] or "{}")
    if row.get("outcome") is None:
        row["outcome"] = NO_OUTCOME
    return row
