"""The table's side of the DLQ story, without a broker: `failed show` says where a DLQ row's
record is (or why it cannot), and `failed requeue --status DLQ` will not guess when Kafka
cannot say what became of the rows' records."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kafkaops.db.schema import build_table
from tests.conftest import Cli, TestDatabase
from tests.helpers.events import NOW, event


def _place(db: TestDatabase, row_id: int, topic: str, partition: int, offset: int) -> None:
    table = build_table(db.settings, optional=("dlq_topic", "dlq_partition", "dlq_offset", "dlq_acked_at"))
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values(dlq_topic=topic, dlq_partition=partition, dlq_offset=offset, dlq_acked_at=NOW)
        )


def test_failed_show_says_where_the_dlq_record_is(cli: Cli, configured: TestDatabase) -> None:
    configured.insert([event(1, id=11, status="DLQ"), event(2, id=12, status="DLQ")])
    _place(configured, 11, "casino.player.registered.v1.dlq", 2, 4711)
    shown = cli("failed", "show", "11", "12")
    assert shown.exit_code == 0
    assert (
        "dlq_record     casino.player.registered.v1.dlq partition 2 offset 4711, acknowledged "
        "2026-11-27T12:00:00.000Z"
    ) in shown.stdout
    assert (
        "not recorded (its DLQ send did not record it): kafkaops dlq tail shows each record's row"
        in shown.stdout
    )
    as_json = cli("failed", "show", "11", "-o", "json")
    assert '"dlq_offset": 4711' in as_json.stdout


def test_failed_show_on_a_table_without_the_optional_columns(cli: Cli, configured: TestDatabase) -> None:
    with configured.engine.begin() as conn:  # the service's table, as it was before them
        for column in ("dlq_topic", "dlq_partition", "dlq_offset", "dlq_acked_at", "resolved_by"):
            table = (
                f'"{configured.schema}".failed_kafka_events' if configured.schema else "failed_kafka_events"
            )
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    configured.insert([event(1, id=11, status="DLQ")])
    shown = cli("failed", "show", "11")
    assert shown.exit_code == 0
    assert "not recorded (the table has no dlq_* columns)" in shown.stdout
    # Requeue goes on as before: nothing to ask Kafka about.
    requeued = cli("failed", "requeue", "--status", "DLQ", "--yes")
    assert requeued.exit_code == 0, requeued.stderr
    assert [r["status"] for r in configured.rows()] == ["PENDING"]


@pytest.mark.slow  # waits out the Kafka client's timeout
def test_requeue_of_dlq_rows_does_not_guess_when_kafka_cannot_say(
    cli: Cli, configured: TestDatabase, closed_port: int
) -> None:
    configured.insert([event(1, id=11, status="DLQ"), event(2, id=12, status="DLQ_FAILED")])
    _place(configured, 11, "casino.player.registered.v1.dlq", 0, 7)
    kafka = ("-b", f"127.0.0.1:{closed_port}")
    refused = cli(*kafka, "failed", "requeue", "--status", "DLQ", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: cannot tell whether the DLQ rows' records were replayed: ")
    assert "; or --force requeues without asking Kafka" in refused.stderr
    assert [r["status"] for r in configured.rows()] == ["DLQ", "DLQ_FAILED"]
    # DLQ_FAILED rows have no DLQ record: their requeue never asks Kafka.
    assert cli(*kafka, "failed", "requeue", "--yes").exit_code == 0
    forced = cli(*kafka, "failed", "requeue", "--status", "DLQ", "--yes", "--force")
    assert forced.exit_code == 0
    assert [r["status"] for r in configured.rows()] == ["PENDING", "PENDING"]
