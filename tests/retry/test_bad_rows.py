"""A retry pass against rows and tables that do not fit: whatever a row or the mapping throws at
it, no batch is published again and again, and no row is lost.

Each trigger seen in the field has its test, run over several consecutive passes, counting what
actually arrived on the topic: each row at most once more than the documented at-least-once
case (a process killed between publish and commit).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from kafkaops.db.schema import TRUNCATION_MARKER
from tests.helpers.events import event
from tests.helpers.retry import INVALID_RECORD, alter, configure, passes, payloads, qualified, statuses
from tests.helpers.topics import consume

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


@pytest.mark.slow
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
    # pass 1: three rows that can never be published (no topic, bad headers), flagged PERMANENT;
    # pass 2: DLQ_FAILED, a CRITICAL line
    assert [r.exit_code for r in results] == [1, 1, 0]
    assert [json.loads(r.stdout)["permanent"] for r in results] == [3, 0, 0]
    # No topic, so no DLQ topic: a requeue could only fail again, and the line says so.
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
    assert result.exit_code == 1, result.stderr  # the row's headers can never be published: PERMANENT
    assert (json.loads(result.stdout)["resolved"], json.loads(result.stdout)["rescheduled"]) == (1, 1)
    assert json.loads(result.stdout)["permanent_ids"] == [str(pg_database.rows()[1]["id"])]
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


@pytest.mark.slow
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
    first, second = passes(cli, 2, "-o", "json")
    assert first.exit_code == 1, first.stderr  # refused alone for INVALID_RECORD: permanent
    assert json.loads(first.stdout)["permanent"] == 1
    assert second.exit_code == 0, second.stderr  # nothing due
    assert {(r["topic"], r["status"], r["retry_count"]) for r in pg_database.rows()} == {
        ("refused", "PENDING", 1),
        ("ok", "RESOLVED", None),
    }
    assert len(consume(embedded_kafka.bootstrap_servers, "ok", expect=1, idle=0.5)) == 1


@pytest.mark.slow
def test_a_null_payload_counts_as_an_attempt_and_does_not_block_the_queue(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    from kafkaops.audit.table import create_audit_table
    from kafkaops.db.schema import build_table

    table = build_table(database.settings)
    table.c.payload.nullable = True  # the service's table may allow it; db init's does not
    table.metadata.create_all(database.engine)
    database._table = table
    create_audit_table(database.engine, database.settings)  # as `db init` makes it
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, max_retries=1)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.create_topic("casino.player.registered.v1.dlq")
    database.insert([event(9, payload=None)] + [event(i) for i in range(3)])  # the NULL one is oldest
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["permanent"] == 0  # on its last attempt: to the DLQ, not flagged
    rows = {r["event_id"]: r for r in database.rows()}
    assert {rows[f"evt-{i}"]["status"] for i in range(3)} == {"RESOLVED"}
    assert (rows["evt-9"]["status"], rows["evt-9"]["last_error"]) == (
        "DLQ",
        "the payload is NULL: there is nothing to publish",
    )
    [dlq] = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1.dlq", expect=1, idle=0.5)
    assert (
        dlq.value is None
        and dict(dlq.headers)["kafkaops-failed-event-id"] == str(rows["evt-9"]["id"]).encode()
    )


@pytest.mark.slow
def test_header_values_that_are_not_strings_go_out_as_json(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("t")
    database.insert(
        [event(1, topic="t", headers='{"s": "x", "n": 3, "b": true, "o": {"k": [1]}, "z": null}')]
    )
    assert cli("retry").exit_code == 0
    [record] = consume(embedded_kafka.bootstrap_servers, "t", expect=1, idle=0.5)
    assert record.headers == [("s", b"x"), ("n", b"3"), ("b", b"true"), ("o", b'{"k": [1]}'), ("z", None)]
