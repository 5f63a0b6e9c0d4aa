"""A transaction left open on a target, holding records replayed from the source: a replay does
not write where its commit could make them visible a second time (kafkaops/dlq/left_open.py).

What left them in the field: a replay whose abort never reached a frozen broker, and a target
partition that kept its records with no abort marker after the next run's init_transactions;
that run's commit (same producer id) made them visible: replayed twice. Here the open
transaction is made on purpose, by a transactional producer of the test's own that writes such
records and neither commits nor aborts until the test says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka import Producer

from kafkaops.dlq.record import REPLAYED_FROM
from tests.conftest import Cli, TestDatabase
from tests.dlq.test_replay import assert_exactly_once, replay_json
from tests.helpers.acl_scenario import DLQ_RECORDS, make_world
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.dlq import dlq_pair, high_watermarks, json_records, produce, raw_header_left_open, read_all
from tests.helpers.secure_broker import KafkaUser, SecureBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@contextmanager
def open_transaction(bootstrap: str, target: str, headers: list[tuple[str, bytes]]) -> Iterator[Producer]:
    """Three records on partition 0 of `target` in a transaction left open; aborted on exit
    unless the caller ended it."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"test-left-open-{target}",
            "transaction.timeout.ms": 120_000,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(3):
        producer.produce(target, value=f"left {n}".encode(), partition=0, headers=headers)
    producer.flush(30)
    ended = False
    try:
        yield producer
        producer.abort_transaction(30)
        ended = True
    finally:
        if not ended:
            producer.abort_transaction(30)


def test_records_of_this_source_in_a_transaction_left_open_stop_the_replay_before_it_writes(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    target, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(target, 20))
    left = [(REPLAYED_FROM, f"{dlq}/0/3".encode()), ("kafkaops-replay-count", b"1")]
    with open_transaction(kafka_bootstrap, target, left):
        before = high_watermarks(kafka_bootstrap, target, [0])

        code, summary, err = replay_json(cli, kafka_bootstrap, dlq, "--yes", "--commit-timeout", "2")

        assert code == 1, err
        assert f"partition 0 of '{target}' holds records replayed from '{dlq}'" in err
        assert "still open (from offset 0)" in err
        assert (
            f"kafka-transactions.sh --bootstrap-server <brokers> abort --topic {target} --partition 0 --start-offset 0"
            in err
        )
        assert "Traceback" not in err
        assert summary.get("replayed", 0) == 0
        assert high_watermarks(kafka_bootstrap, target, [0]) == before  # not one record written

    # Aborted (as the hint says): the rerun replays every record, once.
    code, summary, err = replay_json(cli, kafka_bootstrap, dlq, "--yes")
    assert code == 0, err
    assert summary["replayed"] == 20
    assert_exactly_once(kafka_bootstrap, dlq, target, 20, 1)


def test_a_transaction_left_open_by_another_producer_does_not_stop_the_replay(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # Another application's transaction on the target holds nothing of this source: its end
    # cannot change what the replay wrote, so the replay goes on.
    target, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(target, 20))
    with open_transaction(kafka_bootstrap, target, [("app", b"its own")]):
        code, summary, err = replay_json(cli, kafka_bootstrap, dlq, "--yes", "--commit-timeout", "2")
        assert code == 0, err
        assert summary["replayed"] == 20
        # The first run's records, committed, now lie behind that open transaction: a second
        # run does not take them for records left open.
        produce(kafka_bootstrap, dlq, json_records(target, 5, start=20))
        code, summary, err = replay_json(cli, kafka_bootstrap, dlq, "--yes", "--commit-timeout", "2")
        assert code == 0, err
        assert summary["replayed"] == 5
    assert_exactly_once(kafka_bootstrap, dlq, target, 25, 1)
    assert not [m for m in read_all(kafka_bootstrap, target) if m.value().startswith(b"left ")]  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_principal_that_may_not_read_the_target_warns_about_what_stays_open_and_replays(
    cli: Cli,
    secure_broker: SecureBroker,
    kafka_user: Callable[..., KafkaUser],
    make_database: Callable[..., TestDatabase],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `dlq replay` needs Write on its targets, not Read (docs/acls.md): whose records an open
    # transaction holds cannot be read. One still open after the grace is said, not refused.
    world = make_world(secure_broker, make_database("sqlite"), kafka_user(), tmp_path)
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(world.config))
    secure_broker.grant(world.user, *world.grants("dlq replay"))
    left = [(REPLAYED_FROM, f"{world.dlq}/0/1".encode())]
    producer = Producer({**secure_broker.admin_config, "transactional.id": f"test-left-open-{world.source}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(world.source, value=b"left", partition=0, headers=left)
    producer.flush(30)
    try:
        result = cli("dlq", "replay", world.dlq, "--yes", "--commit-timeout", "2", "-o", "json")
    finally:
        producer.abort_transaction(30)

    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["replayed"] == DLQ_RECORDS
    assert f"a transaction is open on partition 0 of '{world.source}' from offset 0" in result.stderr
    assert "may not read" in result.stderr and "find-hanging" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_open_transaction_whose_first_record_has_an_unreadable_header_name_is_not_taken_for_ours(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # A C producer may write a header name that is not UTF-8; confluent-kafka cannot read it.
    target, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(target, 10))
    with raw_header_left_open(
        kafka_bootstrap, target, b"\xff\xfe", b"v", transactional_id=f"test-raw-{target}"
    ):
        code, summary, err = replay_json(cli, kafka_bootstrap, dlq, "--yes", "--commit-timeout", "2")
    assert code == 0, err
    assert summary["replayed"] == 10
    assert "Traceback" not in err
    assert_exactly_once(kafka_bootstrap, dlq, target, 10, 1)
