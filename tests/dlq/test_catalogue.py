"""`status`, `dlq list` and `dlq ensure` agree on which topics are DLQs, how many records each
holds and which topics lack one: one catalogue (`kafkaops/dlq/catalogue.py`) answers for all three.

On the real Apache Kafka broker: transactions and the last stable offset are the broker's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.conftest import Cli
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.config import write_config
from tests.helpers.dlq import create_topic, json_records, produce
from tests.helpers.events import event

pytestmark = pytest.mark.kafka


def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Any = None, **sections: Any) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", db, **sections)))


def status_dlq_topics(cli: Cli) -> dict[str, dict[str, Any]]:
    result = cli("status", "-o", "json")
    assert result.exit_code in (0, 1), result.stderr
    return {d["dlq_topic"]: d for d in json.loads(result.stdout)["dlq_topics"]}


def listed(cli: Cli) -> dict[str, dict[str, Any]]:
    result = cli("dlq", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return {r["topic"]: r for r in json.loads(result.stdout)}


def test_a_topic_with_a_read_only_suffix_is_a_dlq_to_status_and_to_dlq_list(
    cli: Cli,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = new_topic(1, name_prefix="ro")
    read_only = create_topic(kafka_bootstrap, source + ".deadletter", partitions=2)
    written = create_topic(kafka_bootstrap, source + ".dlq")
    produce(kafka_bootstrap, read_only, json_records(source, 4))
    use_config(
        tmp_path,
        monkeypatch,
        kafka={"bootstrap.servers": kafka_bootstrap},
        retry={"dlq_suffix": ".dlq", "dlq_suffixes": [".deadletter"]},
    )
    in_status = status_dlq_topics(cli)
    in_list = listed(cli)
    assert in_status[read_only] == {
        "topic": source,
        "dlq_topic": read_only,
        "exists": True,
        "denied": False,
        "messages": 4,
        "partitions": 2,
    }
    assert in_list[read_only]["messages"] == 4
    assert in_list[read_only]["original_topic"] == source
    # The suffix retry writes is a DLQ suffix too, to both.
    assert written in in_status and written in in_list


@pytest.mark.timeout(120)
def test_status_and_dlq_list_count_a_topic_alike_with_an_open_transaction_on_it(
    cli: Cli,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Records of a transaction not yet committed are not there for a read_committed reader
    # (tail, replay): neither command counts them until the commit.
    source = new_topic(1, name_prefix="open")
    dlq = create_topic(kafka_bootstrap, source + ".dlq")
    produce(kafka_bootstrap, dlq, json_records(source, 3))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"open-{dlq}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(5):
        producer.produce(dlq, value=json.dumps({"open": n}).encode())
    assert producer.flush(30) == 0
    use_config(tmp_path, monkeypatch, kafka={"bootstrap.servers": kafka_bootstrap})
    try:
        assert status_dlq_topics(cli)[dlq]["messages"] == 3
        assert listed(cli)[dlq]["messages"] == 3
    finally:
        producer.commit_transaction(30)
    # The 5 records and the commit marker: offsets, as both count them.
    assert status_dlq_topics(cli)[dlq]["messages"] == 9
    assert listed(cli)[dlq]["messages"] == 9


def test_a_missing_dlq_topic_is_the_same_to_status_dlq_list_and_dlq_ensure(
    cli: Cli,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    make_database: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    covered = new_topic(1, name_prefix="cov")
    create_topic(kafka_bootstrap, covered + ".dlq")
    uncovered = new_topic(2, name_prefix="unc")
    settled = new_topic(1, name_prefix="set")  # only RESOLVED rows: nothing will go to a DLQ
    # A DLQ topic itself (a read-only suffix here): it gets no DLQ of its own.
    itself_dlq = create_topic(kafka_bootstrap, new_topic(1, name_prefix="dead") + "-dlt")
    db = make_database("sqlite")
    db.init()
    db.insert(
        [
            event(1, topic=covered),
            event(2, topic=uncovered, status="DLQ_FAILED"),
            event(3, topic=settled, status="RESOLVED"),
            event(4, topic=itself_dlq),
        ]
    )
    use_config(tmp_path, monkeypatch, db, kafka={"bootstrap.servers": kafka_bootstrap})

    status = cli("status", "-o", "json")
    doc = json.loads(status.stdout)
    check = {c["name"]: c for c in doc["checks"]}["dlq_topics"]
    assert check["next_step"] == f"kafkaops dlq ensure {uncovered}"
    assert [d["dlq_topic"] for d in doc["dlq_topics"] if not d["exists"]] == [f"{uncovered}.dlq"]

    in_list = cli("dlq", "list")
    assert in_list.exit_code == 0, in_list.stderr
    warned = re.findall(
        r"^Warning: topic (\S+) has failed events but no DLQ topic (\S+):", in_list.stderr, re.M
    )
    assert warned == [(uncovered, f"{uncovered}.dlq")]

    dry = cli("dlq", "ensure", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    would = re.findall(r"^would create (\S+) ", dry.stderr, re.M)
    assert would == [f"{uncovered}.dlq"]
    assert f"Warning: topic {itself_dlq} is itself a dead-letter topic: no DLQ created for it" in dry.stderr
