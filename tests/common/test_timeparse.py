"""Durations and points in time as operators type them: a unit is required, edges are usage errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest

from kafkaops.common.errors import UsageError
from kafkaops.common.timeparse import isoformat_utc, parse_duration, parse_instant

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "args",
    [
        ["failed", "--since", "30"],
        ["failed", "list", "--until", "90"],
        ["failed", "purge", "--no-archive", "--older-than", "30", "--yes"],
        ["failed", "purge", "--no-archive", "--older-than", "30", "--dry-run"],
        ["failed", "requeue", "--since", "1.5", "--dry-run"],
    ],
)
def test_a_bare_number_is_a_usage_error_showing_the_accepted_forms(configured, cli, args: list[str]) -> None:
    from tests.helpers.events import event

    configured.insert([event(1, status="RESOLVED", updated_at=NOW - timedelta(days=400))])
    result = cli(*args)
    assert result.exit_code == 2
    flag, value = next((a, b) for a, b in pairwise(args) if a.startswith("--") and b[0].isdigit())
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"Error: invalid {flag} '{value}': a duration needs a unit; accepted forms: "
        "30d, 12h, 90m (that long ago) or an ISO time (2026-11-27T10:00:00Z)"
    )
    assert configured.count() == 1  # nothing purged


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "99999999999999w",
        "5000000d",
    ],
)
def test_times_out_of_range_are_usage_errors(cli, value: str) -> None:
    result = cli("failed", "--until", value, env={"KAFKAOPS_DATABASE_URL": "sqlite:///unused.db"})
    assert result.exit_code == 2
    assert result.stderr == f"Error: --until '{value}' is out of range\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("2w", timedelta(days=14)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_with_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", 30, 30.0, "1e3", "-5", "+5", "0"])
def test_bare_numbers_are_refused(text: object) -> None:
    with pytest.raises(UsageError, match="a duration needs a unit"):
        parse_duration(text)  # type: ignore[arg-type]


def test_instants() -> None:
    assert parse_instant("2h", what="--since", now=NOW) == NOW - timedelta(hours=2)
    assert parse_instant("2026-11-27T13:00:00+02:00", what="--since", now=NOW) == datetime(
        2026, 11, 27, 11, tzinfo=timezone.utc
    )
    assert parse_instant("2026-11-27T10:00", what="--since", now=NOW) == datetime(
        2026, 11, 27, 10, tzinfo=timezone.utc
    )


def test_machine_time_format_is_whole_seconds_with_z() -> None:
    assert (
        isoformat_utc(datetime(2026, 11, 27, 14, 7, 40, 910649, tzinfo=timezone.utc))
        == "2026-11-27T14:07:40Z"
    )
    assert isoformat_utc(datetime(2026, 11, 27, 14, 7, 40)) == "2026-11-27T14:07:40Z"  # naive: UTC (SQLite)
    plus_two = timezone(timedelta(hours=2))
    assert isoformat_utc(datetime(2026, 11, 27, 16, 7, 40, tzinfo=plus_two)) == "2026-11-27T14:07:40Z"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["failed", "purge", "--no-archive", "--older-than", "0999-01-02T03:04:05Z", "--dry-run"],
            "last updated before 0999-01-02 03:04:05Z match in",
        ),
        (
            ["failed", "purge", "--no-archive", "--older-than", "2026-11-25T12:00:00.750+02:00", "--dry-run"],
            "2026-11-25 10:00:00Z",
        ),
    ],
    ids=["year-999", "offset-and-fraction"],
)
def test_a_time_for_people_has_one_form_whatever_the_year(
    configured, cli, args: list[str], said: str
) -> None:  # type: ignore[no-untyped-def]
    """strftime('%Y') writes the year 999 as `999`: the purge's own message did, the tables did not."""
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert said in result.stderr


def test_kafka_times_are_written_by_the_one_formatter() -> None:
    from kafkaops.common.timeparse import epoch_ms, format_utc, from_epoch_ms
    from kafkaops.dlq.selection import build_selection

    early = datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    selection = build_selection(since=early, until=NOW)
    assert selection.describe() == "since 0999-01-02T03:04:05Z, until 2026-11-27T12:00:00Z"
    stamp = epoch_ms(datetime(2026, 11, 27, 14, 7, 40, 123456))  # naive: UTC
    assert stamp == 1795788460123
    assert isoformat_utc(from_epoch_ms(stamp), timespec="milliseconds") == "2026-11-27T14:07:40.123Z"
    assert (format_utc(from_epoch_ms(stamp)), format_utc(None)) == ("2026-11-27 14:07:40Z", "")
