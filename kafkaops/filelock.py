"""Advisory file locks (flock) taken within a deadline, for files other processes share: the
retry pass's metrics textfile, the status state file. A lock held by a hung process must not
hang the next one."""

from __future__ import annotations

import time


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
