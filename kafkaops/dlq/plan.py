"""Before a replay acts: what it would read, where it would write, and whether it may start.

`plan()` checks the source and target and reads where the replay group stands (one admin
client, batched requests); `check_no_live_replay()` refuses a second replay of a topic while
one runs. Neither commits nor produces anything: `kafkaops.dlq.replay` does.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaopsError, NotFoundError, UsageError
from kafkaops.dlq.listing import pending_offsets, replay_group_for
from kafkaops.dlq.reading import READ_ONLY, is_record
from kafkaops.dlq.selection import Selection
from kafkaops.kafka import dlq_names
from kafkaops.kafka.errors import kafka_errors
from kafkaops.kafka.metadata import (
    check_reachable,
    committed_offsets,
    group_members,
    partition_offsets,
    topic_metadata,
)
from kafkaops.kafka.topics import is_internal_topic

if TYPE_CHECKING:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

    from kafkaops.db.connections import Connections

log = logging.getLogger(__name__)

CLIENT_ID_PREFIX = "kafkaops-replay@"
SAMPLE_RECORDS = 20  # the first records read to tell whether a topic not named like a DLQ is one
SAMPLE_SECONDS = 2.0


class ReplayConflictError(KafkaopsError):
    """Another consumer (a replay still running) is active in the replay group, or fenced us."""


@dataclass(frozen=True)
class ReplayRequest:
    source: str
    group: str | None = None
    to: str | None = None
    selection: Selection = field(default_factory=Selection)
    limit: int | None = None
    max_replays: int = 3
    rate: float | None = None  # records per second
    dry_run: bool = False
    batch_size: int = 50_000
    batch_seconds: float = 2.0  # how long one transaction collects records at most
    commit_timeout: float = 30.0  # deadline of send_offsets_to_transaction / commit / abort
    suffixes: tuple[str, ...] = dlq_names.DEFAULT_DLQ_SUFFIXES

    @property
    def group_id(self) -> str:
        return self.group or replay_group_for(self.source)

    @property
    def transactional_id(self) -> str:
        # Derived from source and group only: two replays of one topic fence each other.
        return f"kafkaops-replay:{self.group_id}:{self.source}"


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay is about to do, printed before the user confirms."""

    source: str
    group: str
    partitions: tuple[int, ...]  # every partition of the source
    target: str  # --to, the topic the DLQ name points to, or "each record's original topic"
    end: Mapping[int, int]  # high watermarks at start: the run stops there
    committed: Mapping[int, int | None]
    pending: int
    selection: str


def plan(conns: Connections, request: ReplayRequest, timeout: float = 10.0) -> ReplayPlan:
    """Check the source and target and read where the group stands; act on nothing.

    One admin client asks topics and watermarks in batched requests, whatever the number of
    partitions; a consumer that never joins the group reads its committed offsets in one
    request, as they stand: a transaction a killed run left open is not waited for (the run's
    init_transactions aborts it, and the run reads its offsets again then). Another consumer
    is made only to sample the first records of a topic not named like a DLQ."""
    suffixes = request.suffixes
    # Rejected credentials or TLS end the run here at once, with their cause (a client's
    # requests would only time out).
    check_reachable(conns.kafka_props, timeout)
    admin = conns.admin()
    try:
        layout = topic_metadata(admin, request.source, timeout, operation="Read")
    except NotFoundError as exc:
        raise UsageError(exc.message, hint="see `kafkaops dlq list` for the DLQ topics") from None
    if request.to is not None:
        check_target(admin, request.source, request.to, suffixes, timeout)
        target = request.to
    else:
        by_name = dlq_names.original_topic_by_name(request.source, suffixes)
        target = (
            f"each record's original topic (by name: {by_name})"
            if by_name
            else "each record's original topic"
        )
    marks = source_offsets(admin, request.source, [p.id for p in layout.partitions], timeout)
    if request.to is None and not dlq_names.is_dlq_topic(request.source, suffixes):
        consumer = conns.consumer(group_id=request.group_id, **READ_ONLY)
        try:
            check_looks_like_dlq(consumer, request.source, marks, suffixes, min(timeout, SAMPLE_SECONDS))
        finally:
            consumer.close()
    every = tuple(sorted(marks))
    # --partition chooses what is read at all: the other partitions stay as they are.
    marks = request.selection.chosen_partitions(request.source, marks)
    end = {p: high for p, (_, high) in marks.items()}
    props = conns.settings.require_kafka()
    # A group the principal may not describe is denied at once (committed_offsets).
    committed = committed_offsets(
        props, request.group_id, request.source, timeout, partitions=every, operation="Read"
    )
    return ReplayPlan(
        source=request.source,
        group=request.group_id,
        partitions=every,
        target=target,
        end=end,
        committed=committed,
        pending=pending_offsets(marks, committed),
        selection=request.selection.describe(),
    )


def source_offsets(
    admin: AdminClient, source: str, partitions: Iterable[int], timeout: float, *, high: bool = True
) -> dict[int, tuple[int, int]]:
    """``{partition: (low, high)}`` of these partitions of ``source``: one batched ListOffsets
    request per side (`partition_offsets`), never through the fetching consumer."""
    with kafka_errors(admin, f"read the offsets of {source!r}"):
        found = partition_offsets(admin, {source: sorted(partitions)}, timeout, high=high)
    return found[source]


def check_looks_like_dlq(
    consumer: Consumer,
    source: str,
    marks: Mapping[int, tuple[int, int]],
    suffixes: Iterable[str],
    timeout: float,
) -> None:
    """Refuse, before anything is planned, a replay of a topic that is no DLQ: its name has no
    DLQ suffix and none of its first records (up to SAMPLE_RECORDS, read for at most `timeout`
    seconds) says where it came from. An empty topic passes: there is nothing to replay."""
    from confluent_kafka import TopicPartition

    from kafkaops.dlq.record import header_values, original_topic_of, readable_headers

    starts = [TopicPartition(source, p, low) for p, (low, high) in sorted(marks.items()) if high > low]
    if not starts:
        return
    names = tuple(suffixes)
    read = 0
    with kafka_errors(consumer, f"read the first records of {source!r}"):
        consumer.assign(starts)
        try:
            deadline = time.monotonic() + timeout
            while read < SAMPLE_RECORDS and (left := deadline - time.monotonic()) > 0:
                msg = consumer.poll(min(left, 0.5))
                if msg is None or not is_record(msg, consumer):
                    continue
                read += 1
                headers = readable_headers(msg)
                if headers is None or original_topic_of(header_values(headers), source, names):
                    return  # a DLQ record (or headers no producer but a service's would write)
        finally:
            consumer.unassign()
    raise UsageError(
        f"refusing to replay {source!r}: it is not a dead-letter topic (its name has no DLQ "
        f"suffix, {', '.join(names)}, and its first {read} record(s) carry no original-topic header)",
        hint="to copy its records anyway, name the target with --to",
    )


def check_target(
    client: Mapping[str, Any] | Consumer | AdminClient,
    source: str,
    target: str,
    suffixes: tuple[str, ...],
    timeout: float,
) -> None:
    if target == source:
        raise UsageError(
            f"refusing to replay {source!r} into itself",
            hint="replay into the original topic (the default) or name one with --to",
        )
    if dlq_names.is_dlq_topic(target, suffixes):
        raise UsageError(
            f"refusing to replay into {target!r}: it is a dead-letter topic",
            hint="replay into the original topic (the default) or name one with --to",
        )
    if is_internal_topic(target):
        raise UsageError(
            f"refusing to replay into {target!r}: it is an internal topic",
            hint="replay into the original topic (the default) or name one with --to",
        )
    try:
        topic_metadata(client, target, timeout, operation="Write")
    except NotFoundError as exc:
        raise UsageError(exc.message, hint="create it first, or name another with --to") from None


def check_no_live_replay(
    props_or_admin: Mapping[str, Any] | AdminClient, group: str, timeout: float = 10.0
) -> None:
    """Refuse up front when the replay group has live members: another replay is running.

    A member left by a replay on this host whose process is gone (killed) does not count: the
    new run joins, and the group drops the dead member when its session times out (10 s).
    """
    members = group_members(props_or_admin, group, timeout)
    if members is None:
        log.info("the cluster cannot describe group %r: a concurrent replay is only fenced", group)
        return
    alive = [m for m in members if not _is_dead_local_replay(m.client_id)]
    if alive:
        who = alive[0]
        raise ReplayConflictError(
            f"consumer group {group!r} has {len(alive)} live member(s) "
            f"(client {who.client_id!r} on {who.host.lstrip('/')}): a replay of this topic is running",
            hint="wait for it to finish (a killed replay's membership expires within 10s), "
            "or replay under another --group",
        )


def client_id() -> str:
    return f"{CLIENT_ID_PREFIX}{socket.gethostname()}/{os.getpid()}"


def _is_dead_local_replay(client_id: str) -> bool:
    if not client_id.startswith(CLIENT_ID_PREFIX):
        return False
    host, _, pid = client_id[len(CLIENT_ID_PREFIX) :].rpartition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
