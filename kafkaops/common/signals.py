"""Stopping long work cleanly on SIGINT or SIGTERM: the first signal asks the work to stop at
its next safe point (after the batch or transaction in flight is settled), a second one stops
at once (KeyboardInterrupt). Used by `retry` and `dlq replay` alike."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Whether (and by which signal) the work was asked to stop. Set from a signal handler: a
    plain attribute write is all a handler may safely do while a batch is being published."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> str | None:
        """The signal that asked, by name (`SIGTERM`); None while nobody asked."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def is_requested(self) -> bool:
        """For work that polls between records (`Replayer(stop=...)`)."""
        return self.signum is not None

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum


@contextmanager
def stop_on_signals(*, announce: Callable[[], None] | None = None) -> Iterator[StopRequest]:
    """While inside, SIGTERM (cron's timeout, systemd, Kubernetes) and SIGINT (Ctrl-C) set the
    StopRequest yielded; `announce` is called on that first signal (from the handler: it must
    only write a line). A second signal raises KeyboardInterrupt. The previous handlers are
    restored on the way out."""
    stop = StopRequest()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.signum is not None:
            raise KeyboardInterrupt
        stop.request(signum)
        if announce is not None:
            announce()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
