"""Each retry pass leaves its row in kafkaops_retry_runs (created by `db init`, reported by
`db check`); a database without that table changes nothing about the pass."""

from __future__ import annotations

import json

import sqlalchemy as sa

from kafkaops.db.retry_runs import last_run, runs_table
from tests.helpers.events import event
from tests.helpers.retry import configure


def test_a_pass_records_when_it_ran_how_long_and_what_it_did(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    init = cli("db", "init")
    assert init.exit_code == 0, init.stderr
    assert "(one row per retry pass, read by status)" in init.stderr
    assert "exists: status reads the last retry pass from it" in cli("db", "check").stderr
    embedded_kafka.create_topic("casino.player.registered.v1")
    database.insert([event(i) for i in range(3)])
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    with database.engine.connect() as conn:
        run = last_run(conn, database.settings)
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(runs_table(database.settings))).scalar() == 1
        )
    assert run is not None
    assert (run.outcome, run.counts["claimed"], run.counts["resolved"], run.detail) == (
        "completed",
        3,
        3,
        None,
    )
    assert abs(run.duration_s - json.loads(result.stdout)["duration_s"]) < 0.01
    status = cli("status", "-o", "json")
    check = {c["name"]: c for c in json.loads(status.stdout)["checks"]}["retry_last_run"]
    assert check["status"] == "OK"
    assert "(completed" in check["message"] and "3 claimed, 3 resolved" in check["message"]


def test_without_the_runs_table_a_pass_runs_as_before(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    database.init()  # the failed-events table only
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    assert "No table kafkaops_retry_runs: retry passes are not recorded" in cli("db", "check").stderr
    embedded_kafka.create_topic("casino.player.registered.v1")
    database.insert([event(1)])
    result = cli("retry")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert {r["status"] for r in database.rows()} == {"RESOLVED"}
    assert not sa.inspect(database.engine).has_table("kafkaops_retry_runs", schema=database.schema)
