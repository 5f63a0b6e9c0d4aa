"""What the audit journal and the purge archive cost: `failed requeue` and `failed purge` with
them, side by side with the same commands without them, in one run.

Run: .venv/bin/python benchmarks/audit.py [--requeue-rows 100000] [--purge-rows 1000000] [--rounds 2]

Starts a throwaway PostgreSQL (scripts/pgserver.py) with fsync on, as a production server
runs (the archive is fsynced before each batch commits, so a server that skips its own fsyncs
would make the comparison unfair to it). Each round, alternating which goes first, times whole
processes, start-up included:

* `failed requeue --yes` of --requeue-rows DLQ_FAILED rows, with the journal (the entry's
  intent, the ids and their SHA-256 written in the requeue's transaction, the outcome), and
  without it (no `kafkaops_audit` table and `audit.required: false`: one failed INSERT);
* `failed purge --older-than 30d --yes` of --purge-rows RESOLVED rows of ~400 bytes in batches
  of 10,000, with the journal and `--archive x.jsonl` (every column of every row written and
  fsynced before each batch commits), and with `--archive x.jsonl.gz` (for comparison), and
  without either (`--no-archive`, no journal table).

The table is filled again before every timed process. The verdict takes the median of the
per-round ratios. Target (issue 20): with journal and archive at most 1.3x the time without.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import pgserver  # noqa: E402

TARGET_RATIO = 1.3
FILL = """
INSERT INTO failed_kafka_events
  (event_id, topic, event_key, payload, headers, status, retry_count, last_error, error_type,
   created_at, updated_at)
SELECT 'evt-' || n, 'casino.topic.' || (n %% 5), 'player-' || (n %% 1000),
       '{"eventId":"evt-' || n || '","brandId":"casino-7","payload":{"points":' || n
         || ',"reason":"game_win","note":"' || repeat('x', 200) || '"}}',
       '{"eventType":"PointsEarned"}', %(status)s, 5,
       'Error ' || (n %% 200) || ': Timeout after 30000 ms while publishing',
       'org.apache.kafka.common.errors.TimeoutException',
       now() - interval '60 days', now() - interval '60 days'
FROM generate_series(1, %(rows)s) AS n
"""


def fill(url: str, rows: int, status: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE failed_kafka_events")
        conn.execute(FILL, {"rows": rows, "status": status})  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE failed_kafka_events")


def journal(url: str, kafkaops: str, env: dict[str, str], *, on: bool) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kafkaops_audit")
    if on:
        subprocess.run([kafkaops, "db", "init"], env=env, check=True, capture_output=True)


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requeue-rows", type=int, default=100_000)
    parser.add_argument("--purge-rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    kafkaops = str(Path(sys.executable).parent / "kafkaops")
    workdir = Path(tempfile.mkdtemp(prefix="kafkaops-audit-bench-"))
    with pgserver.postgres_server(fsync=True) as url:
        compileall.compile_dir(ROOT / "kafkaops", quiet=1)  # as installed: bytecode compiled once
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {**environ, "KAFKAOPS_DATABASE_URL": url}
        lenient = workdir / "lenient.yaml"  # the runs without the journal
        lenient.write_text(
            f"current-context: bench\ncontexts:\n  bench:\n    database: {{url: '{url}'}}\n"
            "    audit: {required: false}\n"
        )
        lenient.chmod(0o600)
        without = {**env, "KAFKAOPS_CONFIG": str(lenient)}
        subprocess.run([kafkaops, "db", "init"], env=env, check=True, capture_output=True)
        ratios: dict[str, list[float]] = {"requeue": [], "purge": [], "purge .gz": []}
        for round_ in range(args.rounds):
            times: dict[str, float] = {}
            requeue = [kafkaops, "failed", "requeue", "--yes"]
            for on in (True, False) if round_ % 2 == 0 else (False, True):
                fill(url, args.requeue_rows, "DLQ_FAILED")
                journal(url, kafkaops, env, on=on)
                times[f"requeue {'with' if on else 'without'}"] = timed(requeue, env if on else without)
            purge = [kafkaops, "failed", "purge", "--older-than", "30d", "--yes"]
            variants = [
                ("purge with", [*purge, "--archive", str(workdir / f"r{round_}.jsonl")], True),
                ("purge .gz with", [*purge, "--archive", str(workdir / f"r{round_}.jsonl.gz")], True),
                ("purge without", [*purge, "--no-archive"], False),
            ]
            for name, argv, on in variants if round_ % 2 == 0 else list(reversed(variants)):
                fill(url, args.purge_rows, "RESOLVED")
                journal(url, kafkaops, env, on=on)
                times[name] = timed(argv, env if on else without)
            ratios["requeue"].append(times["requeue with"] / times["requeue without"])
            ratios["purge"].append(times["purge with"] / times["purge without"])
            ratios["purge .gz"].append(times["purge .gz with"] / times["purge without"])
            print(
                f"round {round_ + 1}: requeue {args.requeue_rows:,} rows: {times['requeue with']:.2f} s with the "
                f"journal, {times['requeue without']:.2f} s without ({ratios['requeue'][-1]:.2f}x); "
                f"purge {args.purge_rows:,} rows: {times['purge with']:.2f} s with journal and archive "
                f"(.jsonl, {(workdir / f'r{round_}.jsonl').stat().st_size / 2**20:.0f} MiB), "
                f"{times['purge .gz with']:.2f} s with .jsonl.gz "
                f"({(workdir / f'r{round_}.jsonl.gz').stat().st_size / 2**20:.0f} MiB), "
                f"{times['purge without']:.2f} s without ({ratios['purge'][-1]:.2f}x, .gz "
                f"{ratios['purge .gz'][-1]:.2f}x)",
                flush=True,
            )
            for archive in workdir.glob("r*.jsonl*"):
                archive.unlink()
    medians = {k: statistics.median(v) for k, v in ratios.items()}
    ok = medians["requeue"] <= TARGET_RATIO and medians["purge"] <= TARGET_RATIO
    print(
        f"median of {args.rounds}: requeue {medians['requeue']:.2f}x, purge (.jsonl) {medians['purge']:.2f}x, "
        f"purge (.jsonl.gz) {medians['purge .gz']:.2f}x (target <= {TARGET_RATIO}x for requeue and purge): "
        + ("met" if ok else "NOT met")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
