"""`kafkaops status` judging: every threshold of the runbook at, below and above its edge.

These are pure functions (kafkaops.status.checks), so each edge is one parametrised case; the
CLI tests (tests/status/test_end_to_end.py) show the same edges end to end against real PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kafkaops.config.settings import Thresholds
from kafkaops.kafka.dlq_names import DlqTopic
from kafkaops.status import checks
from kafkaops.status.checks import CRITICAL, OK, UNKNOWN, WARNING, Check
from kafkaops.status.model import ThreadPool

T = Thresholds()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(999, OK), (1000, OK), (1001, WARNING), (4999, WARNING), (5000, WARNING), (5001, CRITICAL)],
)
def test_pending_events_edges(count: int, expected: str) -> None:
    check = checks.pending_events(count, T)
    assert check.status == expected
    assert check.value == count
    assert (check.next_step is None) == (expected == OK)


def test_pending_growing_since_the_last_run_is_said() -> None:
    check = checks.pending_events(1500, T, breaker_open=True, change=(300, timedelta(minutes=1)))
    assert check.message == "1500 PENDING events (> 1000), +300 since 1m ago"
    assert (check.next_step or "").startswith("pending growing while the service's circuit breaker is OPEN")
    assert checks.pending_events(10, T, change=(-5, timedelta(minutes=2))).message == (
        "10 PENDING events, -5 since 2m ago"
    )


def test_pending_with_the_breaker_open_points_at_kafka() -> None:
    check = checks.pending_events(1500, T, breaker_open=True)
    assert check.status == WARNING
    assert "circuit breaker is OPEN" in (check.next_step or "")
    assert "kafka check" in (check.next_step or "")


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(minutes=59, seconds=59), OK),
        (timedelta(hours=1), OK),
        (timedelta(hours=1, seconds=1), WARNING),
        (timedelta(hours=4), WARNING),
        (timedelta(hours=4, seconds=1), CRITICAL),
        (None, OK),
    ],
)
def test_oldest_pending_age_edges(age: timedelta | None, expected: str) -> None:
    assert checks.oldest_pending_age(age, T).status == expected


def test_an_oldest_pending_event_dated_in_the_future_says_so() -> None:
    check = checks.oldest_pending_age(-timedelta(hours=2, minutes=30), T)
    assert (check.status, check.message) == (OK, "oldest PENDING event is dated 2h30m in the future")


@pytest.mark.parametrize(("count", "expected"), [(0, OK), (1, CRITICAL), (3, CRITICAL)])
def test_any_dlq_failed_row_is_critical_at_once(count: int, expected: str) -> None:
    check = checks.dlq_failed(count, T)
    assert check.status == expected
    if count:
        assert check.message == f"{count} DLQ_FAILED events require manual intervention"
        assert check.next_step == "kafkaops failed list --status DLQ_FAILED, then kafkaops failed requeue"


def test_a_configured_dlq_failed_threshold_moves_the_edge() -> None:
    t = Thresholds(dlq_failed_critical=2)
    assert checks.dlq_failed(2, t).status == OK
    assert checks.dlq_failed(3, t).status == CRITICAL


@pytest.mark.parametrize(
    ("state", "open_for", "expected"),
    [
        ("CLOSED", None, OK),
        ("HALF_OPEN", None, WARNING),
        ("OPEN", timedelta(0), WARNING),
        ("OPEN", timedelta(minutes=4, seconds=59), WARNING),
        ("OPEN", timedelta(minutes=5), WARNING),
        ("OPEN", timedelta(minutes=5, seconds=1), CRITICAL),
        ("FORCED_OPEN", timedelta(minutes=6), CRITICAL),
        ("DISABLED", None, OK),
        ("SOMETHING_ELSE", None, UNKNOWN),
    ],
)
def test_circuit_breaker_edges(state: str, open_for: timedelta | None, expected: str) -> None:
    since = NOW - open_for if open_for is not None else None
    check = checks.circuit_breaker("pod-a", state, since, NOW, T)
    assert check is not None
    assert check.status == expected
    assert check.name == "circuit_breaker pod-a"


def test_an_instance_without_breaker_state_has_no_breaker_check() -> None:
    assert checks.circuit_breaker("pod-a", None, None, NOW, T) is None


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        (ThreadPool("publisher", active=10, max_pool=50, queued=9000), OK),
        (ThreadPool("publisher", active=10, max_pool=50, queued=9001), WARNING),
        # 90 % of a 1,000-task queue: the share rule, far below 9,000.
        (ThreadPool("publisher", active=10, max_pool=50, queued=900, queue_capacity=1000), OK),
        (ThreadPool("publisher", active=10, max_pool=50, queued=901, queue_capacity=1000), WARNING),
        (ThreadPool("publisher", active=49, max_pool=50, queued=0), OK),
        (ThreadPool("publisher", active=50, max_pool=50, queued=0), WARNING),
        (ThreadPool("publisher", active=None, max_pool=None, queued=None), OK),
    ],
)
def test_thread_pool_edges(pool: ThreadPool, expected: str) -> None:
    check = checks.thread_pool("pod-a", [pool], T)
    assert check is not None
    assert check.status == expected


def test_the_publisher_pool_is_judged_instead_of_other_executors() -> None:
    busy_other = ThreadPool("applicationTaskExecutor", active=8, max_pool=8, queued=0)
    publisher = ThreadPool("publisher", active=1, max_pool=50, queued=0)
    check = checks.thread_pool("pod-a", [publisher, busy_other], T)
    assert check is not None and check.status == OK
    alone = checks.thread_pool("pod-a", [busy_other], T)
    assert alone is not None and alone.status == WARNING
    assert "all 8 threads busy" in alone.message


def test_no_pool_reported_means_no_pool_check() -> None:
    assert checks.thread_pool("pod-a", [], T) is None


def test_a_missing_dlq_topic_is_a_warning_with_the_command_to_create_it() -> None:
    assert checks.dlq_topics([]).status == OK
    check = checks.dlq_topics([DlqTopic("casino.wallet.v1.dlq", "casino.wallet.v1", exists=False)])
    assert check.status == WARNING
    assert check.value == 1
    assert check.next_step == "kafkaops dlq ensure casino.wallet.v1"


def c(status: str) -> Check:
    return Check("x", status, None, "")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], OK),
        ([OK, OK], OK),
        ([OK, UNKNOWN], UNKNOWN),
        ([UNKNOWN, WARNING], WARNING),
        ([CRITICAL, UNKNOWN, WARNING], CRITICAL),
    ],
)
def test_unknown_only_wins_over_ok(statuses: list[str], expected: str) -> None:
    assert checks.overall([c(s) for s in statuses]) == expected
    assert checks.EXIT_CODES[expected] == {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}[expected]
