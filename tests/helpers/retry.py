"""Setting up `kafkaops retry` tests: a config pointing at a database and a broker, due rows,
the table's statuses, what arrived on a topic, and the error codes the brokers answer with."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kafkaops.config.settings import Overrides, load_settings
from kafkaops.db.connections import Connections
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event
from tests.helpers.topics import consume


def configure(db, tmp_path: Path, monkeypatch, bootstrap: str, **retry: Any) -> Path:  # type: ignore[no-untyped-def]
    retry = {"delivery_timeout": "3s", **retry}
    path = write_config(
        tmp_path / "kafkaops.yaml", db, kafka={"bootstrap.servers": bootstrap, **FAST_CLIENT}, retry=retry
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    return path


def statuses(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    t = db.table
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all())


INVALID_RECORD = 87  # the broker refuses the record itself: the event's fault


NOT_LEADER_FOR_PARTITION = 6


def connections() -> Connections:
    return Connections(load_settings(Overrides()))


def due_rows(db, n: int, **overrides: Any) -> None:  # type: ignore[no-untyped-def]
    db.insert([event(i, **overrides) for i in range(n)])


def wait_for_sessions(db, count_query: str, at_least: int, failure: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Poll pg_stat_activity (`count_query`) until it counts `at_least` sessions."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while conn.execute(sa.text(count_query)).scalar_one() < at_least:
            conn.rollback()
            assert time.monotonic() < deadline, failure
            time.sleep(0.05)


def qualified(db) -> str:  # type: ignore[no-untyped-def]
    return f'"{db.schema}".failed_kafka_events'


def alter(db, *statements: str) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement.format(table=qualified(db))))


def passes(cli, n: int, *args: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return [cli("retry", *args) for _ in range(n)]


def payloads(bootstrap: str, topic: str, expect: int | None = None) -> list[str]:
    return sorted(json.loads(r.value)["eventId"] for r in consume(bootstrap, topic, expect=expect, idle=1.0))
