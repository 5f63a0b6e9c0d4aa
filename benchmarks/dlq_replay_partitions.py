"""The second (incremental) `kafkaops dlq replay` of a DLQ with many partitions.

Run: .venv/bin/python benchmarks/dlq_replay_partitions.py [--partitions 1000] [--records 3000]

Starts a real Apache Kafka broker (scripts/kafka_broker.py), writes --records DLQ records
(Spring's headers) over every partition of a --partitions DLQ topic, replays them once, writes
--records more, and times the whole second `kafkaops dlq replay` process (start-up included):
it reads where the group stands on every partition, then replays what arrived since. The
baseline, in the same run and the same way: the second replay of a 1-partition DLQ with the
same records (the process's fixed costs: start-up, joining the group, a transaction).

Target (issue 18): the second replay of a 1,000-partition DLQ in under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import kafka_broker  # noqa: E402

TARGET_S = 5.0


def create(bootstrap: str, topics: dict[str, int]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
    for future in admin.create_topics(new, operation_timeout=120, request_timeout=120).values():
        future.result(timeout=180)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=10).topics
        if all(
            n in meta
            and len(meta[n].partitions) == p
            and all(x.leader >= 0 for x in meta[n].partitions.values())
            for n, p in topics.items()
        ):
            return
        time.sleep(0.2)
    raise SystemExit(f"topics {list(topics)} got no leaders")


def fill(bootstrap: str, topic: str, original: str, partitions: int, start: int, records: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n in range(start, start + records):
        headers = [
            ("kafka_dlt-original-topic", original.encode()),
            ("kafka_dlt-exception-fqcn", b"org.apache.kafka.common.errors.TimeoutException"),
        ]
        value = json.dumps({"eventId": f"evt-{n:08d}", "pad": "x" * 200}).encode()
        producer.produce(
            topic, key=f"player-{n}".encode(), value=value, headers=headers, partition=n % partitions
        )
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("could not write the DLQ records")


def replay(bootstrap: str, source: str) -> tuple[dict[str, object], float]:
    """(summary, seconds) of one whole `kafkaops dlq replay` process."""
    exe = str(Path(sys.executable).parent / "kafkaops")
    started = time.perf_counter()
    result = subprocess.run(
        [exe, "-b", bootstrap, "dlq", "replay", source, "--yes", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"replay of {source} failed ({result.returncode}) after {seconds:.1f} s: {result.stderr}"
        )
    return json.loads(result.stdout), seconds


def second_replay(bootstrap: str, dlq: str, partitions: int, records: int) -> float:
    fill(bootstrap, dlq, "bench.orig", partitions, 0, records)
    summary, first = replay(bootstrap, dlq)
    assert summary["replayed"] == records, summary
    fill(bootstrap, dlq, "bench.orig", partitions, records, records)
    summary, seconds = replay(bootstrap, dlq)
    if summary["replayed"] != records or not summary["complete"]:
        raise SystemExit(f"the second replay of {dlq} replayed {summary['replayed']} of {records}")
    print(
        f"{dlq} ({partitions} partitions): first replay {first:5.2f} s, second {seconds:5.2f} s", flush=True
    )
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--records", type=int, default=3000, help="written before each replay")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kafkaops-bench-") as tmp,
        kafka_broker.start_broker(Path(tmp) / "kafka") as broker,
    ):
        bootstrap = broker.bootstrap_servers
        many = "bench.many.dlq"
        create(bootstrap, {"bench.orig": 3, "bench.one.dlq": 1, many: args.partitions})
        baseline = second_replay(bootstrap, "bench.one.dlq", 1, args.records)
        seconds = second_replay(bootstrap, many, args.partitions, args.records)
    print(
        f"second replay, {args.partitions} partitions: {seconds:.2f} s (target < {TARGET_S:g} s); "
        f"1 partition in the same run: {baseline:.2f} s"
    )
    ok = seconds < TARGET_S
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.pop("KAFKAOPS_CONFIG", None)
    raise SystemExit(main())
