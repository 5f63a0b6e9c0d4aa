"""Records of this source a replay left in a transaction that never closed (a hanging one).

A replay whose abort cannot reach the brokers (they froze or fell away mid-transaction) exits
with its last transaction open. The coordinator aborts it (on timeout, or at the next run's
init_transactions), writing an abort marker on every partition it wrote to. Not always: Kafka
4.4 skips the markers of a partition that has no leader at that moment ("Couldn't find leader
endpoint ... likely deleted already"), as after a broker froze past its session and its
controller fenced it. The partition then keeps those records open, its last stable offset at
the first of them, and the next commit of the same producer id there commits them with its
own (librdkafka speaks transactions protocol 1, whose epochs do not split them): replayed
twice, as the frozen-broker test showed about one run in ten under load.

So before a run first writes to a target, and after it aborts a transaction, it looks at the
record at each partition's last stable offset: the first record of the earliest transaction
still open there. One replayed from this source that is still there after a grace period
stops the run. Another producer's open transaction does not (whatever lies behind it cannot
be told apart, committed or not, and the usual one is an application's own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaAuthorizationError, KafkaClientError
from kafkaops.common.escape import safe_text
from kafkaops.dlq.reading import is_eof, is_record, read_consumer
from kafkaops.dlq.record import header_values, readable_headers, replayed_from_topic
from kafkaops.kafka.errors import kafka_errors
from kafkaops.kafka.metadata import open_transaction_starts

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)


def check_none_left_open(
    admin: AdminClient,
    props: Mapping[str, Any],
    target: str,
    source: str,
    *,
    grace: float,
    timeout: float,
    ours: bool = False,
) -> None:
    """Raise when a transaction holding records replayed from ``source`` is still the earliest
    open one on a partition of ``target`` ``grace`` seconds on: this run's commit could make
    them visible a second time. ``ours``: asked after this run aborted a transaction."""
    deadline = time.monotonic() + grace
    starts = _stable_offsets(admin, target, timeout)
    if not starts:
        return
    try:
        held = _held_by(props, target, source, starts, timeout)
        while held and time.monotonic() < deadline:
            time.sleep(0.25)
            now = _stable_offsets(admin, target, timeout)
            moved = {p: now[p] for p in held if p in now and now[p] != held[p]}
            held = {p: offset for p, offset in held.items() if now.get(p) == offset}
            held.update(_held_by(props, target, source, moved, timeout) if moved else {})
    except KafkaAuthorizationError:
        # A replay needs Write on its targets, not Read: whose records are open there cannot be
        # read. What was open must close within the grace, else the run goes on and says so.
        _wait_closed_or_warn(admin, target, source, starts, deadline, timeout)
        return
    if not held:
        return
    partition, start = min(held.items())
    shown, origin = safe_text(target), safe_text(source)
    raise KafkaClientError(
        f"partition {partition} of {shown!r} holds records replayed from {origin!r} in a transaction "
        f"that is still open (from offset {start}): "
        + (
            "this run aborted it and the brokers did not close it, so its next commit could make "
            "them visible a second time; the run stopped (what it committed before stays committed)"
            if ours
            else "a replay that could not abort left it, and this run's commit could make them visible "
            f"a second time; nothing was written to {shown!r}"
        ),
        hint=(
            f"abort that transaction, then rerun: kafka-transactions.sh --bootstrap-server <brokers> abort "
            f"--topic {shown} --partition {partition} --start-offset {start}"
        ),
    )


def _stable_offsets(admin: AdminClient, target: str, timeout: float) -> dict[int, int]:
    """``{partition: last stable offset}`` of the partitions of ``target`` where a transaction
    is open."""
    with kafka_errors(admin, f"read the offsets of {target!r}"):
        return open_transaction_starts(admin, target, timeout)


def _wait_closed_or_warn(
    admin: AdminClient, target: str, source: str, starts: Mapping[int, int], deadline: float, timeout: float
) -> None:
    """Wait until every transaction open at ``starts`` has closed (the stable offset moved);
    one still open at ``deadline`` is warned about, never refused: most likely another
    application's."""
    still = dict(starts)
    while still and time.monotonic() < deadline:
        time.sleep(0.25)
        now = _stable_offsets(admin, target, timeout)
        still = {p: start for p, start in still.items() if now.get(p) == start}
    if still:
        partition, start = min(still.items())
        log.warning(
            "a transaction is open on partition %d of %r from offset %d, and this principal may not read "
            "%r to tell whose: if an earlier replay of %r was cut off mid-transaction, records of it there "
            "could become visible a second time (kafka-transactions.sh --bootstrap-server <brokers> "
            "find-hanging --topic %s tells)",
            partition,
            safe_text(target),
            start,
            safe_text(target),
            safe_text(source),
            safe_text(target),
        )


def _held_by(
    props: Mapping[str, Any], target: str, source: str, starts: Mapping[int, int], timeout: float
) -> dict[int, int]:
    """The partitions (``{partition: offset}``) whose record at ``starts`` (a last stable
    offset: the first record of the earliest open transaction) was replayed from ``source``."""
    from confluent_kafka import TopicPartition

    held: dict[int, int] = {}
    waiting = dict(starts)
    consumer = read_consumer(props, **{"isolation.level": "read_uncommitted"})
    try:
        with kafka_errors(consumer, f"read the open transactions of {target!r}"):
            consumer.assign([TopicPartition(target, p, offset) for p, offset in waiting.items()])
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                for msg in consumer.consume(100, timeout=0.2):
                    partition: int = msg.partition()  # type: ignore[assignment]
                    if partition not in waiting or is_eof(msg) or not is_record(msg, consumer):
                        continue
                    # A foreign record's header name may not be UTF-8: unreadable is not ours.
                    headers = readable_headers(msg)
                    if headers and replayed_from_topic(header_values(headers), source):
                        held[partition] = waiting[partition]
                    del waiting[partition]
    finally:
        consumer.close()
    return held
