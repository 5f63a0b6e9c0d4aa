"""`kafkaops demo`: the runbook walked through with the real commands, on an embedded Kafka
cluster and a SQLite file, with nothing installed and nothing left behind."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kafkaops.cli.gate import no_writes
from kafkaops.cli.state import output
from kafkaops.common.errors import KafkaopsError

if TYPE_CHECKING:
    from kafkaops.cli.output import Output
    from kafkaops.demo.story import DemoEnvironment


class DemoFailed(KafkaopsError):
    """A step of the demo exited as it should not have: a bug to report, not a user error."""


@dataclass(frozen=True)
class Step:
    """One thing an operator would do: what it is for, then the command line they would type."""

    says: str
    argv: tuple[str, ...] = ()
    action: Callable[[DemoEnvironment], None] | None = None  # done to the cluster, not typed
    exits: tuple[int, ...] = (0,)  # what the command may exit with in this story


def steps() -> list[Step]:
    from kafkaops.demo import story as demo

    refused_dlq = f"{demo.REFUSED_TOPIC}.dlq"

    def raise_limit(env: DemoEnvironment) -> None:
        demo.raise_message_limit(env.cluster)

    def create_missing_dlq(env: DemoEnvironment) -> None:
        env.cluster.create_topic(f"{demo.NO_DLQ_TOPIC}.dlq", 1)

    return [
        Step("Paged at 3 a.m.: one look at the whole pipeline.", ("status",), exits=(2,)),
        Step("What failed, by status (worst first)?", ("failed",)),
        Step(
            "Why? One group per kind of error, numbers and ids folded.",
            ("failed", "--group-by", "error_signature"),
        ),
        Step(
            "The cluster is back: run one retry pass, as cron would. Most of the backlog resolves; "
            f"{demo.REFUSED_TOPIC} still refuses its records as too large (its max.message.bytes "
            "is smaller than they are), so its events, on their last attempt, go to its DLQ.",
            ("retry",),
        ),
        Step("Which dead-letter topics hold records, and where did they come from?", ("dlq", "list")),
        Step("Read the newest records of one of them.", ("dlq", "tail", refused_dlq, "-n", "3")),
        Step(f"The max.message.bytes of {demo.REFUSED_TOPIC} is raised on the broker.", action=raise_limit),
        Step(
            "Replay the DLQ to its original topic, exactly once; the rows its records name become RESOLVED.",
            ("dlq", "replay", refused_dlq, "--yes"),
        ),
        Step(
            "DLQ_FAILED events are effectively lost until someone acts: which are they?",
            ("failed", "list", "--status", "DLQ_FAILED", "--limit", "5"),
        ),
        Step(
            f"Their DLQ topic, {demo.NO_DLQ_TOPIC}.dlq, never existed: it is created now.",
            action=create_missing_dlq,
        ),
        Step(
            "Requeue them, and let the next pass publish them.",
            ("failed", "requeue", "--status", "DLQ_FAILED", "--yes"),
        ),
        Step("", ("retry",)),
        Step("And one more look.", ("status",), exits=(0, 1)),
    ]


@no_writes
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the SQLite file and config in this folder instead of a temporary one removed "
            "at the end. [default: a temporary folder]",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    step: Annotated[
        bool, typer.Option("--step", help="Pause before each step until Enter is pressed (on a terminal).")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour, even on a terminal (as NO_COLOR=1 does).")
    ] = False,
) -> None:
    """Walk through the runbook with the real commands, on an embedded Kafka and a SQLite file.

    Seeds a week of failed events in every status (an old outage, records too large, a DLQ topic
    nobody created, and the backlog of an outage that just ended), then runs status, failed,
    retry, dlq list/tail/replay, requeue and status again, each shown as the line you would type,
    then its real output. Nothing to install; nothing is written outside the temporary folder.

    \b
    Example:
      kafkaops demo --step
    """
    from kafkaops.demo.story import demo_environment

    out = output(None)
    color = not no_color and "NO_COLOR" not in os.environ and out.is_terminal
    unexpected: list[str] = []
    with demo_environment(keep=keep) as env:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(env.seeded.items()))
        _say(
            out,
            f"Embedded Kafka at {env.bootstrap_servers}; {counts} failed events in {env.database_url}",
            color,
        )
        for item in steps():
            if item.says:
                _say(out, item.says, color)
            if item.action is not None:
                item.action(env)
                continue
            if step and sys.stdin.isatty():
                input("  (Enter to run it) ")
            code = _run(out, env, item.argv, color)
            if code not in item.exits:
                unexpected.append(f"kafkaops {shlex.join(item.argv)} exited {code}")
        where = f"kept in {keep}" if keep is not None else "removed"
        _say(
            out,
            f"Done: the cluster stopped and the demo folder is {where}. Point kafkaops at your own "
            "database and brokers: docs/configuration.md. To try every command by hand on the same "
            "environment, next: kafkaops sandbox",
            color,
        )
    if unexpected:
        raise DemoFailed("the demo did not go as it should: " + "; ".join(unexpected))


def _say(out: Output, text: str, color: bool) -> None:
    out.text(f"\n\x1b[1m# {text}\x1b[0m\n" if color else f"\n# {text}\n")


def _run(out: Output, env: DemoEnvironment, argv: tuple[str, ...], color: bool) -> int:
    line = f"$ kafkaops {shlex.join(argv)}"
    out.text((f"\x1b[36m{line}\x1b[0m" if color else line) + "\n")
    child = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    child.update(env.env())
    if not color:
        child["NO_COLOR"] = "1"
    # Messages and hints are part of the story: the child's stderr joins its stdout.
    code = subprocess.run(
        [sys.executable, "-m", "kafkaops", *argv], env=child, stderr=subprocess.STDOUT, check=False
    ).returncode
    if code:
        out.text(f"(exit {code})\n")
    return code
