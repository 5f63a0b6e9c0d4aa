"""The producer settings the runbook's High-latency steps name, and a service's compared with
them: one table that `kafkaops probe` publishes with and `status` holds the service to.

The runbook gives batch.size (32768) and linger.ms (10); acks and delivery.timeout.ms are the
reference service's (examples/casino-events); compression.type and
max.in.flight.requests.per.connection are Kafka's defaults, the ones idempotence keeps order with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The runbook's batching, used by the probe where the config's kafka section sets none.
RUNBOOK_PRODUCER: dict[str, Any] = {"batch.size": 32768, "linger.ms": 10}
# How the service publishes whatever the batching: every replica in sync acknowledges, once.
SERVICE_PRODUCER: dict[str, Any] = {"acks": "all", "enable.idempotence": True}
# Each setting compared, with the value expected and where that value comes from.
EXPECTED: dict[str, tuple[str, str]] = {
    "batch.size": ("32768", "runbook"),
    "linger.ms": ("10", "runbook"),
    "acks": ("all", "reference service"),
    "compression.type": ("none", "Kafka default"),
    "max.in.flight.requests.per.connection": ("5", "Kafka default"),
    "delivery.timeout.ms": ("30000", "reference service"),
}


@dataclass(frozen=True)
class SettingComparison:
    setting: str
    service: str | None  # None: the service does not set it (its client's default applies)
    expected: str
    source: str  # runbook | reference service | Kafka default

    @property
    def differs(self) -> bool:
        """Set, and to another value; a setting left to the client's default differs only
        from the runbook's own figures (batch.size and linger.ms must be set to meet them)."""
        if self.service is None:
            return self.source == "runbook"
        return _normal(self.service) != _normal(self.expected)

    def as_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "service": self.service,
            "expected": self.expected,
            "source": self.source,
            "differs": self.differs,
        }


def compare(settings: Mapping[str, str]) -> list[SettingComparison]:
    """The service's effective `settings` (Kafka property names) beside the expected ones."""
    return [
        SettingComparison(name, settings.get(name), expected, source)
        for name, (expected, source) in EXPECTED.items()
    ]


def _normal(value: str) -> str:
    text = value.strip().lower()
    return "all" if text == "-1" else text  # acks=-1 is acks=all
