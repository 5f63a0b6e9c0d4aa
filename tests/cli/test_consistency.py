"""What an on-call engineer pastes and reads: next steps whole on their own line at every width
and when piped, topic names told apart on a narrow terminal, and the commands agreeing with one
another (options, words, headers, order, refusals, completion)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.cluster import EmbeddedKafka
from tests.cli.test_terminal import on_terminal
from tests.conftest import TestDatabase
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event

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


# -- consistency ----------------------------------------------------------------------------------------


def test_retry_refuses_an_empty_topic_like_failed_does(configured: TestDatabase, cli: Any) -> None:
    configured.insert([event(1)])
    for args in (["failed", "--topic", ""], ["retry", "--topic", ""], ["retry", "-t", " "]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout)
        assert result.stderr == "Error: --topic is empty: give a value, or leave the option out\n"
    assert configured.rows()[0]["status"] == "PENDING"


@pytest.mark.parametrize(
    "command", [["failed", "list"], ["retry"], ["dlq", "tail", "x.dlq"], ["dlq", "replay", "x.dlq"]]
)
def test_n_is_limit_in_every_command(cli: Any, command: list[str]) -> None:
    shown = cli(*command, "--help").stdout
    assert "-n, --limit" in " ".join(shown.split()), shown


def test_failed_list_starts_with_the_rows_that_need_attention(configured: TestDatabase, cli: Any) -> None:
    from datetime import timedelta

    from tests.helpers.events import NOW

    configured.insert(
        [
            event(1, id=1, status="DLQ_FAILED", created_at=NOW - timedelta(hours=3)),
            event(2, id=2, status="RESOLVED", created_at=NOW),
            event(3, id=3, status="PENDING", created_at=NOW - timedelta(hours=2)),
            event(4, id=4, status="PENDING", created_at=NOW - timedelta(hours=1)),
            event(5, id=5, status="DLQ", created_at=NOW),
        ]
    )
    result = cli("failed", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert [(r["id"], r["status"]) for r in json.loads(result.stdout)] == [
        (1, "DLQ_FAILED"),
        (4, "PENDING"),
        (3, "PENDING"),
        (5, "DLQ"),
        (2, "RESOLVED"),
    ]
    first = cli("failed", "list", "-n", "1").stdout.splitlines()[1]
    assert first.split()[:1] == ["1"] and "DLQ_FAILED" in first


def test_table_headers_are_in_capitals_in_every_command(configured: TestDatabase, cli: Any) -> None:
    configured.insert([event(1, status="DLQ_FAILED")])
    for args in (["failed"], ["failed", "-g", "topic,error_signature"], ["failed", "list"]):
        header = cli(*args).stdout.splitlines()[0]
        assert header == header.upper() and "_" not in header, (args, header)
    assert cli("failed", "-g", "error_signature").stdout.splitlines()[0].split()[:3] == [
        "ERROR",
        "SIGNATURE",
        "COUNT",
    ]


def test_exists_reads_the_same_in_status_and_dlq_list(
    make_database: Any,
    embedded_kafka: EmbeddedKafka,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers.dlq import produce, spring_headers

    embedded_kafka.create_topic("casino.wallet.v1.dlq")  # its source is gone: dlq list says MISSING
    embedded_kafka.create_topic("casino.bonus.v1")
    embedded_kafka.create_topic("casino.bonus.v1.dlq")  # present: both say yes
    produce(
        embedded_kafka.bootstrap_servers,
        "casino.wallet.v1.dlq",
        [(b"k", b"v", spring_headers("casino.wallet.v1", 0))],
    )
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic="casino.bonus.v1"), event(2, topic="casino.loyalty.v1")])
    _configure(tmp_path, monkeypatch, db, embedded_kafka.bootstrap_servers)
    listed = {line.split()[0]: line.split() for line in cli("dlq", "list").stdout.splitlines()[1:]}
    assert listed["casino.wallet.v1.dlq"][3] == "MISSING"
    assert listed["casino.bonus.v1.dlq"][3] == "yes"
    status = cli("status").stdout
    rows = {
        line.split()[0]: line.split()
        for line in status.split("DLQ topics")[1].splitlines()[2:]
        if line.strip()
    }
    assert rows["casino.loyalty.v1.dlq"][2] == "MISSING"
    assert rows["casino.bonus.v1.dlq"][2] == "yes"


def test_replay_of_a_topic_that_is_no_dlq_is_refused_unless_to_is_given(
    embedded_kafka: EmbeddedKafka, cli: Any
) -> None:
    from tests.helpers.dlq import produce, spring_headers

    bootstrap = embedded_kafka.bootstrap_servers
    for name in ("casino.wallet.v1", "casino.wallet.copy.v1", "casino.parked.v1"):
        embedded_kafka.create_topic(name)
    produce(bootstrap, "casino.wallet.v1", [(b"k", f"v{n}".encode(), None) for n in range(50)])
    result = cli("-b", bootstrap, "dlq", "replay", "casino.wallet.v1", "--yes")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(
        "Error: refusing to replay 'casino.wallet.v1': it is not a dead-letter topic (its name has no "
        "DLQ suffix, .dlq, -dlt, .DLT, and its first 20 record(s) carry no original-topic header)\n"
    )
    assert "--to" in result.stderr
    # --to: the user says where; not refused (a dry run, to change nothing).
    allowed = cli(
        "-b", bootstrap, "dlq", "replay", "casino.wallet.v1", "--to", "casino.wallet.copy.v1", "--dry-run"
    )
    assert allowed.exit_code == 0, allowed.stderr
    assert "Would replay 50 record(s)" in allowed.stderr
    # Not named like a DLQ, but its records say where they came from: a DLQ all the same.
    produce(bootstrap, "casino.parked.v1", [(b"k", b"v", spring_headers("casino.wallet.v1", 0))])
    carried = cli("-b", bootstrap, "dlq", "replay", "casino.parked.v1", "--dry-run")
    assert carried.exit_code == 0, carried.stderr


def _complete(words: str, config: str) -> tuple[list[str], str, float]:
    """What bash completion offers for `words`, what it wrote to stderr and how long it took."""
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env.update(
        {
            "KAFKAOPS_CONFIG": config,
            "_KAFKAOPS_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kafkaops")], env=env, capture_output=True, text=True, timeout=30
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line], result.stderr, took


def test_completion_offers_topics_from_the_broker(
    make_database: Any, embedded_kafka: EmbeddedKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("casino.bonus.v1", "casino.bonus.v1.dlq", "casino.wallet.v1", "casino.wallet.v1-dlt"):
        embedded_kafka.create_topic(name)
    db = make_database("sqlite")
    db.init()
    config = _configure(tmp_path, monkeypatch, db, embedded_kafka.bootstrap_servers)
    assert _complete("kafkaops dlq tail ", config)[0] == ["casino.bonus.v1.dlq", "casino.wallet.v1-dlt"]
    assert _complete("kafkaops dlq replay casino.w", config)[0] == ["casino.wallet.v1-dlt"]
    assert _complete("kafkaops dlq ensure casino.", config)[0] == ["casino.bonus.v1", "casino.wallet.v1"]


def test_completion_with_the_broker_down_offers_nothing_quickly_and_silently(
    make_database: Any, closed_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database("sqlite")
    db.init()
    config = _configure(tmp_path, monkeypatch, db, f"127.0.0.1:{closed_port}")
    offered, stderr, took = _complete("kafkaops dlq tail ", config)
    assert offered == [] and stderr == ""
    assert took < 2 + 5  # the 2 s bound, and the interpreter's start


def test_completion_offers_ids_from_the_table_most_urgent_first(configured: TestDatabase) -> None:
    configured.insert(
        [event(1, id=101, status="RESOLVED"), event(2, id=102, status="DLQ_FAILED"), event(3, id=230)]
    )
    config = os.environ["KAFKAOPS_CONFIG"]
    assert _complete("kafkaops failed show ", config)[0] == ["102", "230", "101"]
    assert _complete("kafkaops failed requeue 10", config)[0] == ["102", "101"]


def test_a_degraded_service_is_never_an_ok_line(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held already (the service check judges DEGRADED a WARNING): guarded in the human view too."""
    from kafkaops.demo.service import FakeService, health_body

    with FakeService().healthy() as service:
        service.set_json("/actuator/health/kafka", health_body(status="DEGRADED", breaker="CLOSED"))
        path = write_config(
            tmp_path / "kafkaops.yaml", app={"instances": [{"name": "pod-a", "url": service.url}]}
        )
        monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        result = cli("status")
    assert result.exit_code == 1, result.stdout + result.stderr
    checks = result.stdout.split("\n\n")[1].splitlines()
    assert any(
        line.startswith("WARNING") and "service pod-a" in line and "DEGRADED" in line for line in checks
    )
    assert not [line for line in checks if line.startswith("OK") and "DEGRADED" in line]


def test_the_readme_installs_what_its_python_m_commands_run() -> None:
    """`python -m build` after `pip install .` failed: build is no dependency of kafkaops."""
    import re
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## Installing for real use", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    installed: set[str] = set()
    for line in block.splitlines():
        command = line.split("#", 1)[0]
        for part in command.split("&&"):
            words = part.split()
            if "pip" in words and "install" in words:
                installed.update(w for w in words[words.index("install") + 1 :] if not w.startswith("-"))
            for module in re.findall(r"python3? -m (\S+)", part):
                if module not in ("pip", "venv") and module not in sys.stdlib_module_names:
                    assert module in installed, f"`python -m {module}` runs before anything installs {module}"
