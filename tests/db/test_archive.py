"""`failed purge` keeps what it deletes (`kafkaops.db.archive`), and `failed restore` puts it
back: every column, the same ids, on PostgreSQL and SQLite; an archive is never overwritten or
written through a link; a purge killed between its archive write and its commit leaves every
deleted row in the archive."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.config import write_config
from tests.helpers.events import NOW, event
from tests.helpers.process import finish, run_kafkaops, start_kafkaops

OLD = NOW - timedelta(days=60)


def _old_rows(db: Any, n: int, status: str = "RESOLVED", start: int = 0) -> None:
    db.insert([event(start + i, status=status, created_at=OLD, updated_at=OLD) for i in range(n)])


def _archived(path: Path) -> list[dict[str, Any]]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = fh.read().splitlines()
    return [json.loads(line) for line in lines]


def _raw_rows(db: Any) -> list[tuple[Any, ...]]:
    """Every row as the database hands it back, every column, in id order."""
    table = sa.Table(db.settings.table, sa.MetaData(), autoload_with=db.engine, schema=db.schema)
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def test_a_purge_without_an_archive_is_a_usage_error_naming_every_way(configured, cli) -> None:  # type: ignore[no-untyped-def]
    _old_rows(configured, 3)
    result = cli("failed", "purge", "--older-than", "30d", "--yes")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: purge keeps what it deletes: give --archive PATH, or set purge.archive_dir in the config",
        "Hint: --no-archive deletes without keeping the rows anywhere",
    ]
    assert configured.count() == 3
    both = cli("failed", "purge", "--older-than", "30d", "--yes", "--archive", "a.jsonl", "--no-archive")
    assert both.exit_code == 2 and "--archive and --no-archive contradict each other" in both.stderr
    assert cli("failed", "purge", "--older-than", "30d", "--dry-run").exit_code == 0  # deletes nothing


@pytest.mark.parametrize("name", ["purged.jsonl", "purged.jsonl.gz"])
def test_purge_archives_every_column_and_restore_brings_back_the_same_rows(
    configured, cli, tmp_path, name
) -> None:  # type: ignore[no-untyped-def]
    _old_rows(configured, 7)
    configured.insert([event(100, status="PENDING", created_at=OLD, updated_at=OLD)])
    # A value JSON has no type for, and a column the mapping does not know (the service's own).
    with configured.engine.begin() as conn:
        qualified = (
            f'"{configured.schema}".failed_kafka_events' if configured.schema else "failed_kafka_events"
        )
        conn.exec_driver_sql(f"ALTER TABLE {qualified} ADD COLUMN trace_id VARCHAR(40)")
        conn.exec_driver_sql(f"UPDATE {qualified} SET trace_id = 'trace-' || id, last_error = 'ümlaut\tboom'")
    before = _raw_rows(configured)
    archive = tmp_path / name
    purged = cli(
        "failed", "purge", "--older-than", "30d", "--batch-size", "3", "--archive", str(archive), "--yes"
    )
    assert purged.exit_code == 0, purged.stderr
    assert "Deleted 7 row(s)." in purged.stderr
    header, *rows = _archived(archive)
    assert header["kafkaops_archive"] == 1 and "trace_id" in header["columns"]
    assert len(rows) == 7 and {r["trace_id"] for r in rows} == {f"trace-{r['id']}" for r in rows}
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert configured.count() == 1

    dry = cli("failed", "restore", str(archive), "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "archived": 7,
        "restored": 7,
        "conflicts": [],
        "cut_short": False,
        "dry_run": True,
    }
    assert configured.count() == 1
    restored = cli("failed", "restore", str(archive), "--yes")
    assert restored.exit_code == 0, restored.stderr
    assert "Restored 7 row(s); 0 already in the table" in restored.stderr
    assert _raw_rows(configured) == before  # the same ids, every column as it was

    again = cli("failed", "restore", str(archive), "--yes", "-o", "json")
    assert again.exit_code == 0
    assert sorted(json.loads(again.stdout)["conflicts"], key=int) == [str(r[0]) for r in before[:7]]
    assert _raw_rows(configured) == before  # conflicts reported, nothing overwritten


def test_an_archive_path_that_exists_or_is_a_link_is_refused_and_nothing_is_deleted(
    configured, cli, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    _old_rows(configured, 2)
    taken = tmp_path / "taken.jsonl"
    taken.write_text("precious\n")
    refused = cli("failed", "purge", "--older-than", "30d", "--archive", str(taken), "--yes")
    assert refused.exit_code == 2
    assert f"Error: archive {taken} is already there: an archive is never overwritten" in refused.stderr
    assert taken.read_text() == "precious\n"
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "elsewhere.jsonl")
    linked = cli("failed", "purge", "--older-than", "30d", "--archive", str(link), "--yes")
    assert linked.exit_code == 2
    assert f"Error: archive {link} is a symbolic link" in linked.stderr
    assert not (tmp_path / "elsewhere.jsonl").exists()
    assert configured.count() == 2


def test_purge_archive_dir_names_a_new_file_per_purge(configured, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "archives"
    folder.mkdir()
    config = write_config(tmp_path / "kafkaops.yaml", configured, purge={"archive_dir": str(folder)})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    _old_rows(configured, 4)
    assert cli("failed", "purge", "--older-than", "30d", "--yes").exit_code == 0
    (archive,) = folder.iterdir()
    assert archive.name.startswith("failed-purge-test-") and archive.name.endswith(".jsonl.gz")
    assert len(_archived(archive)) == 5


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_archive_that_cannot_be_written_stops_the_purge_before_that_batch_commits(
    pg_database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The archive's file may grow to 6,000 bytes only (RLIMIT_FSIZE, as a full disk would
    stop it): the batches written before commit, the one that did not fit is rolled back, and
    the error says so; every row gone is in the archive."""
    import shutil

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    pg_database.init()
    _old_rows(pg_database, 100)
    config = write_config(tmp_path / "k.yaml", pg_database)
    archive = tmp_path / "small.jsonl"
    done = run_kafkaops(
        "failed",
        "purge",
        "--older-than",
        "30d",
        "--batch-size",
        "5",
        "--archive",
        str(archive),
        "--yes",
        config=config,
        prefix=("prlimit", "--fsize=6000"),
    )
    assert done.returncode == 1, done.stderr
    kept = {r["id"] for r in pg_database.rows()}
    archived = {r["id"] for r in _archived_rows(archive)}
    deleted = set(range(1, 101)) - kept
    assert 0 < len(deleted) < 100 and deleted <= archived
    assert (
        f"Error: cannot write the archive {archive}: File too large; {len(deleted)} row(s) deleted in "
        "committed batches (all in the archive); the batch in flight was rolled back"
    ) in done.stderr


def _archived_rows(path: Path) -> list[dict[str, Any]]:
    from kafkaops.db.archive import read_archive

    return read_archive(path).rows


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_purge_killed_between_its_archive_write_and_its_commit_keeps_every_row(
    pg_database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A trigger deferred to COMMIT holds the purge there, after the archive was fsynced; the
    process is SIGKILLed; PostgreSQL then finishes the commit it was given. Every row deleted
    is in the archive (the gzip stream has no trailer: restore reads it all the same)."""
    db = pg_database
    db.init()
    _old_rows(db, 50)
    table = f'"{db.schema}".failed_kafka_events'
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"""
            CREATE FUNCTION "{db.schema}".slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('kafkaops_test.slept', true) IS NULL THEN
                    PERFORM set_config('kafkaops_test.slept', 'yes', true);
                    PERFORM pg_sleep(3);
                END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER DELETE ON {table}
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{db.schema}".slow_commit();
            """
        )
    config = write_config(tmp_path / "k.yaml", db)
    archive = tmp_path / "killed.jsonl.gz"
    proc = start_kafkaops(
        "failed", "purge", "--older-than", "30d", "--archive", str(archive), "--yes", config=config
    )
    committing = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kafkaops' "
        "AND wait_event = 'PgSleep' AND query = 'COMMIT'"
    )
    deadline = time.monotonic() + 60
    with db.engine.connect() as conn:
        while conn.execute(sa.text(committing)).scalar_one() == 0:
            conn.rollback()
            assert time.monotonic() < deadline and proc.poll() is None, "the purge never reached its COMMIT"
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    finish(proc)
    deadline = time.monotonic() + 30
    while db.count() and time.monotonic() < deadline:  # the server finishes the commit
        time.sleep(0.1)
    assert db.count() == 0
    with gzip.open(archive, "rb") as fh, pytest.raises(EOFError):
        fh.read()  # killed before the gzip trailer
    from kafkaops.db.archive import read_archive

    contents = read_archive(archive)
    assert sorted(r["id"] for r in contents.rows) == list(range(1, 51))
    # The journal says the purge never finished, and the archive brings every row back.
    listed = run_kafkaops("audit", "-o", "json", config=config)
    (entry,) = json.loads(listed.stdout)
    assert entry["command"] == "failed purge" and entry["outcome"].startswith(
        "none: the command never finished"
    )
    assert entry["rows"] == 50  # the batch's record committed with the batch
    back = run_kafkaops("failed", "restore", str(archive), "--yes", config=config)
    assert back.returncode == 0, back.stderr
    assert db.count() == 50


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_purge_killed_at_any_moment_on_sqlite_never_loses_a_row(configured, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if configured.kind != "sqlite":
        pytest.skip("PostgreSQL: the test above stops it exactly between archive and commit")
    _old_rows(configured, 20_000)
    archive = tmp_path / "killed.jsonl"
    proc = start_kafkaops(
        "failed", "purge", "--older-than", "30d", "--batch-size", "100", "--archive", str(archive), "--yes"
    )
    deadline = time.monotonic() + 60
    while (not archive.exists() or archive.stat().st_size < 200_000) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    finish(proc)
    from kafkaops.db.archive import read_archive

    kept = {r["id"] for r in configured.rows()}
    archived = {r["id"] for r in read_archive(archive).rows}
    deleted = set(range(1, 20_001)) - kept
    assert deleted, "killed before the first batch: nothing to prove"
    assert deleted <= archived  # in the archive, or still in the table: never in neither


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_purges_at_once_share_the_rows_and_each_archives_what_it_deleted(pg_database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    _old_rows(pg_database, 20_000)
    config = write_config(tmp_path / "k.yaml", pg_database)
    archives = [tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"]
    purges = [
        start_kafkaops(
            "failed",
            "purge",
            "--older-than",
            "30d",
            "--batch-size",
            "500",
            "--archive",
            str(a),
            "--yes",
            config=config,
        )
        for a in archives
    ]
    for proc in purges:
        code, _, err = finish(proc)
        assert code == 0, err
    assert pg_database.count() == 0
    from kafkaops.db.archive import read_archive

    first, second = ({r["id"] for r in read_archive(a).rows} for a in archives)
    assert not first & second and len(first | second) == 20_000
    listed = run_kafkaops("audit", "-o", "json", config=config)
    entries = json.loads(listed.stdout)
    assert sorted(e["rows"] for e in entries) == sorted([len(first), len(second)])
    assert {e["outcome"] for e in entries} == {"ok"}


class _StopsAtBatch:
    """A witness (as the audit journal is) that fails inside the third batch's transaction."""

    def __init__(self) -> None:
        self.seen = 0
        self.committed_ids: list[Any] = []
        self._pending: list[Any] = []

    def batch(self, conn: Any, ids: Any) -> None:
        self.seen += 1
        if self.seen == 3:
            raise RuntimeError("the witness failed")
        self._pending = list(ids)

    def committed(self) -> None:
        self.committed_ids += self._pending


@pytest.mark.timeout(120)
def test_a_purge_stopped_inside_a_batch_keeps_the_committed_ones_and_leaves_no_transaction(
    pg_database, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Stopped inside its third batch (its journal record failed): the two batches before
    stay committed, the third is rolled back, no transaction is left open, and every row gone
    is in the archive."""
    from kafkaops.config.settings import Overrides, load_settings
    from kafkaops.db.actions import Purge
    from kafkaops.db.archive import ArchiveWriter, archive_header, live_table, read_archive
    from kafkaops.db.connections import Connections
    from kafkaops.db.failed_events import EventFilter

    pg_database.init()
    _old_rows(pg_database, 1_000)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    conns = Connections(load_settings(Overrides()))
    try:
        db = conns.settings.database
        with conns.begin() as conn:
            live = live_table(conn, db)
        archive = ArchiveWriter(tmp_path / "a.jsonl", archive_header(live, db, context=None, now=NOW))
        purge = Purge(
            conns,
            EventFilter(),
            older_than=NOW - timedelta(days=30),
            batch_size=100,
            within=timedelta(seconds=30),
        )
        purge.keep_in(archive, live)
        witness = _StopsAtBatch()
        purge.witness = witness
        # The exception kept, as a caller that reports it keeps it.
        with pytest.raises(RuntimeError, match="the witness failed") as stopped:
            purge.run()
        archive.close()
        with conns.engine.connect() as conn:
            open_transactions = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kafkaops' "
                    "AND state LIKE 'idle in transaction%'"
                )
            ).scalar()
    finally:
        conns.close()
    assert open_transactions == 0, stopped.value
    kept = {r["id"] for r in pg_database.rows()}
    gone = set(range(1, 1_001)) - kept
    assert len(gone) == 200 and gone == set(witness.committed_ids)  # two batches committed
    assert gone <= {r["id"] for r in read_archive(tmp_path / "a.jsonl").rows}
