"""kafkaops as a real process: exit codes, streams, and no secret anywhere in what it prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers.config import write_config
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops, start_kafkaops

SECRET = "pa55-w0rd-never-shown"


def with_password(url: str) -> str:
    # Trust auth accepts any password: the point is that kafkaops never shows it.
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


@pytest.mark.slow
def test_real_process_counts_and_keeps_the_password_secret(pg_database) -> None:
    pg_database.init()
    pg_database.insert([event(1, status="DLQ_FAILED"), event(2)])
    env = {"KAFKAOPS_DATABASE_URL": with_password(pg_database.url), "KAFKAOPS_KAFKA_SASL_PASSWORD": SECRET}
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"kafkaops-e2e-{os.getpid()}.yaml"
    write_config(config, text=f"contexts:\n  e2e:\n    database:\n      schema: {pg_database.schema}\n")
    env["KAFKAOPS_CONFIG"] = str(config)
    try:
        result = run_kafkaops("failed", "-o", "json", env=env)
        assert result.returncode == 0, result.stderr
        assert {g["status"]: g["count"] for g in json.loads(result.stdout)} == {"DLQ_FAILED": 1, "PENDING": 1}
        shown = run_kafkaops("config", "show", env=env)
        bad = run_kafkaops("failed", "--group-by", "nope", env=env)
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.startswith("Error: cannot group by 'nope'")
        refused = run_kafkaops("failed", "requeue", env=env, input="y\n")  # stdin is no terminal: never guess
        assert refused.returncode == 2
        assert pg_database.count(pg_database.table.c.status == "DLQ_FAILED") == 1
        for proc in (result, shown, bad, refused):
            assert SECRET not in proc.stdout + proc.stderr
        assert "postgresql://postgres:****@" in shown.stdout
    finally:
        config.unlink()


@pytest.mark.slow
def test_unreachable_database_exit_1_one_line(tmp_path: Path) -> None:
    result = run_kafkaops(
        "failed", "list", env={"KAFKAOPS_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/casino"}
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr
        == "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused\n"
    )


@pytest.mark.slow
def test_nothing_configured_exit_2() -> None:
    result = run_kafkaops("failed", env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "Error: no database configured"


def test_usage_errors_from_the_parser_exit_2() -> None:
    result = run_kafkaops("failed", "--top", "0", env={})
    assert result.returncode == 2
    assert "Invalid value for '--top'" in result.stderr


@pytest.mark.slow
def test_sandbox_serves_kafka_until_terminated() -> None:

    from confluent_kafka import Producer

    proc = start_kafkaops("sandbox", "--topic", "orders:2", stdin=None)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]  # type: ignore[union-attr]
        servers = next(line for line in lines if line.startswith("export KAFKAOPS_BOOTSTRAP_SERVERS="))
        producer = Producer({"bootstrap.servers": servers.split("=", 1)[1]})
        delivered: list[object] = []
        producer.produce("orders", b"x", on_delivery=lambda err, msg: delivered.append(err))
        producer.flush(10)
        assert delivered == [None]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_command_quietly(pg_database) -> None:
    """`kafkaops failed ... | head -1`: no traceback, no hang on a half-read stream, exit 141."""

    pg_database.init()
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'INSERT INTO "{pg_database.schema}".failed_kafka_events '
                "(topic, payload, status, retry_count, created_at, updated_at, last_error) "
                "SELECT 't', '{}', 'PENDING', 0, now(), now(), 'error number ' || n FROM generate_series(1, 20000) n"
            )
        )
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"kafkaops-pipe-{os.getpid()}.yaml"
    write_config(
        config,
        text=f"contexts:\n  e2e:\n    database:\n      url: {pg_database.url}\n      schema: {pg_database.schema}\n",
    )
    try:
        proc = start_kafkaops(
            "failed", "--group-by", "last_error", "-o", "json", config=config, stdin=None, text=False
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"[\n"
        proc.stdout.close()  # the reader goes away with most of the output unread
        _, err = proc.communicate(timeout=30)
    finally:
        config.unlink()
    assert proc.returncode == 141
    assert err == b""


@pytest.fixture
def sqlite_config(make_database, tmp_path: Path):  # type: ignore[no-untyped-def]
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, status="DLQ_FAILED", last_error="boom"), event(2)])
    return db, write_config(tmp_path / "kafkaops.yaml", db)


@pytest.mark.slow
def test_closed_stderr_does_not_fail_a_command_that_worked(sqlite_config) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    result = run_kafkaops("failed", "-o", "json", config=config, close=(2,))
    assert result.returncode == 0
    assert {g["status"]: g["count"] for g in json.loads(result.stdout)} == {"DLQ_FAILED": 1, "PENDING": 1}


@pytest.mark.slow
def test_closed_stdout_is_one_error_line_and_exit_1(sqlite_config) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    result = run_kafkaops("failed", "list", config=config, close=(1,), stdout=None)
    assert result.returncode == 1
    assert result.stderr == "Error: cannot write the output: standard output is closed\n"


@pytest.mark.parametrize("args", [("failed", "-o", "json"), ("failed", "list"), ("config", "show")])
@pytest.mark.slow
def test_a_full_disk_is_one_error_line_and_exit_1(sqlite_config, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    _, config = sqlite_config
    with open("/dev/full", "w") as full:
        result = run_kafkaops(*args, config=config, stdout=full)
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
