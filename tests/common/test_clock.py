"""One clock (kafkaops.common.clock): every "now" of the core reads it, and a test or a demo sets it
with $KAFKAOPS_NOW (or `frozen_at` in-process) instead of waiting for time to pass."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kafkaops.common import clock
from tests.helpers.events import NOW, event
from tests.helpers.status import configure as configure_status

T = "2026-11-27T12:00:00Z"  # tests.helpers.events.NOW


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (NOW, ["player-1"]),  # player-2 is due in an hour
        (NOW + timedelta(hours=2), ["player-1", "player-2"]),
        (NOW - timedelta(hours=1), []),
    ],
    ids=["at-noon", "two-hours-later", "an-hour-earlier"],
)
@pytest.mark.slow
def test_which_rows_are_due_is_judged_at_the_set_clock(
    configured, cli, now: datetime, due: list[str]
) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, next_retry_at=NOW - timedelta(minutes=1)),
            event(2, next_retry_at=NOW + timedelta(hours=1)),
            event(3, status="DLQ_FAILED"),
        ]
    )
    result = cli("retry", "--dry-run", "-o", "json", env={"KAFKAOPS_NOW": _iso(now)})
    assert result.exit_code == 0, result.stderr
    assert [row["event_key"] for row in json.loads(result.stdout)] == due


@pytest.mark.parametrize(("now", "age_s"), [(NOW, 600), (NOW + timedelta(hours=5), 600 + 5 * 3600)])
def test_status_ages_the_oldest_pending_row_at_the_set_clock(
    make_database, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: datetime, age_s: int
) -> None:
    db = make_database("sqlite")
    db.init()
    db.insert([event(10), event(3)])  # created 10 and 3 minutes before noon
    configure_status(tmp_path, monkeypatch, db)
    result = cli("status", "-o", "json", env={"KAFKAOPS_NOW": _iso(now)})
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["checked_at"] == _iso(now)
    assert doc["database"]["oldest_pending_age_s"] == age_s
    checks = {c["name"]: c["status"] for c in doc["checks"]}
    assert checks["oldest_pending_age"] == ("OK" if age_s < 3600 else "CRITICAL")


@pytest.mark.slow
def test_failed_shows_ages_and_purge_cutoffs_by_the_set_clock(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(30, status="RESOLVED", updated_at=NOW - timedelta(days=2))])
    later = {"KAFKAOPS_NOW": "2026-11-28T12:30:00Z"}
    listed = cli("failed", "list", env=later)
    assert listed.exit_code == 0, listed.stderr
    assert "1d1h" in listed.stdout  # created 30 minutes before noon the day before
    # Last updated 2026-11-25T12:00:00Z: older than 3 days at the set clock, not than 3d1h.
    for older_than, cutoff, matched in (
        ("3d", "2026-11-25T12:30:00Z", 1),
        ("3d1h", "2026-11-25T11:30:00Z", 0),
    ):
        purge = cli("failed", "purge", "--older-than", older_than, "--dry-run", "-o", "json", env=later)
        doc = json.loads(purge.stdout)
        assert (doc["older_than"], doc["matched"]) == (cutoff, matched)


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "12h"])
def test_a_kafkaops_now_that_is_no_iso_time_is_one_error_line(configured, cli, value: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("retry", "--dry-run", env={"KAFKAOPS_NOW": value})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"Error: $KAFKAOPS_NOW {value!r} is not an ISO time"
    assert result.stdout == ""


def test_frozen_at_holds_the_clock_for_one_block_and_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKAOPS_NOW", "2030-01-01T00:00:00+02:00")
    assert clock.now() == datetime(2029, 12, 31, 22, tzinfo=timezone.utc)
    with clock.frozen_at(datetime(2026, 1, 2, 3, 4, 5)):  # naive: UTC
        assert clock.now() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert clock.now() == datetime(2029, 12, 31, 22, tzinfo=timezone.utc)
    monkeypatch.delenv("KAFKAOPS_NOW")
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
