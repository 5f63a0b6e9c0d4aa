"""`kafkaops_retry_runs`: one row per retry pass, kept by kafkaops beside the failed-events
table, so that `status` can say when the retry job last ran, how long it took and what it did.

The table is kafkaops' own (created by `db init`, reported by `db check`), in the failed-events
table's schema. A database without it is tolerated: a pass then records nothing and `status`
says the last pass is not recorded. Rows older than `KEEP` are deleted as each pass records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)

from kafkaops.common.timeparse import time_or_none

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from kafkaops.config.settings import DatabaseSettings

TABLE = "kafkaops_retry_runs"
KEEP = timedelta(days=7)
COUNTS = ("claimed", "resolved", "rescheduled", "dlq", "dlq_failed", "permanent", "aborted")


def runs_table(db: DatabaseSettings) -> Table:
    return Table(
        TABLE,
        MetaData(),
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("started_at", DateTime(timezone=True), nullable=False, index=True),
        Column("duration_s", Float, nullable=False),
        *(Column(name, Integer, nullable=False, server_default="0") for name in COUNTS),
        Column("outcome", String(20), nullable=False),  # completed | stopped | failed
        Column("detail", Text),  # why it stopped or failed, one line
        schema=db.schema,
    )


@dataclass(frozen=True)
class RetryRun:
    """One recorded pass."""

    started_at: datetime
    duration_s: float
    counts: dict[str, int]
    outcome: str
    detail: str | None

    @property
    def finished_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.duration_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            **self.counts,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def init_runs_table(engine: Engine, db: DatabaseSettings) -> bool:
    """Create the table if missing; True if created."""
    table = runs_table(db)
    with engine.begin() as conn:
        existed = inspect(conn).has_table(TABLE, schema=db.schema)
        table.metadata.create_all(conn, checkfirst=True)
    return not existed


def has_runs_table(conn: Connection, db: DatabaseSettings) -> bool:
    return bool(inspect(conn).has_table(TABLE, schema=db.schema))


def record_run(conn: Connection, db: DatabaseSettings, run: RetryRun) -> None:
    """Insert the pass's row and delete those older than KEEP, in the caller's transaction."""
    table = runs_table(db)
    conn.execute(
        insert(table).values(
            started_at=run.started_at,
            duration_s=run.duration_s,
            outcome=run.outcome,
            detail=run.detail,
            **run.counts,
        )
    )
    conn.execute(delete(table).where(table.c.started_at < run.started_at - KEEP))


def last_run(conn: Connection, db: DatabaseSettings) -> RetryRun | None:
    """The latest recorded pass, or None when none is."""
    table = runs_table(db)
    row = conn.execute(select(table).order_by(table.c.started_at.desc(), table.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    started = time_or_none(row.started_at)
    if started is None:
        return None
    return RetryRun(
        started_at=started,
        duration_s=float(row.duration_s),
        counts={name: int(getattr(row, name) or 0) for name in COUNTS},
        outcome=str(row.outcome),
        detail=None if row.detail is None else str(row.detail),
    )
