"""The files kafkaops writes beside paths it was given, opened so that no one else can steer
them: never through a symbolic link, never in a folder others can write to (for state that
decides alerts). And advisory locks (flock) taken within a deadline, for files other
processes share: a lock held by a hung process must not hang the next one."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from kafkaops.common.errors import ConfigError
from kafkaops.common.escape import safe_text

# O_NOFOLLOW: a symbolic link planted at the name (by whoever can write the folder) is refused
# instead of followed, so a root cron job cannot be made to create or truncate the link's target.
# O_CLOEXEC: the descriptor (and the lock it holds) is not inherited by anything kafkaops runs.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """`os.open` that refuses a symbolic link at `path` with one line (ConfigError, exit 2)
    and creates nothing; other OSErrors are the caller's."""
    try:
        return os.open(path, flags | NOFOLLOW, mode)
    except OSError:
        if _is_link(path):  # ELOOP on Linux, EMLINK on FreeBSD: asked, not guessed from errno
            raise refused_link(path) from None
        raise


def replace_file(target: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to a temp file beside `target`, then rename it over `target`: readers see
    the old file or the new one, and a link at `target` is replaced, never followed. The temp
    file is made with O_EXCL under a name no one can guess (prometheus_client's
    `write_to_textfile` opens `PATH.PID.TID`, which a link planted there would redirect)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refused_link(path: Path) -> ConfigError:
    shown = safe_text(str(path))
    return ConfigError(
        f"{shown} is a symbolic link: kafkaops does not write through links, and created nothing",
        hint=f"remove the link if it is not meant to be there (rm {shown}), or choose another path",
    )


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def refuse_shared(path: Path, what: str, *, follow: bool, hint: str) -> None:
    """A ConfigError (exit 2) when `path` could have been written by someone else: a symbolic
    link (unless `follow`), writable by group or others, or owned by a user other than the one
    running kafkaops or root, as ssh judges its keys. For files whose content decides what
    kafkaops does (a state file can mute an alert). Nothing there: nothing to judge."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return  # missing, or cannot be looked at: opening it says why
    shown = safe_text(str(path))
    if stat.S_ISLNK(info.st_mode):
        why = "is a symbolic link"
    elif info.st_uid not in (os.geteuid(), 0):
        why = f"belongs to another user (uid {info.st_uid})"
    elif info.st_mode & 0o022:
        why = f"can be written by others (mode {stat.S_IMODE(info.st_mode):04o})"
    else:
        return
    raise ConfigError(
        f"{what} {shown} {why}: refused, whoever can write it can change what kafkaops does", hint=hint
    )


def read_private(path: Path, what: str, *, hint: str) -> tuple[str | None, str | None]:
    """The text of a state file only its user may write: `(text, None)`, `(None, None)` when
    there is none yet, or `(None, reason)` when it exists but cannot be read. A file or folder
    others could have written is refused (ConfigError), never read; a link is never followed."""
    refuse_shared(path.parent, "state folder", follow=True, hint=hint)
    refuse_shared(path, what, follow=False, hint=hint)
    try:
        fd = open_nofollow(path, os.O_RDONLY)
        with os.fdopen(fd, encoding="utf-8") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return None, f"cannot read {what} {path} ({reason})"


def private_dir(path: Path, what: str, *, hint: str) -> bool:
    """Make sure `path` is a folder only its owner can write: a missing one is created 0700,
    an existing one is judged (`refuse_shared`, following a link to it). False when it
    cannot be created (the caller reports that as it does any unwritable file)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return False
    # Judged after mkdir: one made by someone else in between is judged too.
    refuse_shared(path, what, follow=True, hint=hint)
    return True


def flock_within(fd: int, timeout: float) -> bool:
    """Take an exclusive flock on `fd`, trying until `timeout` seconds have passed: True once
    held, False when another process still holds it. Other OSErrors (a file system without
    locks) are the caller's."""
    import fcntl

    ends = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= ends:
                return False
            time.sleep(0.02)
