"""How long `kafkaops lag` takes for 500 consumer groups over 2,000 partitions.

Run: .venv/bin/python benchmarks/lag.py [--topics 100] [--partitions 20] [--groups 500] [--runs 3]

Starts a real Apache Kafka broker (scripts/kafka_broker.py), creates 100 topics of 20
partitions, writes 100 records to each partition, and commits offsets for 500 groups (5 per
topic, each on all 20 partitions of its topic, each at its own offset: the lag-in-time read
needs 5 records per partition, 10,000 committed offsets in all). Times whole `kafkaops lag -g
'bench-*' -o json` processes, start-up included. The baseline in the same run: what
`kafka-consumer-groups --describe --all-groups` does, one group after another through the
admin client (offsets, description, end offsets per group), without the lag in time.
Target (issue 21): under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import kafka_broker  # noqa: E402

TARGET_S = 3.0
RECORDS = 100  # per partition
GROUPS_PER_TOPIC = 5


def kafkaops_exe() -> str:
    return str(Path(sys.executable).parent / "kafkaops")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, kafka_broker.start_broker(Path(tmp) / "kafka") as broker:
        bootstrap = broker.bootstrap_servers
        topics = [f"bench.topic-{n:03d}" for n in range(args.topics)]
        started = time.perf_counter()
        _create_topics(bootstrap, topics, args.partitions)
        _produce(bootstrap, topics, args.partitions)
        groups = _commit(bootstrap, topics, args.partitions, args.groups)
        print(
            f"setup: {len(topics)} topics x {args.partitions} partitions, {RECORDS} records each, "
            f"{len(groups)} groups ({len(groups) * args.partitions:,} committed offsets) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        config = Path(tmp) / "kafkaops.yaml"
        context = {
            "kafka": {"bootstrap.servers": bootstrap},
            "status": {"state_dir": str(Path(tmp) / "state")},
        }
        config.write_text(yaml.safe_dump({"current-context": "bench", "contexts": {"bench": context}}))

        baseline = [_admin_loop(bootstrap, groups) for _ in range(args.runs)]
        print(
            f"baseline: an admin-client loop describing each group (offsets, description, end offsets; "
            f"no lag in time): {statistics.median(baseline):.2f} s median of {args.runs}"
        )
        samples: list[float] = []
        inside: list[float] = []
        doc: dict[str, Any] = {}
        for _ in range(args.runs):
            begun = time.perf_counter()
            result = subprocess.run(
                [kafkaops_exe(), "lag", "-g", "bench-*", "-o", "json", "--timeout", "30"],
                env={**os.environ, "KAFKAOPS_CONFIG": str(config)},
                capture_output=True,
                text=True,
                check=False,
            )
            samples.append(time.perf_counter() - begun)
            doc = json.loads(result.stdout)
            inside.append(float(doc["duration_s"]))
            if result.stderr.strip():
                print(f"  stderr: {result.stderr.strip()}")
        partitions = [p for g in doc["groups"] for p in g["partitions"]]
        timed = sum(1 for p in partitions if p["time_lag_s"] is not None)
        median = statistics.median(samples)
        passed = median < TARGET_S and len(doc["groups"]) == len(groups) and timed == len(partitions)
        print(
            f"kafkaops lag: {median:.2f} s median of {args.runs} (max {max(samples):.2f} s; inside the "
            f"process {statistics.median(inside):.2f} s), {len(doc['groups'])} groups, {len(partitions):,} "
            f"partitions, lag in time read for {timed:,} ({'ok' if passed else 'OVER TARGET'}, target < "
            f"{TARGET_S:g} s)"
        )
    return 0 if passed else 1


def _create_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics], operation_timeout=60
    )
    for future in futures.values():
        future.result(timeout=120)


def _produce(bootstrap: str, topics: list[str], partitions: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "queue.buffering.max.messages": 1_000_000}
    )
    for topic in topics:
        for partition in range(partitions):
            for n in range(RECORDS):
                producer.produce(topic, value=b"r%d" % n, partition=partition)
        producer.poll(0)
    assert producer.flush(120) == 0


def _commit(bootstrap: str, topics: list[str], partitions: int, count: int) -> list[str]:
    """Offsets committed for `count` groups, as consumers that stopped would have left them."""
    from confluent_kafka import Consumer, TopicPartition

    groups = []
    for n in range(count):
        group = f"bench-{n:04d}"
        topic = topics[n % len(topics)]
        offset = 40 + 10 * ((n // len(topics)) % GROUPS_PER_TOPIC)
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committer.commit(
            offsets=[TopicPartition(topic, p, offset) for p in range(partitions)], asynchronous=False
        )
        committer.close()
        groups.append(group)
    return groups


def _admin_loop(bootstrap: str, groups: list[str]) -> float:
    """One group after another, as kafka-consumer-groups --describe --all-groups asks."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    started = time.perf_counter()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.list_consumer_groups().result(timeout=30)
    for group in groups:
        offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
        admin.describe_consumer_groups([group])[group].result(30)
        ends = admin.list_offsets(
            {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in offsets.topic_partitions}
        )
        for future in ends.values():
            future.result(30)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
