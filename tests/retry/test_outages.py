"""A retry pass when what it needs goes away: the broker down (before or during the pass), the
database frozen, slow or cut mid-pass, the pass deadline; and the summary it still gives."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from kafkaops.demo.cluster import ApiKey
from kafkaops.retry.job import BatchReport, PassOptions, run_pass
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops
from tests.helpers.retry import alter, configure, connections, due_rows, passes, payloads, qualified, statuses
from tests.helpers.topics import consume


@pytest.fixture
def impatient_role(pg_database):  # type: ignore[no-untyped-def]
    """A login role whose sessions the server kills after 1 s idle in a transaction."""
    role = f"impatient_{uuid.uuid4().hex[:8]}"
    pg_database.init()
    alter(
        pg_database,
        f"CREATE ROLE {role} LOGIN",
        f"ALTER ROLE {role} SET idle_in_transaction_session_timeout = '1s'",
        f'GRANT USAGE ON SCHEMA "{pg_database.schema}" TO {role}',
        f'GRANT ALL ON ALL TABLES IN SCHEMA "{pg_database.schema}" TO {role}',
        f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{pg_database.schema}" TO {role}',
    )
    url = sa.engine.make_url(pg_database.url).set(username=role)
    yield url.render_as_string(hide_password=False)
    alter(pg_database, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


@pytest.mark.slow
def test_a_server_idle_timeout_shorter_than_the_publish_cannot_kill_the_batch(
    pg_database, impatient_role, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:

    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="10s")
    monkeypatch.setenv("KAFKAOPS_DATABASE_URL", impatient_role)
    embedded_kafka.create_topic("casino.player.registered.v1")
    # The first batch's acks take 2.5 s: the session sits idle in its transaction meanwhile.
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, (0, 2500))
    pg_database.insert([event(i) for i in range(10)])
    first, *later = passes(cli, 3, "-o", "json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["resolved"] == 10
    assert all(r.exit_code == 0 and json.loads(r.stdout)["claimed"] == 0 for r in later)
    assert statuses(pg_database) == {"RESOLVED": 10}
    bootstrap = embedded_kafka.bootstrap_servers
    assert payloads(bootstrap, "casino.player.registered.v1", expect=10) == sorted(
        f"evt-{i}" for i in range(10)
    )


@pytest.mark.slow
def test_a_frozen_database_ends_the_pass_by_its_deadline(
    pg_database, embedded_kafka, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    config = configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    pg_database.insert([event(i) for i in range(5)])
    before = pg_database.rows()
    with pg_database.engine.connect() as frozen:
        frozen.execute(sa.text(f"LOCK TABLE {qualified(pg_database)} IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        proc = run_kafkaops(
            "retry",
            "--deadline",
            "3s",
            "-o",
            "json",
            config=config,
            env={"PATH": "/usr/bin:/bin"},
            inherit=False,
            timeout=90,
        )
        elapsed = time.monotonic() - started
        frozen.rollback()
    assert proc.returncode == 1, proc.stderr
    assert (
        "Error: the database did not answer in time: canceling statement due to lock timeout" in proc.stderr
    )
    summary = json.loads(proc.stdout)
    assert summary["claimed"] == 0 and summary["error"].startswith("the database did not answer in time")
    assert elapsed < 60  # 3 s and a process start; generous, the machine is shared
    assert pg_database.rows() == before
    assert consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", idle=0.5, timeout=3) == []


def test_deadline_must_be_a_duration(pg_database, cli, tmp_path, monkeypatch) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, "127.0.0.1:9")
    for bad in ("soon", "0s"):
        result = cli("retry", "--deadline", bad)
        assert result.exit_code == 2
        assert result.stderr.startswith("Error: ") and "--deadline" in result.stderr


@pytest.mark.slow
def test_a_pass_past_its_deadline_starts_no_new_batch(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:

    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="10s")
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, (0, 5000))  # the first batch: 5 s
    pg_database.insert([event(i) for i in range(30)])
    result = cli("retry", "--batch-size", "10", "--deadline", "4s", "-o", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["claimed"], summary["resolved"]) == (10, 10)
    assert "the pass reached its --deadline (4s) and stopped" in result.stderr
    assert statuses(pg_database) == {"RESOLVED": 10, "PENDING": 20}


@pytest.mark.slow
def test_a_session_lost_after_publishing_stops_the_pass_and_says_what_was_not_settled(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:

    from kafkaops.demo.cluster import ApiKey

    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="10s")
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, (0, 2000))  # slow acks: time to act
    pg_database.insert([event(i) for i in range(30)])
    killed: list[int] = []

    def kill_the_batch_session() -> None:
        holding = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'kafkaops' "
            "AND state = 'idle in transaction' AND query ILIKE '%FOR UPDATE SKIP LOCKED%'"
        )  # waiting for acks after its claim, not between two statements before it
        deadline = time.monotonic() + 30
        with pg_database.engine.connect() as conn:
            while not killed and time.monotonic() < deadline:
                for (pid,) in conn.execute(sa.text(holding)).all():
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    killed.append(pid)
                conn.rollback()
                time.sleep(0.05)

    killer = threading.Thread(target=kill_the_batch_session)
    killer.start()
    result = cli("retry", "--batch-size", "10", "-o", "json")
    killer.join()
    assert killed, "the pass never held a batch"
    assert result.exit_code == 1
    assert "Error: lost the connection to the database during the command: " in result.stderr
    assert "pass stopped; 10 row(s) of batch 1 were published but not settled" in result.stderr
    summary = json.loads(result.stdout)
    assert (summary["claimed"], summary["resolved"]) == (10, 0)
    assert statuses(pg_database) == {"PENDING": 30}  # nothing settled, nothing lost
    # The documented at-least-once case: the next pass publishes those 10 once more, then all
    # is settled and nothing is published again.
    assert cli("retry", "-o", "json").exit_code == 0
    assert cli("retry", "-o", "json").exit_code == 0
    received = [
        json.loads(r.value)["eventId"]
        for r in consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=40, idle=1.0)
    ]
    assert sorted(set(received)) == sorted(f"evt-{i}" for i in range(30))
    assert len(received) == 40
    assert statuses(pg_database) == {"RESOLVED": 30}


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


def test_broker_down_before_the_pass_touches_nothing(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    due_rows(database, 5)
    before = database.rows()
    embedded_kafka.broker_down()
    result = cli("retry")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach Kafka at ")
    assert database.rows() == before


@pytest.mark.slow
def test_broker_down_mid_pass_opens_the_breaker_and_burns_no_attempt(
    pg_database, embedded_kafka, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="2s")
    embedded_kafka.create_topic("casino.player.registered.v1")
    due_rows(pg_database, 100)
    before = {r["id"]: r for r in pg_database.rows()}

    def after_first_batch(report: BatchReport) -> None:
        if report.number == 1:
            embedded_kafka.broker_down()

    summary = run_pass(connections(), PassOptions(batch_size=25), on_batch=after_first_batch)
    assert (summary.resolved, summary.aborted, summary.circuit_breaker) == (25, 25, "OPEN")
    assert not summary.completed
    t = pg_database.table
    pending = pg_database.rows(t.c.status == "PENDING")
    assert len(pending) == 75
    for row in pending:  # exactly as they were: no attempt counted, no error recorded
        assert row == before[row["id"]]


@pytest.mark.slow
def test_fewer_transport_failures_than_the_threshold_do_not_stop_the_pass(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(
        database,
        tmp_path,
        monkeypatch,
        embedded_kafka.bootstrap_servers,
        delivery_timeout="2s",
        breaker_threshold=3,
    )
    embedded_kafka.create_topic("ok")
    embedded_kafka.partition_set_leader("stuck", 0, -1)  # leaderless: its records time out
    database.insert([event(i, topic="stuck" if i == 5 else "ok") for i in range(10)])
    result = cli("retry", "--batch-size", "4", "-o", "json")
    summary = json.loads(result.stdout)
    assert (summary["resolved"], summary["aborted"], summary["circuit_breaker"]) == (9, 1, "CLOSED")
    assert summary["claimed"] == 10  # the stuck row was claimed once, then skipped for the rest of the pass
    assert result.exit_code == 1
    assert (
        "1 claimed row(s) left PENDING, no attempt counted: transport errors (1x _MSG_TIMED_OUT)"
        in result.stderr
    )
    stuck = [r for r in database.rows() if r["topic"] == "stuck"]
    assert [(r["status"], r["retry_count"], r["last_error"]) for r in stuck] == [("PENDING", 0, None)]
