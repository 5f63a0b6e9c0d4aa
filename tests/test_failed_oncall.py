"""`failed` as an on-call engineer meets it at night (issue 10): nothing hidden, nothing
ambiguous, nothing dangerous by default. PostgreSQL and SQLite; a pseudo-terminal where only
a terminal shows it."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kafkaops.config.settings import LOGICAL_COLUMNS
from tests.conftest import write_config
from tests.events import NOW, event

EVERY_COLUMN_RENAMED = {c: f"svc_{c}" for c in LOGICAL_COLUMNS}
OLD = NOW - timedelta(days=40)


@pytest.fixture(params=["sqlite", "postgresql"])
def renamed(request, make_database, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A table whose every column has another physical name, and kafkaops configured for it."""
    db = make_database(request.param, EVERY_COLUMN_RENAMED)
    db.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "kafkaops.yaml", db)))
    return db


def seed(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    db.insert(
        [
            event(1, status="DLQ_FAILED", retry_count=5, last_error="Foo@1a2b3c rejected", event_key="k-1"),
            event(2, status="PENDING", retry_count=1, last_error="Foo@123 rejected", next_retry_at=NOW),
            event(3, status="DLQ", retry_count=5, last_error="too large", next_retry_at=NOW),
            event(4, status="RESOLVED", created_at=OLD, updated_at=OLD, next_retry_at=OLD),
        ]
    )
    return {r["event_id"]: r["id"] for r in db.rows()}


# -- a mapping that renames every column -----------------------------------------------------


def test_every_command_keys_rows_by_logical_names_under_a_full_mapping(renamed, cli) -> None:
    ids = seed(renamed)
    groups = json.loads(cli("failed", "-g", "status,event_key,error_signature", "-o", "json").stdout)
    assert groups[0]["status"] == "DLQ_FAILED"
    assert groups[0]["event_key"] == "k-1"
    assert groups[0]["error_signature"] == "Foo@<id> rejected"

    listed = json.loads(cli("failed", "list", "-o", "json").stdout)
    by_event = {r["event_id"]: r for r in listed}
    assert set(by_event["evt-1"]) == set(LOGICAL_COLUMNS) - {"payload", "headers"}
    assert by_event["evt-1"]["last_error"] == "Foo@1a2b3c rejected"
    assert by_event["evt-1"]["event_key"] == "k-1"
    assert by_event["evt-2"]["next_retry_at"] == "2026-11-27T12:00:00Z"

    rows = list(csv.DictReader(io.StringIO(cli("failed", "list", "-o", "csv").stdout)))
    assert {r["event_id"]: r["last_error"] for r in rows}["evt-3"] == "too large"

    table = cli("failed", "list").stdout
    assert "Foo@1a2b3c rejected" in table and "too large" in table

    shown = json.loads(cli("failed", "show", str(ids["evt-1"]), "-o", "json").stdout)
    assert set(shown) == set(LOGICAL_COLUMNS)
    assert (shown["event_key"], shown["last_error"], shown["retry_count"]) == (
        "k-1",
        "Foo@1a2b3c rejected",
        5,
    )
    assert shown["headers"] == {"eventType": "PlayerRegistered"}

    due = cli("retry", "--dry-run", "-o", "json")
    assert due.exit_code == 0, due.stderr
    assert [(r["id"], r["event_key"], r["attempt"]) for r in json.loads(due.stdout)] == [
        (ids["evt-2"], "player-2", 2)
    ]

    requeued = cli("failed", "requeue", str(ids["evt-1"]), "--yes", "-o", "json")
    assert requeued.exit_code == 0, requeued.stderr
    assert json.loads(requeued.stdout)["requeued"] == 1
    purged = cli("failed", "purge", "--older-than", "30d", "--yes", "-o", "json")
    assert json.loads(purged.stdout)["deleted"] == 1
    t = renamed.table
    assert {r["event_id"]: r["status"] for r in renamed.rows()} == {
        "evt-1": "PENDING",
        "evt-2": "PENDING",
        "evt-3": "DLQ",
    }
    assert renamed.rows(t.c.event_id == "evt-1")[0]["retry_count"] == 0


# -- what is urgent comes first; no stale promise of a retry ----------------------------------


def test_statuses_come_in_severity_order_and_other_groupings_by_count(configured, cli) -> None:
    configured.insert(
        [event(i, status="RESOLVED") for i in range(6)]
        + [event(10 + i, status="DLQ", topic="b") for i in range(3)]
        + [event(20, status="DLQ_FAILED", topic="b"), event(21, status="PENDING")]
        + [event(30 + i, status="PENDING", topic="b") for i in range(2)]
    )
    groups = json.loads(cli("failed", "-o", "json").stdout)
    assert [g["status"] for g in groups] == ["DLQ_FAILED", "PENDING", "DLQ", "RESOLVED"]
    # Status first: severity, then the largest group within it.
    both = json.loads(cli("failed", "-g", "status", "-g", "topic", "-o", "json").stdout)
    assert [(g["status"], g["topic"], g["count"]) for g in both] == [
        ("DLQ_FAILED", "b", 1),
        ("PENDING", "b", 2),
        ("PENDING", "casino.player.registered.v1", 1),
        ("DLQ", "b", 3),
        ("RESOLVED", "casino.player.registered.v1", 6),
    ]
    by_topic = json.loads(cli("failed", "-g", "topic", "-o", "json").stdout)
    assert [(g["topic"], g["count"]) for g in by_topic] == [("casino.player.registered.v1", 7), ("b", 6)]


def test_rows_no_retry_will_touch_show_no_next_retry(configured, cli) -> None:
    ids = seed(configured)
    lines = cli("failed", "list").stdout.splitlines()
    stale = "2026-11-27 12:00:00Z"
    row_of = {line.split()[0]: line for line in lines[1:]}
    assert stale in row_of[str(ids["evt-2"])]  # PENDING: the time is a real promise
    assert stale not in row_of[str(ids["evt-3"])]  # DLQ: no retry will come
    assert "2026-10-18" not in row_of[str(ids["evt-4"])]  # RESOLVED
    shown = cli("failed", "show", str(ids["evt-3"])).stdout
    assert "next_retry_at  \n" in shown and stale not in shown
    # Scripts still get what is stored.
    assert json.loads(cli("failed", "show", str(ids["evt-3"]), "-o", "json").stdout)["next_retry_at"] == (
        "2026-11-27T12:00:00Z"
    )


def test_a_row_created_in_the_future_says_so_instead_of_a_negative_age(configured, cli) -> None:
    from kafkaops.common import clock as clock

    ahead = (clock.now() + timedelta(hours=3, minutes=5)).replace(microsecond=0)
    configured.insert([event(1, created_at=ahead, updated_at=ahead), event(2)])
    # Scripts get the stored value, intact.
    listed = {r["event_id"]: r for r in json.loads(cli("failed", "list", "-o", "json").stdout)}
    assert listed["evt-1"]["created_at"] == ahead.strftime("%Y-%m-%dT%H:%M:%SZ")
    table = cli("failed", "list").stdout
    row_of = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert (
        "in the future (3h5m)" in row_of[str(listed["evt-1"]["id"])]
        or "in the future (3h4m)" in row_of[str(listed["evt-1"]["id"])]
    ), table
    assert "in the future" not in row_of[str(listed["evt-2"]["id"])]
    assert not re.search(r"\s-[0-9]", table), table


# -- limits are said, --all streams -------------------------------------------------------------


def test_a_limit_that_cuts_the_list_says_so_and_all_shows_everything(configured, cli) -> None:
    configured.insert([event(i) for i in range(7)])
    cut = cli("failed", "list", "-n", "3", "-o", "json")
    assert len(json.loads(cut.stdout)) == 3
    assert cut.stderr == "Showing 3 of 7; use --limit N or --all.\n"
    whole = cli("failed", "list", "-n", "7", "-o", "json")
    assert len(json.loads(whole.stdout)) == 7 and whole.stderr == ""
    everything = cli("failed", "list", "--all", "-o", "json")
    assert [r["event_id"] for r in json.loads(everything.stdout)] == [f"evt-{i}" for i in range(7)]
    assert everything.stderr == ""
    both = cli("failed", "list", "--all", "-n", "3")
    assert both.exit_code == 2 and "--all and --limit" in both.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["failed", "list", "--limit", "99999999999999999999999"], "is not in the range 1<=x<=1000000000000"),
        (["failed", "--top", "9223372036854775808"], "is not in the range 1<=x<=1000000000000"),
        (["failed", "purge", "--older-than", "1d", "--batch-size", "1e30"], "is not a valid integer"),
    ],
)
def test_numbers_beyond_a_bigint_are_usage_errors(configured, cli, args: list[str], message: str) -> None:
    configured.insert([event(1)])
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert configured.count() == 1


# -- no option is quietly ignored ------------------------------------------------------------------


def test_the_parents_output_and_filters_apply_to_the_subcommand(configured, cli) -> None:
    seed(configured)
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
    seed(configured)
    result = cli(*args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert result.stdout == ""


def test_group_by_repeated_and_comma_separated_alike(configured, cli) -> None:
    seed(configured)
    repeated = json.loads(cli("failed", "-g", "topic", "-g", "status", "-o", "json").stdout)
    comma = json.loads(cli("failed", "-g", "topic,status", "-o", "json").stdout)
    assert repeated == comma
    assert set(repeated[0]) == {"topic", "status", "count", "oldest_created_at", "newest_created_at"}


def test_global_options_after_the_subcommand(configured, cli, monkeypatch) -> None:
    seed(configured)
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


# -- the error signature -------------------------------------------------------------------------


SIGNATURES = {
    "Timeout after 30012 ms for id 8f1c2a9e": "Timeout after <duration> for id <hex>",
    "Zeitüberschreitung nach 5 s für Schlüssel 'ä-1'": "Zeitüberschreitung nach <duration> für Schlüssel <value>",
    "\u0661\u0662\u0663 digits that are not ASCII, \uff15 full-width, 5\u00a0ms with a no-break space": (
        "\u0661\u0662\u0663 digits that are not ASCII, \uff15 full-width, <n>\u00a0ms with a no-break space"
    ),
    "\u017f is no unit; 3 days; 1h30m; o'clock": "\u017f is no unit; <duration>; 1h30m; o'clock",
    "Größe 1048601 überschritten nach 30s": "Größe <n> überschritten nach <duration>",
    "Task Foo@1a2b3c rejected from java.util.concurrent.ThreadPoolExecutor@5e0c4f7a[Running, pool size = 50]": (
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ),
    "Task Foo@123 rejected from java.util.concurrent.ThreadPoolExecutor@77[Running, pool size = 50]": (
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ),
}


def test_error_signature_gives_the_expected_values_in_sql(configured, cli) -> None:
    """Literal expectations on each database, not one implementation compared with itself."""
    configured.insert([event(i, last_error=text) for i, text in enumerate(SIGNATURES)])
    result = cli("failed", "--group-by", "last_error,error_signature", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert {g["last_error"]: g["error_signature"] for g in json.loads(result.stdout)} == SIGNATURES
    folded = json.loads(cli("failed", "--group-by", "error_signature", "-o", "json").stdout)
    assert {g["error_signature"]: g["count"] for g in folded}[
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ] == 2


# -- single-event actions, dry runs that show rows, results for cron --------------------------------


def test_requeue_by_id_acts_on_those_rows_and_names_the_ones_it_leaves(configured, cli) -> None:
    ids = seed(configured)
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
    ids = seed(configured)
    result = cli("failed", "purge", *(str(i) for i in ids.values()), "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched"], doc["deleted"]) == (2, 2)
    assert sorted(item["status"] for item in doc["left_out"]) == ["DLQ_FAILED", "PENDING"]
    assert sorted(r["event_id"] for r in configured.rows()) == ["evt-1", "evt-2"]
    refused = cli("failed", "purge", str(ids["evt-1"]), "--status", "DLQ_FAILED", "--yes")
    assert refused.exit_code == 2 and "purge never deletes DLQ_FAILED" in refused.stderr
    assert configured.count() == 2


@pytest.mark.parametrize("command", ["requeue", "purge"])
def test_dry_run_lists_the_rows_it_would_touch_and_changes_nothing(configured, cli, command: str) -> None:
    ids = seed(configured)
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


def test_show_takes_several_ids_and_names_the_missing_ones(configured, cli) -> None:
    ids = seed(configured)
    both = json.loads(cli("failed", "show", str(ids["evt-3"]), str(ids["evt-1"]), "-o", "json").stdout)
    assert [r["event_id"] for r in both] == ["evt-3", "evt-1"]
    table = cli("failed", "show", str(ids["evt-3"]), str(ids["evt-1"])).stdout
    assert table.count("payload (JSON):") == 2
    missing = cli("failed", "show", str(ids["evt-1"]), "998", "999")
    assert missing.exit_code == 1 and "no failed event with id 998, 999" in missing.stderr


# -- prompts say where they act (a terminal is needed to be asked at all) ---------------------------


def _run_in_pty(args: list[str], answer: str, env: dict[str, str]) -> tuple[str, int]:
    """kafkaops with a pseudo-terminal as stdin/stderr; answers the first question asked."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkaops", *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
        close_fds=True,
    )
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


def test_confirmation_names_the_context_and_the_database(renamed_pg_free_config) -> None:
    db, env = renamed_pg_free_config
    seen, code = _run_in_pty(["failed", "purge", "--older-than", "30d"], "n", env)
    assert code == 1, seen
    host = db.engine.url.host
    port = db.engine.url.port
    name = db.engine.url.database
    assert f"Delete 1 RESOLVED row(s) in context test (postgresql {host}:{port}/{name})? [y/N]" in seen
    assert "Aborted; nothing changed." in seen
    assert db.count() == 1
    seen, code = _run_in_pty(["failed", "purge", "--older-than", "30d"], "y", env)
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


def _complete(words: str, env_extra: dict[str, str], cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env.update(env_extra)
    env.update(
        {
            "_KAFKAOPS_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
    )
    exe = Path(sys.executable).parent / "kafkaops"
    result = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=30, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_completion_offers_values_and_context_names(tmp_path: Path) -> None:
    config = tmp_path / "kafkaops.yaml"
    config.write_text(
        "current-context: local\ncontexts:\n  local:\n    database: {url: 'sqlite:///x'}\n  prod-eu:\n    {}\n"
    )
    assert _complete("kafkaops failed --group-by er", {}, tmp_path) == ["error_type", "error_signature"]
    assert _complete("kafkaops failed list --status DLQ,P", {}, tmp_path) == ["DLQ,PENDING"]
    assert _complete("kafkaops failed purge --status ", {}, tmp_path) == ["RESOLVED", "DLQ"]
    assert _complete("kafkaops failed show 1 -o j", {}, tmp_path) == ["json", "jsonl"]
    assert _complete("kafkaops --context ", {}, tmp_path) == ["local", "prod-eu"]
    assert _complete("kafkaops failed list --context p", {}, tmp_path) == ["prod-eu"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _complete("kafkaops --context ", {"XDG_CONFIG_HOME": str(empty)}, empty) == []


@pytest.mark.parametrize(
    "words",
    ["kafkaops retry -o ", "kafkaops db check --output ", "kafkaops config show -o ", "kafkaops failed -o "],
)
def test_every_output_option_completes_its_formats(words: str, tmp_path: Path) -> None:
    assert _complete(words, {}, tmp_path) == ["table", "json", "jsonl", "yaml", "csv", "tsv"]


def test_context_completion_imports_no_heavy_module(tmp_path: Path) -> None:
    (tmp_path / "kafkaops.yaml").write_text("contexts:\n  a: {}\n  'b c': {}\n")
    code = (
        "import sys; from kafkaops.cli.completion import complete_contexts; import click;"
        "ctx = click.Context(click.Command('x'));"
        "print(complete_contexts(ctx, ''));"
        "print(sorted(m for m in ('yaml', 'sqlalchemy', 'rich', 'confluent_kafka') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert result.stdout.splitlines() == ["['a', 'b c']", "[]"], result.stderr


def _help(*args: str, columns: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["COLUMNS"] = str(columns)
    result = subprocess.run(
        [sys.executable, "-m", "kafkaops", *args, "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


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
