"""What one probe measured: plain data, judged by `status`' publish-latency rule
(kafkaops/status/checks.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBE_TOPIC = "kafkaops.probe"


def percentile(samples: list[float], q: float) -> float | None:
    """The nearest-rank percentile `q` (0-100) of `samples`; None when there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return ordered[int(rank) - 1]


@dataclass
class ProbeResult:
    topic: str
    count: int  # records asked for
    producer: dict[str, Any] = field(default_factory=dict)  # the settings that mattered
    connect_s: float | None = None  # the first metadata answer, the connection set up
    metadata_s: float | None = None  # a second one, over the open connection
    ack_s: list[float] = field(default_factory=list)  # produce call to acknowledgement, per record
    end_to_end_s: list[float] = field(default_factory=list)  # produce call to read back, per record
    sent: int = 0  # records handed to the producer (none when a problem is seen before writing)
    acked: int = 0
    received: int = 0
    problem: str | None = None  # why records could not go through, one line
    problem_code: str | None = None  # the Kafka error code behind it
    elapsed_s: float = 0.0

    @property
    def lost(self) -> int:
        """Records written but not read back (unacknowledged ones included)."""
        return self.sent - self.received

    def figures(self, samples: list[float]) -> dict[str, float | None]:
        return {
            "p50": _rounded(percentile(samples, 50)),
            "p99": _rounded(percentile(samples, 99)),
            "max": _rounded(max(samples, default=None)),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "count": self.count,
            "sent": self.sent,
            "acked": self.acked,
            "received": self.received,
            "lost": self.lost,
            "producer": self.producer,
            "connect_s": _rounded(self.connect_s),
            "metadata_s": _rounded(self.metadata_s),
            "ack_latency_s": self.figures(self.ack_s),
            "end_to_end_latency_s": self.figures(self.end_to_end_s),
            "problem": self.problem,
            "problem_code": self.problem_code,
            "duration_s": _rounded(self.elapsed_s),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
