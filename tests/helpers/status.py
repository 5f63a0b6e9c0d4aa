"""Setting up `kafkaops status` tests: a config with the service's instances, rows of a given
age, the JSON verdict by check, and a bound on how long a probe may take."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import TestDatabase
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT
from tests.helpers.events import event

T = TypeVar("T")
TOPIC = "casino.player.registered.v1"


def now() -> datetime:
    return datetime.now(timezone.utc)


def rows(
    n: int, *, status: str = "PENDING", age: timedelta = timedelta(minutes=5), **extra: Any
) -> list[dict[str, Any]]:
    created = now() - age
    return [event(i, status=status, created_at=created, **extra) for i in range(n)]


def configure(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db: TestDatabase | None = None,
    *,
    kafka: str | None = None,
    instances: list[Any] | None = None,
    **sections: Any,
) -> Path:
    state_home = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    if instances is not None:
        sections["app"] = {"instances": instances, **sections.get("app", {})}
    path = write_config(
        tmp_path / "kafkaops.yaml",
        db,
        kafka={"bootstrap.servers": kafka, **FAST_CLIENT} if kafka else None,
        **sections,
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    return path


def status_json(cli: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    result = cli("status", "-o", "json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def checks_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def within(seconds: float, work: Callable[[], T]) -> T:
    """Run `work` in a thread and fail (not hang) if it outlives `seconds`: these tests guard
    deadlines, so a broken one must be a red test."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as error:
            outcome.append((False, error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds}s: the deadline under test did not hold"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
