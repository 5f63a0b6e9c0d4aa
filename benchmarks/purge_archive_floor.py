"""What keeping every purged row costs, step by step, in PostgreSQL alone (no kafkaops code):
batches of 10,000 rows of ~400 bytes deleted with SKIP LOCKED as `failed purge` does, each batch
its own transaction, then the same batches returning their ids, every column, every column as
JSON written to a file, and that file fsynced before each commit (what `failed purge --archive`
does). The ratio of the last to the first is the floor of `purge --archive`'s cost. Then the
same archived batches over two connections at once (each batch's rows written and fsynced
before its own commit, the writes one at a time): what overlapping one batch's DELETE with
the previous one's transfer and fsync could save on this machine.

Where the time goes, in three more steps: the server writing every column as JSON with
nothing sent (`COPY (DELETE ... RETURNING row_to_json(...)) TO '/dev/null'`), the same in
PostgreSQL's binary form (no text written at all), and the archive's bytes written and
fsynced in batches with no database (the disk alone). The server runs with fsync on, as
`benchmarks/audit.py`'s does.

Run: .venv/bin/python benchmarks/purge_archive_floor.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

BATCH = 10_000
CHOSEN = f"select id from t where status = 'RESOLVED' limit {BATCH} for update skip locked"
STEPS = {
    "delete": f"delete from t where id in ({CHOSEN})",
    "returning ids": f"delete from t where id in ({CHOSEN}) returning id",
    "returning every column": f"delete from t where id in ({CHOSEN}) returning t.*",
    "as JSON, written": f"delete from t where id in ({CHOSEN}) returning id, row_to_json(t.*)::text",
    "as JSON, written and fsynced": f"delete from t where id in ({CHOSEN}) returning id, row_to_json(t.*)::text",
    "two connections at once": f"delete from t where id in ({CHOSEN}) returning id, row_to_json(t.*)::text",
    "as JSON on the server, nothing sent": f"copy (delete from t where id in ({CHOSEN}) "
    "returning row_to_json(t.*)) to '/dev/null'",
    "binary on the server, nothing sent": f"copy (delete from t where id in ({CHOSEN}) returning t.*) "
    "to '/dev/null' (format binary)",
}
PIPELINED = "two connections at once"
DISK = "the archive's bytes to disk alone"


def pipelined(url: str, statement: str, archive_path: Path) -> None:
    """Two connections deleting batches at once; a batch's rows written and fsynced (one
    writer at a time) before that batch commits."""
    import psycopg

    lock = threading.Lock()
    finished = threading.Event()
    with open(archive_path, "wb") as archive:

        def work() -> None:
            with psycopg.connect(url) as conn:
                while not finished.is_set():
                    with conn.transaction():
                        rows = conn.execute(statement).fetchall()
                        data = b"".join(r[1].encode() + b"\n" for r in rows)
                        with lock:
                            archive.write(data)
                            archive.flush()
                            os.fsync(archive.fileno())
                    if len(rows) < BATCH:
                        finished.set()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def disk_alone(path: Path, size: int) -> float:
    """Write `size` bytes in batch-sized chunks (an archive's), each fsynced: the disk's share."""
    chunk = b"x" * max(1, size // 20)
    started = time.perf_counter()
    with open(path, "wb") as out:
        for _ in range(20):
            out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def main() -> None:
    import pgserver
    import psycopg

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with (
        pgserver.postgres_server(fsync=True) as url,
        tempfile.TemporaryDirectory() as scratch,
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn,
    ):
        plain_url = url.replace("postgresql+psycopg://", "postgresql://")
        times: dict[str, list[float]] = {step: [] for step in [*STEPS, DISK]}
        archive_bytes = 0
        for _ in range(2):
            for step, statement in STEPS.items():
                conn.execute("drop table if exists t")
                conn.execute(
                    "create table t (id bigserial primary key, topic text, payload text, status text, "
                    "created_at timestamptz default now(), last_error text)"
                )
                conn.execute(
                    "insert into t (topic, payload, status, last_error) select 'casino.wallet.deposit.v1', "
                    "repeat('x', 300) || g::text, 'RESOLVED', 'Timeout after 30000 ms' "
                    "from generate_series(1, %s) g",
                    (args.rows,),
                )
                started = time.perf_counter()
                if step == PIPELINED:
                    pipelined(plain_url, statement, Path(scratch) / "archive.jsonl")
                    times[step].append(time.perf_counter() - started)
                    continue
                with open(Path(scratch) / "archive.jsonl", "wb") as archive:
                    while True:
                        with conn.transaction():
                            cursor = conn.execute(statement)
                            rows = cursor.fetchall() if cursor.description else []
                            done = len(rows) if rows else cursor.rowcount
                            if step.startswith("as JSON,"):
                                archive.write(b"".join(r[1].encode() + b"\n" for r in rows))
                                if step.endswith("fsynced"):
                                    archive.flush()
                                    os.fsync(archive.fileno())
                        if done < BATCH:
                            break
                    archive_bytes = max(archive_bytes, archive.tell())
                times[step].append(time.perf_counter() - started)
            times[DISK].append(disk_alone(Path(scratch) / "disk.bin", archive_bytes))
        base = min(times["delete"])
        for step, runs in times.items():
            print(f"{step:36} {min(runs):6.2f} s  {min(runs) / base:4.2f}x")
        print(
            f"(the archive: {archive_bytes / 2**20:.0f} MiB; the last row is the disk alone, as a share of the delete)"
        )


if __name__ == "__main__":
    main()
