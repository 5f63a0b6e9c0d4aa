"""A retry pass that fails safe (issue 7, section 1): whatever the table, the database or a row
throws at it, no batch is published again and again, and no row is lost.

Each trigger seen in the field has its test, run over several consecutive passes, counting what
actually arrived on the topic: each row at most once more than the documented at-least-once
case (a process killed between publish and commit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.db.schema import TRUNCATION_MARKER
from tests.helpers.events import event
from tests.helpers.topics import consume
from tests.retry.test_pass import configure, statuses

INVALID_RECORD = 87  # the broker refuses the record itself: the event's fault


def qualified(db) -> str:  # type: ignore[no-untyped-def]
    return f'"{db.schema}".failed_kafka_events'


def alter(db, *statements: str) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement.format(table=qualified(db))))


def passes(cli, n: int, *args: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return [cli("retry", *args) for _ in range(n)]


def payloads(bootstrap: str, topic: str, expect: int | None = None) -> list[str]:
    return sorted(json.loads(r.value)["eventId"] for r in consume(bootstrap, topic, expect=expect, idle=1.0))


# -- a table the mapping does not fit: nothing is published -------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("change", "column", "problem"),
    [
        ("ALTER TABLE {table} DROP COLUMN resolved_at", "resolved_at", "missing"),
        (
            "ALTER TABLE {table} ALTER COLUMN retry_count TYPE VARCHAR(10)",
            "retry_count",
            "type VARCHAR(10) where integer is expected",
        ),
        ("ALTER TABLE {table} DROP COLUMN error_type", "error_type", "missing"),
        (
            "ALTER TABLE {table} ALTER COLUMN status TYPE VARCHAR(8)",
            "status",
            "type VARCHAR(8) cannot hold 10 characters (DLQ_FAILED)",
        ),
    ],
)
def test_a_table_the_mapping_does_not_fit_publishes_nothing(
    pg_database,
    kafka_bootstrap,
    new_topic,
    cli,
    tmp_path,
    monkeypatch,
    change: str,
    column: str,
    problem: str,
) -> None:
    topic = new_topic()
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    pg_database.insert([event(i, topic=topic, status="PENDING") for i in range(20)])
    alter(pg_database, change)
    with pg_database.engine.connect() as conn:
        before = conn.execute(sa.text(f"SELECT * FROM {qualified(pg_database)} ORDER BY id")).all()
    for result in passes(cli, 3):
        assert result.exit_code == 1
        first = result.stderr.splitlines()[0]
        assert first.startswith("Error: the table does not match the configured mapping (")
        assert f"{column}: {problem}" in first and first.endswith("nothing was published")
        assert "Hint: run 'kafkaops db check'" in result.stderr
    assert consume(kafka_bootstrap, topic, idle=1.0, timeout=5) == []
    with pg_database.engine.connect() as conn:
        after = conn.execute(sa.text(f"SELECT * FROM {qualified(pg_database)} ORDER BY id")).all()
    assert after == before


# -- a column too short for what kafkaops writes: cut to fit ------------------------------------


def test_an_error_longer_than_its_column_is_cut_to_fit(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    long_topic = "casino." + "x" * 200  # the DLQ_FAILED message names it twice: > 255 characters
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, max_retries=1)
    alter(pg_database, "ALTER TABLE {table} ALTER COLUMN last_error TYPE VARCHAR(255)")
    for topic in ("good", long_topic, long_topic + ".dlq"):
        embedded_kafka.create_topic(topic)
    embedded_kafka.refuse_produce(long_topic, INVALID_RECORD)
    embedded_kafka.refuse_produce(long_topic + ".dlq", INVALID_RECORD)
    pg_database.insert([event(1, topic=long_topic)] + [event(10 + i, topic="good") for i in range(5)])
    first, *later = passes(cli, 3, "-o", "json")
    assert first.exit_code == 1 and "CRITICAL: 1 event(s) could not be sent to the DLQ" in first.stderr
    assert json.loads(first.stdout)["dlq_failed"] == 1
    for result in later:
        assert result.exit_code == 0 and json.loads(result.stdout)["claimed"] == 0
    [failed] = [r for r in pg_database.rows() if r["topic"] == long_topic]
    assert failed["status"] == "DLQ_FAILED" and failed["retry_count"] == 1
    assert len(failed["last_error"]) == 255 and failed["last_error"].endswith(TRUNCATION_MARKER)
    assert failed["last_error"].startswith("Broker: Broker failed to validate record; DLQ send to casino.xxx")
    assert statuses(pg_database) == {"RESOLVED": 5, "DLQ_FAILED": 1}
    bootstrap = embedded_kafka.bootstrap_servers
    assert payloads(bootstrap, "good", expect=5) == sorted(f"evt-{10 + i}" for i in range(5))


# -- the server's idle-in-transaction timeout is shorter than a batch's publish -----------------


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


def test_a_server_idle_timeout_shorter_than_the_publish_cannot_kill_the_batch(
    pg_database, impatient_role, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    from kafkaops.demo.cluster import ApiKey

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


# -- rows that cannot be records are settled as event failures before publishing ----------------


@pytest.mark.kafka
def test_a_null_topic_in_a_big_batch_publishes_every_other_row_once(
    pg_database, kafka_bootstrap, new_topic, cli, tmp_path, monkeypatch
) -> None:
    topic = new_topic()
    pg_database.init()
    alter(pg_database, "ALTER TABLE {table} ALTER COLUMN topic DROP NOT NULL")
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=2)
    rows = [event(i, topic=topic) for i in range(300)]
    rows += [
        event(900, topic=None),
        event(901, topic=topic, headers="[1, 2]"),
        event(902, topic=""),
    ]
    pg_database.insert(rows)
    t = pg_database.table
    results = []
    for _ in range(3):
        results.append(cli("retry", "--batch-size", "10000", "-o", "json"))
        with pg_database.engine.begin() as conn:  # time passes: the rescheduled rows are due again
            conn.execute(sa.update(t).where(t.c.status == "PENDING").values(next_retry_at=None))
    assert [json.loads(r.stdout)["resolved"] for r in results] == [300, 0, 0]
    assert [json.loads(r.stdout)["rescheduled"] for r in results] == [3, 0, 0]
    assert [r.exit_code for r in results] == [0, 1, 0]  # pass 2: DLQ_FAILED, a CRITICAL line
    # No topic, so no DLQ topic: a requeue could only fail again (trial H), and the line says so.
    assert "CRITICAL: 2 event(s) have no topic, or one Kafka refuses as a name" in results[1].stderr
    assert "a requeue would only fail again" in results[1].stderr
    assert "requeue when the DLQ is writable" not in results[1].stderr
    by_event = {r["event_id"]: r for r in pg_database.rows()}
    assert (by_event["evt-900"]["status"], by_event["evt-900"]["retry_count"]) == ("DLQ_FAILED", 2)
    assert by_event["evt-900"]["last_error"] == (
        "the topic is NULL or empty: there is nowhere to publish; no DLQ topic for a row without a topic"
    )
    assert by_event["evt-902"]["status"] == "DLQ_FAILED"
    assert (by_event["evt-901"]["status"], by_event["evt-901"]["last_error"]) == (
        "DLQ",
        "the headers column is not a JSON object of name -> value",
    )
    assert payloads(kafka_bootstrap, topic, expect=300) == sorted(f"evt-{i}" for i in range(300))
    [dead] = consume(kafka_bootstrap, topic + ".dlq", expect=1, idle=1.0)
    assert json.loads(dead.value)["eventId"] == "evt-901"


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_a_headers_column_nested_too_deep_is_the_rows_own_fault_and_the_rest_publish(
    pg_database, kafka_bootstrap, new_topic, cli, tmp_path, monkeypatch
) -> None:
    topic = new_topic()
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=2)
    pg_database.insert([event(1, topic=topic), event(2, topic=topic, headers="[" * 100_000)])
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert (json.loads(result.stdout)["resolved"], json.loads(result.stdout)["rescheduled"]) == (1, 1)
    by_event = {r["event_id"]: r for r in pg_database.rows()}
    assert (by_event["evt-2"]["status"], by_event["evt-2"]["last_error"]) == (
        "PENDING",
        "the headers column is not a JSON object of name -> value",
    )
    assert payloads(kafka_bootstrap, topic, expect=1) == ["evt-1"]


# -- a settle the database refuses after publishing ---------------------------------------------

REFUSE = """
CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused by the service''s trigger' USING ERRCODE = 'P0001'; END $$;
CREATE TRIGGER refuse BEFORE UPDATE ON {table} FOR EACH ROW
WHEN ({when}) EXECUTE FUNCTION "{schema}".refuse();
"""


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("when", "poison_status", "unsettled"),
    [
        # The full settle is refused, the status alone is taken: RESOLVED, out of the loop.
        ("NEW.event_id = 'evt-7' AND NEW.resolved_at IS NOT NULL", "RESOLVED", 0),
        # Every write to the row is refused: it stays PENDING, the only row published again.
        ("NEW.event_id = 'evt-7'", "PENDING", 1),
    ],
)
def test_a_row_whose_settle_is_refused_is_isolated_and_the_rest_settle(
    pg_database,
    kafka_bootstrap,
    new_topic,
    cli,
    tmp_path,
    monkeypatch,
    when: str,
    poison_status: str,
    unsettled: int,
) -> None:
    topic = new_topic()
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    pg_database.insert([event(i, topic=topic) for i in range(20)])
    with pg_database.engine.begin() as conn:
        conn.exec_driver_sql(
            REFUSE.format(schema=pg_database.schema, table=qualified(pg_database), when=when)
        )
    results = passes(cli, 3, "--batch-size", "50", "-o", "json")
    first = results[0]
    assert first.exit_code == 1
    assert json.loads(first.stdout)["claimed"] == 20
    assert (
        "Error: the database refused to settle batch 1 (refused by the service's trigger): pass stopped;"
        in (first.stderr)
    )
    assert f"{unsettled} row(s) not settled at all" in first.stderr
    by_event = {r["event_id"]: r for r in pg_database.rows()}
    assert by_event["evt-7"]["status"] == poison_status
    assert all(r["status"] == "RESOLVED" for e, r in by_event.items() if e != "evt-7")
    received = [json.loads(r.value)["eventId"] for r in consume(kafka_bootstrap, topic, expect=20, idle=1.0)]
    # Every row once; the row nothing can be written for once more per pass, and only it.
    assert sorted(set(received)) == sorted(f"evt-{i}" for i in range(20))
    assert received.count("evt-7") == 1 + unsettled * 2
    assert len(received) == 20 + unsettled * 2


# -- a frozen database: the pass ends in bounded time, holding nothing --------------------------


def test_a_frozen_database_ends_the_pass_by_its_deadline(
    pg_database, embedded_kafka, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    config = configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    pg_database.insert([event(i) for i in range(5)])
    before = pg_database.rows()
    argv = [sys.executable, "-m", "kafkaops", "retry", "--deadline", "3s", "-o", "json"]
    env = {"KAFKAOPS_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    with pg_database.engine.connect() as frozen:
        frozen.execute(sa.text(f"LOCK TABLE {qualified(pg_database)} IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
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


def test_a_pass_past_its_deadline_starts_no_new_batch(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    from kafkaops.demo.cluster import ApiKey

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


def test_a_null_retry_count_counts_as_never_attempted(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    alter(pg_database, "ALTER TABLE {table} ALTER COLUMN retry_count DROP NOT NULL")
    embedded_kafka.create_topic("ok")
    embedded_kafka.create_topic("refused")
    embedded_kafka.refuse_produce("refused", INVALID_RECORD)
    pg_database.insert([event(1, topic="refused", retry_count=None), event(2, topic="ok", retry_count=None)])
    for result in passes(cli, 2, "-o", "json"):
        assert result.exit_code == 0, result.stderr
    assert {(r["topic"], r["status"], r["retry_count"]) for r in pg_database.rows()} == {
        ("refused", "PENDING", 1),
        ("ok", "RESOLVED", None),
    }
    assert len(consume(embedded_kafka.bootstrap_servers, "ok", expect=1, idle=0.5)) == 1


def test_a_limit_beyond_bigint_is_a_usage_error(pg_database, cli, tmp_path, monkeypatch) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, "127.0.0.1:9")
    result = cli("retry", "--dry-run", "--limit", "99999999999999999999999")
    assert result.exit_code == 2
    assert "99999999999999999999999 is not in the range" in result.stderr


def test_a_session_lost_after_publishing_stops_the_pass_and_says_what_was_not_settled(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    import threading

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
