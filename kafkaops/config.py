"""The resolved configuration: one YAML file of named contexts, environment overrides, flags.

Precedence, lowest to highest: built-in defaults, the context in the file, `KAFKAOPS_*`
environment variables, command-line flags. Every value remembers where it came from, so that
`kafkaops config show` can say so; secrets are masked wherever a value is shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from kafkaops.errors import ConfigError, UsageError
from kafkaops.secrets import is_secret_key, mask_url
from kafkaops.timeparse import parse_duration

LOGICAL_COLUMNS: tuple[str, ...] = (
    "id",
    "event_id",
    "topic",
    "event_key",
    "payload",
    "headers",
    "status",
    "retry_count",
    "last_error",
    "error_type",
    "created_at",
    "updated_at",
    "next_retry_at",
    "resolved_at",
)

CONFIG_HINT = (
    "configure it with --config PATH (or $KAFKAOPS_CONFIG, ./kafkaops.yaml, "
    "~/.config/kafkaops/config.yaml), with {env}, or with {flag}"
)

DEFAULT_SCHEDULE = ("1m", "5m", "15m", "60m")
# A batch's locks and delivery reports are held at once; bigger batches only add risk.
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = None
    table: str = "failed_kafka_events"
    schema: str | None = None
    id_type: str = "auto"  # bigint | uuid | auto (read from the live table when needed)
    columns: Mapping[str, str] = field(default_factory=lambda: {c: c for c in LOGICAL_COLUMNS})

    def physical(self, logical: str) -> str:
        return self.columns.get(logical, logical)


@dataclass(frozen=True)
class RetrySettings:
    schedule: tuple[timedelta, ...] = tuple(parse_duration(s) for s in DEFAULT_SCHEDULE)
    max_retries: int = 5
    batch_size: int = 500
    dlq_suffix: str = ".dlq"
    # Suffixes `dlq` reads as dead-letter topics: Spring Kafka's newer and older defaults too.
    dlq_suffixes: tuple[str, ...] = (".dlq", "-dlt", ".DLT")
    delivery_timeout: timedelta = timedelta(seconds=30)
    breaker_threshold: int = 3  # consecutive transport-level failures that stop a pass

    @property
    def read_suffixes(self) -> tuple[str, ...]:
        """Every suffix that names a DLQ topic: the configured list and the one `retry` writes."""
        return tuple(dict.fromkeys((*self.dlq_suffixes, self.dlq_suffix)))

    def dlq_topic_for(self, topic: str) -> str:
        from kafkaops.dlq_record import dlq_topic_for

        return dlq_topic_for(topic, self.dlq_suffix)


@dataclass(frozen=True)
class Thresholds:
    """The runbook's alert thresholds (RUNBOOK.md, "Alert Thresholds")."""

    pending_warning: int = 1000
    pending_critical: int = 5000
    oldest_pending_warning: timedelta = timedelta(hours=1)
    oldest_pending_critical: timedelta = timedelta(hours=4)
    breaker_open_critical: timedelta = timedelta(minutes=5)
    dlq_failed_critical: int = 0  # any DLQ_FAILED row is critical at once
    thread_pool_queue_warning: int = 9000


@dataclass(frozen=True)
class Settings:
    """One resolved context, ready for the connection layer."""

    context: str | None
    config_path: Path | None
    database: DatabaseSettings
    kafka: Mapping[str, str]
    app: Mapping[str, Any]
    retry: RetrySettings
    thresholds: Thresholds
    sources: Mapping[str, str]  # dotted key -> where its value came from

    def require_database_url(self) -> str:
        if not self.database.url:
            raise ConfigError(
                "no database configured",
                hint=CONFIG_HINT.format(env="$KAFKAOPS_DATABASE_URL", flag="--database-url"),
            )
        return self.database.url

    def require_kafka(self) -> Mapping[str, str]:
        if not self.kafka.get("bootstrap.servers"):
            raise ConfigError(
                "no Kafka bootstrap servers configured",
                hint=CONFIG_HINT.format(env="$KAFKAOPS_BOOTSTRAP_SERVERS", flag="--bootstrap-servers"),
            )
        return self.kafka

    def secret_values(self) -> list[str]:
        """Every secret value in this context, so free text can be scrubbed of them."""
        from kafkaops.secrets import url_secrets

        secrets = [str(v) for k, v in self.kafka.items() if is_secret_key(k) and v]
        if self.database.url:
            secrets += url_secrets(self.database.url)
        return secrets


@dataclass(frozen=True)
class Overrides:
    """What the command line says; it beats the environment and the file."""

    config_path: str | None = None
    context: str | None = None
    database_url: str | None = None
    bootstrap_servers: str | None = None


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """`--config`, else `$KAFKAOPS_CONFIG`, else `./kafkaops.yaml`, else the user config dir."""
    for origin, value in (("--config", explicit), ("$KAFKAOPS_CONFIG", env.get("KAFKAOPS_CONFIG"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ConfigError(f"config file {path} (from {origin}) does not exist")
            return path
    local = Path("kafkaops.yaml")
    if local.is_file():
        return local
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "kafkaops" / "config.yaml"
    return user if user.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping with 'contexts'")
    return data


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: Mapping[str, str], *, key: str) -> Any:
    """Expand `${VAR}` and `${VAR:-default}` in every string, so secrets stay out of the file."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"config key {key} uses ${{{name}}}, which is not set in the environment")

        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, key=f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, key=key) for v in value]
    return value


def context_names(data: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    """The file's contexts, checked to be a mapping of name -> settings."""
    contexts = data.get("contexts") or {}
    if not isinstance(contexts, dict):
        raise ConfigError(f"'contexts' in {path} must be a mapping of name -> settings")
    return contexts


def select_context(
    data: Mapping[str, Any], wanted: str | None, path: Path | None
) -> tuple[str | None, dict[str, Any]]:
    contexts = context_names(data, path)
    name = wanted or data.get("current-context")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"'current-context' in {path} must be a context name")
    if name is None and len(contexts) == 1:
        name = next(iter(contexts))
    if name is None:
        return None, {}
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        where = f" in {path}" if path else ""
        raise ConfigError(f"no context named {name!r}{where} (known contexts: {known})")
    context = contexts[name] or {}
    if not isinstance(context, dict):
        raise ConfigError(f"context {name!r} must be a mapping")
    return str(name), context


def load_settings(overrides: Overrides | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve one context from file, environment and flags."""
    overrides = overrides or Overrides()
    env = os.environ if env is None else env
    path = find_config_file(overrides.config_path, env)
    data = read_config_file(path) if path else {}
    wanted = overrides.context or env.get("KAFKAOPS_CONTEXT")
    if wanted and not path:
        raise ConfigError(f"context {wanted!r} asked for, but no config file was found")
    name, raw = select_context(data, wanted, path)
    raw = expand_env(raw, env, key=f"contexts.{name}") if name else {}
    origin = f"file {path} (context {name})" if path else "default"
    sources: dict[str, str] = {}

    db_raw = _section(raw, "database")
    kafka_raw = {str(k): _stringify(v, f"kafka.{k}") for k, v in _section(raw, "kafka").items()}
    for key in db_raw:
        sources[f"database.{key}"] = origin
    for key in kafka_raw:
        sources[f"kafka.{key}"] = origin

    # Environment overrides beat the file...
    if env.get("KAFKAOPS_DATABASE_URL"):
        db_raw["url"] = env["KAFKAOPS_DATABASE_URL"]
        sources["database.url"] = "env KAFKAOPS_DATABASE_URL"
    if env.get("KAFKAOPS_BOOTSTRAP_SERVERS"):
        kafka_raw["bootstrap.servers"] = env["KAFKAOPS_BOOTSTRAP_SERVERS"]
        sources["kafka.bootstrap.servers"] = "env KAFKAOPS_BOOTSTRAP_SERVERS"
    for var, value in env.items():
        if var.startswith("KAFKAOPS_KAFKA_") and len(var) > len("KAFKAOPS_KAFKA_"):
            prop = var[len("KAFKAOPS_KAFKA_") :].lower().replace("_", ".")
            kafka_raw[prop] = value
            sources[f"kafka.{prop}"] = f"env {var}"
    # ...and flags beat both.
    if overrides.database_url:
        db_raw["url"] = overrides.database_url
        sources["database.url"] = "flag --database-url"
    if overrides.bootstrap_servers:
        kafka_raw["bootstrap.servers"] = overrides.bootstrap_servers
        sources["kafka.bootstrap.servers"] = "flag --bootstrap-servers"

    app = _section(raw, "app")
    for key in app:
        sources[f"app.{key}"] = origin
    retry_raw = _section(raw, "retry")
    thresholds_raw = _section(raw, "thresholds")
    for key in retry_raw:
        sources[f"retry.{key}"] = origin
    for key in thresholds_raw:
        sources[f"thresholds.{key}"] = origin
    return Settings(
        context=name,
        config_path=path,
        database=_database(db_raw),
        kafka=kafka_raw,
        app=app,
        retry=_retry(retry_raw),
        thresholds=_thresholds(thresholds_raw),
        sources=sources,
    )


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config section '{name}' must be a mapping")
    return dict(value)


def _stringify(value: Any, key: str) -> str:
    """A librdkafka property value: a scalar, as the string librdkafka expects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (dict, list)):
        raise ConfigError(
            f"{key} must be a string or number, not {'empty' if value is None else type(value).__name__}"
        )
    return str(value)


def _text(raw: Mapping[str, Any], key: str, section: str, default: str | None) -> str | None:
    value = raw.get(key, default)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key} must be a string, not {value!r}")
    return value


def _database(raw: Mapping[str, Any]) -> DatabaseSettings:
    unknown = set(raw) - {"url", "table", "schema", "columns", "id_type"}
    if unknown:
        raise ConfigError(f"unknown key(s) in database: {', '.join(sorted(unknown))}")
    columns = raw.get("columns") or {}
    if not isinstance(columns, dict) or not all(isinstance(v, str) and v for v in columns.values()):
        raise ConfigError(
            "database.columns must map logical column names to physical ones (event_key: kafka_key)"
        )
    bad = set(columns) - set(LOGICAL_COLUMNS)
    if bad:
        raise ConfigError(
            f"unknown column(s) in database.columns: {', '.join(sorted(bad))} "
            f"(logical columns are: {', '.join(LOGICAL_COLUMNS)})"
        )
    id_type = str(raw.get("id_type", "auto")).lower()
    if id_type not in {"auto", "bigint", "uuid"}:
        raise ConfigError(f"database.id_type must be auto, bigint or uuid, not {id_type!r}")
    return DatabaseSettings(
        url=_text(raw, "url", "database", None),
        table=_text(raw, "table", "database", "failed_kafka_events") or "failed_kafka_events",
        schema=_text(raw, "schema", "database", None),
        id_type=id_type,
        columns={c: str(columns.get(c, c)) for c in LOGICAL_COLUMNS},
    )


def _duration(raw: Mapping[str, Any], key: str, default: timedelta, section: str) -> timedelta:
    if key not in raw:
        return default
    try:
        return parse_duration(raw[key], what=f"{section}.{key}")
    except UsageError as exc:
        raise ConfigError(exc.message) from None


def _int(
    raw: Mapping[str, Any], key: str, default: int, section: str, minimum: int = 0, maximum: int | None = None
) -> int:
    if key not in raw:
        return default
    value = raw[key]
    too_big = maximum is not None and isinstance(value, int) and value > maximum
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or too_big:
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{section}.{key} must be a whole number {bounds}, not {value!r}")
    return value


def _retry(raw: Mapping[str, Any]) -> RetrySettings:
    defaults = RetrySettings()
    schedule = defaults.schedule
    if "schedule" in raw:
        items = raw["schedule"]
        if not isinstance(items, list) or not items:
            raise ConfigError("retry.schedule must be a non-empty list of durations (1m, 5m, ...)")
        try:
            schedule = tuple(parse_duration(i, what="retry.schedule entry") for i in items)
        except UsageError as exc:
            raise ConfigError(exc.message) from None
        if any(delay.total_seconds() <= 0 for delay in schedule):
            raise ConfigError("retry.schedule delays must be longer than zero")
    suffix = raw.get("dlq_suffix", defaults.dlq_suffix)
    if not isinstance(suffix, str) or not suffix.strip():
        raise ConfigError(
            "retry.dlq_suffix must be a non-empty string (the DLQ must not be the topic itself)"
        )
    suffixes = raw.get("dlq_suffixes", list(defaults.dlq_suffixes))
    if (
        not isinstance(suffixes, list)
        or not suffixes
        or not all(isinstance(x, str) and x.strip() for x in suffixes)
    ):
        raise ConfigError("retry.dlq_suffixes must be a non-empty list of suffixes (.dlq, -dlt, .DLT)")
    return RetrySettings(
        schedule=schedule,
        max_retries=_int(raw, "max_retries", defaults.max_retries, "retry", 1),
        batch_size=_int(raw, "batch_size", defaults.batch_size, "retry", 1, MAX_BATCH_SIZE),
        dlq_suffix=suffix,
        dlq_suffixes=tuple(dict.fromkeys(suffixes)),
        delivery_timeout=_duration(raw, "delivery_timeout", defaults.delivery_timeout, "retry"),
        breaker_threshold=_int(raw, "breaker_threshold", defaults.breaker_threshold, "retry", 1),
    )


def _level(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"thresholds.{name} must be a mapping with warning/critical")
    return value


def _thresholds(raw: Mapping[str, Any]) -> Thresholds:
    d = Thresholds()
    pending = _level(raw, "pending_events")
    age = _level(raw, "oldest_pending_age")
    breaker = _level(raw, "circuit_breaker_open")
    dlq_failed = _level(raw, "dlq_failed_count")
    pool = _level(raw, "thread_pool_queue")
    s = "thresholds"
    return Thresholds(
        pending_warning=_int(pending, "warning", d.pending_warning, f"{s}.pending_events"),
        pending_critical=_int(pending, "critical", d.pending_critical, f"{s}.pending_events"),
        oldest_pending_warning=_duration(age, "warning", d.oldest_pending_warning, s),
        oldest_pending_critical=_duration(age, "critical", d.oldest_pending_critical, s),
        breaker_open_critical=_duration(breaker, "critical", d.breaker_open_critical, s),
        dlq_failed_critical=_int(dlq_failed, "critical", d.dlq_failed_critical, s),
        thread_pool_queue_warning=_int(pool, "warning", d.thread_pool_queue_warning, s),
    )


def describe(settings: Settings) -> list[dict[str, str]]:
    """The resolved values that matter to an operator, masked, each with its origin."""
    rows: list[dict[str, str]] = [
        {"key": "context", "value": settings.context or "(none)", "source": "selection"},
        {
            "key": "config_file",
            "value": str(settings.config_path) if settings.config_path else "(none found)",
            "source": "lookup",
        },
    ]
    db = settings.database

    def add(key: str, value: Any, default_source: str = "default") -> None:
        shown = "" if value is None else str(value)
        if key == "database.url" and value:
            shown = mask_url(str(value))
        elif is_secret_key(key) and value:
            shown = "****"
        rows.append({"key": key, "value": shown, "source": settings.sources.get(key, default_source)})

    add("database.url", db.url)
    add("database.table", db.table)
    add("database.schema", db.schema)
    add("database.id_type", db.id_type)
    for logical in LOGICAL_COLUMNS:
        if db.physical(logical) != logical:
            add(
                f"database.columns.{logical}",
                db.physical(logical),
                settings.sources.get("database.columns", "default"),
            )
    for key in sorted(settings.kafka):
        add(f"kafka.{key}", settings.kafka[key])
    for key in sorted(settings.app):
        add(f"app.{key}", settings.app[key])
    r = settings.retry
    add("retry.schedule", ", ".join(_fmt(t) for t in r.schedule))
    add("retry.max_retries", r.max_retries)
    add("retry.batch_size", r.batch_size)
    add("retry.dlq_suffix", r.dlq_suffix)
    add("retry.dlq_suffixes", ", ".join(r.dlq_suffixes))
    add("retry.delivery_timeout", _fmt(r.delivery_timeout))
    add("retry.breaker_threshold", r.breaker_threshold)
    t = settings.thresholds
    add(
        "thresholds.pending_events",
        f"warning > {t.pending_warning}, critical > {t.pending_critical}",
    )
    add(
        "thresholds.oldest_pending_age",
        f"warning > {_fmt(t.oldest_pending_warning)}, critical > {_fmt(t.oldest_pending_critical)}",
    )
    add("thresholds.circuit_breaker_open", f"critical when OPEN > {_fmt(t.breaker_open_critical)}")
    add("thresholds.dlq_failed_count", f"critical > {t.dlq_failed_critical}")
    return rows


def _fmt(delta: timedelta) -> str:
    from kafkaops.timeparse import format_duration

    return format_duration(delta)
