"""Payloads and headers as the service stores them: json, jsonb and bytea columns (a Spring/JPA
service often uses them), text that is not UTF-8 in SQLite, a SQL_ASCII PostgreSQL database.

`retry` publishes text as its UTF-8 bytes, bytea as the raw bytes, json/jsonb as the
database's own text form; the bytes are checked on a real topic.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.helpers.config import write_config
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops
from tests.helpers.retry import configure, statuses
from tests.helpers.topics import consume

PAYLOAD = '{"eventId": "evt-1",  "payload": {"z": 1, "a": "é 🎰"}}'
HEADERS = '{"z-last": "1", "eventType": "PlayerRegistered", "n": 3}'


def column_types(db, payload: str, headers: str) -> None:  # type: ignore[no-untyped-def]
    table = f'"{db.schema}".failed_kafka_events'
    using = {"jsonb": "{c}::jsonb", "json": "{c}::json", "bytea": "convert_to({c}, 'UTF8')"}
    with db.engine.begin() as conn:
        for column, kind in (("payload", payload), ("headers", headers)):
            conn.execute(
                sa.text(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind} "
                    f"USING {using[kind].format(c=column)}"
                )
            )


@pytest.mark.kafka
@pytest.mark.parametrize("kind", ["json", "jsonb", "bytea"])
def test_json_jsonb_and_bytea_columns_publish_their_bytes(
    pg_database, kafka_bootstrap, new_topic, cli, tmp_path, monkeypatch, kind: str
) -> None:
    topic = new_topic()
    pg_database.init()
    configure(pg_database, tmp_path, monkeypatch, kafka_bootstrap)
    pg_database.insert([event(1, topic=topic, payload=PAYLOAD, headers=HEADERS)])
    column_types(pg_database, kind, kind)
    table = f'"{pg_database.schema}".failed_kafka_events'
    with pg_database.engine.connect() as conn:
        if kind == "bytea":  # raw bytes, not all of them UTF-8
            conn.execute(sa.text(f"UPDATE {table} SET payload = payload || '\\x00ff'::bytea"))
            conn.commit()
        as_text = "" if kind == "bytea" else "::text"  # the database's own text of the JSON
        stored = conn.execute(sa.text(f"SELECT payload{as_text} FROM {table}")).one()
    expected = bytes(stored[0]) if kind == "bytea" else stored[0].encode()
    if kind == "jsonb":
        assert expected.decode() != PAYLOAD  # jsonb keeps its own canonical text, not the input's
    check = cli("db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr
    [listed] = json.loads(cli("failed", "list", "-o", "json").stdout)
    shown = cli("failed", "show", str(listed["id"]), "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 1
    [record] = consume(kafka_bootstrap, topic, expect=1, idle=1.0)
    assert record.value == expected
    assert dict(record.headers) == {"z-last": b"1", "eventType": b"PlayerRegistered", "n": b"3"}
    assert statuses(pg_database) == {"RESOLVED": 1}


def test_db_check_refuses_a_payload_of_another_type(pg_database, cli, tmp_path, monkeypatch) -> None:
    pg_database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", pg_database)))
    with pg_database.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'ALTER TABLE "{pg_database.schema}".failed_kafka_events '
                "ALTER COLUMN payload TYPE integer USING 0"
            )
        )
    result = cli("db", "check", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "column": "payload",
            "physical": "payload",
            "problem": "type INTEGER where text or bytes or json is expected",
        }
    ]


@pytest.mark.slow
def test_sqlite_text_that_is_not_utf8_is_listed_and_published_as_stored(
    make_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    db = make_database("sqlite")
    db.init()
    configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    embedded_kafka.create_topic("casino.player.registered.v1")
    db.insert([event(1), event(2)])
    path = db.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:  # what another writer may leave: bytes that are not UTF-8
        raw.execute(
            "UPDATE failed_kafka_events SET event_key = CAST(X'ff6b6579' AS TEXT), "
            "payload = CAST(X'7b2262223a22fe227d' AS TEXT) WHERE event_id = 'evt-1'"
        )
    listed = cli("failed", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    # The byte that was not UTF-8 comes out of JSON as "\\udcff" (surrogateescape), as `failed` reads it.
    assert {r["event_key"] for r in json.loads(listed.stdout)} == {"\udcffkey", "player-2"}
    assert cli("failed", "-g", "event_key", "-o", "json").exit_code == 0
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    records = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=2, idle=0.5)
    assert {(r.key, r.value) for r in records if r.key != b"player-2"} == {(b"\xffkey", b'{"b":"\xfe"}')}
    assert statuses(db) == {"RESOLVED": 2}


@pytest.fixture
def sql_ascii_url(pg_url: str):  # type: ignore[no-untyped-def]
    from kafkaops.db.engine import create_engine

    name = f"ascii_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text(
                f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        )
    yield sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text(f"DROP DATABASE {name} WITH (FORCE)")
        )
    admin.dispose()


@pytest.mark.slow
def test_a_sql_ascii_database_works(sql_ascii_url, embedded_kafka, cli, tmp_path, monkeypatch) -> None:
    config = write_config(
        tmp_path / "k.yaml",
        current="t",
        database={"url": sql_ascii_url},
        kafka={"bootstrap.servers": embedded_kafka.bootstrap_servers},
        retry={"delivery_timeout": "3s"},
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    embedded_kafka.create_topic("casino.player.registered.v1")
    assert cli("db", "init").exit_code == 0
    payload = json.dumps({"eventId": "evt-1", "name": "Zoë 🎰"}, ensure_ascii=False)
    from kafkaops.config.settings import DatabaseSettings
    from kafkaops.db.engine import create_engine
    from kafkaops.db.schema import build_table

    engine = create_engine(sql_ascii_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(build_table(DatabaseSettings())), [event(1, payload=payload, event_key="clé")])
    engine.dispose()
    listed = cli("failed", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["event_key"] == "clé"
    result = cli("retry", "-o", "json")
    assert result.exit_code == 0, result.stderr
    [record] = consume(embedded_kafka.bootstrap_servers, "casino.player.registered.v1", expect=1, idle=0.5)
    assert (record.key, record.value) == ("clé".encode(), payload.encode())


@pytest.mark.slow
def test_sqlite_last_error_that_is_not_utf8_is_grouped_and_filtered(
    make_database, cli, tmp_path, monkeypatch
) -> None:
    db = make_database("sqlite")
    db.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", db)))
    db.insert([event(n, last_error=f"Timeout after {n}000 ms") for n in (1, 2, 3)])
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:  # "Bad \xff byte 42\x1b[2J"
        raw.execute(
            "UPDATE failed_kafka_events SET last_error = CAST(X'42616420ff20627974652034321b5b324a' AS TEXT) "
            "WHERE event_id IN ('evt-1', 'evt-2')"
        )
    found = cli("failed", "list", "--error", "BYTE", "-o", "json")
    assert found.exit_code == 0, found.stderr
    assert sorted(r["event_id"] for r in json.loads(found.stdout)) == ["evt-1", "evt-2"]
    grouped = cli("failed", "-g", "error_signature", "-o", "json")
    assert grouped.exit_code == 0, grouped.stderr
    counts = {g["error_signature"]: g["count"] for g in json.loads(grouped.stdout)}
    assert counts == {"Bad \udcff byte <n>\x1b[2J": 2, "Timeout after <duration>": 1}
    table = cli("failed", "-g", "error_signature")
    assert "Bad \\xff byte <n>\\x1b[2J" in table.stdout and "\x1b" not in table.stdout


# -- text that is not UTF-8 (SQLite): one reading for every command ------------------------------

STORED = b"bad\xffkey"  # the same bytes in event_key and last_error
# What each format shows for them: JSON and YAML the byte as U+DCFF, tsv and tables `\xff`,
# csv the byte itself.
SHOWN = {
    "json": "bad\udcffkey",
    "yaml": "bad\udcffkey",
    "csv": STORED.decode("utf-8", "surrogateescape"),
    "tsv": "bad\\xffkey",
}
# Each command that reads such a row, and the field of its output that holds them.
READERS = {
    "failed list": (["failed", "list"], "event_key"),
    "failed list last_error": (["failed", "list"], "last_error"),
    "failed -g last_error": (["failed", "-g", "last_error"], "last_error"),
    "failed -g error_signature": (["failed", "-g", "error_signature"], "error_signature"),
    "failed list --error": (["failed", "list", "--error", "KEY"], "last_error"),
    "retry --dry-run": (["retry", "--dry-run"], "event_key"),
}


@pytest.fixture
def not_utf8_config(make_database, tmp_path):  # type: ignore[no-untyped-def]
    db = make_database("sqlite")
    db.init()
    db.insert([event(1)])
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:
        raw.execute(
            "UPDATE failed_kafka_events SET event_key = CAST(? AS TEXT), last_error = CAST(? AS TEXT)",
            (STORED, STORED),
        )
    return write_config(tmp_path / "k.yaml", db)


def read_field(output: bytes, fmt: str, field: str) -> str:
    text = output.decode("utf-8", "surrogateescape")
    if fmt == "json":
        rows = json.loads(text)
    elif fmt == "yaml":
        rows = yaml.safe_load(text)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    else:
        header, *lines = text.splitlines()
        rows = [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]
    [row] = rows
    return str(row[field])


@pytest.mark.parametrize("fmt", list(SHOWN))
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.slow
def test_text_that_is_not_utf8_reads_the_same_in_every_command(
    not_utf8_config, cli, reader: str, fmt: str
) -> None:
    args, field = READERS[reader]
    command = ["--config", str(not_utf8_config), *args, "-o", fmt]
    if fmt == "csv":  # piped csv writes the stored bytes: seen only on a real process's stdout
        done = run_kafkaops(*command, text=False)
        assert done.returncode == 0, done.stderr
        output = done.stdout
    else:
        result = cli(*command)
        assert result.exit_code == 0, result.stderr
        output = result.stdout_bytes
    assert read_field(output, fmt, field) == SHOWN[fmt]


@pytest.mark.parametrize("reader", list(READERS))
def test_text_that_is_not_utf8_shows_escaped_in_a_table(not_utf8_config, cli, reader: str) -> None:
    args, _field = READERS[reader]
    result = cli("--config", str(not_utf8_config), *args)
    assert result.exit_code == 0, result.stderr
    assert "bad\\xffkey" in result.stdout and b"\xff" not in result.stdout_bytes


def test_a_topic_that_is_not_utf8_is_settled_by_retry(
    make_database, embedded_kafka, cli, tmp_path, monkeypatch
) -> None:
    """No Kafka topic has such a name: the row fails its attempt (the last one without a DLQ
    topic to go to), and the metrics label shows the byte escaped."""
    db = make_database("sqlite")
    db.init()
    configure(db, tmp_path, monkeypatch, embedded_kafka.bootstrap_servers)
    db.insert([event(1, retry_count=4), event(2)])  # max_retries 5: evt-1 is on its last attempt
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE failed_kafka_events SET topic = CAST(X'6f72ff' AS TEXT)")
    metrics = tmp_path / "retry.prom"
    result = cli("retry", "--metrics-file", str(metrics))
    assert result.exit_code == 1, result.stderr
    assert "are now DLQ_FAILED: id 1" in result.stderr
    not_utf8 = "the topic is not UTF-8: no Kafka topic has that name"
    assert [(r["status"], r["retry_count"], r["last_error"]) for r in db.rows()] == [
        ("DLQ_FAILED", 5, f"{not_utf8}; no DLQ topic for a row whose topic is not UTF-8"),
        ("PENDING", 1, not_utf8),
    ]
    assert 'kafka_retry_attempts_total{topic="or\\\\xff"} 2.0' in metrics.read_text()


@pytest.mark.slow
def test_sqlite_rows_that_are_not_utf8_are_listed_and_shown_byte_for_byte(
    make_database, tmp_path: Path
) -> None:
    """One row with bytes that are not UTF-8 made every command fail (`Could not decode to UTF-8
    column 'topic'`), including the list that would show which row it is."""
    import csv
    import io

    import yaml

    db = make_database("sqlite")
    db.init()
    db.insert([event(1, status="DLQ_FAILED", last_error="fine")])
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO failed_kafka_events (event_id, topic, event_key, payload, headers, status, "
            "retry_count, last_error, error_type, created_at, updated_at) VALUES (CAST(X'ff41' AS TEXT), "
            "CAST(X'6361ff' AS TEXT), CAST(X'fffe' AS TEXT), CAST(X'7b7dff' AS TEXT), NULL, 'DLQ_FAILED', 1, "
            "CAST(X'c328' AS TEXT), X'00ff', '2026-11-27 10:00:00.000000', '2026-11-27 10:00:00.000000')"
        )
    config = write_config(tmp_path / "kafkaops.yaml", db)

    grouped = run_kafkaops("failed", "-g", "topic", "-o", "json", config=config)
    assert grouped.returncode == 0, grouped.stderr
    assert {g["topic"]: g["count"] for g in json.loads(grouped.stdout)} == {
        "casino.player.registered.v1": 1,
        "ca\udcff": 1,  # JSON's "\udcff": the byte that was not UTF-8, escaped
    }
    table = run_kafkaops("failed", "list", config=config)
    assert table.returncode == 0, table.stderr
    assert "ca\\xff" in table.stdout and "\\xc3(" in table.stdout  # shown, never sent raw
    shown = run_kafkaops("failed", "show", "2", config=config)
    assert "payload (not JSON, shown as stored):\n{}\\xff" in shown.stdout
    as_json = json.loads(run_kafkaops("failed", "show", "2", "-o", "json", config=config).stdout)
    assert as_json["event_key"] == "\udcff\udcfe" and as_json["error_type"] == "\x00\udcff"
    as_yaml = yaml.safe_load(run_kafkaops("failed", "show", "2", "-o", "yaml", config=config).stdout)
    assert as_yaml["topic"] == "ca\udcff"
    # Piped csv writes values exact: the stored bytes themselves.
    raw = run_kafkaops("--config", str(config), "failed", "list", "-o", "csv", text=False)
    assert raw.returncode == 0, raw.stderr
    rows = list(csv.DictReader(io.StringIO(raw.stdout.decode("utf-8", "surrogateescape"))))
    bad = next(row for row in rows if row["id"] == "2")
    assert bad["topic"].encode("utf-8", "surrogateescape") == b"ca\xff"
