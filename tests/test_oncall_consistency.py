"""What an on-call engineer pastes and reads: next steps whole on their own line at every width
and when piped, topic names told apart on a narrow terminal, and the commands agreeing with one
another (options, words, headers, order, refusals, completion)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.cluster import EmbeddedKafka
from tests.conftest import TestDatabase, write_config
from tests.embedded_fixtures import FAST_CLIENT
from tests.events import event
from tests.test_terminal import on_terminal

LONG_TOPIC = "casino.game.round-completed.settlement-adjustments.v1"
TOPICS = [
    "casino.game.round-completed.settlement-adjustments.v1",
    "casino.game.round-completed.settlement-adjustments.v2",
    "casino.game.round-completed.jackpot-contributions.v1",
]


def _configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: TestDatabase, kafka: str) -> str:
    path = write_config(tmp_path / "kafkaops.yaml", db, kafka={"bootstrap.servers": kafka, **FAST_CLIENT})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return str(path)


# -- next steps are always pasteable ---------------------------------------------------------------


@pytest.fixture
def missing_dlq(
    make_database: Any, embedded_kafka: EmbeddedKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Rows for two topics whose DLQ topics are missing: `status` offers two `dlq ensure`."""
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic=TOPICS[0]), event(2, topic=TOPICS[2])])
    return _configure(tmp_path, monkeypatch, db, embedded_kafka.bootstrap_servers)


EXPECTED_STEPS = [f"→ kafkaops dlq ensure {TOPICS[2]}", f"→ kafkaops dlq ensure {TOPICS[0]}"]


def _steps(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if "→" in line)


@pytest.mark.parametrize("columns", [60, 100, 200])
def test_a_next_step_is_whole_on_its_own_line_at_every_width(missing_dlq: str, columns: int) -> None:
    screen = on_terminal("status", config=missing_dlq, columns=columns)
    assert screen.code in (1, 2), screen.stderr
    assert sorted(s for s in _steps(screen.text) if "dlq ensure" in s) == sorted(EXPECTED_STEPS)
    assert "…" not in "".join(_steps(screen.text))


def test_a_next_step_is_whole_on_its_own_line_when_piped(missing_dlq: str, cli: Any) -> None:
    result = cli("status")
    assert result.exit_code in (1, 2), result.stderr
    assert sorted(s for s in _steps(result.stdout) if "dlq ensure" in s) == sorted(EXPECTED_STEPS)


def test_steps_joined_in_one_string_are_split_but_never_inside_a_quoted_word() -> None:
    from kafkaops.cli.status_view import split_steps

    assert split_steps("kafkaops dlq ensure a.v1; kafkaops dlq ensure 'b; c'") == [
        "kafkaops dlq ensure a.v1",
        "kafkaops dlq ensure 'b; c'",
    ]
    aside = "kafkaops retry --dry-run --limit 20 (what is due; is the retry job running?), then x"
    assert split_steps(aside) == [aside]


# -- topic names are told apart on a narrow terminal --------------------------------------------------


def test_failed_grouped_by_topic_keeps_topics_apart_at_100_columns(configured: TestDatabase) -> None:
    configured.insert([event(n, topic=topic) for n, topic in enumerate(TOPICS)])
    screen = on_terminal("failed", "-g", "topic", config=os.environ["KAFKAOPS_CONFIG"], columns=100)
    assert screen.code == 0, screen.stderr
    shown = [line.split()[0] for line in screen.text.splitlines()[1:]]
    assert len(shown) == 3 and len(set(shown)) == 3, shown
    for name in shown:
        if "…" in name:
            head, tail = name.split("…")
            assert head.startswith("casino.game") and any(t.endswith(tail) for t in TOPICS)
    assert all(len(line) <= 100 for line in screen.text.splitlines())


def test_a_long_topic_is_cut_in_the_middle_and_other_text_first() -> None:
    from kafkaops.cli.tables import _elide_middle, fit_widths

    assert _elide_middle(LONG_TOPIC, 25, pad=False) == "casino.game.…justments.v1"
    assert _elide_middle("short.v1", 12, pad=True) == "short.v1    "
    # a text column of 30 and a topic of 50 in 60 cells: the text gives way first
    assert fit_widths([30, 50], ["text", "topic"], 60) == [8, 50]
