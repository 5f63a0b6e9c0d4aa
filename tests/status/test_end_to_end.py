"""`kafkaops status` end to end: real PostgreSQL (and SQLite), Kafka over TCP (the embedded
cluster, up and down), the service on loopback HTTP servers, the webhook, the state file.

Tests that guard a deadline run kafkaops as a subprocess with a timeout of their own, so a
broken deadline is a red test, never a hang.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.connections import Connections
from kafkaops.demo.cluster import EmbeddedKafka
from kafkaops.demo.service import FakeService, health_body, metrics_text, stats_body
from kafkaops.status.gather import run_status
from kafkaops.status.statefile import state_path
from tests.conftest import TestDatabase
from tests.helpers.embedded_fixtures import free_port
from tests.helpers.events import event
from tests.helpers.process import KAFKAOPS, process_env, run_kafkaops
from tests.helpers.status import TOPIC, checks_by_name, configure, now, rows, status_json

# -- the database ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "expected_status", "exit_code"),
    [(1000, "OK", 0), (1001, "WARNING", 1), (5000, "WARNING", 1), (5001, "CRITICAL", 2)],
)
def test_pending_count_edges_against_postgresql(
    pg_database: TestDatabase,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pending: int,
    expected_status: str,
    exit_code: int,
) -> None:
    pg_database.init()
    pg_database.insert(rows(pending))
    configure(tmp_path, monkeypatch, pg_database)
    code, doc, _ = status_json(cli)
    assert code == exit_code
    assert doc["status"] == expected_status
    check = checks_by_name(doc)["pending_events"]
    assert (check["status"], check["value"]) == (expected_status, pending)
    assert doc["database"]["counts"] == {"PENDING": pending}


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(hours=1), "OK"),
        (timedelta(hours=1, seconds=1), "WARNING"),
        (timedelta(hours=4), "WARNING"),
        (timedelta(hours=4, seconds=1), "CRITICAL"),
    ],
)
def test_oldest_pending_age_edges_with_a_controlled_clock(
    pg_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: timedelta, expected: str
) -> None:
    at = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    pg_database.init()
    pg_database.insert([event(1, created_at=at - age), event(2, created_at=at - timedelta(minutes=1))])
    configure(tmp_path, monkeypatch, pg_database)
    settings = load_settings(Overrides())
    conns = Connections(settings)
    try:
        result = run_status(settings, conns, now=at)
    finally:
        conns.close()
    check = result.check("oldest_pending_age")
    assert check is not None
    assert (check.status, check.value) == (expected, int(age.total_seconds()))


@pytest.mark.parametrize(("dlq_failed", "exit_code"), [(0, 0), (1, 2)])
def test_dlq_failed_rows_are_critical_at_once(
    database: TestDatabase,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dlq_failed: int,
    exit_code: int,
) -> None:
    database.init()
    database.insert(
        rows(2) + [event(10 + i, status="DLQ_FAILED", created_at=now()) for i in range(dlq_failed)]
    )
    configure(tmp_path, monkeypatch, database)
    code, doc, _ = status_json(cli)
    assert code == exit_code
    check = checks_by_name(doc)["dlq_failed"]
    assert check["value"] == dlq_failed
    if dlq_failed:
        assert check["message"] == "1 DLQ_FAILED events require manual intervention"
        assert check["next_step"] == "kafkaops failed list --status DLQ_FAILED, then kafkaops failed requeue"


def test_database_figures(
    pg_database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_database.init()
    t = now()
    resolved_at = t - timedelta(minutes=3)
    pg_database.insert(
        [
            event(1, topic="a", created_at=t - timedelta(minutes=30), next_retry_at=t - timedelta(minutes=1)),
            event(2, topic="a", created_at=t - timedelta(minutes=10), next_retry_at=t + timedelta(hours=1)),
            event(3, topic="b", created_at=t - timedelta(minutes=20)),
            event(4, topic="c", status="DLQ", created_at=t),
            event(5, topic="d", status="RESOLVED", created_at=t, resolved_at=resolved_at),
        ]
    )
    configure(tmp_path, monkeypatch, pg_database)
    code, doc, _ = status_json(cli)
    assert code == 0
    db = doc["database"]
    assert db["counts"] == {"DLQ": 1, "PENDING": 3, "RESOLVED": 1}
    assert db["due_now"] == 2  # the one due a minute ago and the one never scheduled
    assert db["pending_by_topic"] == {"a": 2, "b": 1}
    assert 30 * 60 - 5 <= db["oldest_pending_age_s"] <= 30 * 60 + 60
    assert db["newest_resolved_at"].startswith(resolved_at.strftime("%Y-%m-%dT%H:%M:%S"))


@pytest.mark.slow
def test_a_locked_table_cannot_hold_status_past_its_deadline(
    pg_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    pg_database.init()
    pg_database.insert(rows(3))
    path = configure(tmp_path, monkeypatch, pg_database, instances=[service.url], status={"timeout": "1s"})
    table = f'"{pg_database.schema}"."{pg_database.settings.table}"'
    with pg_database.engine.connect() as locker:
        locker.exec_driver_sql("SET lock_timeout = '5s'")
        locker.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = run_kafkaops("status", "-o", "json", config=path, timeout=30)
        took = time.monotonic() - started
        locker.rollback()
    doc = json.loads(result.stdout)
    assert result.returncode == 3, result.stderr
    assert doc["database"]["reachable"] is False
    assert doc["database"]["error"] == "database: no answer within 1s (statement_timeout cancelled the query)"
    assert checks_by_name(doc)["database"]["status"] == "UNKNOWN"
    assert checks_by_name(doc)[f"service 127.0.0.1:{service.url.rsplit(':', 1)[1]}"]["status"] == "OK"
    assert took < 1 + 4, f"status took {took:.1f}s with a 1s deadline"


def test_an_unreachable_database_still_gives_the_json_summary(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(
        tmp_path,
        monkeypatch,
        instances=[service.url],
        database={"url": f"postgresql://kafkaops:DbSECRET@127.0.0.1:{free_port()}/x"},
    )
    code, doc, stderr = status_json(cli)
    assert code == 3
    assert doc["status"] == "UNKNOWN"
    assert doc["database"]["reachable"] is False
    assert "cannot connect to database" in doc["database"]["error"]
    assert doc["instances"][0]["health"] == "UP"
    assert "DbSECRET" not in json.dumps(doc) + stderr


def test_the_pending_trend_across_runs(
    database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(rows(3))
    configure(tmp_path, monkeypatch, database)
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

    def message_at(at: datetime) -> str:
        settings = load_settings(Overrides())
        conns = Connections(settings)
        try:
            check = run_status(settings, conns, now=at).check("pending_events")
        finally:
            conns.close()
        assert check is not None
        return check.message

    assert message_at(t0) == "3 PENDING events"
    database.insert([event(100 + i, created_at=t0) for i in range(4)])
    assert message_at(t0 + timedelta(minutes=1)) == "7 PENDING events, +4 since 1m ago"


# -- the broker ------------------------------------------------------------------------------------


def test_dlq_topics_present_missing_and_counted(
    database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kafkaops.kafka import client as kafka

    embedded_kafka.create_topic(TOPIC)
    embedded_kafka.create_topic(f"{TOPIC}.dlq", partitions=2)
    embedded_kafka.create_topic("casino.wallet.v1")
    producer = kafka.producer({"bootstrap.servers": embedded_kafka.bootstrap_servers})
    for n in range(3):
        producer.produce(f"{TOPIC}.dlq", b"x", partition=n % 2)
    assert producer.flush(10) == 0
    database.init()
    database.insert([*rows(2), event(9, topic="casino.wallet.v1", status="DLQ", created_at=now())])
    configure(tmp_path, monkeypatch, database, kafka=embedded_kafka.bootstrap_servers)
    code, doc, _ = status_json(cli)
    assert code == 1
    check = checks_by_name(doc)["dlq_topics"]
    assert check["status"] == "WARNING"
    assert check["next_step"] == "kafkaops dlq ensure casino.wallet.v1"
    topics = {d["dlq_topic"]: d for d in doc["dlq_topics"]}
    assert topics[f"{TOPIC}.dlq"] == {
        "topic": TOPIC,
        "dlq_topic": f"{TOPIC}.dlq",
        "exists": True,
        "denied": False,
        "messages": 3,
        "partitions": 2,
    }
    assert topics["casino.wallet.v1.dlq"]["exists"] is False
    k = doc["kafka"]
    assert k["reachable"] is True and k["controller_id"] == 1 and len(k["brokers"]) == 1
    assert checks_by_name(doc)["kafka"]["status"] == "OK"


def test_every_dlq_topic_present_is_ok(
    database: TestDatabase,
    embedded_kafka: EmbeddedKafka,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedded_kafka.create_topic(TOPIC)
    embedded_kafka.create_topic(f"{TOPIC}.dlq")
    database.init()
    database.insert(rows(2))
    configure(tmp_path, monkeypatch, database, kafka=embedded_kafka.bootstrap_servers)
    code, doc, _ = status_json(cli)
    assert code == 0, doc
    assert checks_by_name(doc)["dlq_topics"]["status"] == "OK"


@pytest.mark.slow
def test_a_broker_down_is_unknown_and_the_rest_is_still_shown(
    database: TestDatabase, embedded_kafka: EmbeddedKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded_kafka.create_topic(TOPIC)
    database.init()
    database.insert(rows(2))
    path = configure(
        tmp_path, monkeypatch, database, kafka=embedded_kafka.bootstrap_servers, status={"timeout": "2s"}
    )
    embedded_kafka.broker_down()
    started = time.monotonic()
    result = run_kafkaops("status", "-o", "json", config=path, timeout=30)
    took = time.monotonic() - started
    doc = json.loads(result.stdout)
    assert result.returncode == 3
    assert doc["kafka"]["reachable"] is False
    assert "cannot reach Kafka" in doc["kafka"]["error"]
    assert checks_by_name(doc)["kafka"]["status"] == "UNKNOWN"
    assert "dlq_topics" not in checks_by_name(doc)  # cannot be judged without the broker
    assert doc["database"]["counts"] == {"PENDING": 2}
    assert took < 2 + 4
    # A worse check still wins over UNKNOWN.
    database.insert([event(50, status="DLQ_FAILED", created_at=now())])
    assert run_kafkaops("status", "-o", "json", config=path, timeout=30).returncode == 2
    embedded_kafka.broker_up()


INJECTED_TOPIC = "orders.v1 $(touch pwned)"


def test_a_topic_name_that_is_a_command_is_never_offered_as_one(
    make_database: Any,
    embedded_kafka: EmbeddedKafka,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PENDING row whose topic is `orders.v1 $(touch pwned)` gave `→ kafkaops dlq ensure
    orders.v1 $(touch pwned)` to paste. Kafka cannot have that name: it is said to be invalid,
    and no command is built from it; a valid topic still gets its command."""
    database = make_database("sqlite")
    database.init()
    database.insert(
        [
            event(1, topic=INJECTED_TOPIC, created_at=now()),
            event(2, topic="casino.wallet.v1", created_at=now()),
        ]
    )
    configure(tmp_path, monkeypatch, database, kafka=embedded_kafka.bootstrap_servers)
    code, doc, _ = status_json(cli)
    assert code == 1
    check = checks_by_name(doc)["dlq_topics"]
    assert check["status"] == "WARNING" and check["value"] == 2
    assert check["message"] == (
        "missing DLQ topic(s): casino.wallet.v1.dlq: the next DLQ send for them fails; "
        "not a valid Kafka topic name: 'orders.v1 $(touch pwned)': no DLQ topic can be created for it"
    )
    assert check["next_step"] == (
        "kafkaops dlq ensure casino.wallet.v1; no command for an invalid topic name "
        "(a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-' (and not '.' or '..')): "
        "fix the rows' topic"
    )
    table = cli("status")
    steps = [line for line in table.stdout.splitlines() if "→" in line]
    assert steps and all("$(touch" not in line for line in steps)
    assert "  → kafkaops dlq ensure casino.wallet.v1\n" in table.stdout  # each step on its own line
    assert "  → no command for an invalid topic name" in table.stdout
    assert "not a valid Kafka topic name: 'orders.v1 $(touch pwned)'" in table.stdout


def test_every_next_step_is_built_of_quoted_words() -> None:
    import shlex

    from kafkaops.status.checks import command

    pasted = command("kafkaops", "dlq", "ensure", INJECTED_TOPIC)
    assert pasted == "kafkaops dlq ensure 'orders.v1 $(touch pwned)'"
    assert shlex.split(pasted) == ["kafkaops", "dlq", "ensure", INJECTED_TOPIC]
    done = subprocess.run(
        ["sh", "-c", "printf '%s\\n' " + command(INJECTED_TOPIC, "it's")],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.stdout == f"{INJECTED_TOPIC}\nit's\n"


# -- the service -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_instances_one_slow_one_failing_answers_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeService().healthy() as good, FakeService().healthy() as slow, FakeService().healthy() as broken:
        for path in list(slow.endpoints):
            slow.endpoints[path].delay = 10
        broken.set_text("/actuator/health/kafka", "boom", status=500)
        config = configure(
            tmp_path,
            monkeypatch,
            instances=[
                {"name": "good", "url": good.url},
                {"name": "slow", "url": slow.url},
                {"name": "broken", "url": broken.url},
            ],
            app={"timeout": "1s"},
        )
        started = time.monotonic()
        result = run_kafkaops("status", "-o", "json", config=config, timeout=30)
        took = time.monotonic() - started
    doc = json.loads(result.stdout)
    assert took < 1 + 2.5, f"{took:.1f}s"
    assert result.returncode == 3
    checks = checks_by_name(doc)
    assert checks["service good"]["status"] == "OK"
    assert checks["circuit_breaker good"]["status"] == "OK"
    assert checks["service slow"]["status"] == "UNKNOWN"
    assert "no answer within 1s" in checks["service slow"]["message"]
    assert checks["service broken"]["status"] == "UNKNOWN"
    assert (
        "health: " in checks["service broken"]["message"]
        and "HTTP 500" in checks["service broken"]["message"]
    )
    # The broken one's metrics still answered: its pool is judged.
    assert checks["thread_pool broken"]["status"] == "OK"


def test_service_counts_stand_in_when_there_is_no_database(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_json(
        "/actuator/health/kafka", health_body(status="DEGRADED", breaker="CLOSED", pending=1500, dlq_failed=0)
    )
    configure(tmp_path, monkeypatch, instances=[service.url])
    code, doc, _ = status_json(cli)
    assert code == 1
    check = checks_by_name(doc)["pending_events"]
    assert check["value"] == 1500
    assert check["message"].endswith("(as the service reports)")
    assert doc["database"] is None and doc["kafka"] is None


def test_thread_pool_backpressure_from_the_stats_endpoint(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_json("/publisher/stats", stats_body(active=50, max_pool=50, queued=9001))
    configure(tmp_path, monkeypatch, instances=[service.url], app={"stats_path": "/publisher/stats"})
    code, doc, _ = status_json(cli)
    assert code == 1
    [check] = [c for c in doc["checks"] if c["name"].startswith("thread_pool")]
    assert check["status"] == "WARNING"
    assert "queue 9001 (> 9000)" in check["message"] and "all 50 threads busy" in check["message"]


def test_a_missing_metric_is_named_not_fatal(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_text("/actuator/prometheus", metrics_text(omit=("executor_",)))
    configure(tmp_path, monkeypatch, instances=[service.url])
    code, doc, _ = status_json(cli)
    assert code == 0
    [instance] = doc["instances"]
    assert instance["missing_metrics"] == ["executor_* (thread pool)"]
    [check] = [c for c in doc["checks"] if c["name"].startswith("service")]
    assert check["status"] == "OK" and "not exposed: executor_* (thread pool)" in check["message"]


# -- the breaker open for five minutes, across invocations ----------------------------------------


def test_breaker_open_becomes_critical_after_five_minutes_across_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

    def run_at(at: datetime) -> tuple[str, str]:
        settings = load_settings(Overrides())  # a fresh process each time, as cron runs it
        conns = Connections(settings)
        try:
            result = run_status(settings, conns, now=at)
        finally:
            conns.close()
        check = result.check("circuit_breaker pod-a")
        assert check is not None
        return check.status, check.message

    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    assert run_at(t0) == ("WARNING", "circuit breaker OPEN for 0s (critical after 5m)")
    assert run_at(t0 + timedelta(minutes=1)) == ("WARNING", "circuit breaker OPEN for 1m (critical after 5m)")
    assert run_at(t0 + timedelta(minutes=5))[0] == "WARNING"
    assert run_at(t0 + timedelta(minutes=5, seconds=1)) == (
        "CRITICAL",
        "circuit breaker OPEN for 5m1s (> 5m)",
    )
    service.set_json("/actuator/health/kafka", health_body(breaker="CLOSED"))
    assert run_at(t0 + timedelta(minutes=6))[0] == "OK"
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    # Closed in between: the clock starts again.
    assert run_at(t0 + timedelta(minutes=7)) == ("WARNING", "circuit breaker OPEN for 0s (critical after 5m)")


def test_an_unreachable_instance_keeps_its_breaker_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    settings = load_settings(Overrides())
    conns = Connections(settings)
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    run_status(settings, conns, now=t0)
    service.set_text("/actuator/health/kafka", "down", status=500)
    service.set_text("/actuator/prometheus", "down", status=500)
    unknown = run_status(settings, conns, now=t0 + timedelta(minutes=3))
    assert unknown.check("circuit_breaker pod-a") is None
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    later = run_status(settings, conns, now=t0 + timedelta(minutes=6))
    check = later.check("circuit_breaker pod-a")
    assert check is not None and check.status == "CRITICAL"


def test_cli_reads_the_first_seen_time_from_the_state_file(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    state_file = state_path(tmp_path / "state-home" / "kafkaops", "test")
    state_file.parent.mkdir(parents=True)
    since = (now() - timedelta(minutes=10)).isoformat()
    state_file.write_text(json.dumps({"version": 1, "breakers_open_since": {"pod-a": since}}))
    code, doc, _ = status_json(cli)
    assert code == 2
    check = checks_by_name(doc)["circuit_breaker pod-a"]
    assert check["status"] == "CRITICAL"
    assert check["message"].startswith("circuit breaker OPEN for 10m")
    assert "kafka check" in check["next_step"]


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 1, "breakers_open_since": {"pod-a": "yesterday"}}', "[]"]
)
def test_a_corrupt_state_file_is_reported_and_replaced(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, content: str
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    state_file = state_path(tmp_path / "state-home" / "kafkaops", "test")
    state_file.parent.mkdir(parents=True)
    state_file.write_text(content)
    result = cli("status", "-o", "json")
    assert result.exit_code == 1  # OPEN, first seen now: WARNING
    assert f"Warning: state file {state_file} is not a kafkaops state file: starting afresh" in result.stderr
    saved = json.loads(state_file.read_text())
    assert list(saved["breakers_open_since"]) == ["pod-a"]


def test_an_unwritable_state_dir_is_a_warning_not_a_failure(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    configure(tmp_path, monkeypatch, instances=[service.url], status={"state_dir": str(blocker / "sub")})
    result = cli("status", "-o", "json")
    assert result.exit_code == 0
    assert "cannot write state file" in result.stderr


# -- formats, exit codes, escaping, secrets ------------------------------------------------------


def test_nagios_line_with_performance_data(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert(
        rows(1500, age=timedelta(hours=2))
        + [event(9000 + i, status="DLQ_FAILED", created_at=now()) for i in range(3)]
    )
    configure(tmp_path, monkeypatch, database)
    result = cli("status", "-o", "nagios")
    assert result.exit_code == 2
    [line] = result.stdout.splitlines()
    assert line.startswith("KAFKAOPS CRITICAL - 3 DLQ_FAILED events require manual intervention | ")
    perf = dict(item.split("=", 1) for item in line.split(" | ", 1)[1].split())
    assert perf["pending"] == "1500;1000;5000;0"
    warn_crit = perf["oldest_pending_s"].split(";")
    assert 7200 <= int(warn_crit[0]) <= 7260 and warn_crit[1:] == ["3600", "14400", "0"]
    assert perf["dlq_failed"] == "3;0;0;0"


@pytest.mark.parametrize(
    ("pending", "code", "word"), [(0, 0, "OK"), (1001, 1, "WARNING"), (5001, 2, "CRITICAL")]
)
@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "nagios", "prometheus"])
def test_exit_code_is_the_same_for_every_format(
    make_database: Any,
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    pending: int,
    code: int,
    word: str,
) -> None:
    database = make_database("sqlite")
    database.init()
    if pending:
        database.insert(rows(pending))
    configure(tmp_path, monkeypatch, database)
    result = cli("status", "-o", fmt)
    assert result.exit_code == code
    if fmt == "nagios":
        assert result.stdout.startswith(f"KAFKAOPS {word} - ")
    elif fmt == "prometheus":
        assert f"kafkaops_status {float(code)}" in result.stdout
    elif fmt == "table":
        assert result.stdout.startswith(f"KAFKAOPS {word}")
    else:
        loaded = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
        assert loaded["status"] == word


def test_prometheus_text_parses_and_the_metrics_file_is_written(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    database.init()
    database.insert(
        rows(4, topic="casino.a")
        + rows(2, topic="casino.b")
        + [event(99, status="DLQ_FAILED", created_at=now())]
    )
    configure(tmp_path, monkeypatch, database)
    target = tmp_path / "kafkaops_status.prom"
    result = cli("status", "-o", "prometheus", "--metrics-file", str(target))
    assert result.exit_code == 2
    assert target.read_text() == result.stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    assert samples[("kafkaops_status", ())] == 2
    assert samples[("kafkaops_failed_events", (("status", "PENDING"),))] == 6
    assert samples[("kafkaops_failed_events", (("status", "DLQ_FAILED"),))] == 1
    assert samples[("kafkaops_failed_events_pending", (("topic", "casino.a"),))] == 4
    assert samples[("kafkaops_status_check", (("check", "dlq_failed"),))] == 2
    assert samples[("kafkaops_status_source_up", (("source", "database"),))] == 1


def test_a_metrics_file_that_cannot_be_written_is_a_warning_and_keeps_the_exit_code(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_json("/actuator/health/kafka", health_body(breaker="HALF_OPEN"))
    configure(tmp_path, monkeypatch, instances=[service.url])
    occupied = tmp_path / "a-folder"
    occupied.mkdir()
    result = cli("status", "-o", "nagios", "--metrics-file", str(occupied))
    assert result.exit_code == 1
    assert result.stdout.startswith("KAFKAOPS WARNING - circuit breaker HALF_OPEN")
    assert f"Warning: cannot write metrics to {occupied}" in result.stderr


def test_a_metrics_file_in_a_missing_folder_is_refused_before_anything_runs(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[service.url])
    result = cli("status", "--metrics-file", str(tmp_path / "nope" / "x.prom"))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: --metrics-file")
    assert service.requests == []


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["status", "-o", "csv"], None, "Error: status does not write 'csv'"),
        (["status", "--bogus"], None, "No such option: --bogus"),
        (["status", "--watch", "0"], None, "--watch"),
        (
            ["status"],
            {"app": {"instances": ["http://127.0.0.1:1"], "timout": "1s"}},
            "unknown key 'timout' in app\nHint: did you mean 'timeout'?",
        ),
        (
            ["status"],
            {"alerts": {"webhok": "http://x"}},
            "unknown key 'webhok' in alerts\nHint: did you mean 'webhook'?",
        ),
        (["status"], {"app": {"instances": ["ftp://x"]}}, "app.instances[0]"),
        (
            ["status"],
            {"app": {"instances": ["http://a:1"], "health_url": "http://b:1/h"}},
            "one-instance shorthand",
        ),
        (["status"], {}, "nothing to check"),
        (["--context", "nope", "status"], {}, "no context named 'nope'"),
    ],
)
def test_usage_and_config_errors_exit_3(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    config: dict[str, Any] | None,
    message: str,
) -> None:
    configure(tmp_path, monkeypatch, **(config or {}))
    result = cli(*args)
    assert result.exit_code == 3, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_nagios_gets_its_unknown_line_on_stdout_when_status_cannot_judge(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch)
    result = cli("status", "-o", "nagios")
    assert result.exit_code == 3
    assert result.stdout.startswith("KAFKAOPS UNKNOWN - nothing to check: no database")
    assert result.stderr.startswith("Error: nothing to check")


def test_other_commands_keep_exit_2_for_usage_errors(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, app={"instances": ["http://127.0.0.1:1"], "timout": "1s"})
    refused = cli("failed", "-o", "nagios")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: failed does not write 'nagios': -o/--output takes table, json")
    assert len(refused.stderr.splitlines()) == 1
    shown = cli("config", "show")  # the typo in `app` is named, not the status exit code 3
    assert (shown.exit_code, shown.stdout) == (2, "")
    error, hint = shown.stderr.splitlines()
    assert error == "Error: unknown key 'timout' in app"
    assert hint.startswith("Hint: did you mean 'timeout'?")


HOSTILE_TOPIC = "casino.[bold]x[/bold].\x1b]0;pwned\x07[/10.0.4.17:9092]"


@pytest.mark.slow
def test_hostile_strings_are_shown_literally_never_interpreted(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    import io

    from rich.console import Console

    from kafkaops.cli.status_view import build_view

    database.init()
    database.insert(rows(2, topic=HOSTILE_TOPIC))
    service.set_json("/actuator/health/kafka", health_body(status="[red]UP\x1b[2J", breaker="[/bold]"))
    configure(tmp_path, monkeypatch, database, instances=[{"name": "pod[/x]", "url": service.url}])
    piped = cli("status")
    assert piped.exit_code == 3, piped.stderr  # a breaker state nobody knows is UNKNOWN
    assert "unrecognised circuit breaker state '[/BOLD]'" in piped.stdout
    assert "\x1b" not in piped.stdout and "\x07" not in piped.stdout
    assert "casino.[bold]x[/bold].\\x1b]0;pwned\\x07[/10.0.4.17:9092]" in piped.stdout
    assert "[red]UP\\x1b[2J" in piped.stdout
    nagios = cli("status", "-o", "nagios")
    assert "\x1b" not in nagios.stdout and len(nagios.stdout.splitlines()) == 1
    # The terminal path (rich, colour): the same text, literally, and no escape from the data.
    settings = load_settings(Overrides())
    conns = Connections(settings)
    result = run_status(settings, conns, now=now())
    conns.close()
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=250, color_system="standard").print(
        build_view(result, context="t")
    )
    shown = buffer.getvalue()
    assert "\x1b]0;" not in shown and "\x07" not in shown and "\x1b[2J" not in shown
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "casino.[bold]x[/bold].\\x1b]0;pwned\\x07[/10.0.4.17:9092]" in plain
    assert "pod[/x]" in plain


@pytest.mark.slow
def test_app_secrets_are_masked_in_config_show_and_never_printed(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    monkeypatch.setenv("APP_TOKEN", "TokSECRET")
    base = service.url.replace("http://", "http://admin:UrlSECRET@")
    configure(
        tmp_path,
        monkeypatch,
        instances=[base],
        app={"password": "PwSECRET", "username": "ops", "token": "${APP_TOKEN}"},
        alerts={"webhook": "https://hooks.slack.com/services/T0/B0/HookSECRET"},
    )
    shown = cli("config", "show")
    assert shown.exit_code == 0
    assert "SECRET" not in shown.stdout + shown.stderr
    assert "hooks.slack.com" in shown.stdout and "127.0.0.1" in shown.stdout
    service.set_text("/actuator/prometheus", "x", status=500)
    for fmt in ("table", "json", "nagios", "prometheus"):
        result = cli("status", "-o", fmt)
        assert "SECRET" not in result.stdout + result.stderr, fmt
    # The token went out as the bearer (it beats basic auth).
    assert {h.get("Authorization") for _, _, h in service.requests} == {"Bearer TokSECRET"}


@pytest.mark.slow
def test_table_view_when_piped_is_plain_text(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    database.init()
    database.insert([*rows(3), event(50, status="DLQ_FAILED", created_at=now())])
    configure(tmp_path, monkeypatch, database, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("KAFKAOPS CRITICAL  context test")
    assert "\x1b" not in result.stdout
    assert all(line == line.rstrip() for line in lines)
    text = result.stdout
    assert re.search(r"CRITICAL\s+dlq_failed\s+1 DLQ_FAILED events require manual intervention", text)
    assert "→ kafkaops failed list --status DLQ_FAILED, then kafkaops failed requeue" in text
    # Worst first: the critical line comes before every OK line.
    assert text.index("CRITICAL  dlq_failed") < text.index("OK ")
    assert re.search(r"PENDING\s+3\s+oldest 5m ago, 3 due now", text)
    assert re.search(r"pod-a\s+UP\s+CLOSED\s+3/50\s+0/10000\s+p99 48 ms", text)


# -- --watch ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_watch_refreshes_in_a_terminal_and_ctrl_c_exits_0(
    database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pty

    database.init()
    database.insert(rows(3))
    config = configure(tmp_path, monkeypatch, database)
    primary, secondary = pty.openpty()
    env = process_env(config=config, env={"COLUMNS": "160", "LINES": "50", "TERM": "xterm"})
    proc = subprocess.Popen(
        [*KAFKAOPS, "status", "--watch", "0.5"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    seen = b""
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = b"".join(chunks)
            # Two refreshes: the trend line has two points.
            if seen.count(b"pending since the watch began") >= 2:
                break
            time.sleep(0.1)
        assert b"pending since the watch began" in seen, seen[-2000:]
        assert b"3 \xe2\x86\x92 3 (+0)" in seen  # "3 → 3 (+0)"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(primary)


def test_watch_needs_a_terminal(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[service.url])
    result = cli("status", "--watch")
    assert result.exit_code == 3
    assert "Error: --watch needs a terminal" in result.stderr


# -- an inconsistent metrics endpoint ------------------------------------------------------------

PUBLISHED_OK = 'kafka_events_published_total{topic="casino.player.registered.v1",status="success",} '


def test_duplicate_metric_samples_with_different_values_are_named_and_not_judged(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """Two registries exposing one meter (the same name and labels twice): which value is
    right cannot be known, so neither is summed, picked or judged; the line says why."""
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    service.set_text("/actuator/prometheus", metrics_text() + PUBLISHED_OK + "1300\n")
    code, doc, _ = status_json(cli)
    assert code == 1, doc
    check = checks_by_name(doc)["service pod-a"]
    assert check["status"] == "WARNING"
    assert (
        'kafka_events_published_total{status="success",topic="casino.player.registered.v1"} given '
        "twice with different values (1200, 1300): the metrics endpoint is inconsistent"
    ) in check["message"]
    assert "not exposed" not in check["message"]
    [instance] = doc["instances"]
    assert instance["published"] == {}  # no error ratio from half a counter


def test_a_sample_given_twice_with_the_same_value_counts_once(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    service.set_text("/actuator/prometheus", metrics_text() + PUBLISHED_OK + "1200\n")
    code, doc, _ = status_json(cli)
    assert code == 0, doc
    assert checks_by_name(doc)["service pod-a"]["status"] == "OK"
    [instance] = doc["instances"]
    assert instance["published"] == {"success": 1200.0, "error": 4.0}  # not 2,400


# -- what the service says about itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("health", "http", "word", "code"),
    [
        ("DOWN", 503, "CRITICAL", 2),
        ("OUT_OF_SERVICE", 503, "CRITICAL", 2),
        ("DEGRADED", 200, "WARNING", 1),
        ("UNKNOWN", 200, "WARNING", 1),
        ("UP", 200, "OK", 0),
        ("UP", 503, "OK", 0),  # a 503 with a body is judged by the body
    ],
)
@pytest.mark.slow
def test_the_services_own_health_status_is_judged(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service: FakeService,
    health: str,
    http: int,
    word: str,
    code: int,
) -> None:
    """/actuator/health/kafka answering 503 {"status":"DOWN"} gave an OK service line and exit 0."""
    service.set_json("/actuator/health/kafka", {"status": health}, status=http)
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    exit_code, doc, _ = status_json(cli)
    assert exit_code == code
    check = checks_by_name(doc)["service pod-a"]
    assert (check["status"], check["value"]) == (word, health)
    assert check["message"].startswith(f"health {health}")
    nagios = cli("status", "-o", "nagios")
    assert nagios.exit_code == code
    assert nagios.stdout.startswith(f"KAFKAOPS {word} - ")
    if word == "CRITICAL":
        assert f"health {health}" in nagios.stdout
        assert "kafkaops failed --status PENDING --group-by topic" in check["next_step"]


def test_a_503_health_without_a_body_is_critical(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_text("/actuator/health/kafka", "<html>Service Unavailable</html>", status=503)
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    code, doc, _ = status_json(cli)
    assert code == 2
    check = checks_by_name(doc)["service pod-a"]
    assert check["status"] == "CRITICAL"
    assert check["message"] == (
        f"health endpoint answers 503 Service Unavailable; "
        f"health: {service.url}/actuator/health/kafka: HTTP 503, invalid JSON"
    )


def test_a_health_status_nobody_knows_is_unknown(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_json("/actuator/health/kafka", health_body(status="MOSTLY_FINE"))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    code, doc, _ = status_json(cli)
    assert code == 3
    check = checks_by_name(doc)["service pod-a"]
    assert (check["status"], check["message"]) == ("UNKNOWN", "unrecognised health status 'MOSTLY_FINE'")


def test_a_health_key_given_twice_with_different_values_is_not_used(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """`"circuitBreakerState":"OPEN","circuitBreakerState":"CLOSED"`: json.loads kept the last
    (CLOSED: OK); as with a series given twice, neither is used and the check says why."""
    service.set_text(
        "/actuator/health/kafka",
        '{"status":"UP","details":{"circuitBreakerState":"OPEN","circuitBreakerState":"CLOSED"}}',
        content_type="application/json",
    )
    service.set_text("/actuator/prometheus", metrics_text(omit=("resilience4j_",)))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    code, doc, _ = status_json(cli)
    assert code == 1
    checks = checks_by_name(doc)
    assert "circuit_breaker pod-a" not in checks
    assert doc["instances"][0]["circuit_breaker"] is None
    check = checks["service pod-a"]
    assert check["status"] == "WARNING"
    assert check["message"] == (
        "health UP; not exposed: resilience4j_circuitbreaker_state; "
        'details.circuitBreakerState given twice with different values ("OPEN", "CLOSED"): '
        "the health endpoint is inconsistent: not judged"
    )
    assert (
        check["next_step"] == f"look at what the service answers: curl -s {service.url}/actuator/health/kafka"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-o", "nagios", "--bogus"], "KAFKAOPS UNKNOWN - No such option: --bogus"),
        (["--watch", "abc", "-onagios"], "KAFKAOPS UNKNOWN - Invalid value for '--watch' / '-w': 'abc'"),
        (
            ["--output=NAGIOS", "--metrics-file"],
            "KAFKAOPS UNKNOWN - Option '--metrics-file' requires an argument",
        ),
    ],
)
def test_a_usage_error_still_gives_nagios_its_plugin_line(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service: FakeService,
    args: list[str],
    expected: str,
) -> None:
    """Nagios shows stdout: a mistyped option gave it nothing ("(No output on stdout)")."""
    configure(tmp_path, monkeypatch, instances=[service.url])
    result = cli("status", *args)
    assert result.exit_code == 3
    assert result.stdout.startswith(expected) and result.stdout.count("\n") == 1, result.stdout


def test_the_unknown_line_of_a_usage_error_is_cut_and_escaped_as_every_plugin_line(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """A 10 kB option name made a 10 kB UNKNOWN line: Nagios keeps 8 kB of it."""
    configure(tmp_path, monkeypatch, instances=[service.url])
    result = cli("status", "-o", "nagios", "--" + "a|" * 5000)
    assert result.exit_code == 3
    line = result.stdout.removesuffix("\n")
    assert "\n" not in line and "|" not in line
    assert line.startswith("KAFKAOPS UNKNOWN - No such option: --a/a/a/") and line.endswith("…")
    assert len(line.encode()) <= 8000


def test_a_usage_error_without_nagios_prints_nothing_on_stdout(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    configure(tmp_path, monkeypatch, instances=[service.url])
    result = cli("status", "-o", "json", "--bogus")
    assert result.exit_code == 3 and result.stdout == ""


def test_a_breaker_first_seen_in_the_future_is_seen_again_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """After the clock went back (NTP step, a VM restored), the stored first-seen time lay in the
    future: the breaker stayed WARNING until the clock caught up, an hour past its 5 minutes."""
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    state_file = state_path(tmp_path / "state-home" / "kafkaops", "test")
    state_file.parent.mkdir(parents=True)
    ahead = (t0 + timedelta(hours=1)).isoformat()
    state_file.write_text(json.dumps({"version": 1, "breakers_open_since": {"pod-a": ahead}}))

    def run_at(at: datetime) -> tuple[str, str]:
        settings = load_settings(Overrides())
        conns = Connections(settings)
        try:
            check = run_status(settings, conns, now=at).check("circuit_breaker pod-a")
        finally:
            conns.close()
        assert check is not None
        return check.status, check.message

    assert run_at(t0) == ("WARNING", "circuit breaker OPEN for 0s (critical after 5m)")
    assert json.loads(state_file.read_text())["breakers_open_since"] == {"pod-a": "2026-11-27T12:00:00Z"}
    assert run_at(t0 + timedelta(minutes=6)) == ("CRITICAL", "circuit breaker OPEN for 6m (> 5m)")


@pytest.mark.slow
def test_thousands_of_missing_dlq_topics_make_a_line_of_ten_and_a_count(
    database: Any, embedded_kafka: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table with 3,000 topics without a DLQ topic made a nagios line of 3,000 names and a
    next step of 3,000 commands."""
    database.init()
    database.insert([event(i, topic=f"casino.t{i:04d}.v1", status="DLQ") for i in range(3000)])
    configure(tmp_path, monkeypatch, database, kafka=embedded_kafka.bootstrap_servers)
    result = cli("status", "-o", "nagios")
    assert result.exit_code == 1
    line = result.stdout.strip()
    assert line.startswith(
        "KAFKAOPS WARNING - missing DLQ topic(s): casino.t0000.v1.dlq, casino.t0001.v1.dlq, "
    )
    assert "casino.t0009.v1.dlq and 2,990 more: the next DLQ send for them fails" in line
    assert "casino.t0010.v1.dlq" not in line and len(line) < 1000
    assert "missing_dlq_topics=3000;0;;0" in line
    doc = json.loads(cli("status", "-o", "json").stdout)
    check = {c["name"]: c for c in doc["checks"]}["dlq_topics"]
    assert check["value"] == 3000
    assert check["next_step"].count("kafkaops dlq ensure") == 10
    assert sum(1 for d in doc["dlq_topics"] if not d["exists"]) == 3000  # the whole list is in the JSON
    table = cli("status").stdout
    assert "DLQ topics (20 of 3,000, missing first; all: -o json)" in table
    assert sum(1 for line in table.splitlines() if "MISSING" in line) == 20


@pytest.mark.slow
def test_watch_on_a_dumb_terminal_shows_each_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """With TERM=dumb (Emacs' shell) rich's Live drew nothing: --watch showed a blank screen."""
    import pty
    import select

    service.set_json("/actuator/health/kafka", health_body(pending=7, status="UP\x1b[2J"))
    config = configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env.update({"KAFKAOPS_CONFIG": str(config), "TERM": "dumb"})
    proc = subprocess.Popen(
        [*KAFKAOPS, "status", "--watch", "0.5"], stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while seen.count(b"refreshing every 0.5s") < 2:
            assert time.monotonic() < deadline, f"no refresh shown within 30 s: {seen!r}"
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                seen += os.read(master, 65536)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0  # Ctrl-C ends the watch with exit 0
    finally:
        proc.kill()
        os.close(master)
        if proc.stderr:
            proc.stderr.close()
    text = seen.decode("utf-8", "replace")
    assert text.count("KAFKAOPS UNKNOWN") >= 2  # a health status nobody knows is UNKNOWN
    assert "7 PENDING events" in text
    assert "\x1b" not in text  # no escape codes for a dumb terminal, and none from the data
    assert "UP\\x1b[2J" in text
