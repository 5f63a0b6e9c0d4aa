"""`failed list/show/requeue/purge --where` on SQLite and PostgreSQL: the row model, the part
of an expression SQL answers, and requeue/purge changing (and locking) only selected rows."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from kafkaops.common.where import compile_where
from kafkaops.db.archive import read_archive
from kafkaops.db.where import ROW_FIELDS, sql_terms
from tests.conftest import Cli
from tests.helpers.config import write_config
from tests.helpers.events import NOW, event


def seed(db) -> None:  # type: ignore[no-untyped-def]
    """Six DLQ_FAILED rows: brands 7 and 1, timeouts and others, one payload not JSON."""
    db.insert(
        [
            event(1, status="DLQ_FAILED", payload=json.dumps({"brandId": "casino-7"}), last_error="Timeout after 30012 ms", error_type="org.apache.kafka.common.errors.TimeoutException"),
            event(2, status="DLQ_FAILED", payload=json.dumps({"brandId": "casino-7"}), last_error="Timeout after 120000 ms", error_type="org.apache.kafka.common.errors.TimeoutException"),
            event(3, status="DLQ_FAILED", payload=json.dumps({"brandId": "casino-1"}), last_error="Timeout after 5 ms", error_type="org.apache.kafka.common.errors.TimeoutException"),
            event(4, status="DLQ_FAILED", payload=json.dumps({"brandId": "casino-7"}), last_error="Message too large", error_type="org.apache.kafka.common.errors.RecordTooLargeException"),
            event(5, status="DLQ_FAILED", payload="not json", last_error="Timeout after 1 ms", error_type="org.apache.kafka.common.errors.TimeoutException"),
            event(6, status="RESOLVED", payload=json.dumps({"brandId": "casino-7"}), last_error="Timeout after 9 ms", error_type="org.apache.kafka.common.errors.TimeoutException"),
        ]
    )  # fmt: skip


TIMEOUTS_7 = 'error_type.endsWith("TimeoutException") && payload.brandId == "casino-7"'


def statuses(db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r["event_id"]: r["status"] for r in db.rows()}


def test_list_where_filters_on_payload_and_signature(configured, cli: Cli) -> None:  # type: ignore[no-untyped-def]
    seed(configured)
    result = cli("failed", "list", "--where", TIMEOUTS_7, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["event_id"] for r in json.loads(result.stdout)) == ["evt-1", "evt-2", "evt-6"]
    assert "1 row could not be evaluated (not selected): first at id 5: no such overload" in result.stderr
    by_signature = cli(
        "failed", "list", "--where", 'error_signature == "Timeout after <duration>"', "-o", "json"
    )
    assert sorted(r["event_id"] for r in json.loads(by_signature.stdout)) == [
        f"evt-{n}" for n in (1, 2, 3, 5, 6)
    ]
    cut = cli("failed", "list", "--where", 'status == "DLQ_FAILED"', "-n", "2", "-o", "json")
    assert len(json.loads(cut.stdout)) == 2 and "Showing 2 of 5" in cut.stderr


def test_show_where_shows_only_the_selected_of_the_named_rows(configured, cli: Cli) -> None:  # type: ignore[no-untyped-def]
    seed(configured)
    ids = {r["event_id"]: str(r["id"]) for r in configured.rows()}
    result = cli("failed", "show", ids["evt-1"], ids["evt-3"], "--where", TIMEOUTS_7, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["event_id"] == "evt-1"
    assert f"id {ids['evt-3']} left out (--where does not select it)" in result.stderr


def test_requeue_where_changes_only_the_rows_it_selects(configured, cli: Cli) -> None:  # type: ignore[no-untyped-def]
    seed(configured)
    dry = cli("failed", "requeue", "--where", TIMEOUTS_7, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["matched"] == 2  # evt-6 is RESOLVED: requeue never takes it
    assert statuses(configured)["evt-1"] == "DLQ_FAILED"
    result = cli("failed", "requeue", "--where", TIMEOUTS_7, "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["requeued"] == 2
    assert statuses(configured) == {
        "evt-1": "PENDING",
        "evt-2": "PENDING",
        "evt-3": "DLQ_FAILED",
        "evt-4": "DLQ_FAILED",
        "evt-5": "DLQ_FAILED",
        "evt-6": "RESOLVED",
    }
    assert "1 row could not be evaluated" in result.stderr


def test_purge_where_deletes_only_selected_rows_batch_by_batch(configured, cli: Cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [event(n, status="RESOLVED", payload=json.dumps({"n": n}), updated_at=NOW) for n in range(25)]
    )
    archive = tmp_path / "purged.jsonl"
    result = cli(
        "failed", "purge", "--older-than", "0s", "--where", "payload.n % 3 == 0", "--batch-size", "4",
        "--archive", str(archive), "--yes", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == 9
    assert sorted(int(r["event_id"][4:]) for r in configured.rows()) == [n for n in range(25) if n % 3]
    # Every row the expression deleted is in the archive, and no other.
    kept = read_archive(archive)
    assert not kept.cut_short
    assert sorted(int(r["event_id"][4:]) for r in kept.rows) == [n for n in range(25) if n % 3 == 0]


@pytest.mark.timeout(60)
def test_a_row_the_expression_leaves_is_never_locked(
    make_database, tmp_path: Path, cli: Cli, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Another transaction holds a lock on a row --where does not select: requeue and purge go
    on at once (they never ask for its lock); a selected row held locked is skipped by purge."""
    db = make_database("postgresql")
    db.init()
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", db, database={"lock_timeout": "2s"}))
    )
    seed(db)
    db.insert([event(10 + n, status="DLQ", payload=json.dumps({"n": n}), updated_at=NOW) for n in range(4)])
    ids = {r["event_id"]: r["id"] for r in db.rows()}
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.engine.begin() as conn:
            conn.execute(
                sa.select(db.table.c.id)
                .where(db.table.c.id.in_([ids["evt-3"], ids["evt-11"]]))
                .with_for_update()
            )
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        # evt-3 (brand 1) is locked and not selected: requeue does not wait for it.
        result = cli("failed", "requeue", "--where", TIMEOUTS_7, "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["requeued"] == 2
        # evt-11 is selected but locked: SKIP LOCKED passes over it; evt-10 is not selected.
        result = cli(
            "failed", "purge", "--status", "DLQ", "--older-than", "0s", "--where", "payload.n >= 1", "--no-archive", "--yes", "-o", "json"
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["deleted"] == 2
    finally:
        release.set()
        holder.join()
    left = {r["event_id"] for r in db.rows() if r["status"] == "DLQ"}
    assert left == {"evt-10", "evt-11"}


def test_a_bad_expression_is_exit_2_for_failed(configured, cli: Cli) -> None:  # type: ignore[no-untyped-def]
    for argv in (
        ("list",),
        ("requeue", "--yes"),
        ("purge", "--older-than", "1d", "--no-archive", "--yes"),
        ("show", "1"),
    ):
        result = cli("failed", *argv, "--where", "payload.brandId ==")
        assert result.exit_code == 2, (argv, result.stderr)
        assert result.stderr.startswith("Error: --where: Syntax error") and "at column 19" in result.stderr
    result = cli("failed", "list", "--where", "brand == 1")
    assert result.exit_code == 2 and "unknown name 'brand' at column 1" in result.stderr


@pytest.mark.parametrize(
    ("expression", "sql"),
    [
        ('status == "DLQ" && payload.n > 1', ["status = 'DLQ'"]),
        ('(topic in ["a", "b"]) && retry_count >= 3', ["topic IN ('a', 'b')", "retry_count >= 3"]),
        ('status == "DLQ" || payload.n > 1', []),  # no term alone is necessary
        ('payload.s == "x && status == \\"DLQ\\""', []),  # && inside a string
        ('event_key == "k\\"1"', ["event_key = 'k\"1'"]),
    ],
)
def test_the_terms_sql_answers_are_the_necessary_ones(expression: str, sql: list[str]) -> None:
    compile_where(expression, saved={}, names=ROW_FIELDS)  # a valid expression
    table = sa.Table(
        "t", sa.MetaData(), *(sa.Column(n) for n in ("status", "topic", "retry_count", "event_key"))
    )
    shown = [
        str(c.compile(compile_kwargs={"literal_binds": True})).replace("t.", "")
        for c in sql_terms(expression, table)
    ]
    assert shown == sql
