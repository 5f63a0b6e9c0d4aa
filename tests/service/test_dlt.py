"""Dead-letter records as Spring writes them: the service's consumer fails on poison events and
Spring's DeadLetterPublishingRecoverer sends them to `<topic>.dlq`; `kafkaops dlq tail`
decodes them, `dlq replay` sends them back once, and `--max-replays` stops the loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafkaops.common.signature import error_signature
from kafkaops.common.timeparse import from_epoch_ms, isoformat_utc
from tests.service.harness import Service, running_service, wait_until

pytestmark = [pytest.mark.service, pytest.mark.kafka, pytest.mark.timeout(300)]

TOPIC = "casino.player.registered.v1"
DLQ = f"{TOPIC}.dlq"
LISTENER_FAILED = "org.springframework.kafka.listener.ListenerExecutionFailedException"
POISON = "com.example.casino.events.PlayerRegisteredListener$PoisonEventException"


def high_watermark(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "svc-watermarks"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def raw_records(bootstrap: str, topic: str) -> list[Any]:
    """Every data record of a one-partition topic (transaction markers take offsets too)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "svc-raw",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        records: list[Any] = []
        while (msg := consumer.poll(2)) is not None:  # until 2 s without a record
            assert msg.error() is None, msg.error()
            records.append(msg)
        return records
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def service(
    service_jar: Path, new_database: Any, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with running_service(
        service_jar,
        database_url=new_database(),
        bootstrap=kafka_bootstrap,
        workdir=tmp_path_factory.mktemp("dlt-service"),
    ) as running:
        yield running


def config(tmp_path: Path, bootstrap: str) -> str:
    path = tmp_path / "kafkaops.yaml"
    # No database: the replay's audit journal is a file.
    context = {"kafka": {"bootstrap.servers": bootstrap}, "audit": {"file": str(tmp_path / "audit.jsonl")}}
    path.write_text(yaml.safe_dump({"current-context": "svc", "contexts": {"svc": context}}))
    return str(path)


def test_spring_dlt_records_are_decoded_and_replayed_once(
    service: Service, kafka_bootstrap: str, cli: Any, tmp_path: Path
) -> None:
    before = high_watermark(kafka_bootstrap, DLQ)
    poison = service.publish(TOPIC, 2, poison=True)
    service.publish(TOPIC, 1)
    wait_until(lambda: high_watermark(kafka_bootstrap, DLQ) >= before + 2, timeout=60, what="2 DLT records")

    cfg = config(tmp_path, kafka_bootstrap)
    result = cli("dlq", "tail", DLQ, "--config", cfg, "-n", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    tailed = json.loads(result.stdout)
    raw = {msg.offset(): msg for msg in raw_records(kafka_bootstrap, DLQ)}
    originals = {msg.offset(): msg for msg in raw_records(kafka_bootstrap, TOPIC)}
    assert sorted(r["value"]["eventId"] for r in tailed) == sorted(poison)
    for record in tailed:
        headers = dict(raw[record["offset"]].headers())
        original = originals[int.from_bytes(headers["kafka_dlt-original-offset"], "big")]
        # Spring's big-endian partition, offset and timestamp, its exception class and message.
        assert record["origin"] == {
            "topic": TOPIC,
            "partition": 0,
            "offset": original.offset(),
            "timestamp": isoformat_utc(from_epoch_ms(original.timestamp()[1])),
        }
        # Spring wraps the listener's exception: the cause is the class shown, the wrapper kept.
        assert headers["kafka_dlt-exception-fqcn"] == LISTENER_FAILED.encode()
        assert record["error"] == {
            "class": POISON,
            "wrapper": LISTENER_FAILED,
            "message": headers["kafka_dlt-exception-message"].decode(),
            "signature": error_signature(headers["kafka_dlt-exception-message"].decode()),
        }
        assert headers["kafka_dlt-exception-cause-fqcn"] == POISON.encode()
        assert record["error"]["message"].endswith(
            f"Cannot process event {record['value']['eventId']} for {record['key']}: payload is poison"
        )

    # Replayed once: the consumer fails again and Spring dead-letters them a second time,
    # carrying kafkaops' replay count, so a second replay with --max-replays 1 skips them.
    topic_before = len(raw_records(kafka_bootstrap, TOPIC))
    result = cli("dlq", "replay", DLQ, "--config", cfg, "--yes", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    replayed = raw_records(kafka_bootstrap, TOPIC)[topic_before:]
    assert sorted(json.loads(m.value())["eventId"] for m in replayed) == sorted(poison)
    wait_until(
        lambda: high_watermark(kafka_bootstrap, DLQ) >= before + 4, timeout=60, what="2 more DLT records"
    )
    result = cli("dlq", "replay", DLQ, "--config", cfg, "--yes", "--max-replays", "1", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert (summary["replayed"], summary["skipped_max_replays"]) == (0, 2)
    assert len(raw_records(kafka_bootstrap, TOPIC)) == topic_before + 2
