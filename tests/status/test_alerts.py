"""`kafkaops status` alerts: the webhook is sent once per change and once on recovery, within
`alerts.timeout`, never by two runs at once, and with text that cannot mention anyone."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kafkaops.demo.service import FakeService, health_body
from kafkaops.status.statefile import state_path
from tests.conftest import TestDatabase
from tests.helpers.embedded_fixtures import free_port
from tests.helpers.events import event
from tests.helpers.process import KAFKAOPS, process_env, timed_kafkaops
from tests.helpers.status import configure, now, rows


@pytest.mark.slow
def test_webhook_alert_is_sent_once_then_recovery_once(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert([*rows(1), event(7, status="DLQ_FAILED", created_at=now())])
    with FakeService() as hook:
        configure(
            tmp_path, monkeypatch, database, alerts={"webhook": f"{hook.url}/services/T0/B0/HookSECRET"}
        )
        first = cli("status", "-o", "json")
        assert first.exit_code == 2
        assert len(hook.posts) == 1
        path, payload = hook.posts[0]
        assert path == "/services/T0/B0/HookSECRET"
        assert payload["text"].startswith("KAFKAOPS CRITICAL (test)")
        assert (
            "1 DLQ_FAILED events require manual intervention: kafkaops failed list --status DLQ_FAILED"
            in payload["text"]
        )
        assert payload["status"] == "CRITICAL"
        assert [c["name"] for c in payload["checks"]] == ["dlq_failed"]
        # Nothing changed: no second alert.
        assert cli("status", "-o", "json").exit_code == 2
        assert len(hook.posts) == 1
        # Cleared: one recovery message, then silence.
        with database.engine.begin() as conn:
            conn.execute(sa.update(database.table).values(status="RESOLVED"))
        assert cli("status", "-o", "json").exit_code == 0
        assert len(hook.posts) == 2
        assert hook.posts[1][1]["text"].startswith("KAFKAOPS RECOVERED (test): now OK")
        assert hook.posts[1][1]["kind"] == "recovery"
        assert cli("status", "-o", "json").exit_code == 0
        assert len(hook.posts) == 2


@pytest.mark.slow
def test_a_new_critical_check_alerts_again(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert([event(7, status="DLQ_FAILED", created_at=now())])
    with FakeService() as hook:
        configure(tmp_path, monkeypatch, database)
        cli("status", "--alert-webhook", f"{hook.url}/hook")
        database.insert(rows(5001))
        cli("status", "--alert-webhook", f"{hook.url}/hook")
        assert len(hook.posts) == 2
        assert [c["name"] for c in hook.posts[1][1]["checks"] if c["status"] == "CRITICAL"] == [
            "dlq_failed",
            "pending_events",
        ]


@pytest.mark.slow
def test_a_failing_webhook_is_reported_without_changing_the_exit_code_and_retried(
    database: TestDatabase, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.init()
    database.insert([event(7, status="DLQ_FAILED", created_at=now())])
    with FakeService() as hook:
        hook.post_status = 500
        configure(
            tmp_path, monkeypatch, database, alerts={"webhook": f"{hook.url}/services/T0/B0/HookSECRET"}
        )
        result = cli("status")
        assert result.exit_code == 2
        assert f"Warning: alert webhook failed: {hook.url}/****: HTTP 500" in result.stderr
        assert "HookSECRET" not in result.stderr + result.stdout
        hook.post_status = 200
        assert cli("status").exit_code == 2
        assert len(hook.posts) == 2  # the failed one, then the retry that worked
    state_path(tmp_path / "state-home" / "kafkaops", "test").unlink()  # forget the alert sent
    unreachable = cli("status", "--alert-webhook", f"http://127.0.0.1:{free_port()}/x")
    assert unreachable.exit_code == 2
    assert "alert webhook failed" in unreachable.stderr and "connection refused" in unreachable.stderr


@pytest.mark.slow
def test_slack_text_cannot_mention_anyone(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    service.set_json("/actuator/health/kafka", health_body(breaker="OPEN"))
    configure(tmp_path, monkeypatch, instances=[{"name": "<!channel>", "url": service.url}])
    state_file = state_path(tmp_path / "state-home" / "kafkaops", "test")
    state_file.parent.mkdir(parents=True)
    state_file.write_text(
        json.dumps(
            {"version": 1, "breakers_open_since": {"<!channel>": (now() - timedelta(hours=1)).isoformat()}}
        )
    )
    with FakeService() as hook:
        assert cli("status", "--alert-webhook", f"{hook.url}/hook").exit_code == 2
        [(_, payload)] = hook.posts
    assert "<!channel>" not in payload["text"]
    assert "- circuit_breaker &lt;!channel&gt;: circuit breaker OPEN for 1h (&gt; 5m)" in payload["text"]


@pytest.mark.parametrize("host", ["exa..mple", "a" * 70 + ".example"])
@pytest.mark.slow
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


@pytest.mark.slow
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
    done, took = timed_kafkaops("status", "-o", "nagios", config=config, timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("KAFKAOPS CRITICAL")
    assert "Warning: alert webhook failed:" in done.stderr and "no answer within" in done.stderr
    # timeout (1 s) + 1 s, with room for a loaded machine; the defect took more than 5 s.
    assert took < 4.5, f"status took {took:.1f}s with a hanging webhook"


@pytest.mark.slow
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
        env = process_env(config=config)
        procs = [
            subprocess.Popen(
                [*KAFKAOPS, "status", "-o", "nagios"],
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


@pytest.mark.slow
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
    done, took = timed_kafkaops("status", "-o", "nagios", config=config, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Warning: alert webhook failed:" in done.stderr
    assert "no answer within 0.5s" in done.stderr
    assert took < 4.5, f"status took {took:.1f}s with alerts.timeout 500ms"
