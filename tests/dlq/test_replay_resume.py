"""`kafkaops dlq replay` resuming: on many partitions, right after a run that died between sending
its offsets and committing, after the coordinator moved, and when two runs start together. On
the real broker, checked as in test_replay.py: a read_committed reader of the target finds each
source record exactly once."""

from __future__ import annotations

import json

import pytest

from tests.dlq.test_replay import assert_exactly_once
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.dlq import dlq_pair, json_records, kafkaops_process, produce
from tests.helpers.process import finish


def replay(bootstrap: str, dlq: str, *args: str, timeout: float = 90) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = finish(
        kafkaops_process("dlq", "replay", dlq, "--yes", "-o", "json", *args, bootstrap=bootstrap), timeout
    )
    return code, json.loads(out) if out.strip() else {}, err


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_second_replay_of_a_100_partition_dlq_finishes(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # Each watermark asked through the group's fetching consumer waited out its fetch
    # long-poll, one partition after the other: the second run failed after 30 s.
    target, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=100)
    first = json_records(target, 300)
    produce(kafka_bootstrap, dlq, first)
    code, summary, err = replay(kafka_bootstrap, dlq)
    assert code == 0, err
    assert summary["replayed"] == 300

    produce(kafka_bootstrap, dlq, json_records(target, 300, start=300))
    code, summary, err = replay(kafka_bootstrap, dlq)
    assert code == 0, err
    assert summary["replayed"] == 300 and summary["complete"] is True
    assert_exactly_once(kafka_bootstrap, dlq, target, 600, 100)
