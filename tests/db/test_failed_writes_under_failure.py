"""Requeue and purge under failure: a killed or interrupted purge, concurrent purges, requeue
beside a retry pass, statements held past their timeout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.config import write_config
from tests.helpers.process import run_kafkaops, start_kafkaops, timed_kafkaops

FILL = """
INSERT INTO {table} (event_id, topic, payload, status, retry_count, created_at, updated_at)
SELECT 'evt-' || n, 't', '{{}}', :status, 0, now() - interval '60 days', now() - interval '60 days'
FROM generate_series(1, :rows) AS n
"""


def fill(db, rows: int, status: str) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(FILL.format(table=f'"{db.schema}".failed_kafka_events')), {"rows": rows, "status": status}
        )


def purge(config, *extra: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return start_kafkaops(
        "failed", "purge", "--no-archive", "--older-than", "30d", "--yes", *extra, config=config
    )


@pytest.mark.slow
def test_a_killed_purge_deletes_whole_batches_only_and_a_rerun_finishes(pg_database, tmp_path) -> None:
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    fill(pg_database, 200_000, "RESOLVED")
    fill(pg_database, 100, "PENDING")
    fill(pg_database, 100, "DLQ_FAILED")
    t = pg_database.table
    proc = purge(config, "--batch-size", "1000")
    deadline = time.monotonic() + 60
    while pg_database.count(t.c.status == "RESOLVED") == 200_000:
        assert time.monotonic() < deadline and proc.poll() is None, "purge never started deleting"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    left = pg_database.count(t.c.status == "RESOLVED")
    assert 0 < left < 200_000
    assert left % 1000 == 0  # each batch is one transaction: all of it or none of it
    assert pg_database.count(t.c.status == "PENDING") == 100
    assert pg_database.count(t.c.status == "DLQ_FAILED") == 100
    rerun = purge(config, "--batch-size", "1000")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"Deleted {left:,} row(s)." in err
    assert pg_database.count() == 200


@pytest.mark.slow
def test_concurrent_purges_delete_each_row_once_and_both_finish(pg_database, tmp_path) -> None:
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    fill(pg_database, 50_000, "RESOLVED")
    fill(pg_database, 10, "PENDING")
    procs = [purge(config, "--batch-size", "500") for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    deleted = 0
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        # A purge that found nothing left to delete says so and deletes nothing.
        match = re.search(r"Deleted ([\d,]+) row", err)
        deleted += int(match.group(1).replace(",", "")) if match else 0
        assert match or re.search(r"^0 RESOLVED row", err, re.MULTILINE), err
    assert deleted == 50_000
    assert pg_database.count() == 10


def test_requeue_does_not_wait_for_or_disturb_a_running_retry_pass(
    pg_database, cli, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    fill(pg_database, 20, "PENDING")
    fill(pg_database, 5, "DLQ_FAILED")
    t = pg_database.table
    with pg_database.engine.connect() as pass_in_flight:
        pass_in_flight.execute(sa.text("SET lock_timeout = '5s'"))  # fails, never hangs
        # What a retry pass holds while it waits for acknowledgements.
        pass_in_flight.execute(
            sa.select(t.c.id).where(t.c.status == "PENDING").with_for_update(skip_locked=True)
        )
        started = time.monotonic()
        result = cli("failed", "requeue", "--yes")
        assert time.monotonic() - started < 10
        pass_in_flight.rollback()
    assert result.exit_code == 0, result.stderr
    assert pg_database.count(t.c.status == "PENDING") == 25
    assert pg_database.count(t.c.retry_count != 0) == 0


def test_a_row_being_requeued_while_purge_runs_is_skipped(pg_database, cli, tmp_path, monkeypatch) -> None:
    pg_database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    fill(pg_database, 3, "DLQ")
    t = pg_database.table
    first = pg_database.rows()[0]["id"]
    with pg_database.engine.connect() as operator:
        operator.execute(sa.text("SET lock_timeout = '5s'"))
        # An operator's requeue of one DLQ row, not yet committed when the purge starts.
        operator.execute(sa.update(t).where(t.c.id == first).values(status="PENDING"))
        result = cli("failed", "purge", "--no-archive", "--status", "DLQ", "--older-than", "30d", "--yes")
        operator.commit()
    assert result.exit_code == 0, result.stderr
    assert "Deleted 2 row(s)." in result.stderr
    assert [(r["id"], r["status"]) for r in pg_database.rows()] == [(first, "PENDING")]


# Row-level security with a policy that pauses the purge's DELETE on the first row it reads:
# the requeue of the second row commits after the DELETE took its snapshot (it still sees the
# row as DLQ) and before it locks that row, so only the purge's re-check on the locked row
# keeps it. Superusers bypass row-level security: the purge runs as a role of its own.
PAUSE_ON_FIRST_ROW = """
CREATE FUNCTION "{schema}".pause_on(row_id bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF row_id = {first} AND current_query() ILIKE 'DELETE%%' THEN PERFORM pg_sleep(3); END IF;
    RETURN true;
END $$;
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY pause ON {table} USING ("{schema}".pause_on(id));
CREATE ROLE {role} LOGIN;
GRANT USAGE ON SCHEMA "{schema}" TO {role};
GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role};
GRANT EXECUTE ON FUNCTION "{schema}".pause_on(bigint) TO {role};
"""


@pytest.mark.slow
def test_a_row_requeued_while_purge_runs_is_not_deleted(pg_database, tmp_path) -> None:
    import uuid

    pg_database.init()
    fill(pg_database, 3, "DLQ")
    t = pg_database.table
    first, second, third = (r["id"] for r in pg_database.rows())
    role = f"purger_{uuid.uuid4().hex[:8]}"
    table = f'"{pg_database.schema}".failed_kafka_events'
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql(
            PAUSE_ON_FIRST_ROW.format(schema=pg_database.schema, table=table, first=first, role=role)
        )
    try:
        purger = write_config(tmp_path / "k.yaml", pg_database)
        purger.write_text(
            purger.read_text().replace(
                pg_database.url, str(sa.engine.make_url(pg_database.url).set(username=role))
            )
        )
        proc = purge(purger, "--status", "DLQ")
        paused = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kafkaops' "
            "AND wait_event = 'PgSleep' AND query ILIKE 'DELETE%'"
        )
        deadline = time.monotonic() + 60
        with pg_database.engine.connect() as conn:
            while conn.execute(sa.text(paused)).scalar_one() == 0:
                conn.rollback()
                assert time.monotonic() < deadline and proc.poll() is None, (
                    "the purge never reached its DELETE"
                )
                time.sleep(0.05)
            conn.rollback()
            conn.execute(sa.text("SET lock_timeout = '5s'"))
            # The operator's requeue commits while the DELETE is under way.
            conn.execute(sa.update(t).where(t.c.id == second).values(status="PENDING"))
            conn.commit()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Deleted 2 row(s)." in err
        assert [(r["id"], r["status"]) for r in pg_database.rows()] == [(second, "PENDING")]
        assert third not in {r["id"] for r in pg_database.rows()}
    finally:
        with pg_database.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP POLICY pause ON {table}; DROP OWNED BY {role}; DROP ROLE {role}")


# -- a statement that never ends: requeue and purge are bounded ------------------------------------


def slow_trigger(db, seconds: int) -> None:  # type: ignore[no-untyped-def]
    """A trigger that sleeps on every row requeue updates or purge deletes (an audit trigger
    writing to a slow remote table, say)."""
    schema = f'"{db.schema}"'
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE FUNCTION {schema}.slow() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN COALESCE(NEW, OLD); END $$; "
            f"CREATE TRIGGER slow BEFORE UPDATE OR DELETE ON {schema}.failed_kafka_events "
            f"FOR EACH ROW EXECUTE FUNCTION {schema}.slow()"
        )


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("requeue",), "requeue did not finish within 2s (statement_timeout); nothing was requeued"),
        (
            ("purge", "--no-archive", "--older-than", "30d"),
            "purge did not finish within 2s (statement_timeout); nothing was deleted",
        ),
    ],
)
@pytest.mark.slow
def test_a_write_held_by_a_trigger_stops_at_its_timeout_and_changes_nothing(
    pg_database, tmp_path, args: tuple[str, ...], what: str
) -> None:
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    fill(pg_database, 3, "DLQ_FAILED")
    fill(pg_database, 3, "RESOLVED")
    slow_trigger(pg_database, 30)
    before = pg_database.rows()
    done, took = timed_kafkaops("failed", *args, "--yes", "--timeout", "2s", config=config)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {what} (the transaction was rolled back)"]
    assert "Traceback" not in done.stderr
    assert took < 20, f"it took {took:.1f}s with --timeout 2s"  # not the trigger's 30 s
    assert pg_database.rows() == before


@pytest.mark.slow
def test_a_purge_that_times_out_after_some_batches_says_how_many_were_deleted(pg_database, tmp_path) -> None:
    """The first batches commit; the batch the trigger holds is rolled back, and said so."""
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    fill(pg_database, 4, "RESOLVED")
    schema = f'"{pg_database.schema}"'
    with pg_database.engine.begin() as conn:  # only the last row (in id order) is slow to delete
        conn.exec_driver_sql(
            f"CREATE FUNCTION {schema}.slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF OLD.event_id = 'evt-4' THEN PERFORM pg_sleep(30); END IF; RETURN OLD; END $$; "
            f"CREATE TRIGGER slow BEFORE DELETE ON {schema}.failed_kafka_events "
            f"FOR EACH ROW EXECUTE FUNCTION {schema}.slow()"
        )
    done = run_kafkaops(
        "failed",
        "purge",
        "--no-archive",
        "--older-than",
        "30d",
        "--yes",
        "--batch-size",
        "1",
        "--timeout",
        "1s",
        config=config,
    )
    assert done.returncode == 1, done.stderr
    deleted = 4 - pg_database.count()
    assert 0 < deleted < 4
    assert (
        f"Error: purge did not finish within 1s (statement_timeout); {deleted:,} row(s) deleted in committed batches; the batch in flight was rolled back"
        in done.stderr
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("soon", "Error: invalid --timeout 'soon': accepted forms: 90s, 30m, 12h, 7d or 1h30m"),
        ("0s", "Error: --timeout '0s' must be longer than 0s"),
    ],
)
@pytest.mark.parametrize("command", [("requeue",), ("purge", "--no-archive", "--older-than", "1d")])
@pytest.mark.slow
def test_a_timeout_that_is_not_a_positive_duration_is_a_usage_error(
    pg_database, tmp_path, command: tuple[str, ...], bad: str, message: str
) -> None:
    pg_database.init()
    config = write_config(tmp_path / "k.yaml", pg_database)
    done = run_kafkaops("failed", *command, "--timeout", bad, config=config)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [message]


PURGE_ONE_BY_ONE = ("--batch-size", "1", "-o", "json")


def _old_resolved_rows(pg_database: Any, tmp_path: Path, rows: int) -> dict[str, str]:
    """`rows` RESOLVED rows last updated 40 days ago; the environment of a kafkaops process
    configured for them."""
    from datetime import timedelta

    from tests.helpers.events import NOW

    pg_database.init()
    old = NOW - timedelta(days=40)
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{pg_database.schema}".failed_kafka_events '
                "(topic, payload, status, retry_count, created_at, updated_at) "
                "SELECT 't', '{}', 'RESOLVED', 0, :old, :old FROM generate_series(1, :rows)"
            ),
            {"old": old, "rows": rows},
        )
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(config)
    return env


@pytest.mark.slow
def test_ctrl_c_in_the_middle_of_a_purge_says_how_many_rows_were_deleted(pg_database, tmp_path: Path) -> None:
    env = _old_resolved_rows(pg_database, tmp_path, 20_000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafkaops",
            "failed",
            "purge",
            "--no-archive",
            "--older-than",
            "30d",
            "--yes",
            *PURGE_ONE_BY_ONE,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "match in context test" in proc.stderr.readline()  # the purge has begun
        deadline = time.monotonic() + 20
        while pg_database.count() > 19_900 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    gone = 20_000 - pg_database.count()
    assert proc.returncode == 130, err
    assert 0 < gone < 20_000
    said = json.loads(out)
    assert said["interrupted"] is True
    # Batches of one row: the count said is exact, or one short if the interrupt came mid-commit.
    assert gone - 1 <= said["deleted"] <= gone
    assert f"Interrupted after deleting {said['deleted']:,} row(s);" in err
    assert "Traceback" not in err


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_ctrl_c_while_a_statement_runs_is_an_interrupt_not_a_database_error(
    pg_database, tmp_path: Path
) -> None:
    """Ctrl-C while PostgreSQL executes the purge's DELETE (here: waiting for a table lock
    another session holds) is an interrupt (exit 130, nothing deleted), not a database error.
    (The rarer case, where the rollback on the way out fails and must not replace the
    interrupt, is test_db_errors' test of the unwinding itself.)"""
    env = _old_resolved_rows(pg_database, tmp_path, 10)
    table = f'"{pg_database.schema}".failed_kafka_events'
    holder = pg_database.engine.connect()
    try:
        holder.execute(sa.text("SET lock_timeout = '30s'"))
        # Readers pass, the purge's DELETE waits (and kafkaops gives up after 10 s).
        holder.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kafkaops",
                "failed",
                "purge",
                "--no-archive",
                "--older-than",
                "30d",
                "--yes",
                "-o",
                "json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                time.sleep(0.05)
                with pg_database.engine.connect() as probe:
                    waiting = probe.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query ILIKE 'DELETE%'"
                        )
                    ).scalar_one()
            assert waiting, "the purge never waited for the lock"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 130, err
    assert json.loads(out)["deleted"] == 0
    assert "Interrupted after deleting 0 row(s)" in err
    assert "database error" not in err and "Traceback" not in err
    assert pg_database.count() == 10
