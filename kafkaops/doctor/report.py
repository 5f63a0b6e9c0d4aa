"""What `kafkaops doctor` found: one check per permission, and the exit status they give."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kafkaops.common.errors import ExitStatus

GRANTED = "granted"
MISSING = "missing"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Check:
    """One permission a command needs: held (granted), denied (missing) or not told (unknown);
    ``fix`` is what grants it, ``detail`` how it was told."""

    command: str
    resource: str  # "topic casino.wallet.v1", "group ...", "table public.failed_kafka_events"
    operation: str
    state: str
    fix: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorReport:
    principal: str | None
    commands: tuple[str, ...]
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return all(c.state == GRANTED for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every check holds; 1 (a failure, as `db check` for an unusable table) when
        one is missing or could not be told."""
        return int(ExitStatus.OK if self.holds else ExitStatus.FAILURE)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.state == s) for s in (GRANTED, MISSING, UNKNOWN)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "commands": list(self.commands),
            "ok": self.holds,
            "counts": self.counts(),
            "checks": [c.as_dict() for c in self.checks],
            "notes": list(self.notes),
        }
