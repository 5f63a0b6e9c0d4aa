"""Defects found by an adversarial trial of `failed`, config and the output layer, one test each.

Each test drives kafkaops the way the trial did (a real process where streams, signals or exit
codes matter; CliRunner otherwise) against real PostgreSQL and SQLite, and fails if the defect
comes back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import write_config
from tests.helpers.events import event


def kafkaops(
    *args: str,
    config: Path | None = None,
    env: dict[str, str] | None = None,
    close: tuple[int, ...] = (),
    stdout: Any = subprocess.PIPE,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """kafkaops as a real process; `close` names standard descriptors closed before it starts
    (as `>&-` and `2>&-` do in a shell)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    if config is not None:
        full_env["KAFKAOPS_CONFIG"] = str(config)
    full_env.update(env or {})

    def closing() -> None:
        for fd in close:
            os.close(fd)

    return subprocess.run(
        [sys.executable, "-m", "kafkaops", *args],
        env=full_env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        preexec_fn=closing if close else None,
    )


@pytest.fixture
def sqlite_config(make_database, tmp_path: Path):  # type: ignore[no-untyped-def]
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, status="DLQ_FAILED", last_error="boom"), event(2)])
    return db, write_config(tmp_path / "kafkaops.yaml", db)


# -- closed and full standard streams ----------------------------------------------------------


def test_closed_stderr_does_not_fail_a_command_that_worked(sqlite_config) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    result = kafkaops("failed", "-o", "json", config=config, close=(2,))
    assert result.returncode == 0
    assert {g["status"]: g["count"] for g in json.loads(result.stdout)} == {"DLQ_FAILED": 1, "PENDING": 1}


def test_closed_stdout_is_one_error_line_and_exit_1(sqlite_config) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    result = kafkaops("failed", "list", config=config, close=(1,), stdout=None)
    assert result.returncode == 1
    assert result.stderr == "Error: cannot write the output: standard output is closed\n"


@pytest.mark.parametrize("args", [("failed", "-o", "json"), ("failed", "list"), ("config", "show")])
def test_a_full_disk_is_one_error_line_and_exit_1(sqlite_config, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    with open("/dev/full", "w") as full:
        result = kafkaops(*args, config=config, stdout=full)
    assert result.returncode == 1
    assert result.stderr == "Error: cannot write the output: No space left on device\n"


def test_a_closed_stderr_never_becomes_the_database_file(tmp_path: Path) -> None:
    """With fd 2 closed, the next file opened (the SQLite database) would get fd 2, and anything
    a library writes to stderr would land in it. The guard runs before anything is opened."""
    code = (
        "import os; from kafkaops.cli.output import guard_standard_streams; guard_standard_streams(); "
        "print(os.open(os.devnull, os.O_RDONLY))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=30,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 0
    assert int(result.stdout) > 2


# -- a frozen table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("failed",), ("failed", "purge", "--older-than", "1d", "--yes"), ("db", "check")]
)
def test_a_table_locked_by_a_migration_gives_up_with_one_error_instead_of_hanging(
    pg_database, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A session holding ACCESS EXCLUSIVE (ALTER TABLE, VACUUM FULL): every command gives up after
    its lock timeout (database.lock_timeout, here 1 s of the default 10 s) with one clear line,
    exit 1, and changes nothing. The subprocess timeout makes a hang a failure, not a stuck
    suite."""
    from datetime import timedelta

    from tests.helpers.events import NOW

    pg_database.init()
    pg_database.insert([event(1, status="RESOLVED", updated_at=NOW - timedelta(days=40))])
    config = write_config(tmp_path / "kafkaops.yaml", pg_database, database={"lock_timeout": "1500ms"})
    holder = pg_database.engine.connect()
    try:
        holder.execute(sa.text("SET lock_timeout = '5s'"))
        holder.execute(
            sa.text(f'LOCK TABLE "{pg_database.schema}".failed_kafka_events IN ACCESS EXCLUSIVE MODE')
        )
        started = time.monotonic()
        result = kafkaops(*args, config=config, timeout=45)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0] == (
        "Error: the table is locked by another session; gave up after waiting 1.5 s"
    )
    assert result.stderr.splitlines()[1].startswith("Hint: a migration, VACUUM FULL")
    assert 1.5 <= waited < 9  # it did wait for the lock, as long as it says, and no longer
    assert pg_database.count() == 1


# -- the database URL and a database that goes away --------------------------------------------


def test_options_in_a_postgresql_url_are_kept(pg_database, tmp_path: Path) -> None:
    """`?options=-csearch_path=...` picks the schema for psql and libpq; kafkaops used to drop
    it for its own TimeZone option and read (or purge!) the table of another schema."""
    pg_database.init()
    pg_database.insert([event(n, status="DLQ_FAILED") for n in range(3)])
    url = f"{pg_database.url}?options=-csearch_path%3D{pg_database.schema}"
    result = kafkaops("failed", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["count"] == 3
    shown = kafkaops("failed", "list", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert json.loads(shown.stdout)[0]["created_at"].endswith("Z")  # kafkaops' UTC session still holds


def test_a_connection_lost_mid_stream_is_one_error_line_without_traceback(
    pg_database, tmp_path: Path
) -> None:
    pg_database.init()
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{pg_database.schema}".failed_kafka_events '
                "(topic, payload, status, retry_count, created_at, updated_at, last_error) "
                "SELECT 't', '{}', 'PENDING', 0, now(), now(), repeat('e', 200) FROM generate_series(1, 200000)"
            )
        )
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkaops", "failed", "list", "--all", "-o", "jsonl"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith('{"id"')  # streaming has begun
        with pg_database.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kafkaops' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert killed
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err


# -- many ids, and Ctrl-C in the middle of a purge --------------------------------------------


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


PURGE_ONE_BY_ONE = ("--batch-size", "1", "-o", "json")


def _old_resolved_rows(pg_database: Any, tmp_path: Path, rows: int) -> dict[str, str]:
    """`rows` RESOLVED rows last updated 40 days ago; the environment of a kafkaops process
    configured for them."""
    from datetime import timedelta

    from tests.helpers.events import NOW

    pg_database.init()
    old = NOW - timedelta(days=40)
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{pg_database.schema}".failed_kafka_events '
                "(topic, payload, status, retry_count, created_at, updated_at) "
                "SELECT 't', '{}', 'RESOLVED', 0, :old, :old FROM generate_series(1, :rows)"
            ),
            {"old": old, "rows": rows},
        )
    config = write_config(tmp_path / "kafkaops.yaml", pg_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(config)
    return env


def test_ctrl_c_in_the_middle_of_a_purge_says_how_many_rows_were_deleted(pg_database, tmp_path: Path) -> None:
    env = _old_resolved_rows(pg_database, tmp_path, 20_000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafkaops",
            "failed",
            "purge",
            "--older-than",
            "30d",
            "--yes",
            *PURGE_ONE_BY_ONE,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "match in context test" in proc.stderr.readline()  # the purge has begun
        deadline = time.monotonic() + 20
        while pg_database.count() > 19_900 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    gone = 20_000 - pg_database.count()
    assert proc.returncode == 130, err
    assert 0 < gone < 20_000
    said = json.loads(out)
    assert said["interrupted"] is True
    # Batches of one row: the count said is exact, or one short if the interrupt came mid-commit.
    assert gone - 1 <= said["deleted"] <= gone
    assert f"Interrupted after deleting {said['deleted']:,} row(s);" in err
    assert "Traceback" not in err


@pytest.mark.timeout(60)
def test_ctrl_c_while_a_statement_runs_is_an_interrupt_not_a_database_error(
    pg_database, tmp_path: Path
) -> None:
    """Ctrl-C while PostgreSQL executes the purge's DELETE (here: waiting for a table lock
    another session holds) is an interrupt (exit 130, nothing deleted), not a database error.
    (The rarer case, where the rollback on the way out fails and must not replace the
    interrupt, is test_db_errors' test of the unwinding itself.)"""
    env = _old_resolved_rows(pg_database, tmp_path, 10)
    table = f'"{pg_database.schema}".failed_kafka_events'
    holder = pg_database.engine.connect()
    try:
        holder.execute(sa.text("SET lock_timeout = '30s'"))
        # Readers pass, the purge's DELETE waits (and kafkaops gives up after 10 s).
        holder.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kafkaops",
                "failed",
                "purge",
                "--older-than",
                "30d",
                "--yes",
                "-o",
                "json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                time.sleep(0.05)
                with pg_database.engine.connect() as probe:
                    waiting = probe.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query ILIKE 'DELETE%'"
                        )
                    ).scalar_one()
            assert waiting, "the purge never waited for the lock"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 130, err
    assert json.loads(out)["deleted"] == 0
    assert "Interrupted after deleting 0 row(s)" in err
    assert "database error" not in err and "Traceback" not in err
    assert pg_database.count() == 10


# -- --error on text that is not ASCII ---------------------------------------------------------


def test_error_filter_ignores_case_beyond_ascii_on_both_databases(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, status="DLQ_FAILED", last_error="ÉCHEC de connexion au courtier"),
            event(2, status="DLQ_FAILED", last_error="Ошибка: брокер недоступен"),
            event(3, status="DLQ_FAILED", last_error="timeout"),
        ]
    )
    for needle, expected in (("échec", 1), ("ОШИБКА", 2), ("TIMEOUT", 3)):
        result = cli("failed", "list", "--error", needle, "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert [row["id"] for row in json.loads(result.stdout)] == [expected], needle


# -- a table of a million rows -----------------------------------------------------------------


def test_a_long_table_is_written_block_by_block_not_held_in_memory() -> None:
    """`failed list --all` piped as a table held every row (a million rows: 1 GB). Rows are now
    laid out a block at a time: the first block is out before the rest has been read."""
    import io

    from kafkaops.cli.fields import Field
    from kafkaops.cli.output import Format, Output, TableWriter

    screen = io.StringIO()
    seen_when_reading: list[int] = []

    def rows() -> Any:
        for n in range(2 * TableWriter.BLOCK + 10):
            if n == TableWriter.BLOCK + 5:
                seen_when_reading.append(screen.getvalue().count("\n"))
            yield {"id": n, "last_error": "e" * (n // TableWriter.BLOCK + 1)}

    written = Output(Format.table, stdout=screen).rows(
        rows(), [Field("id", "ID"), Field("last_error", "ERR")]
    )
    assert written == 2 * TableWriter.BLOCK + 10
    assert seen_when_reading == [TableWriter.BLOCK + 1]  # header and the first block
    lines = screen.getvalue().splitlines()
    assert len(lines) == 2 * TableWriter.BLOCK + 11 and lines[0].split() == ["ID", "ERR"]
    assert lines[-1].split() == [str(2 * TableWriter.BLOCK + 9), "eee"]


def test_yaml_never_sends_a_bidirectional_override_to_the_terminal(configured, cli) -> None:  # type: ignore[no-untyped-def]
    import yaml

    hostile = "refund \u202eredro\u202c to é中 \x1b[2J"
    configured.insert([event(1, status="DLQ_FAILED", last_error=hostile, topic="casino.é")])
    for args in (("failed", "list", "-o", "yaml"), ("failed", "show", "1", "-o", "yaml")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert "\u202e" not in result.stdout and "\x1b" not in result.stdout
        data = yaml.safe_load(result.stdout)
        row = data[0] if isinstance(data, list) else data
        assert row["last_error"] == hostile and row["topic"] == "casino.é"  # the data, exact
    plain = cli("failed", "-g", "topic", "-o", "yaml")
    assert "casino.é" in plain.stdout  # without an override, non-ASCII text stays readable


# -- config: an ambiguous URL, a config path that is no file -----------------------------------


def test_a_short_piece_of_a_password_after_an_unencoded_at_sign_is_never_shown() -> None:
    """The driver reads `x1@127.0.0.1` as the host and names it in its error: the end of the
    password, too short to be masked as a piece of its own."""
    url = "postgresql://app:Zq@x1@127.0.0.1:1/casino"
    result = kafkaops("failed", env={"KAFKAOPS_DATABASE_URL": url, "XDG_CONFIG_HOME": "/nonexistent"})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: ")
    assert "x1" not in result.stderr and "Zq" not in result.stderr


def test_an_encoded_at_sign_is_fine(pg_database) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    url = pg_database.url.replace("postgresql://postgres@", "postgresql://postgres:Zq%40x1@")
    url += f"?options=-csearch_path%3D{pg_database.schema}"
    result = kafkaops("failed", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("make", "why"), [("dir", "is a directory"), ("fifo", "is not a regular file")])
def test_a_config_path_that_is_no_regular_file_says_what_it_is(tmp_path: Path, make: str, why: str) -> None:
    path = tmp_path / "kafkaops.yaml"
    if make == "dir":
        path.mkdir()
    else:
        os.mkfifo(path)
    result = kafkaops("--config", str(path), "failed", timeout=30)  # a FIFO is never opened: no hang
    assert result.returncode == 2
    assert result.stderr == f"Error: config file {path} (from --config) {why}\n"


# -- empty filters and a cutoff in the future never widen a purge ------------------------------


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
    purge = ("purge", "--older-than", "30d", "--yes")
    args = ("failed", *purge, option, value) if where == "after" else ("failed", option, value, *purge)
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {option} is empty: give a value, or leave the option out\n"
    assert configured.count() == 1


def test_error_may_search_for_a_space(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(1, last_error="no space"), event(2, last_error="nospace")])
    result = cli("failed", "list", "--error", " ", "-o", "json")
    assert [row["id"] for row in json.loads(result.stdout)] == [1]


def test_a_purge_cutoff_in_the_future_is_refused(configured, cli) -> None:  # type: ignore[no-untyped-def]
    """A mistyped year (`--older-than 2062-11-01`) matched every purgeable row."""
    configured.insert([event(1, status="RESOLVED"), event(2, status="DLQ")])
    result = cli("failed", "purge", "--status", "RESOLVED,DLQ", "--older-than", "2062-11-01", "--yes")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: --older-than '2062-11-01' is in the future: every row would match",
        "Hint: to delete the rows whatever their age, say so: --older-than 0s",
    ]
    assert configured.count() == 2
    assert cli("failed", "purge", "--status", "RESOLVED,DLQ", "--older-than", "0s", "--yes").exit_code == 0
    assert configured.count() == 0


# -- SQLite rows that are not UTF-8 --------------------------------------------------------------


def test_sqlite_rows_that_are_not_utf8_are_listed_and_shown_byte_for_byte(
    make_database, tmp_path: Path
) -> None:
    """One row with bytes that are not UTF-8 made every command fail (`Could not decode to UTF-8
    column 'topic'`), including the list that would show which row it is."""
    import csv
    import io

    import yaml

    db = make_database("sqlite")
    db.init()
    db.insert([event(1, status="DLQ_FAILED", last_error="fine")])
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO failed_kafka_events (event_id, topic, event_key, payload, headers, status, "
            "retry_count, last_error, error_type, created_at, updated_at) VALUES (CAST(X'ff41' AS TEXT), "
            "CAST(X'6361ff' AS TEXT), CAST(X'fffe' AS TEXT), CAST(X'7b7dff' AS TEXT), NULL, 'DLQ_FAILED', 1, "
            "CAST(X'c328' AS TEXT), X'00ff', '2026-11-27 10:00:00.000000', '2026-11-27 10:00:00.000000')"
        )
    config = write_config(tmp_path / "kafkaops.yaml", db)

    grouped = kafkaops("failed", "-g", "topic", "-o", "json", config=config)
    assert grouped.returncode == 0, grouped.stderr
    assert {g["topic"]: g["count"] for g in json.loads(grouped.stdout)} == {
        "casino.player.registered.v1": 1,
        "ca\udcff": 1,  # JSON's "\udcff": the byte that was not UTF-8, escaped
    }
    table = kafkaops("failed", "list", config=config)
    assert table.returncode == 0, table.stderr
    assert "ca\\xff" in table.stdout and "\\xc3(" in table.stdout  # shown, never sent raw
    shown = kafkaops("failed", "show", "2", config=config)
    assert "payload (not JSON, shown as stored):\n{}\\xff" in shown.stdout
    as_json = json.loads(kafkaops("failed", "show", "2", "-o", "json", config=config).stdout)
    assert as_json["event_key"] == "\udcff\udcfe" and as_json["error_type"] == "\x00\udcff"
    as_yaml = yaml.safe_load(kafkaops("failed", "show", "2", "-o", "yaml", config=config).stdout)
    assert as_yaml["topic"] == "ca\udcff"
    # Piped csv writes values exact: the stored bytes themselves.
    raw = subprocess.run(
        [sys.executable, "-m", "kafkaops", "--config", str(config), "failed", "list", "-o", "csv"],
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")},
    )
    assert raw.returncode == 0, raw.stderr
    rows = list(csv.DictReader(io.StringIO(raw.stdout.decode("utf-8", "surrogateescape"))))
    bad = next(row for row in rows if row["id"] == "2")
    assert bad["topic"].encode("utf-8", "surrogateescape") == b"ca\xff"
