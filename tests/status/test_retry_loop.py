"""`status` on the retry loop itself: when the last retry pass ran and what it did
(kafkaops_retry_runs), the rows the broker will never accept, and parked rows counted but never
called critical."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kafkaops.db.retry_runs import COUNTS, RetryRun, init_runs_table, record_run
from tests.conftest import TestDatabase
from tests.helpers.status import checks_by_name, configure, now, rows, status_json

TOO_LARGE = "org.apache.kafka.common.errors.RecordTooLargeException"


def _run(ago: timedelta, outcome: str = "completed", detail: str | None = None, **counts: int) -> RetryRun:
    return RetryRun(now() - ago, 1.5, {n: counts.get(n, 0) for n in COUNTS}, outcome, detail)


def _record(db: TestDatabase, run: RetryRun) -> None:
    init_runs_table(db.engine, db.settings)
    with db.engine.begin() as conn:
        record_run(conn, db.settings, run)


def test_a_pass_older_than_the_threshold_while_rows_are_due_is_a_warning(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(rows(3))  # due: never scheduled
    _record(database, _run(timedelta(minutes=12), claimed=4, resolved=4))
    configure(tmp_path, monkeypatch, database)
    code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["retry_last_run"]
    assert (code, check["status"]) == (1, "WARNING")
    assert check["message"].startswith("last retry pass ended 11m ago")
    assert "(completed, 1.5s: 4 claimed, 4 resolved): older than 5m while 3 row(s) due" in check["message"]
    assert check["next_step"].startswith("kafkaops retry -v")
    assert doc["database"]["last_retry_run"]["claimed"] == 4


def test_a_recent_pass_is_ok_and_an_old_one_with_nothing_due_too(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    _record(database, _run(timedelta(hours=3)))
    configure(tmp_path, monkeypatch, database)
    _, doc, _ = status_json(cli)
    assert checks_by_name(doc)["retry_last_run"]["status"] == "OK"
    _record(database, _run(timedelta(seconds=30), claimed=2, resolved=1, rescheduled=1))
    database.insert(rows(2))
    code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["retry_last_run"]
    assert (code, check["status"]) == (0, "OK")
    assert "2 claimed, 1 resolved, 1 rescheduled" in check["message"]


def test_a_failed_last_pass_is_a_warning_with_its_reason(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    _record(database, _run(timedelta(seconds=20), "failed", "Kafka unreachable: every broker is down"))
    configure(tmp_path, monkeypatch, database)
    _, doc, _ = status_json(cli)
    check = checks_by_name(doc)["retry_last_run"]
    assert check["status"] == "WARNING"
    assert check["message"].endswith("failed: Kafka unreachable: every broker is down")


def test_without_the_runs_table_status_says_the_pass_is_not_recorded(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(rows(2))
    configure(tmp_path, monkeypatch, database)
    code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["retry_last_run"]
    assert (code, check["status"]) == (0, "OK")
    assert "no kafkaops_retry_runs table (kafkaops db init creates it)" in check["message"]
    assert doc["database"]["last_retry_run"] is None
    init_runs_table(database.engine, database.settings)
    code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["retry_last_run"]
    assert (code, check["status"]) == (1, "WARNING")
    assert check["message"] == "no retry pass recorded while 2 row(s) due: is the retry job scheduled?"


def test_parked_rows_are_counted_never_critical_and_permanent_ones_are_named(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(rows(2, status="PARKED", last_error="parked from DLQ_FAILED: x"))
    configure(tmp_path, monkeypatch, database)
    code, doc, _ = status_json(cli)
    found = checks_by_name(doc)
    assert (code, doc["status"]) == (0, "OK")
    assert doc["database"]["counts"] == {"PARKED": 2}
    assert (found["parked"]["status"], found["parked"]["value"]) == ("OK", 2)
    assert found["dlq_failed"]["value"] == 0
    database.insert(rows(1, error_type=TOO_LARGE, retry_count=1, next_retry_at=now() + timedelta(minutes=5)))
    code, doc, _ = status_json(cli)
    check = checks_by_name(doc)["permanent_failures"]
    assert (code, check["status"], check["value"]) == (1, "WARNING", 1)
    assert "(1x RecordTooLargeException)" in check["message"]
    assert check["next_step"] == (
        "kafkaops failed park --permanent --reason 'the broker refuses it' --dry-run"
    )


def test_a_requeued_row_is_as_old_as_its_requeue_not_its_first_failure(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row stored 5h ago and requeued now has been PENDING for seconds; one attempted since
    it was stored keeps its created_at (each attempt moves updated_at)."""
    database.init()
    database.insert(rows(1, status="DLQ_FAILED", retry_count=5, age=timedelta(hours=5)))
    configure(tmp_path, monkeypatch, database)
    assert cli("failed", "requeue", "--yes").exit_code == 0
    _, doc, _ = status_json(cli)
    check = checks_by_name(doc)["oldest_pending_age"]
    assert (check["status"], check["value"] < 60) == ("OK", True), check
    assert check["message"].startswith("oldest PENDING event has been PENDING for ")
    assert doc["database"]["oldest_pending_created_at"] < doc["database"]["oldest_pending_since"]
    stuck = now() - timedelta(hours=2)
    database.insert([*rows(1, retry_count=3, age=timedelta(hours=2), updated_at=now(), next_retry_at=stuck)])
    _, doc, _ = status_json(cli)
    check = checks_by_name(doc)["oldest_pending_age"]
    assert (check["status"], check["value"] // 60) == ("WARNING", 120), check


def test_the_threshold_is_configured_under_thresholds_retry_last_run(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(rows(1))
    _record(database, _run(timedelta(minutes=12)))
    configure(tmp_path, monkeypatch, database, thresholds={"retry_last_run": {"warning": "30m"}})
    _, doc, _ = status_json(cli)
    assert checks_by_name(doc)["retry_last_run"]["status"] == "OK"
    shown = cli("config", "show")
    assert "warning > 30m ago while rows are due" in shown.stdout
    configure(tmp_path, monkeypatch, database, thresholds={"retry_last_run": {"critical": "30m"}})
    refused = cli("status")
    assert refused.exit_code == 3
    assert "thresholds.retry_last_run" in refused.stderr
