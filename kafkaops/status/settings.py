"""What `kafkaops status` reads from a context besides database, kafka and thresholds: the
`app:`, `alerts:` and `status:` sections, typed when the file loads (`configsections`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kafkaops.config.sections import AlertSettings, AppSettings, ServiceInstance, StatusSettings

if TYPE_CHECKING:
    from kafkaops.config.settings import Settings

__all__ = ["AppSettings", "ServiceInstance", "StatusConfig", "status_config"]


@dataclass(frozen=True)
class StatusConfig:
    """Everything `kafkaops status` reads from the context besides database, kafka, thresholds."""

    app: AppSettings
    webhook: str | None  # alerts.webhook: a Slack-compatible incoming webhook (a secret URL)
    state_dir: Path  # status.state_dir: default $XDG_STATE_HOME/kafkaops or ~/.local/state/kafkaops
    timeout: timedelta = StatusSettings.timeout  # status.timeout: database and broker deadline
    webhook_timeout: timedelta = AlertSettings.timeout  # alerts.timeout: the longest one send gets
    exact_counts: bool = False  # --exact: count RESOLVED rows of a large table, never estimate
    probe: bool = False  # --probe: write records to the probe topic and read them back


def status_config(settings: Settings, env: Mapping[str, str] | None = None) -> StatusConfig:
    env = os.environ if env is None else env
    status = settings.status
    path = status.state_dir
    if path is None:
        base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        path = Path(base) / "kafkaops"
    return StatusConfig(
        app=settings.app,
        webhook=settings.alerts.webhook,
        state_dir=path,
        timeout=status.timeout,
        webhook_timeout=settings.alerts.timeout,
    )
