"""`bound_transaction`: the limits it sets hold for one transaction and end with it, on both
databases (PostgreSQL's SET LOCAL; SQLite's busy timeout, put back when the next one begins)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kafkaops.config import Overrides, load_settings
from kafkaops.connections import Connections, bound_transaction


def current_limits(conn, dialect: str) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    if dialect == "sqlite":
        return (str(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()),)
    return tuple(
        str(conn.exec_driver_sql(f"SHOW {name}").scalar_one())
        for name in ("statement_timeout", "lock_timeout")
    )


@pytest.mark.parametrize(
    ("lock", "inside"),
    [
        (timedelta(seconds=10), {"sqlite": ("10000",), "postgresql": ("2500ms", "10s")}),
        (None, {"sqlite": ("2250",), "postgresql": ("2500ms", "2250ms")}),
    ],
)
def test_the_limits_hold_for_one_transaction(configured, lock, inside) -> None:  # type: ignore[no-untyped-def]
    conns = Connections(load_settings(Overrides()))
    try:
        with conns.begin() as conn:
            before = current_limits(conn, conns.dialect)
        with conns.begin() as conn:
            bound_transaction(conn, statement=timedelta(seconds=2.5), lock=lock)
            assert current_limits(conn, conns.dialect) == inside[conns.dialect]
        with conns.begin() as conn:
            assert current_limits(conn, conns.dialect) == before  # the next transaction: as before
    finally:
        conns.close()
