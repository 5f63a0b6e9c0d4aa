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

So before a run first writes to a target, it reads what lies between each partition's last
stable offset and its end; a record replayed from this source there, still open after a grace
period, stops the run before it writes to that target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaAuthorizationError, KafkaClientError
from kafkaops.common.escape import safe_text
from kafkaops.dlq.reading import is_eof, is_record, read_consumer
from kafkaops.dlq.record import REPLAYED_FROM
from kafkaops.kafka.errors import kafka_errors
from kafkaops.kafka.metadata import open_ranges

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

# Records read past a partition's last stable offset, at most, looking for this source's.
READ_AT_MOST = 10_000


def check_none_left_open(
    admin: AdminClient, props: Mapping[str, Any], target: str, source: str, *, grace: float, timeout: float
) -> None:
    """Raise when a partition of ``target`` holds, in a transaction still open ``grace``
    seconds on, a record replayed from ``source``: this run's commit could make it visible a
    second time."""
    with kafka_errors(admin, f"read the offsets of {target!r}"):
        ranges = open_ranges(admin, target, timeout)
    if not ranges:
        return
    deadline = time.monotonic() + grace
    try:
        found = _replayed_within(props, target, ranges, source, timeout)
    except KafkaAuthorizationError:
        # A replay needs Write on its targets, not Read: whose records are open there cannot be
        # read. What was open must close within the grace, else the run goes on and says so.
        _wait_closed_or_warn(admin, target, source, ranges, deadline, timeout)
        return
    while found and time.monotonic() < deadline:
        time.sleep(0.25)
        with kafka_errors(admin, f"read the offsets of {target!r}"):
            ranges = open_ranges(admin, target, timeout)
        # Closed (committed or aborted) once the stable offset has passed the record.
        found = {p: offset for p, offset in found.items() if p in ranges and ranges[p][0] <= offset}
    if not found:
        return
    partition, offset = min(found.items())
    start = ranges[partition][0]
    shown, origin = safe_text(target), safe_text(source)
    raise KafkaClientError(
        f"partition {partition} of {shown!r} holds records replayed from {origin!r} in a transaction "
        f"that is still open (from offset {start}; the first of them at {offset}): a replay that could "
        "not abort left it, and this run's commit could make them visible a second time; "
        f"nothing was written to {shown!r}",
        hint=(
            f"abort that transaction, then rerun: kafka-transactions.sh --bootstrap-server <brokers> abort "
            f"--topic {shown} --partition {partition} --start-offset {start}"
        ),
    )


def _wait_closed_or_warn(
    admin: AdminClient,
    target: str,
    source: str,
    ranges: Mapping[int, tuple[int, int]],
    deadline: float,
    timeout: float,
) -> None:
    """Wait until every transaction open in ``ranges`` has closed (the stable offset has reached
    the end seen then); one still open at ``deadline`` is warned about, never refused: it is
    most likely another application's."""
    still = dict(ranges)
    while still and time.monotonic() < deadline:
        time.sleep(0.25)
        with kafka_errors(admin, f"read the offsets of {target!r}"):
            now = open_ranges(admin, target, timeout)
        still = {p: (start, end) for p, (start, end) in still.items() if p in now and now[p][0] < end}
    if still:
        partition, (start, _) = min(still.items())
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


def _replayed_within(
    props: Mapping[str, Any], target: str, ranges: Mapping[int, tuple[int, int]], source: str, timeout: float
) -> dict[int, int]:
    """``{partition: offset}`` of the first record replayed from ``source`` between each
    partition's last stable offset and its end (read_uncommitted, at most READ_AT_MOST each)."""
    from confluent_kafka import TopicPartition

    mark = f"{source}/".encode()
    found: dict[int, int] = {}
    waiting = {p: min(end, start + READ_AT_MOST) for p, (start, end) in ranges.items()}
    consumer = read_consumer(props, **{"isolation.level": "read_uncommitted"})
    try:
        with kafka_errors(consumer, f"read the open transactions of {target!r}"):
            consumer.assign([TopicPartition(target, p, ranges[p][0]) for p in waiting])
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                for msg in consumer.consume(500, timeout=0.2):
                    partition: int = msg.partition()  # type: ignore[assignment]
                    if partition not in waiting:
                        continue
                    if is_eof(msg):
                        del waiting[partition]
                        continue
                    if not is_record(msg, consumer):
                        continue
                    offset: int = msg.offset()  # type: ignore[assignment]
                    origin = dict(msg.headers() or []).get(REPLAYED_FROM)  # the last one
                    if isinstance(origin, bytes) and origin.startswith(mark):
                        found[partition] = offset
                        del waiting[partition]
                    elif offset + 1 >= waiting[partition]:
                        del waiting[partition]
    finally:
        consumer.close()
    return found
