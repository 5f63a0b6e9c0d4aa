"""Trial H: `kafkaops status` and `kafkaops retry` run as an adversary would, against the real
database, the embedded broker and loopback HTTP servers. One test per defect found, each failing
before its fix.

Tests that guard a deadline run kafkaops as a subprocess with a timeout of their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.connections import Connections
from kafkaops.demo.service import FakeService, health_body, metrics_text
from kafkaops.status.gather import run_status
from kafkaops.status.statefile import state_path
from tests.helpers.events import event
from tests.helpers.topics import consume
from tests.retry.test_pass import configure as configure_retry
from tests.retry.test_pass import statuses
from tests.status.test_end_to_end import configure

KAFKAOPS = str(Path(sys.executable).parent / "kafkaops")


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService().healthy() as running:
        yield running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def run_cli(
    args: list[str], config: Path, *, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "KAFKAOPS_CONFIG": str(config)}
    started = time.monotonic()
    done = subprocess.run([KAFKAOPS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


# -- the webhook ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["exa..mple", "a" * 70 + ".example"])
def test_a_webhook_with_an_invalid_host_name_is_a_warning_and_keeps_the_exit_code(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, host: str
) -> None:
    """It was `unexpected UnicodeError`, exit 3, and no plugin line: a CRITICAL read as UNKNOWN."""
    service.set_json("/actuator/health/kafka", health_body(dlq_failed=3))
    configure(
        tmp_path, monkeypatch, instances=[service.url], alerts={"webhook": f"http://{host}/hooks/SECRETPATH"}
    )
    result = cli("status", "-o", "nagios")
    assert result.exit_code == 2
    assert result.stdout.startswith("KAFKAOPS CRITICAL - 3 DLQ_FAILED events")
    assert f"Warning: alert webhook failed: http://{host}/****: invalid host name" in result.stderr
    assert "unexpected" not in result.stderr and "SECRETPATH" not in result.stderr


def test_an_instance_with_an_invalid_host_name_says_so(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": "http://exa..mple:8080"}])
    result = cli("status", "-o", "json")
    assert result.exit_code == 3
    [instance] = json.loads(result.stdout)["instances"]
    assert instance["endpoint_errors"]["health"] == (
        "http://exa..mple:8080/actuator/health/kafka: invalid host name"
    )


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (
            {"token": "abc\nX-Injected: 1"},
            "cannot send the request: a credential or header holds a line break",
        ),
        (
            {"health_path": "/actuator/héalth"},
            "cannot send the request: the URL or a header holds characters",
        ),
    ],
    ids=["token-with-newline", "non-ascii-path"],
)
def test_a_request_http_cannot_carry_is_named_not_unexpected(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service: FakeService,
    app: dict,
    expected: str,  # type: ignore[type-arg]
) -> None:
    """They read `health: ...: ValueError`; the token must not be repeated."""
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}], app=app)
    result = cli("status", "-o", "json")
    assert result.exit_code == 3
    errors = json.loads(result.stdout)["instances"][0]["endpoint_errors"]
    assert expected in errors["health"]
    assert "X-Injected" not in result.stdout + result.stderr
    assert not [r for r in service.requests if "X-Injected" in r[2]]


def test_a_hanging_webhook_cannot_hold_status_past_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, silent_port: int
) -> None:
    """The webhook had 5 s of its own after gathering: status took 5.2 s with timeouts of 1 s."""
    service.set_json("/actuator/health/kafka", health_body(dlq_failed=3))
    config = configure(
        tmp_path,
        monkeypatch,
        instances=[service.url],
        app={"timeout": "1s"},
        status={"timeout": "1s"},
        alerts={"webhook": f"http://127.0.0.1:{silent_port}/hook"},
    )
    done, took = run_cli(["status", "-o", "nagios"], config, timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("KAFKAOPS CRITICAL")
    assert "Warning: alert webhook failed:" in done.stderr and "no answer within" in done.stderr
    # timeout (1 s) + 1 s, with room for a loaded machine; the defect took more than 5 s.
    assert took < 4.5, f"status took {took:.1f}s with a hanging webhook"


# -- data from the service -------------------------------------------------------------------------


def test_control_characters_in_service_labels_never_reach_prometheus_text_raw(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """prometheus_client escapes backslash, quote and newline only: ESC reached the terminal."""
    from prometheus_client.parser import text_string_to_metric_families

    service.set_text(
        "/actuator/prometheus",
        metrics_text(executor="pool\x1b]0;pwned\x07\x9b31m"),
    )
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "prometheus")
    assert result.exit_code == 0
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in result.stdout
    executors = {
        s.labels["executor"]
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
        if "executor" in s.labels
    }
    assert executors == {"pool\\x1b]0;pwned\\x07\\x9b31m"}


@pytest.mark.parametrize(
    "bogus",
    [-3, "lots", 1e300, True, 12.5, "NaN", [], {"n": 1}],
    ids=["negative", "text", "huge", "bool", "fraction", "nan", "list", "object"],
)
def test_a_count_that_is_not_a_count_is_named_not_judged(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, bogus: Any
) -> None:
    """1e300 pending events was CRITICAL with a 300-digit figure; -3 DLQ_FAILED events was OK;
    "lots" vanished without a word."""
    service.set_json(
        "/actuator/health/kafka",
        {"status": "UP", "details": {"pendingEvents": bogus, "dlqFailedEvents": bogus}},
    )
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "json")
    doc = json.loads(result.stdout)
    names = {c["name"]: c for c in doc["checks"]}
    assert "pending_events" not in names and "dlq_failed" not in names
    [instance] = doc["instances"]
    assert instance["pending_events"] is None and instance["dlq_failed_events"] is None
    service_check = names["service pod-a"]
    assert service_check["status"] == "WARNING"
    assert "pendingEvents is not a count" in service_check["message"]
    assert "dlqFailedEvents is not a count" in service_check["message"]
    assert result.exit_code == 1


def test_a_negative_thread_count_is_named_not_judged(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """executor_pool_max_threads -1 with 3 active threads read as "all -1 threads busy"."""
    service.set_text("/actuator/prometheus", metrics_text(max_pool=-1, remaining=-50))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    result = cli("status", "-o", "json")
    doc = json.loads(result.stdout)
    names = {c["name"]: c for c in doc["checks"]}
    assert names["thread_pool pod-a"]["status"] == "OK", names["thread_pool pod-a"]
    assert names["service pod-a"]["status"] == "WARNING"
    assert doc["instances"][0]["invalid_figures"] == [
        "kafkaPublisherExecutor: executor_queue_remaining_tasks is not a count (-50.0)",
        "kafkaPublisherExecutor: executor_pool_max_threads is not a count (-1.0)",
    ]
    assert result.exit_code == 1


@pytest.mark.parametrize(("given", "expected"), [(0, 0), (1500, 1500), (1500.0, 1500), ("1500", 1500)])
def test_counts_in_any_honest_form_are_read(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, given: Any, expected: int
) -> None:
    service.set_json("/actuator/health/kafka", health_body(pending=given))
    configure(tmp_path, monkeypatch, instances=[{"name": "pod-a", "url": service.url}])
    doc = json.loads(cli("status", "-o", "json").stdout)
    assert doc["instances"][0]["pending_events"] == expected
    assert {c["name"]: c for c in doc["checks"]}["service pod-a"]["status"] == "OK"


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


# -- the state file ----------------------------------------------------------------------------------


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


def test_two_status_runs_at_once_send_one_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    """Two runs from cron (Nagios and the textfile job) each read the state before the other
    saved it, and both sent the alert: the state file's read-modify-write is now locked."""
    service.set_json("/actuator/health/kafka", health_body(dlq_failed=3), delay=0.5)
    with FakeService() as hook:
        config = configure(
            tmp_path,
            monkeypatch,
            instances=[{"name": "pod-a", "url": service.url}],
            alerts={"webhook": f"{hook.url}/hook"},
        )
        env = {**os.environ, "KAFKAOPS_CONFIG": str(config)}
        procs = [
            subprocess.Popen(
                [KAFKAOPS, "status", "-o", "nagios"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            results = [p.communicate(timeout=30) for p in procs]
        finally:
            for p in procs:
                p.kill()
        assert [p.returncode for p in procs] == [2, 2, 2], results
        assert all(out.startswith("KAFKAOPS CRITICAL") for out, _ in results)
        assert len(hook.posts) == 1, [text for _, text in hook.posts]
    saved = json.loads(state_path(tmp_path / "state-home" / "kafkaops", "test").read_text())
    assert saved["alert"]["fingerprint"] == "dlq_failed"


# -- retry -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", ["25d", "30d", "999999999d"])
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
    configure_retry(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("t")
    pg_database.insert([event(i, topic="t") for i in range(5)])
    result = cli("retry", "--deadline", deadline, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 5
    assert statuses(pg_database) == {"RESOLVED": 5}
    assert len(consume(embedded_kafka.bootstrap_servers, "t", expect=5, idle=0.5)) == 5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_pass_after_settling_what_was_published(
    pg_database: Any, embedded_kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    """SIGTERM (timeout(1), systemd, Kubernetes) killed the pass at once: a batch the broker had
    acknowledged was never settled and went out again next pass, no summary, no metrics, exit -15."""
    pg_database.init()
    config = configure_retry(pg_database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("slow")
    pg_database.insert([event(i, topic="slow") for i in range(60)])
    embedded_kafka.set_rtt(-1, 300)  # every produce request waits: a batch takes a while
    metrics = tmp_path / "retry.prom"
    env = {**os.environ, "KAFKAOPS_CONFIG": str(config)}
    proc = subprocess.Popen(
        [KAFKAOPS, "retry", "--batch-size", "5", "-o", "json", "--metrics-file", str(metrics)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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


@pytest.mark.kafka
def test_a_topic_name_kafka_refuses_is_not_advised_a_requeue(
    pg_database: Any, kafka_bootstrap: str, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose topic has a space (or no topic at all) ended DLQ_FAILED with "requeue when the
    DLQ is writable": its DLQ topic's name is refused as well, so a requeue can only fail again."""
    pg_database.init()
    configure_retry(pg_database, tmp_path, monkeypatch, kafka_bootstrap, max_retries=1)
    pg_database.insert([event(1, topic="casino player registered"), event(2, topic="")])
    result = cli("retry")
    assert result.exit_code == 1
    assert statuses(pg_database) == {"DLQ_FAILED": 2}
    assert "requeue when the DLQ is writable" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("CRITICAL:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "CRITICAL: 2 event(s) have no topic, or one Kafka refuses as a name (and their DLQ topic with it), "
        "and are now DLQ_FAILED: id "
    )
    assert "a requeue would only fail again" in lines[0]
    assert sorted(lines[0].split("id ")[1].split(" (")[0].split(", ")) == ["1", "2"]


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


@pytest.mark.parametrize(
    ("pattern", "published"),
    [("a_*", ["a_b"]), ("a%*", ["a%b", "a%xb"]), ("a?b", ["a%b", "a_b", "axb"]), ("a\\*", [])],
)
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
    configure_retry(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
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
        [KAFKAOPS, "status", "--watch", "0.5"], stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env
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


def test_the_webhook_waits_only_as_long_as_alerts_timeout_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService, silent_port: int
) -> None:
    """alerts.timeout bounds one send (default 5 s), even when the run's deadline leaves more."""
    service.set_json("/actuator/health/kafka", health_body(dlq_failed=3))
    config = configure(
        tmp_path,
        monkeypatch,
        instances=[service.url],
        app={"timeout": "1s"},
        status={"timeout": "10s"},
        alerts={"webhook": f"http://127.0.0.1:{silent_port}/hook", "timeout": "500ms"},
    )
    done, took = run_cli(["status", "-o", "nagios"], config, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Warning: alert webhook failed:" in done.stderr
    assert "no answer within 0.5s" in done.stderr
    assert took < 4.5, f"status took {took:.1f}s with alerts.timeout 500ms"
