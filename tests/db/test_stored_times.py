"""Times as a service stores them in SQLite: epoch milliseconds (sqlite-jdbc's default for a
Java service), epoch seconds, ISO text with or without `T` and zone, and values that are no
time at all. Every reader shows them as times, every comparison in SQL compares instants,
and what kafkaops writes takes the form the table already uses.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.helpers.config import write_config
from tests.helpers.events import event

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OLD = NOW - timedelta(days=10)
RECENT = NOW - timedelta(hours=1)


def stored(moment: datetime, form: str) -> Any:
    """`moment` as a service would have written it."""
    if form == "epoch_ms":
        return int(moment.timestamp() * 1000)
    if form == "epoch_s":
        return int(moment.timestamp())
    if form == "iso_t_z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == "iso_space":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if form == "iso_offset":  # the same instant, two hours east of UTC
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    raise AssertionError(form)


FORMS = ["epoch_ms", "epoch_s", "iso_t_z", "iso_space", "iso_offset"]


def setup(make_database, tmp_path, monkeypatch, rows: list[tuple[int, str, Any, Any]]):  # type: ignore[no-untyped-def]
    """A SQLite table whose rows (id, status, created_at, updated_at) hold times as given."""
    db = make_database("sqlite")
    db.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", db)))
    db.insert([event(n, id=n, status=status) for n, status, _, _ in rows])
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:
        for n, _, created, updated in rows:
            raw.execute(
                "UPDATE failed_kafka_events SET created_at = ?, updated_at = ? WHERE id = ?",
                (created, updated, n),
            )
    return db


def raw_times(db, column: str) -> dict[int, Any]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:
        return dict(raw.execute(f"SELECT id, {column} FROM failed_kafka_events").fetchall())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("form", FORMS)
def test_times_in_each_stored_form_are_read_and_compared_as_instants(
    make_database, cli, tmp_path, monkeypatch, form: str
) -> None:
    db = setup(
        make_database,
        tmp_path,
        monkeypatch,
        [
            (1, "RESOLVED", stored(OLD, form), stored(OLD, form)),
            (2, "RESOLVED", stored(RECENT, form), stored(RECENT, form)),
        ],
    )
    listed = cli("failed", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert {r["id"]: r["created_at"] for r in json.loads(listed.stdout)} == {1: iso(OLD), 2: iso(RECENT)}
    shown = cli("failed", "show", "1", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["updated_at"] == iso(OLD)
    grouped = cli("failed", "-g", "status", "-o", "json")
    assert grouped.exit_code == 0, grouped.stderr
    [group] = json.loads(grouped.stdout)
    assert (group["oldest_created_at"], group["newest_created_at"]) == (iso(OLD), iso(RECENT))
    table = cli("failed", "list")
    assert table.exit_code == 0 and "10d" in table.stdout and "1h" in table.stdout, table.stdout
    since = cli("failed", "list", "--since", "2d", "-o", "json")
    assert [r["id"] for r in json.loads(since.stdout)] == [2]
    purged = cli("failed", "purge", "--no-archive", "--older-than", "7d", "--yes", "-o", "json")
    assert purged.exit_code == 0, purged.stderr
    assert json.loads(purged.stdout)["deleted"] == 1
    assert list(raw_times(db, "created_at")) == [2]


@pytest.mark.parametrize("form", ["epoch_ms", "epoch_s", "iso_t_z"])
def test_what_kafkaops_writes_takes_the_tables_form(
    make_database, cli, tmp_path, monkeypatch, form: str
) -> None:
    db = setup(
        make_database, tmp_path, monkeypatch, [(1, "DLQ_FAILED", stored(OLD, form), stored(OLD, form))]
    )
    assert cli("failed", "requeue", "1", "--yes").exit_code == 0
    written = raw_times(db, "next_retry_at")[1]
    if form.startswith("epoch"):
        assert isinstance(written, int)
        seconds = written / 1000 if form == "epoch_ms" else written
        assert abs(seconds - datetime.now(timezone.utc).timestamp()) < 60
    else:
        assert isinstance(written, str)
    due = cli("retry", "--dry-run", "-o", "json")
    assert due.exit_code == 0, due.stderr
    assert [r["id"] for r in json.loads(due.stdout)] == [1]


@pytest.mark.slow
def test_a_value_that_is_no_time_is_shown_raw_and_never_matches_a_cutoff(
    make_database, cli, tmp_path, monkeypatch
) -> None:
    db = setup(
        make_database,
        tmp_path,
        monkeypatch,
        [
            (1, "RESOLVED", "yesterday\x1b[31m", "not a time"),
            (2, "RESOLVED", stored(OLD, "epoch_ms"), stored(OLD, "epoch_ms")),
        ],
    )
    table = cli("failed", "list")
    assert table.exit_code == 0, table.stderr
    assert "yesterday\\x1b[31m" in table.stdout and "\x1b[31m" not in table.stdout
    listed = cli("failed", "list", "-o", "json")
    assert {r["id"]: r["created_at"] for r in json.loads(listed.stdout)}[1] == "yesterday\x1b[31m"
    assert cli("failed", "show", "1").exit_code == 0
    assert cli("failed", "-g", "status").exit_code == 0
    purged = cli("failed", "purge", "--no-archive", "--older-than", "1d", "--yes", "-o", "json")
    assert json.loads(purged.stdout)["deleted"] == 1
    assert list(raw_times(db, "created_at")) == [1]  # an unreadable time is never "older than"


@pytest.mark.parametrize(
    ("forms", "says"),
    [
        (["epoch_ms"], "epoch milliseconds"),
        (["epoch_s"], "epoch seconds"),
        (["iso_t_z", "iso_space"], "ISO-8601 text"),
        (["epoch_ms", "iso_t_z"], "epoch milliseconds and ISO-8601 text"),
    ],
)
def test_db_check_says_how_times_are_stored(make_database, cli, tmp_path, monkeypatch, forms, says) -> None:
    rows = [(n, "PENDING", stored(OLD, f), stored(OLD, f)) for n, f in enumerate(forms, 1)]
    setup(make_database, tmp_path, monkeypatch, rows)
    result = cli("db", "check")
    assert result.exit_code == 0, result.stderr
    assert f"Times are stored as {says}." in result.stderr


def test_db_check_counts_times_it_cannot_read(make_database, cli, tmp_path, monkeypatch) -> None:
    setup(make_database, tmp_path, monkeypatch, [(1, "PENDING", "garbage", stored(OLD, "epoch_ms"))])
    result = cli("db", "check")
    assert result.exit_code == 0, result.stderr
    assert "1 time value(s) cannot be read as times" in result.stderr


@pytest.mark.slow
def test_a_retry_pass_settles_epoch_ms_rows_in_epoch_ms(
    make_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    from tests.helpers.retry import configure

    due, later = stored(NOW - timedelta(minutes=5), "epoch_ms"), stored(NOW + timedelta(hours=1), "epoch_ms")
    db = setup(make_database, tmp_path, monkeypatch, [(1, "PENDING", due, due), (2, "PENDING", due, due)])
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE failed_kafka_events SET next_retry_at = ? WHERE id = 1", (due,))
        raw.execute("UPDATE failed_kafka_events SET next_retry_at = ? WHERE id = 2", (later,))
    configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    status = cli("status", "-o", "json")
    database = json.loads(status.stdout)["database"]
    assert database["oldest_pending_created_at"] == iso(NOW - timedelta(minutes=5)), status.stdout
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 1  # row 2 is due in an hour, not "before any text"
    resolved = raw_times(db, "resolved_at")
    assert resolved[2] is None and isinstance(resolved[1], int)
    assert abs(resolved[1] / 1000 - datetime.now(timezone.utc).timestamp()) < 60
