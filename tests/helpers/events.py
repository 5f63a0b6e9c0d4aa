"""Building rows of failed_kafka_events for tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)


def event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    created = overrides.pop("created_at", NOW - timedelta(minutes=n))
    row: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "topic": "casino.player.registered.v1",
        "event_key": f"player-{n % 7}",
        "payload": json.dumps({"eventId": f"evt-{n}", "payload": {"points": n}}),
        "headers": json.dumps({"eventType": "PlayerRegistered"}),
        "status": "PENDING",
        "retry_count": 0,
        "last_error": None,
        "error_type": None,
        "created_at": created,
        "updated_at": created,
        "next_retry_at": None,
        "resolved_at": None,
    }
    row.update(overrides)
    return row


OLD = NOW - timedelta(days=40)


def insert_one_per_status(db: Any) -> dict[str, int]:
    """Rows 1-4 as DLQ_FAILED, PENDING, DLQ and an old RESOLVED; their ids by event_id."""
    db.insert(
        [
            event(1, status="DLQ_FAILED", retry_count=5, last_error="Foo@1a2b3c rejected", event_key="k-1"),
            event(2, status="PENDING", retry_count=1, last_error="Foo@123 rejected", next_retry_at=NOW),
            event(3, status="DLQ", retry_count=5, last_error="too large", next_retry_at=NOW),
            event(4, status="RESOLVED", created_at=OLD, updated_at=OLD, next_retry_at=OLD),
        ]
    )
    return {r["event_id"]: r["id"] for r in db.rows()}


def insert_a_mix(db: Any) -> None:
    """Ten rows: five PENDING after a timeout, two DLQ_FAILED on another topic, three RESOLVED."""
    db.insert(
        [event(i, status="PENDING", last_error="Timeout after 30012 ms") for i in range(5)]
        + [event(10 + i, status="DLQ_FAILED", topic="casino.wallet.v1", last_error="boom") for i in range(2)]
        + [event(20 + i, status="RESOLVED") for i in range(3)]
    )
