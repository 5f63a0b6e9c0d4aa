"""The audit journal (`kafkaops.audit`): an entry written before a command acts and completed
when it ends, in the same transaction as each batch; a command whose entry cannot be written
does not act; `kafkaops audit` reads it back."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.config import write_config
from tests.helpers.events import NOW, event, insert_one_per_status
from tests.helpers.process import finish, start_kafkaops

OLD = NOW - timedelta(days=60)


def _entries(cli: Any, *args: str) -> list[dict[str, Any]]:
    listed = cli("audit", "-o", "json", *args)
    assert listed.exit_code == 0, listed.stderr
    return list(json.loads(listed.stdout))


def _statuses(db: Any) -> list[str]:
    return [r["status"] for r in db.rows()]


def test_requeue_writes_who_what_and_how_it_ended(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(n, status="DLQ_FAILED") for n in range(3)] + [event(9, status="DLQ")])
    done = cli(
        "failed", "requeue", "--topic", "casino.*", "--yes", env={"KAFKAOPS_ACTOR": "alice (INC-4711)"}
    )
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(cli)
    ids = [str(r["id"]) for r in configured.rows() if r["event_id"] != "evt-9"]
    assert entry["actor"] == "alice (INC-4711)"
    assert (entry["command"], entry["context"], entry["rows"]) == ("failed requeue", "test", 3)
    assert entry["command_line"] == "kafkaops failed requeue --topic 'casino.*' --yes"
    assert entry["selection"] == {"statuses": ["DLQ_FAILED"], "topic": "casino.*"}
    assert (entry["outcome"], entry["exit_code"]) == ("ok", 0)
    assert sorted(entry["details"]["ids"], key=int) == ids
    digest = hashlib.sha256("".join(f"{i}\n" for i in entry["details"]["ids"]).encode()).hexdigest()
    assert entry["details"]["ids_sha256"] == digest and entry["details"]["ids_total"] == 3
    assert entry["started_at"] <= entry["ended_at"] and entry["duration_ms"] >= 0
    assert "payload" not in json.dumps(entry)


def test_a_dry_run_or_a_refused_confirmation_writes_no_entry(configured, cli) -> None:  # type: ignore[no-untyped-def]
    insert_one_per_status(configured)
    assert cli("failed", "requeue", "--dry-run").exit_code == 0
    assert cli("failed", "requeue", input="n\n").exit_code != 0
    assert _entries(cli) == []


def test_purge_names_its_archive_and_the_ids_in_the_archive_give_its_digest(
    configured, cli, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(n, status="RESOLVED", created_at=OLD, updated_at=OLD) for n in range(25)])
    archive = tmp_path / "p.jsonl"
    done = cli(
        "failed", "purge", "--older-than", "30d", "--batch-size", "10", "--archive", str(archive), "--yes"
    )
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(cli)
    details = entry["details"]
    assert details["archive"] == str(archive.resolve())
    assert details["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    archived_ids = [json.loads(line)["id"] for line in archive.read_text().splitlines()[1:]]
    assert (
        details["ids_sha256"] == hashlib.sha256("".join(f"{i}\n" for i in archived_ids).encode()).hexdigest()
    )
    assert (entry["rows"], details["ids_total"], details["archived_rows"]) == (25, 25, 25)
    assert entry["selection"]["older_than"].startswith(str(NOW.year)[:2])


@pytest.mark.parametrize("command", [("requeue",), ("purge", "--no-archive", "--older-than", "1d")])
def test_without_its_table_the_journal_fails_closed(database, cli, tmp_path, monkeypatch, command) -> None:  # type: ignore[no-untyped-def]
    database.init(journal=False)
    insert_one_per_status(database)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    before = _statuses(database)
    refused = cli("failed", *command, "--status", "DLQ", "--yes")
    assert refused.exit_code == 1
    error, hint = refused.stderr.splitlines()[-2:]
    assert error.startswith("Error: cannot write the audit journal (table kafkaops_audit: ")
    assert error.endswith("): nothing was done")
    assert "kafkaops db init" in hint and "audit.required: false" in hint
    assert _statuses(database) == before
    checked = cli("db", "check")
    assert "Warning: no audit journal table kafkaops_audit" in checked.stderr


def test_audit_required_false_acts_without_a_record_and_says_so(database, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    database.init(journal=False)
    insert_one_per_status(database)
    config = write_config(tmp_path / "k.yaml", database, audit={"required": False})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    done = cli("failed", "requeue", "--yes")
    assert done.exit_code == 0, done.stderr
    assert "Warning: acting without an audit record: table kafkaops_audit" in done.stderr
    assert _statuses(database).count("PENDING") == 2


def test_a_journal_table_the_user_cannot_write_stops_the_command(
    pg_database, cli, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import uuid

    db = pg_database
    db.init()
    insert_one_per_status(db)
    role = f"operator_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA "{db.schema}" TO {role}; '
            f'GRANT ALL ON "{db.schema}".failed_kafka_events TO {role}; '
            f'GRANT SELECT ON "{db.schema}".kafkaops_audit TO {role}'
        )
    try:
        config = write_config(tmp_path / "k.yaml", db)
        url = str(sa.engine.make_url(db.url).set(username=role))
        config.write_text(config.read_text().replace(db.url, url))
        monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
        refused = cli("failed", "requeue", "--yes")
        assert refused.exit_code == 1
        assert "Error: cannot write the audit journal (table kafkaops_audit: " in refused.stderr
        assert "permission denied" in refused.stderr.lower() or "42501" in refused.stderr
        assert _statuses(db).count("DLQ_FAILED") == 1
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{db.schema}" FROM {role}')
            conn.exec_driver_sql(f'REVOKE ALL ON SCHEMA "{db.schema}" FROM {role}; DROP ROLE {role}')


@pytest.mark.parametrize("actor", ["alice\nforged entry", "bob\x1b[31m", "eve\x7f"])
def test_an_actor_with_control_characters_is_refused_before_anything_changes(configured, cli, actor) -> None:  # type: ignore[no-untyped-def]
    insert_one_per_status(configured)
    refused = cli("failed", "requeue", "--yes", env={"KAFKAOPS_ACTOR": actor})
    assert refused.exit_code == 2
    assert refused.stderr.startswith("Error: $KAFKAOPS_ACTOR holds control characters: refused")
    assert _statuses(configured).count("DLQ_FAILED") == 1
    assert _entries(cli) == []


def test_the_journal_file_gets_the_intent_and_the_outcome(configured, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "k.yaml", configured, audit={"file": str(journal)})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    insert_one_per_status(configured)
    assert cli("failed", "requeue", "--yes").exit_code == 0
    intent, outcome = (json.loads(line) for line in journal.read_text().splitlines())
    assert (intent["event"], outcome["event"]) == ("intent", "outcome")
    assert intent["entry"] == outcome["entry"] == _entries(cli)[0]["id"]
    assert (outcome["outcome"], outcome["rows"], outcome["exit_code"]) == ("ok", 1, 0)
    assert oct(journal.stat().st_mode & 0o777) == "0o600"


def test_a_journal_file_that_cannot_be_written_stops_the_command(
    configured, cli, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "missing-folder" / "audit.jsonl"
    config = write_config(tmp_path / "k.yaml", configured, audit={"file": str(journal)})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    insert_one_per_status(configured)
    refused = cli("failed", "requeue", "--yes")
    assert refused.exit_code == 1
    assert (
        f"Error: cannot write the audit journal (file {journal}: No such file or directory)" in refused.stderr
    )
    assert _statuses(configured).count("DLQ_FAILED") == 1
    (entry,) = _entries(cli)  # the table tells of the attempt
    assert entry["outcome"].startswith("failed: file ") and entry["rows"] == 0


def test_a_journal_file_on_a_full_disk_stops_the_command(configured, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """/dev/full answers every write with ENOSPC, as a full file system does."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    config = write_config(tmp_path / "k.yaml", configured, audit={"file": "/dev/full"})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    insert_one_per_status(configured)
    refused = cli("failed", "requeue", "--yes")
    assert refused.exit_code == 1
    assert "Error: cannot write the audit journal (file /dev/full: No space left on device)" in refused.stderr
    assert _statuses(configured).count("DLQ_FAILED") == 1


def test_secrets_on_the_command_line_are_masked(pg_database, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    insert_one_per_status(pg_database)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    url = str(sa.engine.make_url(pg_database.url).set(password="hunter2-secret"))
    assert cli("failed", "requeue", "--yes", "--database-url", url).exit_code == 0
    (entry,) = _entries(cli)
    assert "hunter2-secret" not in json.dumps(entry)
    assert "--database-url 'postgresql://****" in entry["command_line"]


def test_audit_lists_by_time_actor_command_and_context_in_every_format(configured, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    insert_one_per_status(configured)
    cli("failed", "requeue", "--yes", env={"KAFKAOPS_ACTOR": "alice"})
    cli("failed", "requeue", "--status", "DLQ", "--yes", env={"KAFKAOPS_ACTOR": "bob"})
    archive = tmp_path / "a.jsonl"
    cli("failed", "purge", "--status", "RESOLVED", "--older-than", "30d", "--archive", str(archive), "--yes")
    assert [e["command"] for e in _entries(cli)] == ["failed purge", "failed requeue", "failed requeue"]
    assert [e["actor"] for e in _entries(cli, "--actor", "bob")] == ["bob"]
    assert len(_entries(cli, "--command", "failed requeue")) == 2
    assert _entries(cli, "--in-context", "elsewhere") == []
    assert len(_entries(cli, "--since", "1h", "--in-context", "test")) == 3
    assert _entries(cli, "--since", "2999-01-01T00:00:00Z") == []
    jsonl = cli("audit", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in jsonl.stdout.splitlines()] == [3, 2, 1]
    csv = cli("audit", "-o", "csv", "--actor", "alice")
    header, row = csv.stdout.splitlines()
    assert header.startswith("id,started_at,ended_at,actor,context,version,command,command_line")
    assert ",alice,test," in row
    table = cli("audit")
    assert table.stdout.splitlines()[0].split()[:4] == ["ID", "STARTED", "ACTOR", "CONTEXT"]
    shown = cli("audit", "show", "3", "-o", "json")
    assert json.loads(shown.stdout)["details"]["archive"] == str(archive.resolve())
    missing = cli("audit", "show", "99")
    assert missing.exit_code == 1 and "Error: no audit entry 99" in missing.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_interrupted_purge_is_journaled_as_interrupted_with_what_it_committed(
    configured, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(n, status="RESOLVED", created_at=OLD, updated_at=OLD) for n in range(30_000)])
    archive = tmp_path / "i.jsonl"
    proc = start_kafkaops(
        "failed", "purge", "--older-than", "30d", "--batch-size", "200", "--archive", str(archive), "--yes"
    )
    deadline = time.monotonic() + 60
    # Batch k+1 is archived only after batch k committed: 3 batches archived, 2 committed.
    while (not archive.exists() or archive.stat().st_size < 350_000) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130, err
    from kafkaops.audit.reading import list_entries

    with configured.engine.connect() as conn:
        (entry,) = list_entries(conn, configured.settings)
    gone = 30_000 - configured.count()
    assert 0 < gone < 30_000
    assert (entry["outcome"], entry["exit_code"], entry["rows"]) == ("interrupted", 130, gone), err
    assert entry["details"]["archived_rows"] >= gone


def test_db_init_creates_the_journal_and_db_check_reports_it(database, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    made = cli("db", "init")
    assert made.exit_code == 0 and "Created the audit journal kafkaops_audit." in made.stderr
    checked = cli("db", "check")
    assert checked.exit_code == 0 and "Audit journal kafkaops_audit is in place." in checked.stderr
    assert "audit journal" not in cli("db", "init").stderr  # already there: nothing said
