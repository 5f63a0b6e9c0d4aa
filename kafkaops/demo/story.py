"""The demo environment: an embedded Kafka cluster and a SQLite table holding the history a
real outage leaves, for `kafkaops demo` (the walk-through) and `kafkaops sandbox` (the same
environment kept open for trying commands by hand).

Nothing here prints: the CLI layer tells the story.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.common import clock
from kafkaops.common.errors import UsageError
from kafkaops.common.escape import safe_text
from kafkaops.common.filelock import NOFOLLOW
from kafkaops.common.timeparse import isoformat_utc

if TYPE_CHECKING:
    from kafkaops.demo.cluster import EmbeddedKafka
    from kafkaops.demo.service import FakeService

# The service's topics, with their partition counts.
TOPICS = {
    "casino.player.registered.v1": 3,
    "casino.wallet.deposit.v1": 6,
    "casino.game.round-completed.v1": 6,
    "casino.loyalty.points-earned.v1": 3,
}
# The topic whose max.message.bytes is smaller than its records: the broker refuses them as
# too large (the events' own fault), so on their last attempt they reach the DLQ.
REFUSED_TOPIC = "casino.loyalty.points-earned.v1"
# The topic whose DLQ nobody created: its exhausted events became DLQ_FAILED.
NO_DLQ_TOPIC = "casino.game.round-completed.v1"
MSG_SIZE_TOO_LARGE = 10

# What the demo writes in its folder. In a --keep folder an existing file is never overwritten
# (nor a link followed): it may be the user's, or point at theirs.
DATABASE_FILE = "failed_kafka_events.db"
CONFIG_FILE = "kafkaops.yaml"


_TIMEOUT = "org.apache.kafka.common.errors.TimeoutException"
_REPLICAS = "org.apache.kafka.common.errors.NotEnoughReplicasException"
_TOO_LARGE = "org.apache.kafka.common.errors.RecordTooLargeException"
_BREAKER = "io.github.resilience4j.circuitbreaker.CallNotPermittedException"
_UNKNOWN = "org.apache.kafka.common.errors.UnknownTopicOrPartitionException"


@dataclass(frozen=True)
class DemoEnvironment:
    folder: Path
    database_url: str
    bootstrap_servers: str
    cluster: EmbeddedKafka
    service: FakeService  # the service's actuator endpoints, a stand-in on loopback
    seeded: dict[str, int]  # rows per status

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_FILE

    def env(self) -> dict[str, str]:
        """The variables that point kafkaops at this environment, and at nothing else: its own
        config file, so a ./kafkaops.yaml or a user's contexts cannot leak into the demo."""
        return {
            "KAFKAOPS_CONFIG": str(self.config_file),
            "KAFKAOPS_DATABASE_URL": self.database_url,
            "KAFKAOPS_BOOTSTRAP_SERVERS": self.bootstrap_servers,
        }


@contextmanager
def demo_environment(
    *,
    keep: Path | None = None,
    port: int | None = None,
    brokers: int = 1,
    extra_topics: dict[str, int] | None = None,
    seed: int = 7,
    now: datetime | None = None,
) -> Iterator[DemoEnvironment]:
    """Start the embedded cluster, create the table in a fresh folder and store the history.

    The folder is removed at the end unless `keep` names it; the cluster always stops.
    """
    from sqlalchemy.engine import URL

    from kafkaops.demo.cluster import EmbeddedKafka
    from kafkaops.demo.service import FakeService, health_body

    if keep is not None:
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"cannot keep the demo in {safe_text(str(keep))}: {error.strerror or error}",
                hint="name a folder you can write to, or leave --keep out",
            ) from None
        folder = keep
        _claim_files(folder)
    else:
        folder = Path(tempfile.mkdtemp(prefix="kafkaops-"))
    try:
        # Quoted as a URL: a folder named "a?b#c" keeps its file inside it.
        url = URL.create("sqlite", database=str(folder / DATABASE_FILE)).render_as_string(hide_password=False)
        topics = dict(TOPICS)
        topics.update({f"{t}.dlq": 1 for t in TOPICS if t != NO_DLQ_TOPIC})
        topics.update(extra_topics or {})
        with (
            EmbeddedKafka(brokers=brokers, topics=topics, port=port) as cluster,
            FakeService().healthy() as service,
        ):
            refuse_as_too_large(cluster)
            seeded = seed_history(url, now=now or clock.now(), rng=random.Random(seed))
            fill_dlq_topics(url, cluster.bootstrap_servers)
            pending, dlq_failed = seeded.get("PENDING", 0), seeded.get("DLQ_FAILED", 0)
            service.set_json("/actuator/health/kafka", health_body(pending=pending, dlq_failed=dlq_failed))
            environment = DemoEnvironment(folder, url, cluster.bootstrap_servers, cluster, service, seeded)
            _write_config(environment)
            yield environment
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _claim_files(folder: Path) -> None:
    """Create the demo's files empty (O_EXCL | O_NOFOLLOW) before anything is written to
    them; one that is already there is a UsageError naming it, and nothing is written."""
    names = (DATABASE_FILE, CONFIG_FILE)
    for name in names:  # all looked at first: a refusal leaves nothing behind
        if os.path.lexists(folder / name):
            raise _already_there(folder, name)
    for name in names:
        path = folder / name
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600))
        except FileExistsError:  # made since it was looked at
            raise _already_there(folder, name) from None
        except OSError as error:
            raise UsageError(
                f"cannot keep the demo in {safe_text(str(folder))}: {error.strerror or error}",
                hint="name a folder you can write to, or leave --keep out",
            ) from None


def _already_there(folder: Path, name: str) -> UsageError:
    return UsageError(
        f"--keep {safe_text(str(folder))} already holds {name}: the demo never overwrites a file",
        hint="name a new or empty folder, or move that file away",
    )


def refuse_as_too_large(cluster: EmbeddedKafka) -> None:
    """The broker refuses REFUSED_TOPIC's records as too large, as a topic created with a small
    max.message.bytes would."""
    cluster.refuse_produce(REFUSED_TOPIC, MSG_SIZE_TOO_LARGE, partitions=TOPICS[REFUSED_TOPIC])


def raise_message_limit(cluster: EmbeddedKafka) -> None:
    """REFUSED_TOPIC takes its records again, as after raising its max.message.bytes (the mock
    cluster has no topic configs: the topic is made again, which forgets the refusals)."""
    cluster.delete_topic(REFUSED_TOPIC)
    cluster.create_topic(REFUSED_TOPIC, TOPICS[REFUSED_TOPIC])


# -- a running sandbox, told to lift its injected fault from another terminal -----------------
# The sandbox writes its pid in its folder while it runs; `kafkaops sandbox --lift-fault` (run
# where the export lines point KAFKAOPS_CONFIG at that folder) leaves a request file there,
# which the sandbox's loop takes, answers by lifting the fault, and removes.
PID_FILE = "sandbox.pid"
LIFT_REQUEST = "lift-fault.request"


def announce_running(folder: Path) -> None:
    """The pid file (one a stopped sandbox left in a --keep folder is replaced; never a link)."""
    fd = os.open(folder / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")


def announce_stopped(folder: Path) -> None:
    (folder / PID_FILE).unlink(missing_ok=True)


def serve_requests(environment: DemoEnvironment) -> bool:
    """Lift the fault if another terminal asked for it; True when it did."""
    request = environment.folder / LIFT_REQUEST
    if not request.exists():
        return False
    raise_message_limit(environment.cluster)
    request.unlink(missing_ok=True)
    return True


def request_lift(config_file: str | None, *, timeout: float = 15.0) -> None:
    """Ask the sandbox whose config file is `config_file` to lift its fault, and wait until it
    has; a UsageError when no sandbox runs there."""
    import time

    hint = "run it where the export lines of a running `kafkaops sandbox` were pasted"
    if not config_file:
        raise UsageError("--lift-fault: KAFKAOPS_CONFIG names no sandbox", hint=hint)
    folder = Path(config_file).parent
    try:
        pid = int((folder / PID_FILE).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        raise UsageError(
            f"--lift-fault: no kafkaops sandbox is running in {safe_text(str(folder))}", hint=hint
        ) from None
    request = folder / LIFT_REQUEST
    try:
        _write_new(request, "lift\n")
    except FileExistsError:
        pass  # asked already: wait for the same answer
    except OSError as error:
        raise UsageError(
            f"--lift-fault: cannot ask the sandbox in {safe_text(str(folder))}: {error.strerror}"
        ) from None
    deadline = time.monotonic() + timeout
    while request.exists():
        if time.monotonic() > deadline:
            raise UsageError(f"--lift-fault: the sandbox (pid {pid}) did not answer within {timeout:g}s")
        time.sleep(0.1)


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _write_config(environment: DemoEnvironment) -> None:
    import yaml

    context = {
        "database": {"url": environment.database_url},
        "kafka": {"bootstrap.servers": environment.bootstrap_servers},
        "app": {"instances": [{"name": "casino-api", "url": environment.service.url}]},
        "status": {"state_dir": str(environment.folder / "state")},
    }
    document = {"current-context": "demo", "contexts": {"demo": context}}
    text = "# kafkaops demo: an embedded Kafka cluster and a SQLite file, gone when the demo ends.\n"
    # The file _claim_files made (or a fresh temporary folder's): never through a link.
    fd = os.open(environment.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + yaml.safe_dump(document, sort_keys=False))


def seed_history(url: str, *, now: datetime, rng: random.Random) -> dict[str, int]:
    """Store a week of failed events the way the service would, in every status: an outage
    two days ago (resolved since, some in the DLQ), a DLQ topic nobody created (DLQ_FAILED),
    and the backlog of an outage that began an hour ago (PENDING, most due now)."""
    import sqlalchemy as sa

    from kafkaops.audit.table import create_audit_table
    from kafkaops.config.settings import DatabaseSettings
    from kafkaops.db.engine import create_engine
    from kafkaops.db.schema import build_table, init_table

    settings = DatabaseSettings(url=url)
    engine = create_engine(url)
    try:
        init_table(engine, settings, id_type="bigint")
        create_audit_table(engine, settings)  # as `db init` does: the demo's requeue is journaled
        table = build_table(settings, id_type="bigint")
        rows = _history(now, rng)
        with engine.begin() as conn:
            conn.execute(sa.delete(table))
            for start in range(0, len(rows), 1000):
                conn.execute(sa.insert(table), rows[start : start + 1000])
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def fill_dlq_topics(url: str, bootstrap_servers: str) -> int:
    """Put each DLQ row's record on its topic's DLQ, as the DLQ send that made the row DLQ did
    (the kafkaops-failed-event-id header names the row), and record in the row where it went:
    the table and the DLQ topics tell one story from the start. The records in each row's
    order; the number written."""
    import sqlalchemy as sa

    from kafkaops.config.settings import DatabaseSettings
    from kafkaops.db.engine import create_engine
    from kafkaops.db.schema import OPTIONAL_COLUMNS, build_table
    from kafkaops.dlq.record import dlq_headers
    from kafkaops.kafka.client import producer
    from kafkaops.retry.publish import record_headers

    settings = DatabaseSettings(url=url)
    table = build_table(settings, id_type="bigint", optional=OPTIONAL_COLUMNS)
    c = table.c
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    c.id,
                    c.topic,
                    c.event_key,
                    c.payload,
                    c.headers,
                    c.last_error,
                    c.error_type,
                    c.retry_count,
                    c.updated_at,
                )
                .where(c.status == "DLQ")
                .order_by(c.updated_at, c.id)
            ).all()
        acked: dict[int, tuple[str, int, int]] = {}
        sender = producer({"bootstrap.servers": bootstrap_servers}, **{"linger.ms": 5})

        def report(row_id: int) -> Any:
            def on_delivery(error: Any, msg: Any) -> None:
                if error is None:
                    acked[row_id] = (msg.topic(), msg.partition(), msg.offset())

            return on_delivery

        for row in rows:
            headers = dlq_headers(
                record_headers(row.headers),
                original_topic=row.topic,
                exception_message=row.last_error or "",
                exception_fqcn=row.error_type or "",
                failed_event_id=row.id,
                retry_count=row.retry_count,
            )
            sender.produce(
                f"{row.topic}.dlq",
                value=row.payload.encode(),
                key=row.event_key.encode() if row.event_key else None,
                headers=headers,
                timestamp=_epoch_ms(row.updated_at),
                on_delivery=report(row.id),
            )
            sender.poll(0)
        sender.flush(30)
        stamps = {row.id: row.updated_at for row in rows}
        with engine.begin() as conn:
            for row_id, (topic, partition, offset) in acked.items():
                conn.execute(
                    sa.update(table)
                    .where(c.id == row_id)
                    .values(
                        dlq_topic=topic,
                        dlq_partition=partition,
                        dlq_offset=offset,
                        dlq_acked_at=stamps[row_id],
                    )
                )
    finally:
        engine.dispose()
    return len(acked)


def _epoch_ms(at: datetime) -> int:
    """When the DLQ send happened, as the record's timestamp."""
    from datetime import timezone

    return int((at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def _history(now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # Two days ago: a broker lost its replicas for 40 minutes. The retry job resolved most.
    outage = now - timedelta(days=2, hours=3)
    for _ in range(2100):
        topic = rng.choice(list(TOPICS))
        created = outage + timedelta(seconds=rng.uniform(0, 2400))
        error, error_type = rng.choice(
            [
                (_expiring(topic, rng), _TIMEOUT),
                (
                    "Messages are rejected since there are fewer in-sync replicas than required.",
                    _REPLICAS,
                ),
                ("Circuit breaker 'kafka' is OPEN and does not permit further calls", _BREAKER),
            ]
        )
        resolved = created + timedelta(minutes=rng.choice([1, 6, 21]) + rng.uniform(0, 1))
        rows.append(_row(topic, created, "RESOLVED", error, error_type, rng, retries=rng.randint(1, 3)))
        rows[-1].update(updated_at=resolved, resolved_at=resolved, next_retry_at=None)
    # Scattered over the week: records too large for the producer; the DLQ took them.
    for _ in range(140):
        topic = rng.choice(["casino.wallet.deposit.v1", "casino.player.registered.v1"])
        created = now - timedelta(days=rng.uniform(1, 7))
        size = rng.randint(1_048_600, 1_300_000)
        error = (
            f"The message is {size} bytes when serialized which is larger than 1048576, "
            "which is the value of the max.request.size configuration."
        )
        rows.append(_row(topic, created, "DLQ", error, _TOO_LARGE, rng, retries=5))
        rows[-1].update(updated_at=created + timedelta(hours=1, minutes=36), next_retry_at=None)
    # Yesterday: events of a new topic exhausted their retries, and its DLQ did not exist.
    for _ in range(14):
        created = now - timedelta(days=1, minutes=rng.uniform(0, 300))
        error = (
            f"Topic {NO_DLQ_TOPIC} not present in metadata after 60000 ms.; DLQ send to "
            f"{NO_DLQ_TOPIC}.dlq failed: Topic [{NO_DLQ_TOPIC}.dlq] not present in metadata"
        )
        rows.append(_row(NO_DLQ_TOPIC, created, "DLQ_FAILED", error, _UNKNOWN, rng, retries=5))
        rows[-1].update(updated_at=created + timedelta(hours=1, minutes=36), next_retry_at=None)
    # The last hour: the cluster has been timing out. Most of the backlog is due now; the
    # refused topic's events (too large for it) are on their last attempt.
    for _ in range(1150):
        topic = rng.choice(list(TOPICS))
        created = now - timedelta(minutes=rng.uniform(2, 65))
        retries = 4 if topic == REFUSED_TOPIC else rng.randint(0, 2)
        if topic == REFUSED_TOPIC:
            error, error_type = (
                "The request included a message larger than the max message size the server will accept.",
                _TOO_LARGE,
            )
        else:
            ms = rng.randint(30001, 30099)
            error, error_type = (
                f"Timeout after {ms} ms for id {uuid.UUID(int=rng.getrandbits(128))}",
                _TIMEOUT,
            )
        due = None if retries == 0 else created + timedelta(minutes=rng.choice([1, 5, 15]))
        if rng.random() < 0.08:
            due = now + timedelta(minutes=rng.uniform(10, 50))
        if due is not None and due > now:
            # Not due yet, and not during the story however slow the machine: a row falling due
            # between the two retry passes would change the second pass's figures.
            due = max(due, now + timedelta(minutes=10))
        rows.append(_row(topic, created, "PENDING", error, error_type, rng, retries=retries))
        rows[-1].update(next_retry_at=due)
    rows.sort(key=lambda r: r["created_at"])
    return rows


def _expiring(topic: str, rng: random.Random) -> str:
    partition = rng.randrange(TOPICS[topic])
    return (
        f"Expiring {rng.randint(1, 40)} record(s) for {topic}-{partition}:"
        f"{rng.randint(120000, 120400)} ms has passed since batch creation"
    )


def _row(
    topic: str,
    created: datetime,
    status: str,
    error: str,
    error_type: str,
    rng: random.Random,
    *,
    retries: int,
) -> dict[str, Any]:
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user = f"user-{rng.randint(10_000, 99_999)}"
    brand = rng.choice(["casino-1", "casino-7", "sportsbook-2"])
    event = {
        "eventId": event_id,
        "eventTimestamp": isoformat_utc(created, timespec="milliseconds"),
        "brandId": brand,
        "userId": user,
        "metadata": {
            "source": "casino-service",
            "version": "1.0",
            "correlationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        },
        "payload": _payload(topic, rng),
    }
    return {
        "event_id": event_id,
        "topic": topic,
        "event_key": user,
        "payload": json.dumps(event, separators=(",", ":")),
        "headers": json.dumps({"eventType": topic.split(".")[1], "brandId": brand}),
        "status": status,
        "retry_count": retries,
        "last_error": error,
        "error_type": error_type,
        "created_at": created,
        "updated_at": created,
        "next_retry_at": None,
        "resolved_at": None,
    }


def _payload(topic: str, rng: random.Random) -> dict[str, Any]:
    if "wallet" in topic:
        return {"amount": round(rng.uniform(5, 500), 2), "currency": "EUR", "method": "card"}
    if "loyalty" in topic:
        return {"points": rng.randint(10, 500), "reason": "game_win", "source": "slots"}
    if "round" in topic:
        return {"gameId": f"slot-{rng.randint(1, 40)}", "stake": 1.0, "win": round(rng.uniform(0, 5), 2)}
    return {"country": rng.choice(["MT", "DE", "SE", "GB"]), "channel": "web"}
