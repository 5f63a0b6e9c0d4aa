"""A least-privilege world on the secure broker: a source topic and its DLQ holding records,
due rows in a database, a SCRAM user holding exactly the ACLs of kafkaops' table
(kafkaops/doctor/acls.py) for one command, and a config file that logs kafkaops in as it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from kafkaops.doctor import acls
from kafkaops.probe.model import PROBE_TOPIC
from tests.conftest import TestDatabase
from tests.helpers.config import write_config
from tests.helpers.dlq import spring_headers
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event
from tests.helpers.secure_broker import Grant, KafkaUser, SecureBroker

DLQ_RECORDS = 3
ROWS = 2
# A row at its last attempt, too large for the source topic: the event's fault, so it goes to
# the DLQ, which is what needs Write on <source>.dlq.
TOPIC_MAX_BYTES = 4096


@dataclass
class World:
    broker: SecureBroker
    db: TestDatabase
    user: KafkaUser
    source: str
    dlq: str
    bare: str  # a topic without a DLQ, for `dlq ensure`
    config: Path
    probe: str  # the probe topic of `kafkaops probe --topic`

    def names(self) -> dict[str, list[str]]:
        """The topics of each kind the ACL table's templates name."""
        return {
            "dlq": [self.dlq],
            "target": [self.source],
            "original": [self.source],
            "source": [self.bare],
            "probe": [self.probe],
        }

    def grants(self, command: str) -> list[Grant]:
        return [Grant(b.resource, b.name, b.operation.lower()) for b in acls.bindings(command, self.names())]

    def attempts(self) -> dict[str, tuple[str, int]]:
        """Each row's (status, retry_count), by event id."""
        return {r["event_id"]: (r["status"], r["retry_count"]) for r in self.db.rows()}

    def rows_due(self) -> None:
        now = datetime.now(timezone.utc)
        big = json.dumps({"eventId": "evt-big", "pad": "x" * (2 * TOPIC_MAX_BYTES)})
        self.db.insert(
            [event(i, topic=self.source, created_at=now, updated_at=now) for i in range(ROWS)]
            + [
                event(
                    99,
                    event_id="evt-big",
                    topic=self.source,
                    payload=big,
                    retry_count=5,
                    created_at=now,
                    updated_at=now,
                )
            ]
        )


def produce_as_admin(broker: SecureBroker, topic: str, records: list[tuple[str, str, Any]]) -> None:
    producer = Producer({**broker.admin_config, "linger.ms": 5})
    failures: list[Any] = []
    for key, value, headers in records:
        producer.produce(
            topic, value, key, headers=headers, on_delivery=lambda e, _m: e and failures.append(e)
        )
    assert producer.flush(30) == 0
    assert not failures, failures


def make_world(
    broker: SecureBroker,
    db: TestDatabase,
    user: KafkaUser,
    tmp_path: Path,
    *,
    sections: dict[str, Any] | None = None,
    kafka_extra: dict[str, Any] | None = None,
) -> World:
    """Topics `acl-<hex>.events` and its `.dlq` with records, the table, no ACL yet."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    source = broker.create_topic(name=f"acl-{uuid.uuid4().hex[:10]}.events")
    resource = ConfigResource(
        "topic",
        source,
        incremental_configs=[
            ConfigEntry(
                "max.message.bytes", str(TOPIC_MAX_BYTES), incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    for future in broker.admin().incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    dlq = broker.create_topic(name=source + ".dlq")
    produce_as_admin(
        broker,
        dlq,
        [(f"k-{n}", json.dumps({"n": n}), spring_headers(source, n)) for n in range(DLQ_RECORDS)],
    )
    bare = broker.create_topic(name=f"acl-{uuid.uuid4().hex[:10]}.bare")
    # The probe topic `doctor probe` checks (kafkaops.probe), shared: each world's user has its
    # own grants on it.
    probe = PROBE_TOPIC
    if probe not in broker.admin().list_topics(timeout=10).topics:
        broker.create_topic(name=probe)
    db.init()
    config = write_config(
        tmp_path / "kafkaops.yaml",
        db,
        kafka={**user.kafka, **FAST_CLIENT, **(kafka_extra or {})},
        retry={"delivery_timeout": "5s"},
        **(sections or {}),
    )
    config.chmod(0o600)
    return World(broker, db, user, source, dlq, bare, config, probe)


def end_offset(broker: SecureBroker, topic: str) -> int:
    """The high watermark of partition 0 of `topic`, read as the admin."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**broker.admin_config, "group.id": f"probe-{uuid.uuid4().hex[:8]}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()
