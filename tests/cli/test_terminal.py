"""What a person sees on a real terminal: kafkaops run under a pseudo-terminal, hostile data in
the table, never read as markup, never sent raw to the terminal, ids never cut."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

import pytest

from tests.helpers.events import event
from tests.helpers.process import KAFKAOPS, process_env

SGR = re.compile(r"\x1b\[[0-9;]*m")
MARKUP_ERROR = "Topic [casino.loyalty.v1] not present in metadata after 60000 ms [/10.0.4.17:9092] [/bold]"
ESCAPES = "boom \x1b]0;pwned-title\x07 then \x1b[2J cleared"
ESCAPES_SHOWN = r"boom \x1b]0;pwned-title\x07 then \x1b[2J cleared"


@dataclass
class Screen:
    code: int
    raw: str  # what the terminal received, colour codes included
    stderr: str

    @property
    def text(self) -> str:
        return SGR.sub("", self.raw).replace("\r\n", "\n")


def on_terminal(*args: str, config: str, columns: int = 200, timeout: float = 60) -> Screen:
    """Run kafkaops with stdout on a pseudo-terminal of `columns` columns; stderr on a pipe."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = process_env(
        config=config,
        env={"TERM": "xterm-256color"},
        drop=("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"),
    )
    proc = subprocess.Popen(
        [*KAFKAOPS, *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"kafkaops {' '.join(args)} did not finish within {timeout} s")
        code = proc.wait(timeout=10)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.close(master)
        if proc.stderr:
            proc.stderr.close()
    return Screen(code, b"".join(chunks).decode("utf-8", "replace"), stderr)


def seed_hostile(db) -> list[int]:  # type: ignore[no-untyped-def]
    db.insert(
        [
            event(1, id=4128, status="DLQ_FAILED", last_error=MARKUP_ERROR),
            event(2, id=4129, status="PENDING", last_error=ESCAPES, topic="casino.[bold]wallet[/bold].v1"),
        ]
    )
    return [4128, 4129]


def assert_nothing_raw(screen: Screen) -> None:
    """No escape sequence from the data reached the terminal: only rich's colour codes."""
    leftover = SGR.sub("", screen.raw)
    assert "\x1b" not in leftover and "\x07" not in leftover
    assert "pwned-title" not in screen.raw or r"\x1b]0;pwned-title\x07" in screen.raw


def test_failed_grouped_by_error_shows_markup_literally(configured, cli) -> None:  # type: ignore[no-untyped-def]
    seed_hostile(configured)
    screen = on_terminal("failed", "-g", "status,last_error", config=os.environ["KAFKAOPS_CONFIG"])
    assert screen.code == 0, screen.stderr
    assert MARKUP_ERROR in screen.text
    assert ESCAPES_SHOWN in screen.text
    assert "\x1b[1;31mDLQ_FAILED" in screen.raw  # the status in colour
    assert_nothing_raw(screen)


@pytest.mark.slow
def test_failed_list_shows_hostile_errors_and_topics_literally(configured) -> None:  # type: ignore[no-untyped-def]
    seed_hostile(configured)
    screen = on_terminal("failed", "list", config=os.environ["KAFKAOPS_CONFIG"], columns=300)
    assert screen.code == 0, screen.stderr
    lines = screen.text.splitlines()
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert MARKUP_ERROR in by_id["4128"]
    assert ESCAPES_SHOWN in by_id["4129"] and "casino.[bold]wallet[/bold].v1" in by_id["4129"]
    assert "\x1b[33mPENDING" in screen.raw
    assert_nothing_raw(screen)


@pytest.mark.slow
def test_failed_show_shows_escape_sequences_visibly(configured) -> None:  # type: ignore[no-untyped-def]
    seed_hostile(configured)
    configured_payload = "not json \x1b]0;pwned-title\x07 [/bold]"
    with configured.engine.begin() as conn:
        conn.execute(configured.table.update().values(payload=configured_payload))
    screen = on_terminal("failed", "show", "4129", config=os.environ["KAFKAOPS_CONFIG"])
    assert screen.code == 0, screen.stderr
    assert f"last_error     {ESCAPES_SHOWN}" in screen.text
    assert r"not json \x1b]0;pwned-title\x07 [/bold]" in screen.text
    assert_nothing_raw(screen)


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.slow
def test_ids_and_statuses_are_never_cut_on_a_narrow_terminal(configured, columns: int) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, id=9_007_199_254_740_993, status="DLQ_FAILED", last_error="x" * 300),
            event(2, id=41, status="PENDING", topic="casino.loyalty.points-earned.v1", last_error="y" * 300),
        ]
    )
    screen = on_terminal("failed", "list", config=os.environ["KAFKAOPS_CONFIG"], columns=columns)
    assert screen.code == 0, screen.stderr
    lines = screen.text.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["9007199254740993", "41"]
    assert [line.split()[2] for line in lines[1:]] == ["DLQ_FAILED", "PENDING"]
    assert all(len(line) <= columns for line in lines)
    assert all("…" in line for line in lines[1:])  # the error text gave way


def test_piped_output_of_the_same_rows_has_no_escape_codes_and_nothing_cut(configured, cli) -> None:  # type: ignore[no-untyped-def]
    seed_hostile(configured)
    result = cli("failed", "list")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1].startswith("4128 ") and lines[1].endswith(MARKUP_ERROR)
    assert lines[2].startswith("4129 ") and lines[2].endswith(ESCAPES_SHOWN)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jq_reads_every_time_of_the_json_output(configured, cli) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from tests.helpers.events import NOW

    configured.insert(
        [
            event(1, created_at=NOW + timedelta(microseconds=910649), status="RESOLVED", resolved_at=NOW),
            event(2, next_retry_at=NOW + timedelta(seconds=1, microseconds=5)),
        ]
    )
    result = cli("failed", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    times = ".[] | (.created_at, .updated_at, .next_retry_at, .resolved_at) | select(. != null)"
    jq = subprocess.run(
        ["jq", "-c", f"[{times} | fromdateiso8601]"],
        input=result.stdout,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert jq.returncode == 0, jq.stderr
    epoch = int(NOW.timestamp())
    assert sorted(json.loads(jq.stdout)) == sorted([epoch, epoch, epoch, epoch - 120, epoch - 120, epoch + 1])
