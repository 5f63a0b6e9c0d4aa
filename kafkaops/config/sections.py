"""The `app:`, `alerts:` and `status:` sections of a context, typed when the file loads.

`config.settings_from` parses every section of the context it resolves, so that a bad value in
any of them is refused by every command the same way (exit 2, naming the key), not only by
`kafkaops status`, which is where these sections are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kafkaops.common.errors import ConfigError, UsageError
from kafkaops.common.timeparse import parse_duration
from kafkaops.config.file import check_keys

INSTANCE_KEYS = ("url", "name")


@dataclass(frozen=True)
class ServiceInstance:
    """Where one instance of the service answers: each endpoint a full URL, or None when off."""

    name: str
    health_url: str | None
    metrics_url: str | None
    stats_url: str | None
    configprops_url: str | None = None  # Spring Boot's /actuator/configprops: the producer's settings


@dataclass(frozen=True)
class AppSettings:
    """The service itself (`app:`).

    `instances` are base URLs, each joined with the paths; `health_url`, `metrics_url` and
    `stats_url` are the one-instance shorthand. Credentials (basic or bearer) are secrets.
    """

    instances: tuple[tuple[str, str], ...] = ()  # (name, base URL)
    health_url: str | None = None
    metrics_url: str | None = None
    stats_url: str | None = None
    health_path: str | None = "/actuator/health/kafka"
    metrics_path: str | None = "/actuator/prometheus"
    stats_path: str | None = None  # the publisher-stats JSON endpoint is off unless configured
    configprops_url: str | None = None
    configprops_path: str | None = None  # /actuator/configprops: off unless configured
    timeout: timedelta = timedelta(seconds=2)
    username: str | None = None
    password: str | None = None
    token: str | None = None
    executor: str | None = None  # only this executor's thread pool (Micrometer's `name` label)
    circuit_breaker: str | None = None  # only this Resilience4j breaker (its `name` label)

    @property
    def configured(self) -> bool:
        return bool(
            self.instances or self.health_url or self.metrics_url or self.stats_url or self.configprops_url
        )

    def endpoints(self) -> tuple[ServiceInstance, ...]:
        if not self.instances:
            if not self.configured:
                return ()
            first = self.health_url or self.metrics_url or self.stats_url or self.configprops_url or ""
            return (
                ServiceInstance(
                    _instance_name(first),
                    self.health_url,
                    self.metrics_url,
                    self.stats_url,
                    self.configprops_url,
                ),
            )
        return tuple(
            ServiceInstance(
                name,
                _join(base, self.health_path),
                _join(base, self.metrics_path),
                _join(base, self.stats_path),
                _join(base, self.configprops_path),
            )
            for name, base in self.instances
        )


@dataclass(frozen=True)
class AlertSettings:
    """`alerts:`: where `kafkaops status` sends an alert."""

    webhook: str | None = None  # a Slack-compatible incoming webhook (a secret URL)
    # The longest one send gets; `status` gives it what is left of its run's deadline if less.
    timeout: timedelta = timedelta(seconds=5)


@dataclass(frozen=True)
class StatusSettings:
    """`status:`: where `kafkaops status` keeps its state, and its deadline."""

    state_dir: Path | None = None  # None: $XDG_STATE_HOME/kafkaops or ~/.local/state/kafkaops
    timeout: timedelta = timedelta(seconds=5)  # database and broker deadline


def alert_settings(raw: Mapping[str, Any]) -> AlertSettings:
    webhook = raw.get("webhook")
    return AlertSettings(
        webhook=_http_url(webhook, "alerts.webhook") if webhook else None,
        timeout=positive_duration(raw, "timeout", AlertSettings.timeout, "alerts"),
    )


def status_settings(raw: Mapping[str, Any]) -> StatusSettings:
    state_dir = _text(raw, "state_dir", "status")
    return StatusSettings(
        state_dir=Path(state_dir).expanduser() if state_dir else None,
        timeout=positive_duration(raw, "timeout", StatusSettings.timeout, "status"),
    )


def app_settings(raw: Mapping[str, Any]) -> AppSettings:
    d = AppSettings()
    instances: list[tuple[str, str]] = []
    items = raw.get("instances") or []
    if not isinstance(items, list):
        raise ConfigError("app.instances must be a list of base URLs (http://host:8080)")
    for n, item in enumerate(items):
        where = f"app.instances[{n}]"
        if isinstance(item, dict):
            check_keys(item, INSTANCE_KEYS, where)
            url = _http_url(item.get("url"), f"{where}.url")
            name = item.get("name") or _instance_name(url)
            if not isinstance(name, str):
                raise ConfigError(f"{where}.name must be a string")
        else:
            url = _http_url(item, where)
            name = _instance_name(url)
        if name in {known for known, _ in instances}:
            raise ConfigError(f"{where}: instance {name!r} is listed twice (give each a name:)")
        instances.append((name, url.rstrip("/")))
    shorthand = {
        k: _http_url(raw[k], f"app.{k}")
        for k in ("health_url", "metrics_url", "stats_url", "configprops_url")
        if raw.get(k)
    }
    if instances and shorthand:
        raise ConfigError(
            f"app.{next(iter(shorthand))} is the one-instance shorthand and cannot be combined with "
            "app.instances",
            hint="list every instance under app.instances; app.health_path and app.metrics_path "
            "say where each one answers",
        )
    return AppSettings(
        instances=tuple(instances),
        health_url=shorthand.get("health_url"),
        metrics_url=shorthand.get("metrics_url"),
        stats_url=shorthand.get("stats_url"),
        configprops_url=shorthand.get("configprops_url"),
        health_path=_path(raw, "health_path", d.health_path),
        metrics_path=_path(raw, "metrics_path", d.metrics_path),
        stats_path=_path(raw, "stats_path", d.stats_path),
        configprops_path=_path(raw, "configprops_path", d.configprops_path),
        timeout=positive_duration(raw, "timeout", d.timeout, "app"),
        username=_text(raw, "username", "app"),
        password=_text(raw, "password", "app"),
        token=_text(raw, "token", "app"),
        executor=_text(raw, "executor", "app"),
        circuit_breaker=_text(raw, "circuit_breaker", "app"),
    )


def _text(raw: Mapping[str, Any], key: str, section: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key} must be a string, not {value!r}")
    return value


def positive_duration(raw: Mapping[str, Any], key: str, default: timedelta, section: str) -> timedelta:
    if key not in raw:
        return default
    try:
        value = parse_duration(raw[key], what=f"{section}.{key}")
    except UsageError as exc:
        raise ConfigError(exc.message) from None
    if value.total_seconds() <= 0:
        raise ConfigError(f"{section}.{key} must be longer than zero")
    return value


def _http_url(value: Any, key: str) -> str:
    from kafkaops.common.http import parse_url

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be an http:// or https:// URL")
    try:
        parse_url(value.strip())
    except UsageError as exc:
        raise ConfigError(f"{key}: {exc.message}") from None
    return value.strip()


def _path(raw: Mapping[str, Any], key: str, default: str | None) -> str | None:
    if key not in raw:
        return default
    value = raw[key]
    if value is None or value is False or value == "":
        return None  # switched off
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"app.{key} must be a path starting with /, or null to switch it off")
    return value


def _instance_name(url: str) -> str:
    """`host:port` of a URL, the name an instance goes by unless it is given one."""
    from kafkaops.common.http import parse_url

    try:
        parsed = parse_url(url)
    except UsageError:
        return url
    return f"{parsed.host}:{parsed.port}"


def _join(base: str, path: str | None) -> str | None:
    return None if path is None else base.rstrip("/") + path
