"""The small file `kafkaops status` keeps between runs: when it first saw each instance's breaker
OPEN (so cron runs a minute apart can tell "open for 5 minutes"), and the last alert it sent.

One JSON file per context in the state dir, replaced atomically. A file that is missing,
corrupt or unreadable never stops status: it is reported, and status starts afresh.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kafkaops.common.filelock import flock_within, open_nofollow, private_dir, read_private, replace_file
from kafkaops.common.timeparse import isoformat_utc, parse_iso

VERSION = 1


@dataclass
class Alert:
    fingerprint: str  # which checks were critical: the same set is not alerted twice
    sent_at: datetime
    summary: str


@dataclass
class StatusState:
    breakers_open_since: dict[str, datetime] = field(default_factory=dict)  # instance -> first seen
    alert: Alert | None = None
    last_pending: tuple[datetime, int] | None = None  # the previous run's PENDING count, for the trend
    # Each instance's kafka_events_published_total per status at the previous run: the error
    # ratio is judged over the window between two runs.
    published: dict[str, tuple[datetime, dict[str, float]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": VERSION,
            "breakers_open_since": {k: isoformat_utc(v) for k, v in sorted(self.breakers_open_since.items())},
        }
        if self.last_pending is not None:
            data["last_pending"] = {"at": isoformat_utc(self.last_pending[0]), "count": self.last_pending[1]}
        if self.published:
            data["published"] = {
                name: {"at": isoformat_utc(at), "counts": dict(sorted(counts.items()))}
                for name, (at, counts) in sorted(self.published.items())
            }
        if self.alert is not None:
            data["alert"] = {
                "fingerprint": self.alert.fingerprint,
                "sent_at": isoformat_utc(self.alert.sent_at),
                "summary": self.alert.summary,
            }
        return data


def state_path(state_dir: Path, context: str | None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", context or "default")
    return state_dir / f"status-{safe}.json"


# Whoever can write the state can mute an alert (a fingerprint already "sent") or hold a
# breaker's clock: the folder and the file must be the user's own.
_PRIVATE_HINT = "status.state_dir must be a folder only you (or root) can write; kafkaops creates it 0700"


def load(path: Path) -> tuple[StatusState, str | None]:
    """The state, and a warning when the file existed but could not be used. A file (or
    folder) others could have written is refused (ConfigError), never read."""
    text, unreadable = read_private(path, "state file", hint=_PRIVATE_HINT)
    if text is None:
        return StatusState(), unreadable and f"{unreadable}: starting afresh"
    try:
        return _parse(json.loads(text)), None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
        return StatusState(), f"state file {path} is not a kafkaops state file: starting afresh"


def _parse(data: Any) -> StatusState:
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a state file")
    breakers = {str(k): _time(v) for k, v in (data.get("breakers_open_since") or {}).items()}
    alert = None
    raw = data.get("alert")
    if raw:
        alert = Alert(
            fingerprint=str(raw["fingerprint"]), sent_at=_time(raw["sent_at"]), summary=str(raw["summary"])
        )
    last = data.get("last_pending")
    last_pending = (_time(last["at"]), int(last["count"])) if last else None
    published = {
        str(name): (_time(seen["at"]), {str(k): float(v) for k, v in dict(seen["counts"]).items()})
        for name, seen in dict(data.get("published") or {}).items()
    }
    return StatusState(
        breakers_open_since=breakers, alert=alert, last_pending=last_pending, published=published
    )


def _time(value: Any) -> datetime:
    return parse_iso(str(value))


def save(path: Path, state: StatusState) -> str | None:
    """Replace the file atomically; a warning when it could not be written (an OSError is never
    raised)."""
    try:
        if not private_dir(path.parent, "state folder", hint=_PRIVATE_HINT):
            raise FileNotFoundError(errno.ENOENT, "cannot create its folder")
        replace_file(path, (json.dumps(state.as_json(), indent=2) + "\n").encode())
    except OSError as exc:
        return f"cannot write state file {path} ({exc.strerror or type(exc).__name__}): the breaker's open time and alerts are not remembered"
    return None


@contextmanager
def locked(path: Path, timeout: float) -> Iterator[str | None]:
    """Hold `path`'s lock file (beside it) for a read-modify-write of the state: two runs at once
    (Nagios and a cron job) each read the state before the other saved it, and both sent the
    same alert. Yields None when held, else a warning: waiting longer than `timeout`, or a
    lock that cannot be taken, never stops status (it then goes on unlocked)."""
    try:
        import fcntl  # noqa: F401  (POSIX only)
    except ImportError:  # not POSIX: no lock, as before
        yield None
        return
    lock = path.with_name(path.name + ".lock")
    if not private_dir(path.parent, "state folder", hint=_PRIVATE_HINT):
        yield None  # an unwritable state dir: save() says so
        return
    try:
        fd = open_nofollow(lock, os.O_RDWR | os.O_CREAT)
    except OSError:
        yield None  # an unwritable state dir: save() says so
        return
    try:
        try:
            busy = not flock_within(fd, timeout)
        except OSError:  # a lock this file system cannot take: go on unlocked, as without fcntl
            busy = False
        yield (
            f"state file {path} is held by another kafkaops status: going on without the lock"
            if busy
            else None
        )
    finally:
        os.close(fd)  # closing releases the lock
