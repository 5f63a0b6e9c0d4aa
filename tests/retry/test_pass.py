"""`kafkaops retry`: the runbook's state machine against real PostgreSQL and Kafka over TCP.

The real Apache Kafka broker proves delivery of exact bytes and exactly-one-copy under
concurrency; the embedded (librdkafka mock) cluster shows the pass's locks, batches, dry runs,
narrowing options and what a signal or a kill leaves behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.demo.cluster import ApiKey
from kafkaops.retry.job import BatchReport, PassOptions, run_pass
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops, start_kafkaops
from tests.helpers.retry import INVALID_RECORD, configure, connections, due_rows, statuses, wait_for_sessions
from tests.helpers.topics import consume

# -- the state machine --------------------------------------------------------------------------


@pytest.mark.slow
def test_full_lifecycle_through_every_state(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    for topic in ("good", "bad", "worse", "good.dlq", "bad.dlq", "worse.dlq"):
        embedded_kafka.create_topic(topic)
    embedded_kafka.refuse_produce("bad", INVALID_RECORD)
    embedded_kafka.refuse_produce("worse", INVALID_RECORD)
    embedded_kafka.refuse_produce("worse.dlq", INVALID_RECORD)
    database.insert([event(1, topic="good"), event(2, topic="bad"), event(3, topic="worse")])
    t = database.table
    expected_delays = [timedelta(minutes=m) for m in (5, 15, 60, 60)]
    for attempt in range(1, 6):
        result = cli("retry", "-o", "json")
        rows = {r["topic"]: r for r in database.rows()}
        if attempt < 5:
            # Refused alone for INVALID_RECORD: flagged as permanent from the first attempt on.
            assert result.exit_code == 1, result.stderr
            assert (
                "PERMANENT: 2 event(s) the broker will never accept as they are (2x InvalidRecordException)"
                in result.stderr
            )
            bad = rows["bad"]
            assert (bad["status"], bad["retry_count"]) == ("PENDING", attempt)
            assert bad["error_type"] == "org.apache.kafka.common.errors.InvalidRecordException"
            assert bad["last_error"] == "Broker: Broker failed to validate record"
            assert bad["next_retry_at"] - bad["updated_at"] == expected_delays[attempt - 1]
            with database.engine.begin() as conn:  # time passes: make them due again
                conn.execute(sa.update(t).where(t.c.status == "PENDING").values(next_retry_at=None))
        if attempt == 1:
            doc = json.loads(result.stdout)
            permanent_ids = doc.pop("permanent_ids")
            assert doc == {
                "claimed": 3,
                "resolved": 1,
                "rescheduled": 2,
                "dlq": 0,
                "dlq_failed": 0,
                "permanent": 2,
                "aborted": 0,
                "circuit_breaker": "CLOSED",
                "duration_s": doc["duration_s"],
            }
            assert sorted(permanent_ids) == sorted(str(rows[t]["id"]) for t in ("bad", "worse"))
            good = rows["good"]
            assert (
                good["status"] == "RESOLVED" and good["resolved_at"] is not None and good["retry_count"] == 0
            )
    summary = json.loads(result.stdout)
    assert (summary["claimed"], summary["dlq"], summary["dlq_failed"]) == (2, 1, 1)
    assert result.exit_code == 1
    assert "CRITICAL: 1 event(s) could not be sent to the DLQ and are now DLQ_FAILED" in result.stderr
    rows = {r["topic"]: r for r in database.rows()}
    assert (rows["bad"]["status"], rows["bad"]["retry_count"]) == ("DLQ", 5)
    assert (rows["worse"]["status"], rows["worse"]["retry_count"]) == ("DLQ_FAILED", 5)
    assert f"id {rows['worse']['id']}" in result.stderr
    assert "DLQ send to worse.dlq failed" in rows["worse"]["last_error"]
    [dlq] = consume(embedded_kafka.bootstrap_servers, "bad.dlq", expect=1, idle=0.5)
    assert dlq.value == rows["bad"]["payload"].encode() and dlq.key == b"player-2"
    headers = dict(dlq.headers)
    assert headers["kafka_dlt-original-topic"] == b"bad"
    assert headers["kafka_dlt-exception-fqcn"] == b"org.apache.kafka.common.errors.InvalidRecordException"
    assert headers["kafkaops-failed-event-id"] == str(rows["bad"]["id"]).encode()
    assert headers["kafkaops-retry-count"] == b"5"
    assert headers["eventType"] == b"PlayerRegistered"  # the event's own headers travel along
    assert cli("retry").exit_code == 0  # nothing due any more: a quiet, successful pass
    assert statuses(database) == {"RESOLVED": 1, "DLQ": 1, "DLQ_FAILED": 1}


@pytest.mark.kafka
def test_bytes_key_and_headers_arrive_unchanged(
    pg_database, kafka_bootstrap, new_topic, cli, tmp_path, monkeypatch
) -> None:
    topic = new_topic()
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    payload = '{"z": 1, "a": "é ü 🎰 \\u00e9", "m": {"y": [3, 2, 1], "b": null}}  '
    headers = json.dumps({"z-last": "1", "a-first": "ü", "traceparent": "00-abc-def-01"}, ensure_ascii=False)
    pg_database.insert(
        [
            event(1, topic=topic, payload=payload, event_key="joueur-é", headers=headers),
            event(2, topic=topic, event_key=None, headers=None),
        ]
    )
    result = cli("retry")
    assert result.exit_code == 0, result.stderr
    records = consume(kafka_bootstrap, topic, expect=2)
    assert len(records) == 2
    first = next(r for r in records if r.key is not None)
    assert first.value == payload.encode("utf-8")
    assert first.key == "joueur-é".encode()
    assert first.headers == [("z-last", b"1"), ("a-first", "ü".encode()), ("traceparent", b"00-abc-def-01")]
    second = next(r for r in records if r.key is None)
    assert second.headers == []
    assert statuses(pg_database) == {"RESOLVED": 2}


@pytest.mark.kafka
def test_rows_of_one_key_are_published_in_created_at_order(
    pg_database, kafka_bootstrap, new_topic, cli, tmp_path, monkeypatch
) -> None:
    topic = new_topic(partitions=3)
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    # Stored as the service stores them, oldest first, never scheduled; claimed 7 at a time.
    pg_database.insert([event(i, topic=topic, event_key=f"k{i % 3}") for i in reversed(range(30))])
    # And within one batch, even rows stored out of created_at order go out in created_at order.
    other = new_topic()
    pg_database.insert([event(100 + i, topic=other, event_key="k") for i in range(5)])  # newest stored first
    assert cli("retry", "--batch-size", "7", "--topic", topic).exit_code == 0
    assert cli("retry", "--batch-size", "7", "--topic", other).exit_code == 0
    records = consume(kafka_bootstrap, topic, expect=30)
    for key in (b"k0", b"k1", b"k2"):
        minutes_ago = [int(json.loads(r.value)["eventId"].split("-")[1]) for r in records if r.key == key]
        assert minutes_ago == sorted(minutes_ago, reverse=True)  # oldest first
    within = [json.loads(r.value)["eventId"] for r in consume(kafka_bootstrap, other, expect=5)]
    assert within == [f"evt-{100 + i}" for i in reversed(range(5))]


# -- concurrency and locking (PostgreSQL) --------------------------------------------------------


@pytest.mark.kafka
def test_two_concurrent_passes_publish_each_row_exactly_once(
    pg_database, kafka_bootstrap, new_topic, tmp_path, monkeypatch
) -> None:

    topic = new_topic(partitions=3)
    pg_database.init()
    config = configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    pg_database.insert([event(i, topic=topic, payload=json.dumps({"n": i})) for i in range(2000)])
    env = {"KAFKAOPS_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kafkaops' AND wait_event_type = 'Lock'"
    with pg_database.engine.connect() as gate:
        # Both passes queue behind this lock at their first claim, then start together: the
        # test is about two passes at once, not about which process started faster.
        gate.execute(
            sa.text(f'LOCK TABLE "{pg_database.schema}".failed_kafka_events IN ACCESS EXCLUSIVE MODE')
        )
        procs = [
            start_kafkaops("retry", "--batch-size", "20", "-o", "json", env=env, inherit=False)
            for _ in range(2)
        ]
        wait_for_sessions(pg_database, waiting, 2, "the passes never reached their first claim")
        gate.rollback()
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    claimed = [json.loads(out)["claimed"] for out, _ in outputs]
    assert sum(claimed) == 2000
    assert all(c > 0 for c in claimed), f"both passes should have worked: {claimed}"
    records = consume(kafka_bootstrap, topic, expect=2000, timeout=60)
    numbers = sorted(json.loads(r.value)["n"] for r in records)
    assert numbers == list(range(2000))  # every row once, none twice
    assert statuses(pg_database) == {"RESOLVED": 2000}


def test_a_row_locked_by_another_session_is_skipped_without_waiting(
    pg_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    due_rows(pg_database, 10)
    t = pg_database.table
    locked_ids = [r["id"] for r in pg_database.rows()][:3]
    with pg_database.engine.connect() as other:
        other.execute(sa.text("SET lock_timeout = '5s'"))  # the holder never waits for ever either
        other.execute(sa.select(t.c.id).where(t.c.id.in_(locked_ids)).with_for_update())
        started = time.monotonic()
        # A claim that waited for the locked rows would end at the pass's deadline: a red test
        # in seconds, not a hung suite.
        result = cli("retry", "--deadline", "15s", "-o", "json")
        elapsed = time.monotonic() - started
        other.rollback()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["claimed"] == 7
    assert elapsed < 10
    assert {r["id"] for r in pg_database.rows(t.c.status == "PENDING")} == set(locked_ids)


@pytest.mark.slow
def test_a_pass_never_holds_more_than_one_batch(pg_database, embedded_kafka, tmp_path, monkeypatch) -> None:
    pg_database.init()
    with pg_database.engine.begin() as conn:
        try:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pgrowlocks"))
        except sa.exc.DBAPIError:
            pytest.skip("pgrowlocks (PostgreSQL contrib) is not available")
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.set_rtt(1, 150)  # each batch waits on acks long enough to be seen
    due_rows(pg_database, 200)
    observed: list[int] = []
    done = threading.Event()
    table = f'"{pg_database.schema}".failed_kafka_events'

    def observe() -> None:
        with pg_database.engine.connect() as conn:
            while not done.is_set():
                observed.append(
                    conn.execute(sa.text(f"SELECT count(*) FROM pgrowlocks('{table}')")).scalar_one()
                )
                conn.rollback()
                time.sleep(0.02)

    watcher = threading.Thread(target=observe)
    watcher.start()
    reports: list[BatchReport] = []
    try:
        summary = run_pass(connections(), PassOptions(batch_size=20), on_batch=reports.append)
    finally:
        done.set()
        watcher.join()
    assert summary.resolved == 200
    assert len(reports) == 10 and all(r.claimed == 20 for r in reports)
    assert max(observed) == 20  # seen holding a batch, never more
    assert statuses(pg_database) == {"RESOLVED": 200}


def test_a_pass_run_from_code_claims_retry_batch_size_rows_per_batch(
    make_database, embedded_kafka, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """PassOptions() took its own 500 where retry.batch_size said otherwise: one default now."""
    db = make_database("sqlite")
    db.init()
    configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, batch_size=3)
    embedded_kafka.create_topic("casino.player.registered.v1")
    due_rows(db, 7)
    reports: list[BatchReport] = []
    summary = run_pass(connections(), PassOptions(), on_batch=reports.append)
    assert [r.claimed for r in reports] == [3, 3, 1]
    assert summary.resolved == 7


# -- faults ---------------------------------------------------------------------------------------


def test_dry_run_changes_nothing(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    due_rows(database, 4)
    database.insert([event(9, next_retry_at=event(0)["created_at"] + timedelta(days=365))])  # not due
    before = database.rows()
    result = cli("retry", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["attempt"] for r in json.loads(result.stdout)] == [1, 1, 1, 1]
    assert "Dry run: 4 due row(s) would be attempted; nothing was changed." in result.stderr
    assert database.rows() == before
    assert consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", idle=0.5, timeout=3) == []


@pytest.mark.slow
def test_limit_and_topic_narrow_a_pass(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    database.insert([event(i, topic="a.one" if i < 6 else "b.two") for i in range(10)])
    result = cli("retry", "--topic", "a.*", "--limit", "4", "--batch-size", "3", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["claimed"] == 4
    assert {(r["topic"], r["status"]) for r in database.rows() if r["status"] == "RESOLVED"} == {
        ("a.one", "RESOLVED")
    }
    assert statuses(database) == {"RESOLVED": 4, "PENDING": 6}


@pytest.mark.slow
def test_sigkill_mid_pass_leaves_no_row_locked_and_none_lost(
    pg_database, embedded_kafka, tmp_path, monkeypatch
) -> None:
    import signal

    pg_database.init()
    config = configure(
        pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers, delivery_timeout="30s"
    )
    embedded_kafka.create_topic("casino.player.registered.v1")
    # Slow Produce acks (only them: the handshake and metadata stay fast) keep a batch in flight.
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, *[(0, 1500)] * 6)
    due_rows(pg_database, 60)
    before = pg_database.rows()
    proc = start_kafkaops(
        "retry", "--batch-size", "20", config=config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    holding = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kafkaops' AND state = 'idle in transaction'"
    wait_for_sessions(pg_database, holding, 1, "the pass never got to hold a batch")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    t = pg_database.table
    deadline = time.monotonic() + 15
    while True:  # PostgreSQL ends the dead client's transaction as soon as it notices
        try:
            with pg_database.engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
                locked = conn.execute(sa.select(t.c.id).with_for_update(nowait=True)).all()
            break
        except sa.exc.OperationalError:
            assert time.monotonic() < deadline, "rows stayed locked after the process died"
            time.sleep(0.2)
    assert len(locked) == 60
    assert pg_database.rows() == before  # nothing settled, nothing lost
    summary = run_pass(connections(), PassOptions(batch_size=20))
    assert (summary.resolved, summary.completed) == (60, True)
    records = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=60)
    assert {json.loads(r.value)["eventId"] for r in records} == {
        f"evt-{i}" for i in range(60)
    }  # at least once


# -- claim order and SQLite concurrency -------------------------------------------------------------


def test_dry_run_lists_rows_in_the_order_a_pass_claims_them(
    database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    base = event(0)["created_at"]
    database.insert(
        [
            event(50, event_id="never-old", next_retry_at=None),
            event(1, event_id="scheduled-late", next_retry_at=base - timedelta(minutes=1)),
            event(3, event_id="never-new", next_retry_at=None),
            event(2, event_id="scheduled-early", next_retry_at=base - timedelta(minutes=30)),
        ]
    )
    result = cli("retry", "--dry-run", "-o", "json")
    order = [r["id"] for r in json.loads(result.stdout)]
    by_id = {r["id"]: r["event_id"] for r in database.rows()}
    assert [by_id[i] for i in order] == ["never-old", "never-new", "scheduled-early", "scheduled-late"]


def test_batch_size_is_bounded(database, cli, tmp_path, monkeypatch) -> None:
    database.init()
    configure(database, tmp_path, monkeypatch, "127.0.0.1:9")
    result = cli("retry", "--batch-size", "70000")
    assert result.exit_code == 2
    assert "70000 is not in the range 1<=x<=10000" in result.stderr


@pytest.mark.slow
def test_two_concurrent_passes_on_sqlite_never_publish_a_row_twice(
    make_database, embedded_kafka, tmp_path, monkeypatch
) -> None:

    db = make_database("sqlite")
    db.init()
    config = configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    embedded_kafka.push_broker_request_errors(1, ApiKey.Produce, *[(0, 150)] * 40)  # slow acks: overlap
    db.insert([event(i, payload=json.dumps({"n": i})) for i in range(200)])
    env = {"KAFKAOPS_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    procs = [
        start_kafkaops("retry", "--batch-size", "20", "-o", "json", env=env, inherit=False) for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1), err  # 1: waited longer than busy_timeout for the other
    if statuses(db) != {"RESOLVED": 200}:  # a pass that gave up waiting left work for the next one
        run_kafkaops(
            "retry", "--batch-size", "20", "-o", "json", env=env, inherit=False, check=True, timeout=120
        )
    records = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=200)
    assert sorted(json.loads(r.value)["n"] for r in records) == list(range(200))


@pytest.mark.parametrize("deadline", ["25d", "30d", "999999999d"])
@pytest.mark.slow
def test_a_long_retry_deadline_still_publishes_on_postgresql(
    pg_database: Any,
    embedded_kafka: Any,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    deadline: str,
) -> None:
    """statement_timeout takes at most 2^31-1 ms (24.8 days): a longer --deadline failed every pass."""
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("t")
    pg_database.insert([event(i, topic="t") for i in range(5)])
    result = cli("retry", "--deadline", deadline, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 5
    assert statuses(pg_database) == {"RESOLVED": 5}
    assert len(consume(embedded_kafka.bootstrap_servers, "t", expect=5, idle=0.5)) == 5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.slow
def test_a_signal_stops_the_pass_after_settling_what_was_published(
    pg_database: Any, embedded_kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    """SIGTERM (timeout(1), systemd, Kubernetes) killed the pass at once: a batch the broker had
    acknowledged was never settled and went out again next pass, no summary, no metrics, exit -15."""
    pg_database.init()
    config = configure(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("slow")
    pg_database.insert([event(i, topic="slow") for i in range(60)])
    embedded_kafka.set_rtt(-1, 300)  # every produce request waits: a batch takes a while
    metrics = tmp_path / "retry.prom"
    proc = start_kafkaops(
        "retry", "--batch-size", "5", "-o", "json", "--metrics-file", str(metrics), config=config
    )
    try:
        deadline = time.monotonic() + 30
        while statuses(pg_database).get("RESOLVED", 0) == 0:  # the first batch is settled
            assert proc.poll() is None and time.monotonic() < deadline, "the pass never settled a batch"
            time.sleep(0.05)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    embedded_kafka.set_rtt(-1, 0)
    assert proc.returncode == 128 + signum, err
    name = signal.Signals(signum).name
    assert f"Error: stopped by {name}: every batch begun was published and settled" in err
    summary = json.loads(out)
    assert summary["stopped_by"] == name
    resolved = statuses(pg_database).get("RESOLVED", 0)
    assert summary["resolved"] == resolved and 0 < resolved < 60
    assert statuses(pg_database) == {"RESOLVED": resolved, "PENDING": 60 - resolved}
    # Everything on the topic was settled: nothing acknowledged is left to be sent again.
    on_topic = consume(embedded_kafka.bootstrap_servers, "slow", idle=1.0)
    assert len(on_topic) == resolved
    # The metrics of what was done are written; a stopped pass is no success.
    text = metrics.read_text()
    assert f'kafka_retry_success_total{{topic="slow"}} {float(resolved)}' in text
    assert "kafkaops_retry_last_success_timestamp_seconds" not in text


@pytest.mark.parametrize(
    ("pattern", "published"),
    [("a_*", ["a_b"]), ("a%*", ["a%b", "a%xb"]), ("a?b", ["a%b", "a_b", "axb"]), ("a\\*", [])],
)
@pytest.mark.slow
def test_retry_topic_globs_take_sql_wildcards_literally(
    database: Any,
    embedded_kafka: Any,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pattern: str,
    published: list[str],
) -> None:
    """`_` and `%` are LIKE wildcards: unescaped, --topic 'a_*' would also publish axb's rows."""
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    topics = ["a_b", "axb", "a%b", "a%xb"]
    for topic in topics:
        embedded_kafka.create_topic(topic)
    database.insert([event(i, topic=topic) for i, topic in enumerate(topics)])
    result = cli("retry", "--topic", pattern, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == len(published)
    t = database.table
    with database.engine.connect() as conn:
        resolved = conn.execute(sa.select(t.c.topic).where(t.c.status == "RESOLVED")).scalars().all()
    assert sorted(resolved) == published
    for topic in topics:
        expected = 1 if topic in published else 0
        assert len(consume(embedded_kafka.bootstrap_servers, topic, idle=0.3, timeout=3)) == expected


def test_a_limit_beyond_bigint_is_a_usage_error(pg_database, cli, tmp_path, monkeypatch) -> None:
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, "127.0.0.1:9")
    result = cli("retry", "--dry-run", "--limit", "99999999999999999999999")
    assert result.exit_code == 2
    assert "99999999999999999999999 is not in the range" in result.stderr
