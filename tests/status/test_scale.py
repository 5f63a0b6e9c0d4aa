"""`status` and the default `failed` at a cost that follows the unresolved rows, not the
history: the unresolved rows' index (`db init` creates it, `db check` names it), exact counts
of what is not RESOLVED, the RESOLVED total estimated on a large table unless `--exact`.

Real PostgreSQL and SQLite; a "large" table is one past `EXACT_BELOW_BYTES`, filled in SQL.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.db.schema import has_unresolved_index, unresolved, unresolved_index_name
from kafkaops.db.table_counts import EXACT_BELOW_BYTES
from tests.conftest import TestDatabase
from tests.helpers.config import write_config
from tests.helpers.events import event

UNRESOLVED = {"PENDING": 30, "DLQ": 7, "DLQ_FAILED": 2}
PAD = 600  # bytes of payload per RESOLVED row: stored inline (under TOAST's threshold)


def _configure(db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "kafkaops.yaml", db)))


def _name(db: TestDatabase) -> str:
    prep = sa.sql.compiler.IdentifierPreparer(db.engine.dialect)
    return prep.format_table(db.table)


def _fill_resolved(db: TestDatabase, rows: int) -> None:
    """`rows` RESOLVED rows, made by the database itself (generate_series, a recursive CTE)."""
    c = {k: db.settings.physical(k) for k in db.settings.columns}
    q = {k: f'"{v}"' for k, v in c.items()}
    cols = ", ".join(
        q[k] for k in ("topic", "payload", "status", "retry_count", "created_at", "updated_at", "resolved_at")
    )
    if db.kind == "postgresql":
        sql = (
            f"INSERT INTO {_name(db)} ({cols}) SELECT 'orders.v1', repeat(md5(n::text), {PAD // 32}), "
            f"'RESOLVED', 1, now() - interval '30 days' + n * interval '1 second', now(), "
            f"now() - interval '29 days' + n * interval '1 second' FROM generate_series(1, {rows}) AS n"
        )
    else:
        sql = (
            f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
            f"INSERT INTO {_name(db)} ({cols}) SELECT 'orders.v1', printf('%.{PAD}c', 'x') || n, "
            "'RESOLVED', 1, '2024-01-01 00:00:00', '2024-01-02 00:00:00', '2024-01-02 00:00:00' FROM s"
        )
    with db.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    if db.kind == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"ANALYZE {_name(db)}")


def _unresolved_rows() -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    out: list[dict[str, Any]] = []
    for status, n in UNRESOLVED.items():
        for i in range(n):
            due = now - timedelta(minutes=1) if i % 3 == 0 else now + timedelta(hours=1)
            out.append(
                event(
                    len(out),
                    status=status,
                    topic=f"t{i % 2}",
                    created_at=now - timedelta(minutes=10 + i),
                    next_retry_at=due if status == "PENDING" else None,
                )
            )
    return out


LARGE_ROWS = EXACT_BELOW_BYTES // (PAD - 100) + 1000


def _large(db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestDatabase:
    db.init()
    db.insert(_unresolved_rows())
    _fill_resolved(db, LARGE_ROWS)
    _configure(db, tmp_path, monkeypatch)
    return db


@pytest.fixture
def large(database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestDatabase:
    return _large(database, tmp_path, monkeypatch)


@pytest.fixture
def large_pg(pg_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestDatabase:
    """PostgreSQL only: where RESOLVED is estimated."""
    return _large(pg_database, tmp_path, monkeypatch)


def _status(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("status", "-o", "json", *args)
    assert result.exit_code == 2, result.stderr  # CRITICAL: the DLQ_FAILED rows
    return json.loads(result.stdout)


def _database_check(doc: dict[str, Any]) -> str:
    return next(c["message"] for c in doc["checks"] if c["name"] == "database")


def _drop_index(db: TestDatabase) -> None:
    prep = sa.sql.compiler.IdentifierPreparer(db.engine.dialect)
    name = prep.quote(unresolved_index_name(db.settings))
    qualified = f"{prep.quote(db.schema)}.{name}" if db.schema else name
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {qualified}")


def test_large_table_counts_unresolved_exactly_and_estimates_resolved(large: TestDatabase, cli: Any) -> None:
    db = _status(cli)["database"]
    assert {k: v for k, v in db["counts"].items() if k != "RESOLVED"} == UNRESOLVED
    assert db["due_now"] == 10
    assert db["pending_by_topic"] == {"t0": 15, "t1": 15}
    assert db["oldest_pending_age_s"] == pytest.approx(39 * 60, abs=30)
    assert db["missing_index"] is None
    if large.kind == "postgresql":
        # The planner's estimate after ANALYZE; no index gives the newest RESOLVED time.
        assert db["resolved_estimated"] is True
        assert db["counts"]["RESOLVED"] == pytest.approx(LARGE_ROWS, rel=0.05)
    else:
        # SQLite counts its RESOLVED rows exactly (count(*) reads an index, no row).
        assert db["resolved_estimated"] is False
        assert db["counts"]["RESOLVED"] == LARGE_ROWS
    assert db["newest_resolved_at"] is None


def test_exact_counts_every_resolved_row_and_finds_the_newest(large: TestDatabase, cli: Any) -> None:
    doc = _status(cli, "--exact")
    db = doc["database"]
    assert db["counts"] == {**UNRESOLVED, "RESOLVED": LARGE_ROWS}
    assert db["resolved_estimated"] is False
    assert db["newest_resolved_at"] is not None
    assert "estimated" not in _database_check(doc)


def test_estimate_is_marked_in_the_table_and_the_database_check(large_pg: TestDatabase, cli: Any) -> None:
    result = cli("status")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESOLVED"))
    assert line.split()[1].startswith("~")
    assert "estimate (--exact counts)" in line
    assert "RESOLVED estimated (--exact counts every row)" in result.stdout


def test_small_table_is_counted_exactly(
    database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    database.init()
    rows = _unresolved_rows()
    rows.append(
        event(len(rows), status="RESOLVED", created_at=datetime.now(timezone.utc) - timedelta(hours=1))
    )
    database.insert(rows)
    _configure(database, tmp_path, monkeypatch)
    db = _status(cli)["database"]
    assert db["counts"] == {**UNRESOLVED, "RESOLVED": 1}
    assert db["resolved_estimated"] is False
    assert db["newest_resolved_at"] is not None


def test_without_the_index_status_still_answers_and_names_it(large: TestDatabase, cli: Any) -> None:
    _drop_index(large)
    doc = _status(cli)
    db = doc["database"]
    assert {k: v for k, v in db["counts"].items() if k != "RESOLVED"} == UNRESOLVED
    statement = db["missing_index"]
    assert statement is not None
    assert f"the unresolved rows' index is missing, which makes status fast: {statement}" in _database_check(
        doc
    )


def test_the_planner_reads_the_unresolved_rows_through_the_index(large: TestDatabase) -> None:
    """The figures come from the index, not from a scan of the RESOLVED history."""
    table = large.table
    query = sa.select(table.c.status, table.c.topic, sa.func.count()).where(unresolved(table))
    query = query.group_by(table.c.status, table.c.topic)
    sql = str(query.compile(dialect=large.engine.dialect))
    explain = "EXPLAIN " if large.kind == "postgresql" else "EXPLAIN QUERY PLAN "
    with large.engine.connect() as conn:
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + sql))
    assert unresolved_index_name(large.settings) in plan, plan
    assert "Seq Scan" not in plan and "SCAN failed_kafka_events\n" not in plan + "\n", plan


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_db_check_names_the_missing_index_and_db_init_creates_it(
    kind: str, make_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    # A mapping of its own: the statement must name the physical columns.
    db = make_database(kind, {"status": "event_state", "created_at": "first_seen"})
    db.init()
    _configure(db, tmp_path, monkeypatch)
    with db.engine.connect() as conn:
        assert has_unresolved_index(conn, db.settings)
    assert "index" not in cli("db", "check").stderr
    _drop_index(db)
    result = cli("db", "check")
    assert result.exit_code == 0
    index = unresolved_index_name(db.settings)
    if kind == "postgresql":
        statement = (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {db.schema}.failed_kafka_events "
            "(event_state, first_seen) WHERE event_state != 'RESOLVED'"
        )
    else:
        statement = (
            f"CREATE INDEX IF NOT EXISTS {index} ON failed_kafka_events "
            "(event_state, first_seen) WHERE event_state != 'RESOLVED'"
        )
    assert result.stderr.splitlines()[-1].strip() == statement
    assert "no index over the rows not RESOLVED" in result.stderr
    result = cli("db", "init")
    assert result.exit_code == 0
    assert f"Created index {index} on the rows not RESOLVED." in result.stderr
    with db.engine.connect() as conn:
        assert has_unresolved_index(conn, db.settings)
    assert "index" not in cli("db", "check").stderr
    assert "index" not in cli("db", "init").stderr  # nothing more to create


def test_the_statement_db_check_prints_makes_the_index(
    pg_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    pg_database.init()
    _configure(pg_database, tmp_path, monkeypatch)
    _drop_index(pg_database)
    statement = cli("db", "check").stderr.splitlines()[-1].strip()
    with pg_database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(statement)
        assert has_unresolved_index(conn, pg_database.settings)


def test_failed_summary_on_a_large_table(large: TestDatabase, cli: Any) -> None:
    result = cli("failed", "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["status"], r["count"]) for r in rows][:3] == [("DLQ_FAILED", 2), ("PENDING", 30), ("DLQ", 7)]
    resolved = rows[3]
    assert resolved["status"] == "RESOLVED"
    if large.kind == "postgresql":
        assert resolved["count"] == pytest.approx(LARGE_ROWS, rel=0.05)
        assert resolved["oldest_created_at"] is None and resolved["newest_created_at"] is None
        assert f"RESOLVED: ~{resolved['count']:,}, the planner's estimate" in result.stderr
    else:
        assert resolved["count"] == LARGE_ROWS
    # A filter asks the exact question.
    exact = json.loads(cli("failed", "--status", "RESOLVED", "-o", "json").stdout)
    assert exact[0]["count"] == LARGE_ROWS and exact[0]["newest_created_at"] is not None
