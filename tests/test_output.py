"""The output layer on a terminal: rich tables that keep ids, topics and times whole."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

from kafkaops.cli.output import Field, Format, Output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_table_keeps_short_columns_whole_and_cuts_long_text_to_fit() -> None:
    screen = Terminal()
    rows = [
        {"id": 123456, "topic": "casino.loyalty.points-earned.v1", "last_error": "x" * 300, "count": 7},
        {"id": 7, "topic": "t", "last_error": "short", "count": 12345},
    ]
    fields = [
        Field("id", "ID"),
        Field("topic", "TOPIC"),
        Field("last_error", "LAST ERROR", kind="long"),
        Field("count", "N", kind="int"),
    ]
    Output(Format.table, stdout=screen).rows(rows, fields)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue()).splitlines()  # the header is bold
    assert all(len(line) <= 80 for line in lines)  # rich's default width for a terminal it cannot measure
    assert (
        "123456" in lines[1]
        and "casino.loyalty.points-earned.v1" in lines[1]
        and lines[1].rstrip().endswith("7")
    )
    assert "…" in lines[1] and "x" * 20 in lines[1]
    assert lines[2].split()[:3] == ["7", "t", "short"]


def test_piped_table_is_plain_text_with_whole_times() -> None:
    out = io.StringIO()
    when = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=timezone.utc)
    Output(Format.table, stdout=out).rows(
        [{"id": 1, "created_at": when}], [Field("id", "ID"), Field("created_at", "CREATED")]
    )
    header, row = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert header.split() == ["ID", "CREATED"]
    assert row.split() == ["1", "2026-11-27", "12:00:00Z"]
