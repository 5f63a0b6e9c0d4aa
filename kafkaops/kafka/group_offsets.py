"""What many consumer groups committed, asked all at once (ListConsumerGroupOffsets, every
request in flight together) in a child process.

librdkafka 2.16's admin client crashes the process (SIGSEGV, librdkafka #5040) when a group
coordinator answers ListConsumerGroupOffsets NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE, as
a broker restarted or a coordinator moved a moment ago does: exactly when an operator runs `dlq
list` or `lag`. The request is therefore made by a child Python process (`python -m` this
module: properties on its standard input, answers as JSON on its standard output), and a child
killed by a signal is started again after a pause until the deadline. The child asks again a
group whose coordinator answered it is loading or moving. A consumer's committed() does not
crash, but asks one group per client and needs every partition named: `lag` over hundreds of
groups took several times as long that way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import KafkaopsError, KafkaUnavailableError
from kafkaops.common.escape import safe_text
from kafkaops.common.secrets import is_secret_key, redact

if TYPE_CHECKING:
    from confluent_kafka import KafkaError

_MODULE = "kafkaops.kafka.group_offsets"
# The child runs where kafkaops is installed, never from the working directory, and (3.11+)
# without the working directory on its path: a `confluent_kafka.py` lying there is not code.
_CHILD_CWD = str(Path(__file__).resolve().parents[2])
_PAUSE = 0.2  # before starting again a child the client library crashed
_LATE = 5.0  # beyond the deadline, what the child gets to end by itself before it is killed

# (topic, partition) asked of a group; None asks every partition it committed on.
Partitions = Sequence[tuple[str, int]] | None


@dataclass
class GroupOffsets:
    """One group's answer: its committed offsets (-1 where it has none) and their errors, or
    the error of the whole request, or that it did not come in time."""

    offsets: list[tuple[str, int, int]] = field(default_factory=list)
    partition_errors: dict[tuple[str, int], KafkaError] = field(default_factory=dict)
    error: KafkaError | None = None
    timed_out: bool = False


def groups_committed_offsets(
    props: Mapping[str, Any], groups: Mapping[str, Partitions], timeout: float
) -> dict[str, GroupOffsets]:
    """Every group's committed offsets (the partitions named, or all of them), within
    `timeout`. Raises KafkaUnavailableError when the client library crashed on every try."""
    if not groups:
        return {}
    deadline = time.monotonic() + timeout
    plain = {k: v for k, v in props.items() if isinstance(v, str | int | float | bool)}
    crashes = 0
    while True:
        left = max(0.5, deadline - time.monotonic())
        request = {
            "props": plain,
            "groups": {g: None if p is None else [list(tp) for tp in p] for g, p in groups.items()},
            "timeout": left,
        }
        code, out, err = _run_child(json.dumps(request), left + _LATE)
        if code >= 0:
            break
        crashes += 1  # killed by a signal: librdkafka's crash on a moving coordinator
        if time.monotonic() + _PAUSE >= deadline:
            raise KafkaUnavailableError(
                f"the coordinators of {len(groups)} consumer group(s) kept moving for {timeout:g}s "
                f"(the Kafka client crashed reading their offsets {crashes} time(s))",
                hint="a broker is restarting or the group coordinators are moving: ask again in a moment",
            )
        time.sleep(_PAUSE)
    if code != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        secrets = [str(v) for k, v in plain.items() if is_secret_key(k)]
        raise KafkaopsError(
            f"reading the consumer groups' offsets failed: {safe_text(redact(last, secrets))}"
        )
    return {group: _answer(found) for group, found in json.loads(out).items()}


def _run_child(request: str, limit: float) -> tuple[int, str, str]:
    argv = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", _MODULE]
    child = subprocess.Popen(
        argv,
        cwd=_CHILD_CWD,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.communicate(request, timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise KafkaUnavailableError(
            f"the consumer groups' offsets did not arrive within {limit:g}s"
        ) from None
    except BaseException:  # Ctrl-C: the child goes with the command
        child.kill()
        child.communicate()
        raise
    return child.returncode, out, err


def _answer(found: Mapping[str, Any]) -> GroupOffsets:
    answer = GroupOffsets(timed_out=bool(found.get("timed_out")))
    if found.get("error") is not None:
        answer.error = _error(found["error"])
    for topic, partition, offset, error in found.get("offsets") or ():
        answer.offsets.append((topic, partition, offset))
        if error is not None:
            answer.partition_errors[(topic, partition)] = _error(error)
    return answer


def _error(fields: Sequence[Any]) -> KafkaError:
    from confluent_kafka import KafkaError

    code, reason, retriable, fatal = fields
    return KafkaError(code, reason, fatal=fatal, retriable=retriable)


# -- the child ---------------------------------------------------------------------------------


def _serve() -> None:
    """Read the request from standard input, ask, write the answers to standard output."""
    request = json.loads(sys.stdin.read())
    answers = _ask(request["props"], request["groups"], float(request["timeout"]))
    sys.stdout.write(json.dumps(answers))


def _ask(props: Mapping[str, Any], groups: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

    from kafkaops.kafka.client import admin, kafka_error_of
    from kafkaops.kafka.metadata import SETTLE_PAUSE, asks_again

    deadline = time.monotonic() + timeout
    client = admin(props)

    def send(group: str) -> Any:
        named = groups[group]
        wanted = None if named is None else [TopicPartition(t, p) for t, p in named]
        left = max(0.1, deadline - time.monotonic())
        return client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, wanted)], request_timeout=left
        )[group]

    answers: dict[str, Any] = {}
    futures: dict[str, Any] = {}
    for group in groups:
        try:
            futures[group] = send(group)
        except KafkaException as exc:
            answers[group] = {"error": _fields(kafka_error_of(exc))}
    for group, future in futures.items():
        while True:
            try:
                found = future.result(timeout=max(0.01, deadline - time.monotonic()))
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and asks_again(error) and time.monotonic() + SETTLE_PAUSE < deadline:
                    time.sleep(SETTLE_PAUSE)  # a coordinator loading or moving: asked again
                    future = send(group)
                    continue
                answers[group] = {"error": _fields(error)}
            except TimeoutError:
                answers[group] = {"timed_out": True}
            else:
                answers[group] = {
                    "offsets": [
                        [tp.topic, tp.partition, tp.offset, None if tp.error is None else _fields(tp.error)]
                        for tp in found.topic_partitions or ()
                    ]
                }
            break
    return answers


def _fields(error: Any) -> list[Any]:
    if error is None:
        return [-1, "unknown error", False, False]  # librdkafka's _UNKNOWN
    return [error.code(), error.str(), bool(error.retriable()), bool(error.fatal())]


if __name__ == "__main__":
    _serve()
