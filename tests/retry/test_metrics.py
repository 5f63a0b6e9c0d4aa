"""What a retry pass reports for monitoring: its metrics file (Prometheus text, written on failure,
locked against concurrent passes, no `_created` resets), the Pushgateway, and bad metrics targets
found before anything is published.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kafkaops.retry.job import PassSummary
from tests.helpers.events import event
from tests.helpers.retry import INVALID_RECORD, configure, due_rows, statuses
from tests.helpers.topics import consume


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


# -- metrics ---------------------------------------------------------------------------------------


def test_a_pass_that_fails_midway_writes_what_it_did_and_keeps_last_success(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    pg_database.insert([event(i) for i in range(4)])
    path = tmp_path / "kafkaops.prom"
    monkeypatch.setenv("KAFKAOPS_NOW", "2026-11-27T12:00:00Z")
    assert cli("retry", "--metrics-file", str(path)).exit_code == 0
    last_success = samples(path)[("kafkaops_retry_last_success_timestamp_seconds", ())]
    assert last_success == datetime(2026, 11, 27, 12, tzinfo=timezone.utc).timestamp()
    # The next pass publishes a batch, then the database refuses to settle the second one.
    pg_database.insert([event(10 + i, event_id=f"late-{i}") for i in range(6)])
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE FUNCTION "{pg_database.schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS '
            "$$ BEGIN RAISE EXCEPTION 'no'; END $$; "
            f'CREATE TRIGGER refuse BEFORE UPDATE ON "{pg_database.schema}".failed_kafka_events '
            f"FOR EACH ROW WHEN (NEW.event_id = 'late-5') EXECUTE FUNCTION \"{pg_database.schema}\".refuse()"
        )
    monkeypatch.setenv("KAFKAOPS_NOW", "2026-11-27T13:00:00Z")  # a later pass, a later clock
    result = cli("retry", "--batch-size", "3", "--metrics-file", str(path), "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["resolved"] == 5
    after = samples(path)
    # Six acknowledged by the broker (late-5 too: published, then its settle refused), five settled.
    assert after[("kafka_retry_success_total", (("topic", "casino.player.registered.v1"),))] == 4 + 6
    assert after[("kafkaops_retry_events", (("outcome", "resolved"),))] == 5
    assert after[("kafkaops_retry_last_success_timestamp_seconds", ())] == last_success


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_a_metrics_file_lock_held_elsewhere_is_waited_for_a_few_seconds_not_for_ever(
    make_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    import fcntl

    from tests.helpers.retry import statuses

    db = make_database("sqlite")
    db.init()
    # retry.metrics_lock_timeout, 5 s unless configured
    configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, metrics_lock_timeout="1s")
    embedded_kafka.create_topic("casino.player.registered.v1")
    db.insert([event(i) for i in range(3)])
    path = tmp_path / "kafkaops.prom"
    with open(tmp_path / ".kafkaops.prom.lock", "a") as held:  # a pass hung while holding it
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        result = cli("retry", "--metrics-file", str(path), "-o", "json")
        waited = time.monotonic() - started
    assert waited >= 1  # as long as it says (the message names the configured wait)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot write metrics to {path}: its lock {tmp_path}/.kafkaops.prom.lock is held by "
        "another process after 1s; this pass's counts are not in the file "
        "(the rows were settled)"
    )
    assert json.loads(result.stdout)["resolved"] == 3  # the pass's own result, as it was
    assert statuses(db) == {"RESOLVED": 3}
    assert not path.exists()


def _write(path: str, n: int) -> None:
    from kafkaops.retry.metrics import write_textfile

    for _ in range(n):
        summary = PassSummary(claimed=1, resolved=1)
        summary.attempts_by_topic["t"] += 1
        summary.resolved_by_topic["t"] += 1
        write_textfile(path, summary)


@pytest.mark.slow
def test_concurrent_passes_lose_no_counter_increment_and_write_no_created_series(tmp_path) -> None:
    path = tmp_path / "kafkaops.prom"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(str(path), 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=100)
        assert worker.exitcode == 0
    found = samples(path)
    assert found[("kafka_retry_attempts_total", (("topic", "t"),))] == 100
    assert found[("kafka_retry_success_total", (("topic", "t"),))] == 100
    assert not [name for name, _ in found if name.endswith("_created")]
    assert "_created" not in path.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".prom"] == ["kafkaops.prom"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pushgateway", "not a url"), "is not an http(s) URL"),
        (("--pushgateway", "ftp://gateway:9091"), "is not an http(s) URL"),
        (("--pushgateway", "http://"), "is not an http(s) URL"),
        (
            ("--metrics-file", "/nonexistent-folder/kafkaops.prom"),
            ": folder /nonexistent-folder does not exist",
        ),
    ],
)
@pytest.mark.slow
def test_a_bad_metrics_target_is_found_before_anything_is_published(
    database, embedded_kafka, cli, tmp_path, monkeypatch, args: tuple[str, ...], message: str
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    database.insert([event(i) for i in range(3)])
    before = database.rows()
    result = cli("retry", *args)
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"Error: {args[0]} ") and first.endswith(message)
    assert database.rows() == before
    assert consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", idle=0.5, timeout=3) == []


# -- whose fault --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_file_is_prometheus_text(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("refused")
    embedded_kafka.refuse_produce("refused", INVALID_RECORD)
    database.insert([event(i, topic="ok" if i < 3 else "refused") for i in range(5)])
    path = tmp_path / "kafkaops.prom"
    assert cli("retry", "--metrics-file", str(path)).exit_code == 1  # two permanent failures
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }
    assert samples[("kafka_retry_attempts_total", (("topic", "ok"),))] == 3
    assert samples[("kafka_retry_attempts_total", (("topic", "refused"),))] == 2
    assert samples[("kafka_retry_success_total", (("topic", "ok"),))] == 3
    assert samples[("kafkaops_retry_events", (("outcome", "permanent"),))] == 2
    assert abs(samples[("kafkaops_retry_last_success_timestamp_seconds", ())] - time.time()) < 60
    assert not list(tmp_path.glob("kafkaops.prom.*"))  # no temp file left behind
    database.insert([event(10 + i, topic="ok") for i in range(4)])
    assert cli("retry", "--metrics-file", str(path)).exit_code == 0
    again = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }
    assert again[("kafka_retry_success_total", (("topic", "ok"),))] == 7  # counters keep counting
    assert again[("kafka_retry_attempts_total", (("topic", "refused"),))] == 2


@pytest.mark.slow
def test_pushgateway_receives_the_metrics(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.append((self.command, self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        database.init()
        configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
        due_rows(database, 2)
        result = cli("retry", "--pushgateway", f"http://127.0.0.1:{server.server_port}")
        assert result.exit_code == 0, result.stderr
    finally:
        server.shutdown()
    [(method, path, body)] = received

    assert (method, path) == ("PUT", f"/metrics/job/kafkaops_retry/instance/{socket.gethostname()}")
    assert b'kafka_retry_success_total{topic="casino.player.registered.v1"} 2.0' in body


def test_unreachable_pushgateway_is_one_line_and_exit_1(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    from tests.helpers.embedded_fixtures import free_port

    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    due_rows(database, 1)
    result = cli("retry", "--pushgateway", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "Error: cannot push metrics to http://127.0.0.1:" in result.stderr
    assert statuses(database) == {"RESOLVED": 1}  # the pass itself was done and kept
