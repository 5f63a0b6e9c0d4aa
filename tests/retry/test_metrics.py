"""What a retry pass tells the world under faults: its metrics file (written on failure, locked
against concurrent passes, no `_created` resets), `-o json` when nothing can be reached, bad
metrics targets found before publishing, environmental broker errors, the DLQ out of reach.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kafkaops.demo.cluster import ApiKey
from kafkaops.retry.job import PassSummary
from tests.helpers.events import event
from tests.helpers.topics import consume
from tests.retry.test_pass import configure

INVALID_RECORD = 87  # the broker refuses the record itself: the event's fault
INVALID_TIMESTAMP = 32
MESSAGE_TOO_LARGE = 10


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
def test_a_metrics_file_lock_held_elsewhere_is_waited_for_a_few_seconds_not_for_ever(
    make_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    import fcntl

    from tests.retry.test_pass import statuses

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


# -- -o json always gives the summary ---------------------------------------------------------------


def test_json_summary_when_kafka_is_unreachable(database, cli, tmp_path, monkeypatch, closed_port) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, f"127.0.0.1:{closed_port}")
    database.insert([event(1)])
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["claimed"], summary["resolved"]) == (0, 0)
    assert summary["error"].startswith("cannot reach Kafka at 127.0.0.1:")
    assert result.stderr.startswith("Error: cannot reach Kafka at 127.0.0.1:")


def test_json_summary_when_the_database_is_unreachable(cli, tmp_path, monkeypatch, closed_port) -> None:
    env = {
        "KAFKAOPS_DATABASE_URL": f"postgresql://app:hunter2@127.0.0.1:{closed_port}/casino",
        "KAFKAOPS_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    result = cli("retry", "-o", "json", env=env)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["claimed"] == 0
    assert summary["error"] == (
        f"cannot connect to database postgresql://app@127.0.0.1:{closed_port}/casino: connection refused"
    )
    assert "hunter2" not in result.stdout + result.stderr


def test_summary_table_names_the_pass_breaker(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    database.insert([event(1)])
    result = cli("retry")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert "PASS" in header and "BREAKER" in header and "CIRCUIT_BREAKER" not in header


# -- whose fault --------------------------------------------------------------------------------------


def test_invalid_timestamp_is_the_environment_not_the_event(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, breaker_threshold=100)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_request_errors(ApiKey.Produce, *[INVALID_TIMESTAMP] * 50)
    database.insert([event(i) for i in range(5)])
    before = database.rows()
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["resolved"], summary["rescheduled"], summary["aborted"]) == (0, 0, 5)
    assert "5x INVALID_TIMESTAMP" in result.stderr
    assert database.rows() == before  # no attempt counted, no error recorded


def test_an_unreachable_dlq_leaves_the_row_pending_as_it_was(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="2s")
    embedded_kafka.create_topic("refused")
    embedded_kafka.refuse_produce("refused", INVALID_RECORD)
    embedded_kafka.partition_set_leader("refused.dlq", 0, -1)  # leaderless: the DLQ send times out
    database.insert([event(1, topic="refused", retry_count=4, last_error="before", error_type="E")])
    before = database.rows()
    result = cli("retry", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["dlq"], summary["dlq_failed"], summary["aborted"]) == (0, 0, 1)
    assert "CRITICAL" not in result.stderr
    assert database.rows() == before  # PENDING, retry_count 4, never DLQ_FAILED


def test_a_record_too_large_for_its_dlq_is_not_advised_a_requeue(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, max_retries=1)
    embedded_kafka.create_topic("big")
    embedded_kafka.create_topic("big.dlq")
    embedded_kafka.refuse_produce("big", INVALID_RECORD)
    embedded_kafka.refuse_produce("big.dlq", MESSAGE_TOO_LARGE)  # the DLQ's answer
    database.insert([event(1, topic="big")])
    result = cli("retry")
    assert result.exit_code == 1
    [row] = database.rows()
    assert row["status"] == "DLQ_FAILED"
    assert "requeue when the DLQ is writable" not in result.stderr
    assert "CRITICAL: 1 event(s) are too large for their DLQ topic and are now DLQ_FAILED" in result.stderr
    assert "a requeue would only fail again" in result.stderr
