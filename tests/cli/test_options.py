"""Options as the user places them: a group's output and filters reach its subcommands, global
options after the subcommand, repeated or comma-separated values, and what is refused."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers.events import insert_one_per_status


@pytest.mark.slow
def test_the_parents_output_and_filters_apply_to_the_subcommand(configured, cli) -> None:
    insert_one_per_status(configured)
    result = cli("failed", "-o", "json", "list", "-n", "1")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1
    own = cli("failed", "-o", "json", "list", "-n", "1", "-o", "csv")  # the nearer -o wins
    assert own.stdout.startswith("id,event_id,topic")
    narrowed = json.loads(cli("failed", "--status", "DLQ", "-o", "json", "list").stdout)
    assert [r["event_id"] for r in narrowed] == ["evt-3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["failed", "-g", "topic", "list"], "--group-by and --top shape the counts"),
        (["failed", "--top", "2", "list"], "--group-by and --top shape the counts"),
        (["failed", "--topic", "a", "list", "--topic", "b"], "--topic given both before and after"),
        (["failed", "--status", "DLQ", "show", "1"], "`failed show` takes no --status"),
        (["failed", "list", "--topic", "a", "--topic", "b"], "--topic given more than once"),
        (["failed", "list", "-n", "1", "--limit=2"], "--limit given more than once"),
        (["failed", "-o", "json", "--output", "csv"], "--output given more than once"),
        (["--context", "test", "failed", "list", "--context", "other"], "--context given twice"),
    ],
)
def test_options_given_twice_or_at_the_wrong_level_are_refused(
    configured, cli, args: list[str], message: str
) -> None:
    insert_one_per_status(configured)
    result = cli(*args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert result.stdout == ""


def test_group_by_repeated_and_comma_separated_alike(configured, cli) -> None:
    insert_one_per_status(configured)
    repeated = json.loads(cli("failed", "-g", "topic", "-g", "status", "-o", "json").stdout)
    comma = json.loads(cli("failed", "-g", "topic,status", "-o", "json").stdout)
    assert repeated == comma
    assert set(repeated[0]) == {"topic", "status", "count", "oldest_created_at", "newest_created_at"}


def test_global_options_after_the_subcommand(configured, cli, monkeypatch) -> None:
    insert_one_per_status(configured)
    path = os.environ["KAFKAOPS_CONFIG"]
    with monkeypatch.context() as patch:
        patch.delenv("KAFKAOPS_CONFIG")
        after = cli("failed", "list", "--config", path, "--context", "test", "-o", "json")
        assert after.exit_code == 0, after.stderr
        assert len(json.loads(after.stdout)) == 4
        grouped = cli("failed", "--context", "test", "-c", path, "-o", "json")
        assert grouped.exit_code == 0, grouped.stderr
        wrong = cli("failed", "list", "--config", path, "--context", "nope")
        assert wrong.exit_code == 2
        assert "no context named 'nope'" in wrong.stderr
        help_text = cli("failed", "list", "--help").stdout
        assert "--context" not in help_text  # accepted, but documented once, at the top
    debug = cli("failed", "show", "999", "--debug")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr
