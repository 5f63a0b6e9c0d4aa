"""`kafkaops failed park | unpark` and the permanent failures requeue refuses: rows taken out of
the retry loop without being deleted, put back as they were, and never purged by accident."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.events import NOW, OLD, event

TOO_LARGE = "org.apache.kafka.common.errors.RecordTooLargeException"


def _by_event(db) -> dict[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    return {r["event_id"]: r for r in db.rows()}


def test_park_then_unpark_restores_each_row_as_it_was(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, status="DLQ_FAILED", retry_count=5, last_error="DLQ send failed", error_type=TOO_LARGE),
            event(2, status="PENDING", retry_count=1, last_error="Timeout", next_retry_at=NOW),
            event(3, status="DLQ", retry_count=5, last_error=None),
            event(4, status="RESOLVED"),
        ]
    )
    ids = {r["event_id"]: r["id"] for r in configured.rows()}
    result = cli(
        "failed",
        "park",
        *(str(ids[f"evt-{n}"]) for n in (1, 2, 3, 4)),
        "--reason",
        "topic retired",
        "--yes",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched"], doc["parked"], doc["busy"], doc["reason"]) == (3, 3, 0, "topic retired")
    assert doc["left_out"] == [{"id": str(ids["evt-4"]), "status": "RESOLVED"}]
    rows = _by_event(configured)
    assert {k: r["status"] for k, r in rows.items()} == {
        "evt-1": "PARKED",
        "evt-2": "PARKED",
        "evt-3": "PARKED",
        "evt-4": "RESOLVED",
    }
    assert rows["evt-1"]["last_error"] == "parked from DLQ_FAILED: topic retired\nDLQ send failed"
    assert rows["evt-3"]["last_error"] == "parked from DLQ: topic retired"
    assert rows["evt-1"]["error_type"] == TOO_LARGE  # the cause stays visible

    listed = cli("failed", "-o", "json")
    assert {r["status"]: r["count"] for r in json.loads(listed.stdout)}["PARKED"] == 3

    result = cli("failed", "unpark", "--status", "PARKED", "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["unparked"] == 3
    rows = _by_event(configured)
    assert (rows["evt-1"]["status"], rows["evt-1"]["last_error"]) == ("DLQ_FAILED", "DLQ send failed")
    assert (rows["evt-2"]["status"], rows["evt-2"]["last_error"], rows["evt-2"]["retry_count"]) == (
        "PENDING",
        "Timeout",
        1,
    )
    assert rows["evt-2"]["next_retry_at"] is not None  # due at once
    assert (rows["evt-3"]["status"], rows["evt-3"]["last_error"]) == ("DLQ", None)


def test_park_needs_a_reason_and_a_choice_of_rows(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(1)])
    result = cli("failed", "park", "--topic", "casino.*")
    assert result.exit_code == 2
    assert "Error: park needs --reason TEXT" in result.stderr
    result = cli("failed", "park", "--reason", "x", "--yes")
    assert result.exit_code == 2
    assert "Error: park needs ids, or filters choosing the rows" in result.stderr
    result = cli("failed", "park", "--status", "RESOLVED", "--reason", "x", "--yes")
    assert result.exit_code == 2
    assert "park takes rows in PENDING, DLQ_FAILED, DLQ, not RESOLVED" in result.stderr
    assert configured.rows()[0]["status"] == "PENDING"


def test_a_parked_row_is_purged_only_when_purge_names_parked(configured, cli) -> None:  # type: ignore[no-untyped-def]
    old = {"created_at": OLD, "updated_at": OLD}
    configured.insert([event(1, status="PARKED", last_error="parked from PENDING: x", **old)])
    [row] = configured.rows()
    result = cli("failed", "purge", "--older-than", "1d", "--status", "RESOLVED,DLQ", "--no-archive", "--yes")
    assert result.exit_code == 0, result.stderr
    result = cli("failed", "purge", str(row["id"]), "--no-archive", "--yes", "-o", "json")
    assert json.loads(result.stdout)["deleted"] == 0
    assert configured.count() == 1
    result = cli(
        "failed", "purge", "--older-than", "1d", "--status", "PARKED", "--no-archive", "--yes", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == 1
    assert configured.count() == 0


def test_requeue_refuses_permanent_failures_unless_forced(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, status="DLQ_FAILED", error_type=TOO_LARGE),
            event(2, status="DLQ_FAILED", error_type="RecordTooLargeException"),
            event(3, status="DLQ_FAILED", error_type="org.apache.kafka.common.errors.TimeoutException"),
            event(4, status="DLQ_FAILED", error_type=None),
        ]
    )
    result = cli("failed", "requeue", "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched"], doc["requeued"], doc["refused_permanent"]) == (2, 2, 2)
    assert (
        "Warning: 2 row(s) left out: the broker will never accept them (2x RecordTooLargeException); "
        "park them (kafkaops failed park --permanent --reason TEXT), fix the cause, or requeue with --force."
    ) in result.stderr
    statuses = {r["event_id"]: r["status"] for r in configured.rows()}
    assert statuses == {"evt-1": "DLQ_FAILED", "evt-2": "DLQ_FAILED", "evt-3": "PENDING", "evt-4": "PENDING"}
    forced = cli("failed", "requeue", "--force", "--yes", "-o", "json")
    assert json.loads(forced.stdout)["requeued"] == 2
    assert {r["status"] for r in configured.rows()} == {"PENDING"}


def test_park_permanent_takes_only_rows_the_broker_will_never_accept(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, status="PENDING", retry_count=1, error_type=TOO_LARGE),
            event(2, status="PENDING", retry_count=1, error_type="java.net.SocketTimeoutException"),
        ]
    )
    result = cli("failed", "park", "--permanent", "--reason", "too large", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Parked 1 row(s); no retry pass will touch them." in result.stderr
    assert {r["event_id"]: r["status"] for r in configured.rows()} == {"evt-1": "PARKED", "evt-2": "PENDING"}


@pytest.mark.timeout(60)
def test_rows_a_retry_pass_holds_are_left_out_and_counted_busy(
    pg_database, tmp_path, monkeypatch, cli
) -> None:  # type: ignore[no-untyped-def]
    """A pass has claimed (locked) two rows; a park skips them (SKIP LOCKED) instead of waiting
    or parking rows the pass is publishing, says so, and parks the others."""
    import sqlalchemy as sa

    from kafkaops.retry.job import claim_due_events
    from tests.helpers.config import write_config

    pg_database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    pg_database.insert([event(n, created_at=NOW - timedelta(minutes=10 - n)) for n in range(5)])
    with pg_database.engine.connect() as conn, conn.begin():
        claimed = claim_due_events(conn, pg_database.table, now=NOW, limit=2)
        result = cli("failed", "park", "--status", "PENDING", "--reason", "x", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert (doc["parked"], doc["busy"]) == (3, 2)
        assert "2 matching row(s) were held by a running retry pass" in result.stderr
        conn.execute(sa.text("SELECT 1"))
    statuses = {r["id"]: r["status"] for r in pg_database.rows()}
    assert [statuses[e.id] for e in claimed] == ["PENDING", "PENDING"]
    assert sorted(statuses.values()) == ["PARKED", "PARKED", "PARKED", "PENDING", "PENDING"]


def test_a_last_error_that_is_not_utf8_is_kept_readable_when_parked(
    make_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    """SQLite keeps whatever bytes it is given (PostgreSQL text is always valid in its
    encoding); parking such a row is not a traceback."""
    import sqlalchemy as sa

    from tests.helpers.config import write_config

    database = make_database("sqlite")
    database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    database.insert([event(1, status="DLQ_FAILED")])
    with database.engine.begin() as conn:
        conn.execute(sa.text("UPDATE failed_kafka_events SET last_error = CAST(X'626164ff' AS TEXT)"))
    result = cli("failed", "park", "--status", "DLQ_FAILED", "--reason", "r", "--yes")
    assert result.exit_code == 0, result.stderr
    with database.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT last_error FROM failed_kafka_events")).scalar()
    assert stored == "parked from DLQ_FAILED: r\nbad\\xff"
