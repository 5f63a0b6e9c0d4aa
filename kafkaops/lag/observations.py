"""The observations `kafkaops lag` keeps between runs, for Burrow's rules: per group, topic and
partition, the last WINDOW (committed, end) pairs and when the committed offset last moved.

One JSON file per context beside `status`' state file (`status.state_dir`), with the same
safety rules (kafkaops/common/filelock.py): never through a link, never in a folder or file
others can write (whoever can write it can silence a STOP). A file that is missing, corrupt or
unreadable never stops a run: it is reported, and the window starts afresh.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.common.filelock import (
    flock_within,
    open_nofollow,
    private_dir,
    read_private,
    replace_file,
)
from kafkaops.lag.evaluate import Observation

VERSION = 1
WINDOW = 10  # observations per partition, as Burrow's default `intervals`
FORGET_AFTER_S = 7 * 86400  # a group not observed for a week is dropped from the file
_HINT = "status.state_dir must be a folder only you (or root) can write; kafkaops creates it 0700"


@dataclass
class Track:
    """One partition's observations, oldest first, and when its committed offset last moved."""

    window: list[Observation] = field(default_factory=list)
    moved_at: float | None = None

    def observe(self, at: float, committed: int, end: int) -> None:
        """Add this run's observation. A committed offset that changed (or went back: a reset)
        restarts the "not moved since" clock; an observation older than the last one (the
        clock went back) restarts the window."""
        if self.window and (self.window[-1][1] != committed or self.window[-1][0] > at):
            self.moved_at = at
        if self.window and self.window[-1][0] > at:
            self.window.clear()
        if self.moved_at is None:
            self.moved_at = at
        self.window.append((at, committed, end))
        del self.window[:-WINDOW]


@dataclass
class Observations:
    # group -> "topic\tpartition" -> Track
    groups: dict[str, dict[str, Track]] = field(default_factory=dict)

    def track(self, group: str, topic: str, partition: int) -> Track:
        return self.groups.setdefault(group, {}).setdefault(f"{topic}\t{partition}", Track())

    def forget_old(self, now: float) -> None:
        for group in list(self.groups):
            last = max((t.window[-1][0] for t in self.groups[group].values() if t.window), default=0.0)
            if now - last > FORGET_AFTER_S:
                del self.groups[group]

    def as_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "groups": {
                group: {
                    key: {"moved_at": t.moved_at, "window": [list(o) for o in t.window]}
                    for key, t in sorted(tracks.items())
                }
                for group, tracks in sorted(self.groups.items())
            },
        }


def observations_path(state_dir: Path, context: str | None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", context or "default")
    return state_dir / f"lag-{safe}.json"


def load(path: Path) -> tuple[Observations, str | None]:
    """The observations, and a warning when the file existed but could not be used. A file or
    folder others could have written is refused (ConfigError), never read."""
    text, unreadable = read_private(path, "lag state file", hint=_HINT)
    if text is None:
        return Observations(), unreadable and f"{unreadable}: the window starts afresh"
    try:
        return _parse(json.loads(text)), None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError):
        return Observations(), f"lag state file {path} is not a kafkaops state file: the window starts afresh"


def _parse(data: Any) -> Observations:
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a lag state file")
    result = Observations()
    for group, tracks in dict(data["groups"]).items():
        for key, raw in dict(tracks).items():
            window = [(float(o[0]), int(o[1]), int(o[2])) for o in raw["window"]][-WINDOW:]
            moved = raw.get("moved_at")
            result.groups.setdefault(str(group), {})[str(key)] = Track(
                window, float(moved) if moved is not None else None
            )
    return result


def save(path: Path, observations: Observations) -> str | None:
    """Replace the file atomically; a warning when it could not be written."""
    try:
        if not private_dir(path.parent, "state folder", hint=_HINT):
            raise FileNotFoundError(errno.ENOENT, "cannot create its folder")
        replace_file(path, (json.dumps(observations.as_json()) + "\n").encode())
    except OSError as exc:
        return (
            f"cannot write lag state file {path} ({exc.strerror or type(exc).__name__}): "
            "this run is not remembered, so STALL, STOP and growing lag cannot be told"
        )
    return None


@contextmanager
def locked(path: Path, timeout: float) -> Iterator[str | None]:
    """Hold the file's lock (beside it) for a read-modify-write: `lag` and `status` at once
    would each drop the other's observation. Yields None when held, else a warning; a lock
    that cannot be had never stops the run."""
    try:
        import fcntl  # noqa: F401  (POSIX only)
    except ImportError:
        yield None
        return
    lock = path.with_name(path.name + ".lock")
    try:
        if not private_dir(path.parent, "state folder", hint=_HINT):
            yield None
            return
        fd = open_nofollow(lock, os.O_RDWR | os.O_CREAT)
    except OSError:
        yield None  # an unwritable state dir: save() says so
        return
    try:
        try:
            busy = not flock_within(fd, timeout)
        except OSError:
            busy = False
        yield (
            f"lag state file {path} is held by another kafkaops: going on without the lock" if busy else None
        )
    finally:
        os.close(fd)
