"""Requeue and purge called as the core functions they are (`kafkaops.db.actions`), without the
CLI: what they plan, what they change, and what a purge stopped between batches reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kafkaops.common.errors import UsageError
from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.actions import ActionInterrupted, Purge, Requeue, purge_cutoff
from kafkaops.db.connections import Connections
from kafkaops.db.failed_events import EventFilter
from tests.helpers.events import NOW, event

WITHIN = timedelta(seconds=30)
OLD = NOW - timedelta(days=60)


@pytest.fixture
def conns(configured):  # type: ignore[no-untyped-def]
    opened = Connections(load_settings(Overrides()))
    yield opened
    opened.close()


def test_requeue_plans_then_resets_only_dlq_failed_rows(configured, conns) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(1, status="DLQ_FAILED", retry_count=5), event(2, status="DLQ"), event(3)])
    action = Requeue(conns, EventFilter(ids=(1, 3)), within=WITHIN, now=NOW)
    plan = action.plan(preview=10)
    assert (plan.matched, plan.left_out) == (1, [{"id": "3", "status": "PENDING"}])
    assert [str(r["id"]) for r in plan.preview] == ["1"]
    assert action.statuses == "DLQ_FAILED/DLQ"
    assert action.run() == 1
    statuses = {r["event_id"]: (r["status"], r["retry_count"]) for r in configured.rows()}
    assert statuses == {"evt-1": ("PENDING", 0), "evt-2": ("DLQ", 0), "evt-3": ("PENDING", 0)}


def test_purge_deletes_in_batches_and_keeps_what_is_not_purgeable(configured, conns) -> None:  # type: ignore[no-untyped-def]
    old = {"created_at": OLD, "updated_at": OLD}
    configured.insert(
        [event(n, status="RESOLVED", **old) for n in range(7)]
        + [
            event(10, status="PENDING", **old),
            event(11, status="DLQ_FAILED", **old),
            event(12, status="RESOLVED"),
        ]
    )
    action = Purge(conns, EventFilter(), older_than=NOW - timedelta(days=30), batch_size=3, within=WITHIN)
    assert action.plan(preview=0).matched == 7
    assert action.run() == 7
    assert sorted(r["event_id"] for r in configured.rows()) == ["evt-10", "evt-11", "evt-12"]


def test_a_purge_stopped_between_batches_says_how_many_rows_it_committed(configured, conns) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C (KeyboardInterrupt) after the second batch committed: the action reports the rows
    of the committed batches, and only those are gone."""
    old = {"created_at": OLD, "updated_at": OLD}
    configured.insert([event(n, status="RESOLVED", **old) for n in range(10)])
    action = Purge(conns, EventFilter(), older_than=NOW, batch_size=2, within=WITHIN)
    transaction, batches = action._transaction, []

    def interrupted_on_the_third():  # type: ignore[no-untyped-def]
        batches.append(1)
        if len(batches) == 3:
            raise KeyboardInterrupt
        return transaction()

    action._transaction = interrupted_on_the_third  # type: ignore[method-assign]
    with pytest.raises(ActionInterrupted) as stopped:
        action.run()
    assert (stopped.value.done, stopped.value.what) == (4, "deleting")
    assert configured.count() == 6


def test_a_purge_needs_a_cutoff_or_ids_and_refuses_one_in_the_future(configured, conns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="purge needs --older-than"):
        Purge(conns, EventFilter(), older_than=None, batch_size=10, within=WITHIN)
    with pytest.raises(UsageError, match="--older-than '2030-01-01T00:00Z' is in the future") as raised:
        purge_cutoff("2030-01-01T00:00Z", now=NOW)
    assert raised.value.hint == "to delete the rows whatever their age, say so: --older-than 0s"
    assert purge_cutoff("0s", now=NOW) == NOW


def test_requeue_and_purge_batches_count_their_own_rows_whatever_the_id_list_held(configured, conns) -> None:  # type: ignore[no-untyped-def]
    from kafkaops.db.failed_events import purge_batch, requeue

    old = {"created_at": OLD, "updated_at": OLD}
    configured.insert(
        [event(n, status="RESOLVED", **old) for n in range(3)] + [event(10, status="DLQ_FAILED", **old)]
    )
    ids: list[object] = ["an id from an earlier batch"]
    with conns.engine.begin() as conn:
        deleted = purge_batch(
            conn,
            conns.table,
            flt=EventFilter(),
            older_than=NOW - timedelta(days=30),
            batch_size=2,
            ids_out=ids,
        )
    assert deleted == 2 and len(ids) == 3
    with conns.engine.begin() as conn:
        assert requeue(conn, conns.table, flt=EventFilter(), now=NOW, ids_out=ids) == 1
    assert len(ids) == 4
