"""The failed_kafka_events table exactly as Hibernate creates it for the reference service
(tests/fixtures/service/failed_kafka_events.sql: VARCHAR(255) strings, timestamp(6) with time
zone, an identity id), used by kafkaops with its default mapping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.config import write_config

DDL = Path(__file__).resolve().parents[1] / "fixtures" / "service" / "failed_kafka_events.sql"


@pytest.fixture
def hibernate_table(pg_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with pg_database.engine.begin() as conn:
        conn.execute(sa.text(f'SET LOCAL search_path TO "{pg_database.schema}"'))
        for statement in DDL.read_text().split(";\n"):
            statement = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
            if statement.strip():
                conn.execute(sa.text(statement))
        conn.execute(
            sa.text(
                "INSERT INTO failed_kafka_events (event_id, topic, event_key, payload, headers, status, "
                "retry_count, last_error, error_type, created_at, updated_at, next_retry_at) VALUES "
                "('e-1', 'casino.player.registered.v1', 'user-1', '{\"eventId\": \"e-1\"}', "
                "'{\"eventId\": \"e-1\"}', 'PENDING', 0, 'Topic not present in metadata after 2000 ms.', "
                "'org.apache.kafka.common.errors.TimeoutException', "
                "'2026-11-27 10:00:00.123456+00', '2026-11-27 10:00:00.123456+00', '2026-11-27 10:01:00.123456+00')"
            )
        )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    return pg_database


def test_db_check_accepts_hibernates_table(hibernate_table: Any, cli: Any) -> None:
    result = cli("db", "check")
    assert result.exit_code == 0, result.stderr
    assert f"Table {hibernate_table.schema}.failed_kafka_events matches the mapping." in result.stderr
    assert "Times are stored as timestamp(6) with time zone." in result.stderr


def test_failed_lists_hibernates_rows(hibernate_table: Any, cli: Any) -> None:
    result = cli("failed", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["event_id"], row["status"], row["created_at"], row["next_retry_at"]) == (
        "e-1",
        "PENDING",
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:01:00Z",
    )
