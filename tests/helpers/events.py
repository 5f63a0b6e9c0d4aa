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
