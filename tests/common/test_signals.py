"""Stop-on-signal, as `retry` and `dlq replay` both use it (`kafkaops.common.signals`): the first
SIGTERM or SIGINT asks the work to stop, a second stops it at once, and the handlers that were
there before come back."""

from __future__ import annotations

import os
import signal

import pytest

from kafkaops.common.errors import ExitStatus, exit_status_for_signal
from kafkaops.common.signals import stop_on_signals


@pytest.mark.parametrize(
    ("first", "second"), [(signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGINT)]
)
def test_the_first_signal_asks_to_stop_and_the_second_stops_at_once(
    first: signal.Signals, second: signal.Signals
) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    announced: list[str] = []
    with (
        pytest.raises(KeyboardInterrupt),
        stop_on_signals(announce=lambda: announced.append("stopping")) as stop,
    ):
        assert (stop.is_requested(), stop.requested) == (False, None)
        os.kill(os.getpid(), first)
        assert (stop.is_requested(), stop.requested, stop.signum) == (True, first.name, first)
        assert announced == ["stopping"]
        os.kill(os.getpid(), second)
        pytest.fail("the second signal did not stop the work")
    assert stop.signum == first  # what asked first is what the command exits for
    assert announced == ["stopping"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_command_stopped_by_a_signal_exits_as_a_shell_reports_it() -> None:
    assert exit_status_for_signal(signal.SIGTERM) == 143
    assert exit_status_for_signal(signal.SIGINT) == ExitStatus.INTERRUPTED == 130
