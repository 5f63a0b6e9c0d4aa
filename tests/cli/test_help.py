"""Help as a terminal shows it: the terminal's width, whole summaries, and only the options a
command accepts."""

from __future__ import annotations

import pytest

from tests.helpers.process import run_kafkaops


def _help(*args: str, columns: int) -> str:
    result = run_kafkaops(*args, "--help", env={"COLUMNS": str(columns)}, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_help_uses_the_terminal_width_and_keeps_summaries_whole() -> None:
    wide = _help("failed", "purge", columns=160)
    assert max(len(line) for line in wide.splitlines()) > 100
    assert all(len(line) <= 160 for line in wide.splitlines())
    narrow = _help("failed", columns=80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    for text in (narrow, _help(columns=80)):
        commands = text.split("Commands:")[1]
        assert "..." not in commands
    assert "List failed events, most urgent first, without payloads." in narrow


def test_purge_help_offers_only_what_purge_accepts() -> None:
    text = " ".join(_help("failed", "purge", columns=200).split())
    assert "--status TEXT RESOLVED or DLQ" in text
    assert "Required" not in text and "[required]" not in text
