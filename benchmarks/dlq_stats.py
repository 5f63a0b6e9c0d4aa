"""Read rate of `kafkaops dlq stats` and of a filtered `kafkaops dlq tail --from-beginning`,
side by side with `kcat -C ... -e | wc -l`, and the peak memory of `dlq stats`.

Run: .venv/bin/python benchmarks/dlq_stats.py [--records 1000000] [--rounds 3]

Starts a real Apache Kafka broker (scripts/kafka_broker.py), writes --records DLQ records of
about 500 bytes (JSON value, Spring's DLQ headers; one record in 1,000 with another exception
class) to a 3-partition topic, then measures whole processes, start-up included:

* `kafkaops dlq stats TOPIC -g error.signature -o json` (every record's headers decoded and
  its error signature grouped);
* `kafkaops dlq tail TOPIC --from-beginning -o jsonl --where
  'headers["kafka_dlt-exception-fqcn"] == "java.lang.IllegalStateException"'`: a predicate on a
  decoded header, printing the one record in 1,000 it selects;
* `kcat -C -t TOPIC -o beginning -e -q | wc -l` (kcat from Debian's package), the baseline;
* the peak RSS of `dlq stats` on the topic and on a quarter of it (a second topic): bounded by
  the number of groups, it must not grow with the records.

Each is measured --rounds times after one untimed run of each (the broker's first read of the
topic is slower for whichever comes first); medians are judged.

Targets (issue 22): `dlq stats` and the filtered `dlq tail` >= 100,000 records/s; the peak RSS
of `dlq stats` on the whole topic <= 1.2x that on a quarter.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import kafka_broker  # noqa: E402
from dlq_replay import PARTITIONS, create  # noqa: E402

RATE = 100_000
MEMORY_RATIO = 1.2
ODD = "java.lang.IllegalStateException"
WHERE = f'headers["kafka_dlt-exception-fqcn"] == "{ODD}"'


def fill(bootstrap: str, topic: str, original: str, records: int) -> None:
    """`records` DLQ records of ~500 bytes (value ~420, key, 5 Spring headers)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "compression.type": "none"})
    pad = "x" * 230
    for n in range(records):
        value = json.dumps(
            {
                "eventId": f"evt-{n:08d}",
                "eventTimestamp": "2026-11-27T10:00:00Z",
                "brandId": f"casino-{n % 7}",
                "userId": f"user-{n % 1000}",
                "payload": {"points": n, "reason": "game_win", "note": pad},
            }
        ).encode()
        odd = n % 1000 == 999
        headers = [
            ("kafka_dlt-original-topic", original.encode()),
            ("kafka_dlt-original-partition", (n % PARTITIONS).to_bytes(4, "big")),
            ("kafka_dlt-original-offset", n.to_bytes(8, "big")),
            (
                "kafka_dlt-exception-fqcn",
                ODD.encode() if odd else b"org.apache.kafka.common.errors.TimeoutException",
            ),
            (
                "kafka_dlt-exception-message",
                f"Expiring {n % 50} record(s): {120000 + n % 9} ms has passed".encode(),
            ),
        ]
        while True:
            try:
                producer.produce(topic, key=f"player-{n % 1000}".encode(), value=value, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(300):
        raise SystemExit("could not write the DLQ records")


def timed(argv: list[str]) -> tuple[str, float, float]:
    """(stdout, seconds, peak RSS in MiB) of one whole process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout, seconds, int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        raise SystemExit("kcat is not installed: make kcat")
    compileall.compile_dir(ROOT / "kafkaops", quiet=1)
    exe = str(Path(sys.executable).parent / "kafkaops")
    quarter = max(1, args.records // 4)
    with (
        tempfile.TemporaryDirectory(prefix="kafkaops-bench-") as tmp,
        kafka_broker.start_broker(Path(tmp) / "kafka") as broker,
    ):
        bootstrap = broker.bootstrap_servers
        create(bootstrap, "bench.big.dlq", "bench.quarter.dlq", "bench.orig")
        print(f"writing {args.records:,} + {quarter:,} DLQ records of ~500 bytes ...", flush=True)
        started = time.perf_counter()
        fill(bootstrap, "bench.big.dlq", "bench.orig", args.records)
        fill(bootstrap, "bench.quarter.dlq", "bench.orig", quarter)
        print(f"written in {time.perf_counter() - started:.0f} s", flush=True)

        def stats(topic: str) -> tuple[int, float, float]:
            out, seconds, rss = timed(
                [exe, "-b", bootstrap, "dlq", "stats", topic, "-g", "error.signature", "-o", "json"]
            )
            return sum(g["count"] for g in json.loads(out)), seconds, rss

        def tail() -> tuple[int, float]:
            argv = [
                exe,
                "-b",
                bootstrap,
                "dlq",
                "tail",
                "bench.big.dlq",
                "--from-beginning",
                "-o",
                "jsonl",
                "--where",
                WHERE,
            ]
            out, seconds, _ = timed(argv)
            return len(out.splitlines()), seconds

        def kcat_count() -> tuple[int, float]:
            command = f"{kcat} -b {bootstrap} -C -t bench.big.dlq -o beginning -e -q | wc -l"
            out, seconds, _ = timed(["bash", "-o", "pipefail", "-c", command])
            return int(out.strip()), seconds

        stats("bench.big.dlq"), tail(), kcat_count()  # untimed warm-up
        rows: list[tuple[float, float, float, float, float]] = []
        for n in range(args.rounds):
            counted, stats_s, big_rss = stats("bench.big.dlq")
            selected, tail_s = tail()
            lines, kcat_s = kcat_count()
            _, _, small_rss = stats("bench.quarter.dlq")
            if counted != args.records or selected != args.records // 1000:
                raise SystemExit(f"stats counted {counted}, tail selected {selected}: wrong")
            rows.append((args.records / stats_s, args.records / tail_s, lines / kcat_s, big_rss, small_rss))
            print(
                f"round {n + 1}: dlq stats {stats_s:5.2f} s {args.records / stats_s:9,.0f} rec/s "
                f"(peak RSS {big_rss:.1f} MiB; quarter {small_rss:.1f} MiB) | tail --where {tail_s:5.2f} s "
                f"{args.records / tail_s:9,.0f} rec/s ({selected:,} selected) | kcat | wc -l {kcat_s:5.2f} s "
                f"{lines / kcat_s:9,.0f} rec/s",
                flush=True,
            )
    stats_rate = statistics.median(r[0] for r in rows)
    tail_rate = statistics.median(r[1] for r in rows)
    kcat_rate = statistics.median(r[2] for r in rows)
    memory = max(r[3] for r in rows) / max(r[4] for r in rows)
    print(
        f"median of {args.rounds}, {args.records:,} records: dlq stats {stats_rate:,.0f} rec/s, "
        f"dlq tail --where {tail_rate:,.0f} rec/s, kcat | wc -l {kcat_rate:,.0f} rec/s (target >= {RATE:,})"
    )
    print(f"dlq stats peak RSS, whole / quarter: {memory:.2f} (target <= {MEMORY_RATIO})")
    ok = stats_rate >= RATE and tail_rate >= RATE and memory <= MEMORY_RATIO
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.pop("KAFKAOPS_CONFIG", None)
    raise SystemExit(main())
