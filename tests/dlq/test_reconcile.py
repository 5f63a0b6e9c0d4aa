"""The table and the DLQ topics as one story, on the real Apache Kafka broker and PostgreSQL:
`retry` records where each DLQ record went, `dlq tail` and `failed show` link record and row,
`dlq replay` marks the rows it replayed RESOLVED after each commit (and names every row it
could not mark when the database is down), and `failed requeue --status DLQ` holds back rows
whose record was replayed or still waits for a replay."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from tests.conftest import Cli, TestDatabase
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.config import write_config
from tests.helpers.dlq import dlq_pair, produce, read_all
from tests.helpers.events import NOW, event
from tests.helpers.process import finish, start_kafkaops

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


def set_max_message_bytes(bootstrap: str, topic: str, value: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    time.sleep(1.0)  # the partition leader applies a topic config change asynchronously


def dlq_columns(db: TestDatabase) -> dict[int, dict[str, Any]]:
    """id -> status and the optional columns, read with plain SQL."""
    query = sa.text(
        f'SELECT id, status, dlq_topic, dlq_partition, dlq_offset, dlq_acked_at, resolved_by FROM "{db.schema}".failed_kafka_events'
    )
    with db.engine.connect() as conn:
        return {int(r.id): dict(r._mapping) for r in conn.execute(query)}


def config(
    tmp_path: Path, db: TestDatabase, bootstrap: str, name: str = "kafkaops.yaml", **db_over: Any
) -> str:
    path = write_config(
        tmp_path / name, db, kafka={"bootstrap.servers": bootstrap}, retry={"delivery_timeout": "10s"}
    )
    if db_over:
        import yaml

        doc = yaml.safe_load(path.read_text())
        doc["contexts"]["test"]["database"].update(db_over)
        # A journal that must be written in a database that is down stops every writing
        # command before it acts; these tests are about the replay's own marking.
        doc["contexts"]["test"]["audit"] = {"required": False}
        path.write_text(yaml.safe_dump(doc))
    return str(path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dlq_record_and_its_row_are_one_story(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, pg_database: TestDatabase, tmp_path: Path
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    set_max_message_bytes(kafka_bootstrap, source, 200)  # the events are too large for it
    pg_database.init()
    big = json.dumps({"pad": "x" * 1000})
    pg_database.insert(
        [
            event(n, topic=source, payload=big, retry_count=4, next_retry_at=NOW, last_error="timeout")
            for n in range(2)
        ]
    )
    cfg = config(tmp_path, pg_database, kafka_bootstrap)
    cli("--config", cfg, "retry")
    rows = dlq_columns(pg_database)
    assert {r["status"] for r in rows.values()} == {"DLQ"}
    on_topic = {m.offset(): m for m in read_all(kafka_bootstrap, dlq)}
    for row_id, row in rows.items():
        # Where retry's DLQ send was acknowledged, and the record there names this row.
        assert (row["dlq_topic"], row["dlq_partition"]) == (dlq, 0)
        assert row["dlq_acked_at"] is not None
        record = on_topic[row["dlq_offset"]]
        assert dict(record.headers())["kafkaops-failed-event-id"] == str(row_id).encode()

    first = min(rows)
    shown = cli("--config", cfg, "failed", "show", str(first))
    assert shown.exit_code == 0
    assert f"{dlq} partition 0 offset {rows[first]['dlq_offset']}, acknowledged 20" in shown.stdout
    tail = cli("--config", cfg, "dlq", "tail", dlq)
    assert tail.exit_code == 0
    for row_id in rows:
        assert f"row:      {row_id}  (kafkaops failed show {row_id})" in tail.stdout
    as_json = json.loads(cli("--config", cfg, "dlq", "tail", dlq, "-o", "json").stdout)
    assert sorted(r["failed_event_id"] for r in as_json) == sorted(str(i) for i in rows)

    # The records wait in the DLQ topic: a requeue would publish them a second time.
    requeue = cli("--config", cfg, "failed", "requeue", "--status", "DLQ", "--yes")
    assert requeue.exit_code == 0
    assert f"2 DLQ row(s) left out: their DLQ record still waits in {dlq}" in requeue.stderr
    assert "--force" in requeue.stderr
    assert {r["status"] for r in dlq_columns(pg_database).values()} == {"DLQ"}

    set_max_message_bytes(kafka_bootstrap, source, 1_000_000)  # the cause is fixed
    replay = cli("--config", cfg, "dlq", "replay", dlq, "--yes")
    assert replay.exit_code == 0, replay.stderr
    assert "Marked 2 DLQ row(s) RESOLVED (resolved by replay)." in replay.stderr
    after = dlq_columns(pg_database)
    assert {(r["status"], r["resolved_by"]) for r in after.values()} == {("RESOLVED", "replay")}
    assert len(read_all(kafka_bootstrap, source)) == 2


def test_a_replay_whose_database_is_down_names_every_row_it_could_not_mark(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, pg_database: TestDatabase, tmp_path: Path
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    pg_database.init()
    pg_database.insert([event(n, topic=source, status="DLQ", retry_count=5) for n in range(3)])
    ids = sorted(dlq_columns(pg_database))
    records: list[Any] = [
        (
            f"k{n}",
            f"v{n}",
            [("kafka_dlt-original-topic", source.encode()), ("kafkaops-failed-event-id", str(i).encode())],
        )
        for n, i in enumerate(ids)
    ]
    records.append(("k-none", "v-none", [("kafka_dlt-original-topic", source.encode())]))
    produce(kafka_bootstrap, dlq, records, partition=0)
    with pg_database.engine.begin() as conn:  # where each row's record is, as retry records it
        for offset, row_id in enumerate(ids):
            conn.execute(
                sa.text(
                    f'UPDATE "{pg_database.schema}".failed_kafka_events '
                    "SET dlq_topic = :t, dlq_partition = 0, dlq_offset = :o WHERE id = :i"
                ),
                {"t": dlq, "o": offset, "i": row_id},
            )
    dead = f"postgresql+psycopg://kafkaops:s3cret-pw@127.0.0.1:{closed_port()}/gone"
    down = config(tmp_path, pg_database, kafka_bootstrap, "down.yaml", url=dead)
    replay = cli("--config", down, "dlq", "replay", dlq, "--yes")
    assert replay.exit_code == 1
    error = replay.stderr
    assert "Replayed 4 record(s)" in error
    assert "3 row(s) could not be marked RESOLVED" in error
    assert "ids " + ", ".join(str(i) for i in ids) in error
    assert "s3cret-pw" not in replay.stdout + error
    assert "Traceback" not in error
    # The Kafka side is exactly once: every record once, and a rerun replays nothing.
    assert len(read_all(kafka_bootstrap, source)) == 4
    again = cli("--config", down, "dlq", "replay", dlq, "--yes")
    assert again.exit_code == 0 and "Nothing to replay." in again.stderr
    assert len(read_all(kafka_bootstrap, source)) == 4

    # The database is back: the rows still say DLQ, and a requeue refuses them.
    cfg = config(tmp_path, pg_database, kafka_bootstrap)
    assert {r["status"] for r in dlq_columns(pg_database).values()} == {"DLQ"}
    requeue = cli("--config", cfg, "failed", "requeue", "--status", "DLQ", "--yes", "-o", "json")
    assert requeue.exit_code == 0
    assert "3 DLQ row(s) left out: `kafkaops dlq replay` already replayed their DLQ record" in requeue.stderr
    doc = json.loads(requeue.stdout)
    assert doc["requeued"] == 0 and doc["held_back"]["replayed"] == [str(i) for i in ids]
    assert {r["status"] for r in dlq_columns(pg_database).values()} == {"DLQ"}
    forced = cli("--config", cfg, "failed", "requeue", "--status", "DLQ", "--yes", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert {r["status"] for r in dlq_columns(pg_database).values()} == {"PENDING"}


class Cuttable:
    """A TCP relay to PostgreSQL that can be cut: the database goes away mid-run, as a
    failover or a network cut does, while the test still reaches it directly."""

    def __init__(self, target: tuple[str, int]) -> None:
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.target = target
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.mark.slow
def test_the_database_going_down_during_the_marking_names_the_rows_left_dlq(
    kafka_bootstrap: str, new_topic: NewTopicFactory, pg_database: TestDatabase, tmp_path: Path
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    pg_database.init()
    pg_database.insert([event(n, topic=source, status="DLQ", retry_count=5) for n in range(6)])
    ids = sorted(dlq_columns(pg_database))
    produce(
        kafka_bootstrap,
        dlq,
        [
            (
                f"k{n}",
                f"v{n}",
                [
                    ("kafka_dlt-original-topic", source.encode()),
                    ("kafkaops-failed-event-id", str(i).encode()),
                ],
            )
            for n, i in enumerate(ids)
        ],
        partition=0,
    )
    url = sa.engine.make_url(pg_database.url)
    relay = Cuttable((url.host or "127.0.0.1", url.port or 5432))
    through_relay = url.set(port=relay.port).render_as_string(hide_password=False)
    cfg = config(tmp_path, pg_database, kafka_bootstrap, url=through_relay)
    # One record per transaction, two a second: the rows are marked one by one.
    proc = start_kafkaops("dlq", "replay", dlq, "--yes", "--batch-size", "1", "--rate", "2", config=cfg)
    try:
        deadline = time.monotonic() + 60
        while not any(r["status"] == "RESOLVED" for r in dlq_columns(pg_database).values()):
            assert time.monotonic() < deadline and proc.poll() is None, "no row was marked"
            time.sleep(0.05)
        relay.cut()  # the database is gone for the rest of the run
        code, _, err = finish(proc)
    finally:
        relay.cut()
    rows = dlq_columns(pg_database)
    marked = [i for i in ids if rows[i]["status"] == "RESOLVED"]
    left = [i for i in ids if rows[i]["status"] == "DLQ"]
    assert marked and left and len(marked) + len(left) == 6
    assert code == 1, err
    assert "Replayed 6 record(s)" in err
    assert f"{len(left)} row(s) could not be marked RESOLVED" in err
    assert "ids " + ", ".join(str(i) for i in left) + "\n" in err
    assert "Traceback" not in err
    assert len(read_all(kafka_bootstrap, source)) == 6  # every record once
