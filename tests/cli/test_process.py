"""kafkaops as a real process: exit codes, streams, and no secret anywhere in what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.events import event

SECRET = "pa55-w0rd-never-shown"


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kafkaops", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def with_password(url: str) -> str:
    # Trust auth accepts any password: the point is that kafkaops never shows it.
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def test_real_process_counts_and_keeps_the_password_secret(pg_database) -> None:
    pg_database.init()
    pg_database.insert([event(1, status="DLQ_FAILED"), event(2)])
    env = {"KAFKAOPS_DATABASE_URL": with_password(pg_database.url), "KAFKAOPS_KAFKA_SASL_PASSWORD": SECRET}
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"kafkaops-e2e-{os.getpid()}.yaml"
    config.write_text(f"contexts:\n  e2e:\n    database:\n      schema: {pg_database.schema}\n")
    env["KAFKAOPS_CONFIG"] = str(config)
    try:
        result = run("failed", "-o", "json", env=env)
        assert result.returncode == 0, result.stderr
        assert {g["status"]: g["count"] for g in json.loads(result.stdout)} == {"DLQ_FAILED": 1, "PENDING": 1}
        shown = run("config", "show", env=env)
        bad = run("failed", "--group-by", "nope", env=env)
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.startswith("Error: cannot group by 'nope'")
        refused = run("failed", "requeue", env=env, stdin="y\n")  # stdin is no terminal: never guess
        assert refused.returncode == 2
        assert pg_database.count(pg_database.table.c.status == "DLQ_FAILED") == 1
        for proc in (result, shown, bad, refused):
            assert SECRET not in proc.stdout + proc.stderr
        assert "postgresql://postgres:****@" in shown.stdout
    finally:
        config.unlink()


def test_unreachable_database_exit_1_one_line(tmp_path: Path) -> None:
    result = run(
        "failed", "list", env={"KAFKAOPS_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/casino"}
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr
        == "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused\n"
    )


def test_nothing_configured_exit_2() -> None:
    result = run("failed", env={"XDG_CONFIG_HOME": "/nonexistent"})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "Error: no database configured"


def test_usage_errors_from_the_parser_exit_2() -> None:
    result = run("failed", "--top", "0", env={})
    assert result.returncode == 2
    assert "Invalid value for '--top'" in result.stderr


def test_sandbox_serves_kafka_until_terminated() -> None:
    import signal

    from confluent_kafka import Producer

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkaops", "sandbox", "--topic", "orders:2"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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


def test_a_reader_that_goes_away_ends_the_command_quietly(pg_database) -> None:
    """`kafkaops failed ... | head -1`: no traceback, no hang on a half-read stream, exit 141."""
    import sqlalchemy as sa

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
    config.write_text(
        f"contexts:\n  e2e:\n    database:\n      url: {pg_database.url}\n      schema: {pg_database.schema}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(config)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kafkaops", "failed", "--group-by", "last_error", "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"[\n"
        proc.stdout.close()  # the reader goes away with most of the output unread
        _, err = proc.communicate(timeout=30)
    finally:
        config.unlink()
    assert proc.returncode == 141
    assert err == b""
