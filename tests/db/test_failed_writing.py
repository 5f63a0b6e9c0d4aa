"""`kafkaops failed requeue | purge`: what they change and never change, by filter or by id, dry
runs, refused filters, and a confirmation that names where it acts (a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import select
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers.config import write_config
from tests.helpers.events import NOW, OLD, event, insert_a_mix, insert_one_per_status
from tests.helpers.process import start_kafkaops

# -- single-event actions, dry runs that show rows, results for cron --------------------------------


def test_requeue_by_id_acts_on_those_rows_and_names_the_ones_it_leaves(configured, cli) -> None:
    ids = insert_one_per_status(configured)
    result = cli(
        "failed",
        "requeue",
        str(ids["evt-1"]),
        str(ids["evt-3"]),
        str(ids["evt-2"]),
        "999",
        "--yes",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched"], doc["requeued"], doc["dry_run"]) == (2, 2, False)
    assert doc["left_out"] == [{"id": str(ids["evt-2"]), "status": "PENDING"}, {"id": "999", "status": None}]
    assert f"Warning: id {ids['evt-2']} left out (PENDING: requeue takes DLQ_FAILED or DLQ)." in result.stderr
    assert "Warning: id 999 left out (no such row)." in result.stderr
    statuses = {r["event_id"]: (r["status"], r["retry_count"]) for r in configured.rows()}
    assert statuses == {
        "evt-1": ("PENDING", 0),
        "evt-2": ("PENDING", 1),  # untouched: its backoff is kept
        "evt-3": ("PENDING", 0),
        "evt-4": ("RESOLVED", 0),
    }


def test_purge_by_id_never_deletes_undelivered_rows(configured, cli) -> None:
    ids = insert_one_per_status(configured)
    result = cli("failed", "purge", "--no-archive", *(str(i) for i in ids.values()), "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched"], doc["deleted"]) == (2, 2)
    assert sorted(item["status"] for item in doc["left_out"]) == ["DLQ_FAILED", "PENDING"]
    assert sorted(r["event_id"] for r in configured.rows()) == ["evt-1", "evt-2"]
    refused = cli("failed", "purge", "--no-archive", str(ids["evt-1"]), "--status", "DLQ_FAILED", "--yes")
    assert refused.exit_code == 2 and "purge never deletes DLQ_FAILED" in refused.stderr
    assert configured.count() == 2


@pytest.mark.parametrize("command", ["requeue", "purge"])
def test_dry_run_lists_the_rows_it_would_touch_and_changes_nothing(configured, cli, command: str) -> None:
    ids = insert_one_per_status(configured)
    args = ["failed", command, "--dry-run"] + (
        ["--status", "DLQ", "--older-than", "0s"] if command == "purge" else []
    )
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["ID", "TOPIC", "STATUS", "LAST", "ERROR"]
    expected = "evt-1" if command == "requeue" else "evt-3"
    row_id, error = (
        (str(ids[expected]), "Foo@1a2b3c rejected")
        if command == "requeue"
        else (str(ids["evt-3"]), "too large")
    )
    assert len(lines) == 1 and lines[0].split()[0] == row_id and lines[0].endswith(error)
    doc = json.loads(cli(*args, "-o", "json").stdout)
    assert doc["dry_run"] is True and doc["matched"] == 1
    assert [(r["id"], r["last_error"]) for r in doc["rows"]] == [(ids[expected], error)]
    assert {r["event_id"]: r["status"] for r in configured.rows()} == {
        "evt-1": "DLQ_FAILED",
        "evt-2": "PENDING",
        "evt-3": "DLQ",
        "evt-4": "RESOLVED",
    }


# -- prompts say where they act (a terminal is needed to be asked at all) ---------------------------


def _run_in_pty(args: list[str], answer: str, env: dict[str, str]) -> tuple[str, int]:
    """kafkaops with a pseudo-terminal as stdin/stderr; answers the first question asked."""
    leader, follower = pty.openpty()
    proc = start_kafkaops(*args, env=env, stdin=follower, stderr=follower, text=False, close_fds=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    answered = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"[y/N]" in seen:
                    os.write(leader, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return seen.decode(errors="replace"), code


@pytest.mark.slow
def test_confirmation_names_the_context_and_the_database(renamed_pg_free_config) -> None:
    db, env = renamed_pg_free_config
    seen, code = _run_in_pty(["failed", "purge", "--no-archive", "--older-than", "30d"], "n", env)
    assert code == 1, seen
    host = db.engine.url.host
    port = db.engine.url.port
    name = db.engine.url.database
    assert f"Delete 1 RESOLVED row(s) in context test (postgresql {host}:{port}/{name})? [y/N]" in seen
    assert "Aborted; nothing changed." in seen
    assert db.count() == 1
    seen, code = _run_in_pty(["failed", "purge", "--no-archive", "--older-than", "30d"], "y", env)
    assert code == 0 and "Deleted 1 row(s)." in seen
    assert db.count() == 0


@pytest.fixture
def renamed_pg_free_config(pg_database, tmp_path):  # type: ignore[no-untyped-def]
    pg_database.init()
    pg_database.insert([event(1, status="RESOLVED", created_at=OLD, updated_at=OLD)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(write_config(tmp_path / "k.yaml", pg_database))
    return pg_database, env


# -- completion and help ----------------------------------------------------------------------------


def test_a_named_row_in_a_strange_status_is_reported_with_its_control_characters_visible(
    configured, cli
) -> None:
    configured.insert([event(1, status="HELD\x1b]0;pwned\x07")])
    row_id = configured.rows()[0]["id"]
    result = cli("failed", "requeue", str(row_id), "--yes")
    assert result.exit_code == 0, result.stderr
    assert (
        f"Warning: id {row_id} left out (HELD\\x1b]0;pwned\\x07: requeue takes DLQ_FAILED or DLQ)."
        in result.stderr
    )
    assert "\x1b" not in result.stderr
    assert configured.rows()[0]["status"] == "HELD\x1b]0;pwned\x07"


@pytest.mark.slow
def test_thousands_of_ids_work_and_warnings_stay_readable(pg_database, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    pg_database.insert([event(1, status="DLQ_FAILED"), event(2, status="DLQ")])
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    ids = [str(n) for n in range(1, 25_001)]
    result = cli("--config", str(config), "failed", "requeue", *ids, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["matched"] == 2 and len(doc["left_out"]) == 24_998
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 21
    assert warnings[-1] == "Warning: 24,978 more named id(s) left out (-o json lists them all)."
    missing = cli("--config", str(config), "failed", "show", *ids)
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: no failed event with id 3, 4, 5,")
    assert missing.stderr.splitlines()[0].endswith(", 22 and 24,978 more")


@pytest.mark.slow
def test_more_ids_than_a_statement_can_bind_is_a_usage_error(pg_database, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """70,000 ids used to end in `database error: ... number of parameters must be between 0 and
    65535` on PostgreSQL."""
    pg_database.init()
    pg_database.insert([event(1, status="DLQ_FAILED")])
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    ids = [str(n) for n in range(1, 70_001)]
    result = cli("--config", str(config), "failed", "requeue", *ids, "--yes")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "Error: 70,000 ids given; at most 30,000 at once"
    assert pg_database.rows()[0]["status"] == "DLQ_FAILED"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--topic", ""),
        ("--topic", " "),
        ("--status", ""),
        ("--status", ","),
        ("--since", ""),
        ("--error", ""),
    ],
)
@pytest.mark.parametrize("where", ["after", "before"])
def test_an_empty_filter_is_refused_not_read_as_no_filter(
    configured, cli, option: str, value: str, where: str
) -> None:  # type: ignore[no-untyped-def]
    """`purge --topic "$TOPIC"` with TOPIC unset used to purge every topic."""
    from datetime import timedelta

    from tests.helpers.events import NOW

    configured.insert([event(1, status="RESOLVED", topic="a", updated_at=NOW - timedelta(days=90))])
    purge = ("purge", "--no-archive", "--older-than", "30d", "--yes")
    args = ("failed", *purge, option, value) if where == "after" else ("failed", option, value, *purge)
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {option} is empty: give a value, or leave the option out\n"
    assert configured.count() == 1


def test_a_purge_cutoff_in_the_future_is_refused(configured, cli) -> None:  # type: ignore[no-untyped-def]
    """A mistyped year (`--older-than 2062-11-01`) matched every purgeable row."""
    configured.insert([event(1, status="RESOLVED"), event(2, status="DLQ")])
    result = cli(
        "failed", "purge", "--no-archive", "--status", "RESOLVED,DLQ", "--older-than", "2062-11-01", "--yes"
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: --older-than '2062-11-01' is in the future: every row would match",
        "Hint: to delete the rows whatever their age, say so: --older-than 0s",
    ]
    assert configured.count() == 2
    assert (
        cli(
            "failed", "purge", "--no-archive", "--status", "RESOLVED,DLQ", "--older-than", "0s", "--yes"
        ).exit_code
        == 0
    )
    assert configured.count() == 0


def test_requeue_sets_dlq_failed_back_to_pending(configured, cli) -> None:
    insert_a_mix(configured)
    configured.insert([event(50, status="DLQ", retry_count=5)])
    t = configured.table
    before = configured.rows(t.c.status == "DLQ_FAILED")
    result = cli("failed", "requeue", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "2 DLQ_FAILED row(s) match in context test" in result.stderr
    assert "Requeued 2 row(s)" in result.stderr
    after = configured.rows(t.c.id.in_([r["id"] for r in before]))
    assert {r["status"] for r in after} == {"PENDING"}
    assert {r["retry_count"] for r in after} == {0}
    assert all(r["next_retry_at"] is not None for r in after)
    assert [r["payload"] for r in after] == [r["payload"] for r in before]
    assert configured.count(t.c.status == "DLQ") == 1  # DLQ only when asked
    assert cli("failed", "requeue", "--status", "DLQ", "--yes").exit_code == 0
    assert configured.count(t.c.status == "DLQ") == 0


def test_requeue_dry_run_and_refusals_change_nothing(configured, cli) -> None:
    insert_a_mix(configured)
    t = configured.table
    result = cli("failed", "requeue", "--dry-run")
    assert result.exit_code == 0 and "2 DLQ_FAILED row(s) match in context test" in result.stderr
    result = cli("failed", "requeue")  # no terminal to ask, no --yes
    assert result.exit_code == 2 and "add --yes" in result.stderr
    result = cli("failed", "requeue", "--status", "RESOLVED", "--yes")
    assert result.exit_code == 2 and "requeue takes rows in DLQ_FAILED or DLQ, not RESOLVED" in result.stderr
    assert configured.count(t.c.status == "DLQ_FAILED") == 2


def test_purge_deletes_old_rows_in_batches_and_never_undelivered_ones(configured, cli) -> None:
    old = NOW - timedelta(days=40)
    configured.insert(
        [event(i, status="RESOLVED", created_at=old, updated_at=old) for i in range(7)]
        + [event(10, status="RESOLVED")]  # recent: kept
        + [
            event(11, status="PENDING", created_at=old, updated_at=old),
            event(12, status="DLQ_FAILED", created_at=old, updated_at=old),
        ]
    )
    t = configured.table
    result = cli("failed", "purge", "--no-archive", "--older-than", "30d", "--dry-run")
    assert "7 RESOLVED row(s)" in result.stderr and configured.count() == 10
    result = cli("failed", "purge", "--no-archive", "--older-than", "30d", "--batch-size", "3", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Deleted 7 row(s)." in result.stderr
    assert configured.count(t.c.status == "RESOLVED") == 1
    for status in ("PENDING", "DLQ_FAILED", "pending,resolved"):
        refused = cli("failed", "purge", "--no-archive", "--status", status, "--older-than", "0s", "--yes")
        assert refused.exit_code == 2 and "purge never deletes" in refused.stderr
    assert configured.count() == 3


def test_purge_needs_older_than(configured, cli) -> None:
    result = cli("failed", "purge", "--no-archive", "--yes")
    assert result.exit_code == 2
    assert "--older-than" in result.stderr
