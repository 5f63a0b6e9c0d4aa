"""`bound_transaction`: the limits it sets hold for one transaction and end with it, on both
databases (PostgreSQL's SET LOCAL; SQLite's busy timeout, put back when the next one begins)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.connections import Connections
from kafkaops.db.transactions import bound_transaction


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


def test_a_commands_lock_wait_is_its_sessions_default_and_a_bounded_transaction_still_wins(
    configured,
) -> None:  # type: ignore[no-untyped-def]
    """`bound_lock_waits` (database.lock_timeout, for `failed` and `db`) sets the session's
    lock_timeout through the same set_config as `bound_transaction`; a transaction bounded on
    top of it has its own limits, and the session's come back after it."""
    conns = Connections(load_settings(Overrides()))
    try:
        conns.bound_lock_waits(timedelta(milliseconds=1500))
        conns.bound_lock_waits(timedelta(seconds=99))  # a second call changes nothing
        with conns.begin() as conn:
            session = current_limits(conn, conns.dialect)
        with conns.begin() as conn:
            bound_transaction(conn, statement=timedelta(seconds=2.5), lock=timedelta(seconds=4))
            bounded = current_limits(conn, conns.dialect)
        with conns.connect() as conn:
            after = current_limits(conn, conns.dialect)
    finally:
        conns.close()
    if conns.dialect == "sqlite":  # its busy timeout, as every connection has it
        assert (session, bounded, after) == (("5000",), ("4000",), ("5000",))
    else:
        assert (session, bounded, after) == (("0", "1500ms"), ("2500ms", "4s"), ("0", "1500ms"))
