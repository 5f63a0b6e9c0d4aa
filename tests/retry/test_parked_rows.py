"""A retry pass and `failed park` at the same time: a row parked while a pass runs is never
published, and the pass goes on with the rows left."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from kafkaops.common import clock
from kafkaops.db.failed_events import EventFilter
from kafkaops.db.park import Park
from kafkaops.retry.job import BatchReport, PassOptions, run_pass
from tests.helpers.events import NOW, event
from tests.helpers.retry import configure, connections
from tests.helpers.topics import consume

TOPIC = "casino.player.registered.v1"


@pytest.mark.timeout(60)
def test_rows_parked_while_a_pass_runs_are_never_published(
    database, embedded_kafka, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic(TOPIC)
    database.insert([event(i, created_at=NOW - timedelta(minutes=10 - i)) for i in range(6)])
    first, *others = [r["id"] for r in database.rows()]
    parker = connections()
    parked: list[int] = []

    def park_the_rest(report: BatchReport) -> None:
        if report.number == 1:  # between the pass's first and second batch
            action = Park(
                parker,
                EventFilter(ids=tuple(others[:3])),
                reason="while the pass runs",
                within=timedelta(seconds=30),
                now=clock.now(),
            )
            parked.append(action.run())

    summary = run_pass(connections(), PassOptions(batch_size=1), on_batch=park_the_rest)
    parker.close()
    assert parked == [3]
    assert (summary.claimed, summary.resolved) == (3, 3)
    statuses = {r["id"]: r["status"] for r in database.rows()}
    assert statuses[first] == "RESOLVED"
    assert [statuses[i] for i in others] == ["PARKED"] * 3 + ["RESOLVED"] * 2
    published = consume(embedded_kafka.bootstrap_servers, TOPIC, expect=3)
    ids = {r["event_id"]: r["id"] for r in database.rows()}
    by_row = {ids[json.loads(r.value)["eventId"]] for r in published}
    assert by_row == {first, *others[3:]}


def test_a_pass_never_claims_a_parked_row(database, embedded_kafka, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    database.init()
    configure(database, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic(TOPIC)
    database.insert([event(1, status="PARKED", last_error="parked from PENDING: x", next_retry_at=None)])
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["claimed"] == 0
    assert database.rows()[0]["status"] == "PARKED"
