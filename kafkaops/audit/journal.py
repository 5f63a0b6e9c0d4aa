"""Writing the journal: an entry opened before a command acts (its intent), brought up to date
in the same transaction as each batch it commits, and closed with its outcome when it ends.

An entry whose intent cannot be written stops the command before it acts (AuditError, exit 1),
unless `audit.required: false`: then it acts, and the reasons are returned as warnings. The
ids a command changed are kept bounded (`SHOWN_IDS`), with the SHA-256 of the whole list: each
id as text and a newline, in the order they were changed (a purge's archive has them in that
order, so the ids of its rows, one per line, give the same digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from kafkaops import __version__
from kafkaops.audit.table import NAME, audit_table
from kafkaops.common import clock
from kafkaops.common.errors import AuditError, KafkaopsError
from kafkaops.common.escape import safe_text
from kafkaops.common.filelock import open_nofollow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kafkaops.config.settings import Settings
    from kafkaops.db.connections import Connections

SHOWN_IDS = 1_000
HINT = (
    "create the table with `kafkaops db init` (and let this user write it), fix audit.file or "
    "audit.topic, or set audit.required: false to act without a record"
)


def stamp() -> str:
    """Now, as the journal writes times: ISO 8601 UTC text, microseconds, `Z`."""
    return clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Entry:
    """One command's entry. `batch` and `committed` make it a BatchWitness of the db actions;
    `note` adds details; `close` writes the outcome. `warnings`: what the command should say."""

    def __init__(self, conns: Connections, settings: Settings, record: dict[str, Any]) -> None:
        self.conns = conns
        self.table = audit_table(settings.database)
        self.file = settings.audit.file
        self.topic = settings.audit.topic
        self.required = settings.audit.required
        self.record = record
        self.id: int | None = None
        self.details: dict[str, Any] = {}
        self.rows = 0
        self.warnings: list[str] = []
        self._started = time.monotonic()
        self._hash = hashlib.sha256()
        self._shown: list[str] = []
        self._pending: tuple[Any, list[str], int] | None = None
        self._closed = False
        self._witnessed = False  # batches recorded in the table: it, not this process, knows the rows
        self._producer: Any = None  # the journal topic's, made when first needed

    @property
    def enabled(self) -> bool:
        """Whether the table holds this entry (batches are recorded with their transaction)."""
        return self.id is not None

    # -- intent ------------------------------------------------------------------------------

    def open(self) -> None:
        problems: list[str] = []
        if not self.conns.settings.database.url:
            # No database in this context (a Kafka-only one: dlq replay, dlq ensure): no table to
            # keep the journal in; audit.file is the journal then.
            if self.file is None and self.topic is None:
                self.warnings.append(
                    "no audit record: this context has no database for the journal table, no "
                    "audit.file and no audit.topic"
                )
            else:
                self._open_sinks(problems)
            self._settle(problems)
            return
        reached = False
        try:
            with self.conns.begin() as conn:
                reached = True
                result = conn.execute(insert(self.table).values(**self._row(), rows=0, details="{}"))
                self.id = int((result.inserted_primary_key or [0])[0])
        except KafkaopsError as error:
            if not reached and self.required and self.file is None and self.topic is None:
                raise  # no database to act on either (unreachable, not configured): that is the error
            problems.append(f"table {NAME}: {error.message}")
        self._open_sinks(problems)
        self._settle(problems)

    def _open_sinks(self, problems: list[str]) -> None:
        """The intent in the journal's file and topic, when configured."""
        intent = {"entry": self.id, "event": "intent", **self._row()}
        if self.file is not None:
            try:
                self._append(intent)
            except (OSError, KafkaopsError) as error:
                problems.append(f"file {safe_text(str(self.file))}: {_why(error)}")
        if self.topic is not None:
            try:
                self._publish(intent)
            except KafkaopsError as error:
                problems.append(f"topic {self.topic}: {error.message}")

    def _settle(self, problems: list[str]) -> None:
        """Fail closed on what could not be written, or (audit.required: false) say it."""
        if not problems:
            return
        if self.required:
            if self.id is not None:
                self._finish(f"failed: {problems[0]}", 1, quiet=True)
            raise AuditError(
                f"cannot write the audit journal ({'; '.join(problems)}): nothing was done", hint=HINT
            )
        self.warnings += [f"acting without an audit record: {p} (audit.required: false)" for p in problems]

    # -- while acting ---------------------------------------------------------------------------

    def note(self, **details: Any) -> None:
        self.details.update(details)

    def batch(self, conn: Connection, ids: Sequence[Any]) -> None:
        """Inside a batch's transaction: the entry as it will be once the batch commits."""
        digest = self._hash.copy()
        for i in ids:
            digest.update(f"{i}\n".encode())
        shown = self._shown + [str(i) for i in ids[: max(0, SHOWN_IDS - len(self._shown))]]
        self._pending = (digest, shown, len(ids))
        self._witnessed = True
        if self.id is not None:
            values = {
                "rows": self.rows + len(ids),
                "details": self._details(digest, shown, self.rows + len(ids)),
            }
            conn.execute(update(self.table).where(self.table.c.id == self.id).values(**values))

    def committed(self) -> None:
        if self._pending is not None:
            self._hash, self._shown, n = self._pending
            self.rows += n
            self._pending = None

    # -- outcome --------------------------------------------------------------------------------

    def close(self, outcome: str, exit_code: int) -> None:
        if not self._closed:
            self._finish(outcome, exit_code, quiet=False)

    def _finish(self, outcome: str, exit_code: int, *, quiet: bool) -> None:
        self._closed = True
        self._pending = None  # a batch whose commit did not happen
        ended = {
            "ended_at": stamp(),
            "outcome": outcome[:2000],
            "exit_code": int(exit_code),
            "duration_ms": int((time.monotonic() - self._started) * 1000),
            "rows": self.rows,
            "details": self._details(self._hash, self._shown, self.rows),
        }
        if self.id is not None:
            try:
                with self.conns.begin() as conn:
                    ended.update(self._committed(conn))
                    conn.execute(update(self.table).where(self.table.c.id == self.id).values(**ended))
            except KafkaopsError as error:
                if not quiet:
                    self.warnings.append(f"the outcome was not written to the audit journal: {error.message}")
        outcome_doc = {"entry": self.id, "event": "outcome", **self._row(), **ended}
        if self.file is not None and not quiet:
            try:
                self._append(outcome_doc)
            except (OSError, KafkaopsError) as error:
                self.warnings.append(
                    f"the outcome was not written to {safe_text(str(self.file))}: {_why(error)}"
                )
        if self.topic is not None and not quiet:
            try:
                self._publish(outcome_doc)
            except KafkaopsError as error:
                self.warnings.append(f"the outcome was not written to topic {self.topic}: {error.message}")

    def count(self, rows: int) -> None:
        """The rows a command without batches changed (a retry pass), said when it ends."""
        self.rows = rows

    def _committed(self, conn: Connection) -> dict[str, Any]:
        """The rows and ids as the table has them: what committed batches wrote, which a stop
        between a commit and `committed()` leaves this process not knowing."""
        if not self._witnessed:
            return {}
        row = conn.execute(
            select(self.table.c.rows, self.table.c.details).where(self.table.c.id == self.id)
        ).one()
        stored = json.loads(row.details or "{}")
        ids = {k: stored[k] for k in ("ids", "ids_total", "ids_sha256") if k in stored}
        return {"rows": int(row.rows), "details": json.dumps({**self.details, **ids}, default=str)}

    # -- shapes -------------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        return {**self.record, "selection": json.dumps(self.record["selection"], default=str)}

    def _details(self, digest: Any, shown: list[str], total: int) -> str:
        ids = {"ids": shown, "ids_total": total, "ids_sha256": digest.hexdigest()} if total or shown else {}
        return json.dumps({**self.details, **ids}, default=str)

    def _append(self, doc: Mapping[str, Any]) -> None:
        """One line at the end of the journal file, on disk when this returns."""
        path = Path(self.file or "")
        fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            line = json.dumps(dict(doc), default=str, ensure_ascii=False) + "\n"
            data = memoryview(line.encode("utf-8", "backslashreplace"))
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _publish(self, doc: Mapping[str, Any]) -> None:
        """One record on the journal topic (keyed by the command's start and actor, so an
        entry's intent and outcome share a partition), acknowledged by the cluster (acks=all)
        when this returns."""
        from kafkaops.common.errors import KafkaUnavailableError, NotFoundError
        from kafkaops.kafka.errors import kafka_errors, translate_error

        if self._producer is None:
            self._producer = self.conns.producer(
                acks="all", message_timeout_ms=int(_TOPIC_WAIT * 1000), allow_auto_create_topics=False
            )
        producer = self._producer
        failures: list[Any] = []

        def delivered(error: Any, _msg: Any) -> None:
            if error is not None:
                failures.append(error)

        key = f"{self.record['started_at']} {self.record['actor']}".encode("utf-8", "backslashreplace")
        value = json.dumps(dict(doc), default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")
        with kafka_errors(producer, f"write to {self.topic}"):
            producer.produce(self.topic, value=value, key=key, on_delivery=delivered)
        unsent = producer.flush(_TOPIC_WAIT + 1)
        if not unsent and not failures:
            return
        # librdkafka waits for a topic that does not exist (never created here) until the
        # message times out: say which it was.
        missing = False
        with suppress(Exception):  # the metadata cannot tell: the failure says what it can
            found = producer.list_topics(self.topic, timeout=2).topics.get(self.topic)
            missing = (
                found is not None
                and found.error is not None
                and found.error.name() == "UNKNOWN_TOPIC_OR_PART"
            )
        if missing:
            raise NotFoundError("it does not exist (kafkaops never creates it)")
        if failures:
            raise translate_error(failures[0], producer, action=f"write to {self.topic}")
        raise KafkaUnavailableError(f"not acknowledged within {_TOPIC_WAIT:g}s")


# How long the journal topic may take to acknowledge a record (the command waits for it).
_TOPIC_WAIT = 5.0


def _why(error: Exception) -> str:
    if isinstance(error, KafkaopsError):
        return error.message
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def open_entry(
    conns: Connections, settings: Settings, *, command: str, command_line: str, selection: Any, actor: str
) -> Entry:
    """The intent, written (table, and file when configured) before the command acts."""
    record = {
        "started_at": stamp(),
        "actor": actor,
        "context": settings.context,
        "version": __version__,
        "command": command,
        "command_line": command_line,
        "selection": selection,
    }
    entry = Entry(conns, settings, record)
    entry.open()
    return entry
