"""The resolved configuration: one YAML file of named contexts, environment overrides, flags.

Precedence, lowest to highest: built-in defaults, the context in the file, `KAFKAOPS_*`
environment variables, command-line flags. Every value remembers where it came from, so that
`kafkaops config show` can say so; secrets are masked wherever a value is shown. Every key and
every value of the resolved context is checked when it loads (`app`, `alerts` and `status` by
`configsections`), so every command refuses a bad file alike. `${VAR}` is expanded per section:
a section whose variables are not all set is held back, and only a command that reads it fails,
naming every missing variable at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.common.errors import ConfigError, UsageError
from kafkaops.common.secrets import secrets_of
from kafkaops.common.timeparse import parse_duration
from kafkaops.config.file import (
    VARIABLE,
    ConfigFile,
    check_code_properties,
    check_keys,
    context_names,
    find_config_file,
    open_config_file,
    read_config_file,
    running_uid,
    select_context,
)
from kafkaops.kafka.dlq_names import DEFAULT_DLQ_SUFFIX, DEFAULT_DLQ_SUFFIXES, DlqCatalog
from kafkaops.kafka.topics import is_valid_topic_name

if TYPE_CHECKING:
    from kafkaops.config.journal import AuditSettings, PurgeSettings, ReadOnly
    from kafkaops.config.sections import AlertSettings, AppSettings, StatusSettings

__all__ = [
    "LOGICAL_COLUMNS",
    "OPTIONAL_COLUMNS",
    "VARIABLE",
    "ConfigFile",
    "DatabaseSettings",
    "Overrides",
    "RetrySettings",
    "Settings",
    "Thresholds",
    "context_names",
    "find_config_file",
    "load_settings",
    "open_config_file",
    "read_config_file",
    "select_context",
    "settings_from",
]

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
# Columns kafkaops uses where the live table has them (`db init` creates them; a service's
# table gains them with ALTER TABLE): where its DLQ record is, and who resolved a row.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "dlq_topic",
    "dlq_partition",
    "dlq_offset",
    "dlq_acked_at",
    "resolved_by",
)

CONFIG_HINT = (
    "configure it with --config PATH (or $KAFKAOPS_CONFIG, ./kafkaops.yaml, "
    "~/.config/kafkaops/config.yaml), with {env}, or with {flag}"
)

DEFAULT_SCHEDULE = ("1m", "5m", "15m", "60m")
# A batch's locks and delivery reports are held at once; bigger batches only add risk.
MAX_BATCH_SIZE = 10_000
# A retry pass's bounds (`retry --deadline`, not config keys): no batch starts after the
# deadline, and every statement times out by then; a batch already published gets at least
# SETTLE_TIMEOUT to settle, since cutting a settle short would publish the batch again.
PASS_DEADLINE = timedelta(minutes=10)
SETTLE_TIMEOUT = timedelta(seconds=30)
# How long one statement of `failed requeue` or `failed purge` may run (`--timeout`).
STATEMENT_TIMEOUT = timedelta(seconds=30)

# The keys each section accepts (`kafka` is librdkafka's free-form properties).
SECTIONS = (
    "database",
    "kafka",
    "app",
    "retry",
    "thresholds",
    "alerts",
    "status",
    "filters",
    "audit",
    "purge",
)
SECTION_KEYS: dict[str, tuple[str, ...] | None] = {
    "database": ("url", "table", "schema", "columns", "id_type", "lock_timeout"),
    "kafka": None,
    "app": (
        "instances",
        "health_url",
        "metrics_url",
        "health_path",
        "metrics_path",
        "stats_path",
        "stats_url",
        "configprops_path",
        "configprops_url",
        "executor",
        "circuit_breaker",
        "timeout",
        "username",
        "password",
        "token",
    ),
    "retry": (
        "schedule",
        "max_retries",
        "batch_size",
        "dlq_suffix",
        "dlq_suffixes",
        "delivery_timeout",
        "breaker_threshold",
        "metrics_lock_timeout",
    ),
    "thresholds": (
        "pending_events",
        "oldest_pending_age",
        "circuit_breaker_open",
        "dlq_failed_count",
        "thread_pool_queue",
        "publish_latency",
        "publish_error_ratio",
        "consumer_lag",
        "retry_last_run",
    ),
    "alerts": ("webhook", "timeout"),
    "status": ("state_dir", "timeout"),
    "filters": None,  # saved --where expressions: name -> expression
    "audit": ("required", "file", "topic"),
    "purge": ("archive_dir",),
}
THRESHOLD_LEVELS: dict[str, tuple[str, ...]] = {
    "pending_events": ("warning", "critical"),
    "oldest_pending_age": ("warning", "critical"),
    "circuit_breaker_open": ("critical",),
    "dlq_failed_count": ("critical",),
    "thread_pool_queue": ("warning", "warning_ratio"),
    "publish_latency": ("warning", "critical"),
    "publish_error_ratio": ("warning", "critical"),
    "consumer_lag": ("warning", "critical"),
    "retry_last_run": ("warning",),
}
# Not a librdkafka property: the consumer groups `kafkaops lag` and `status` judge (globs).
CONSUMER_GROUPS_KEY = "consumer_groups"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = None
    table: str = "failed_kafka_events"
    schema: str | None = None
    id_type: str = "auto"  # bigint | uuid | auto (read from the live table when needed)
    columns: Mapping[str, str] = field(default_factory=lambda: {c: c for c in LOGICAL_COLUMNS})
    # How long a `failed` or `db` command waits for a lock on the table (PostgreSQL) before
    # giving up: a migration or VACUUM FULL holding ACCESS EXCLUSIVE must not hang an on-call
    # engineer for ever.
    lock_timeout: timedelta = timedelta(seconds=10)

    def physical(self, logical: str) -> str:
        return self.columns.get(logical, logical)


@dataclass(frozen=True)
class RetrySettings:
    schedule: tuple[timedelta, ...] = tuple(parse_duration(s) for s in DEFAULT_SCHEDULE)
    max_retries: int = 5
    batch_size: int = 500
    dlq_suffix: str = DEFAULT_DLQ_SUFFIX
    delivery_timeout: timedelta = timedelta(seconds=30)
    breaker_threshold: int = 3  # consecutive transport-level failures that stop a pass
    dlq_suffixes: tuple[str, ...] = DEFAULT_DLQ_SUFFIXES  # how DLQ topics are recognised when read
    # How long a pass waits for another pass's hold on the metrics file's lock: a write takes
    # milliseconds, so a lock held longer belongs to a hung process, and cron's next pass must
    # not queue behind it.
    metrics_lock_timeout: timedelta = timedelta(seconds=5)

    @property
    def dlq_catalog(self) -> DlqCatalog:
        """Which topics are DLQs and the DLQ topic of each source (kafkaops/kafka/dlq_names.py)."""
        return DlqCatalog.of(self)

    def dlq_topic_for(self, topic: str) -> str:
        return self.dlq_catalog.dlq_for(topic)


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
    thread_pool_queue_warning_ratio: float = 0.9  # or above this share of the queue's capacity
    publish_latency_warning: timedelta = timedelta(milliseconds=100)  # the service's p99
    publish_latency_critical: timedelta = timedelta(seconds=1)
    publish_error_ratio_warning: float = 0.01  # errors / all publishes between two runs
    publish_error_ratio_critical: float = 0.10
    # The age of a consumer group's oldest record not yet consumed; a committed offset that
    # has not moved for longer than `critical` while records wait is STOP (kafkaops lag).
    consumer_lag_warning: timedelta = timedelta(minutes=5)
    consumer_lag_critical: timedelta = timedelta(minutes=30)
    # The last retry pass recorded (kafkaops_retry_runs) older than this while rows are due.
    retry_last_run_warning: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class MissingVariable:
    """A `${VAR}` the environment does not set, and the config key that uses it."""

    key: str  # dotted, e.g. kafka.sasl.username
    name: str  # e.g. CONFLUENT_API_KEY


class Settings:
    """One resolved context, ready for the connection layer.

    A section whose `${VAR}`s are not all set is held back: reading it raises one ConfigError
    naming every missing variable of that section; the other sections work as usual.
    """

    def __init__(
        self,
        *,
        context: str | None,
        config_path: Path | None,
        config_origin: str | None = None,
        database: DatabaseSettings | None = None,
        kafka: Mapping[str, str] | None = None,
        app: AppSettings | None = None,
        retry: RetrySettings | None = None,
        thresholds: Thresholds | None = None,
        alerts: AlertSettings | None = None,
        status: StatusSettings | None = None,
        consumer_groups: tuple[str, ...] | None = None,
        sources: Mapping[str, str] | None = None,
        missing: Mapping[str, tuple[MissingVariable, ...]] | None = None,
        raw: Mapping[str, Mapping[str, Any]] | None = None,
        audit: AuditSettings | None = None,
        purge: PurgeSettings | None = None,
        readonly: ReadOnly | None = None,
    ) -> None:
        from kafkaops.config.journal import AuditSettings, PurgeSettings, ReadOnly

        self.context = context
        self.readonly = readonly or ReadOnly()
        self.config_path = config_path
        self.config_origin = config_origin  # how the lookup found the file
        self._consumer_groups = tuple(consumer_groups or ())
        self.sources: Mapping[str, str] = dict(sources or {})
        self.missing: Mapping[str, tuple[MissingVariable, ...]] = {
            k: tuple(v) for k, v in (missing or {}).items() if v
        }
        # Each section as written (overrides applied, variables expanded where set).
        self.raw: Mapping[str, Mapping[str, Any]] = dict(raw or {})
        # Imported here: `kafkaops --help` reads no config and need not define these classes.
        from kafkaops.config.sections import AlertSettings, AppSettings, StatusSettings

        self._sections: dict[str, Any] = {
            "database": database or DatabaseSettings(),
            "kafka": dict(kafka or {}),
            "app": app or AppSettings(),
            "retry": retry or RetrySettings(),
            "thresholds": thresholds or Thresholds(),
            "alerts": alerts or AlertSettings(),
            "status": status or StatusSettings(),
            "audit": audit or AuditSettings(),
            "purge": purge or PurgeSettings(),
        }

    def _section(self, name: str) -> Any:
        missing = self.missing.get(name)
        if missing:
            raise missing_error(name, missing, self.context)
        return self._sections[name]

    @property
    def database(self) -> DatabaseSettings:
        return self._section("database")

    @property
    def kafka(self) -> Mapping[str, str]:
        return self._section("kafka")

    @property
    def consumer_groups(self) -> tuple[str, ...]:
        """`kafka.consumer_groups`: the groups (globs) `kafkaops lag` judges unless told others."""
        self._section("kafka")
        return self._consumer_groups

    @property
    def app(self) -> AppSettings:
        return self._section("app")

    @property
    def retry(self) -> RetrySettings:
        return self._section("retry")

    @property
    def thresholds(self) -> Thresholds:
        return self._section("thresholds")

    @property
    def alerts(self) -> AlertSettings:
        return self._section("alerts")

    @property
    def status(self) -> StatusSettings:
        return self._section("status")

    @property
    def filters(self) -> dict[str, str]:
        """`filters`: the context's saved `--where` expressions (`--where @name`)."""
        saved = self.raw.get("filters") or {}
        bad = [name for name, expr in saved.items() if not isinstance(expr, str)]
        if bad:
            raise ConfigError(
                f"filters.{bad[0]} must be an expression in quotes",
                hint="filters: {timeouts: 'error.class.endsWith(\"TimeoutException\")'}",
            )
        return dict(saved)

    @property
    def audit(self) -> AuditSettings:
        return self._section("audit")

    @property
    def purge(self) -> PurgeSettings:
        return self._section("purge")

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
        """Every secret value in this context, so free text can be scrubbed of them. Never
        raises: it serves error reporting, even for sections held back."""
        found: list[str] = []
        for section in SECTIONS:
            for key, value in flatten(self.raw.get(section) or {}, section):
                found += secrets_of(key, value)
        for section in ("kafka", "app", "alerts"):  # as parsed too: a Settings built in code has no raw
            parsed = self._sections[section]
            for key, value in flatten(parsed if isinstance(parsed, Mapping) else asdict(parsed), section):
                found += secrets_of(key, value)
        if self._sections["database"].url:
            found += secrets_of("database.url", self._sections["database"].url)
        return found


def missing_error(section: str, missing: tuple[MissingVariable, ...], context: str | None) -> ConfigError:
    names = ", ".join(f"${{{m.name}}} ({m.key})" for m in missing)
    where = f" of context {context!r}" if context else ""
    return ConfigError(
        f"config section {section}{where} uses environment variable(s) that are not set: {names}",
        hint="export them, or give those values another way (KAFKAOPS_* variables, flags, "
        "${VAR:-default} in the file); `kafkaops config show` marks them",
    )


@dataclass(frozen=True)
class Overrides:
    """What the command line says; it beats the environment and the file."""

    config_path: str | None = None
    context: str | None = None
    database_url: str | None = None
    bootstrap_servers: str | None = None


def expand_env(value: Any, env: Mapping[str, str], *, key: str, missing: list[MissingVariable]) -> Any:
    """Expand `${VAR}` and `${VAR:-default}` in every string, so secrets stay out of the file.

    A variable that is not set is left as written and recorded in `missing`.
    """
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append(MissingVariable(key, name))
            return match.group(0)

        return VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, key=f"{key}.{k}", missing=missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, key=key, missing=missing) for v in value]
    return value


def load_settings(
    overrides: Overrides | None = None, env: Mapping[str, str] | None = None, *, uid: int | None = None
) -> Settings:
    """Resolve one context from file, environment and flags. `uid`: the user kafkaops runs as,
    who must be able to trust the file (default: this process's user)."""
    overrides = overrides or Overrides()
    env = os.environ if env is None else env
    uid = running_uid() if uid is None else uid
    return settings_from(open_config_file(overrides.config_path, env, uid=uid), overrides, env, uid=uid)


def settings_from(
    file: ConfigFile | None, overrides: Overrides, env: Mapping[str, str], *, uid: int | None
) -> Settings:
    """Resolve one context of a config file already found and trusted (or of none)."""
    path = file.path if file else None
    data = file.data if file else {}
    name, context = select_context(data, path, flag=overrides.context, env=env)
    from kafkaops.config.journal import READONLY_KEY, audit_settings, purge_settings, read_only

    check_keys(context, (*SECTIONS, READONLY_KEY), f"context {name!r}")
    origin = f"file {path} (context {name})" if path else "default"
    sources: dict[str, str] = {}
    raw: dict[str, dict[str, Any]] = {}
    missing: list[MissingVariable] = []
    for section in SECTIONS:
        value = context.get(section) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config section '{section}' must be a mapping")
        check_keys(value, SECTION_KEYS[section], section)
        if section == "kafka" and file is not None:
            check_code_properties(file, value, uid)
        raw[section] = expand_env(dict(value), env, key=section, missing=missing)
        for key in value:
            sources[f"{section}.{key}"] = origin
    _check_levels(raw["thresholds"])
    if not isinstance(raw["database"].get("columns") or {}, dict):
        raise ConfigError(
            "database.columns must map logical column names to physical ones (event_key: kafka_key)"
        )
    check_keys(raw["database"].get("columns") or {}, LOGICAL_COLUMNS + OPTIONAL_COLUMNS, "database.columns")
    overridden = _apply_overrides(raw, sources, overrides, env)
    missing = [m for m in missing if m.key not in overridden]
    by_section: dict[str, tuple[MissingVariable, ...]] = {}
    for m in missing:
        section = m.key.split(".", 1)[0]
        by_section[section] = (*by_section.get(section, ()), m)

    from kafkaops.config.sections import alert_settings, app_settings, status_settings

    def parsed(section: str, parse: Any) -> Any:
        return None if section in by_section else parse(raw[section])

    return Settings(
        context=name,
        config_path=path,
        config_origin=file.origin if file else None,
        database=parsed("database", _database),
        kafka=parsed(
            "kafka",
            lambda r: {str(k): _stringify(v, f"kafka.{k}") for k, v in r.items() if k != CONSUMER_GROUPS_KEY},
        ),
        consumer_groups=parsed("kafka", _consumer_groups),
        app=parsed("app", app_settings),
        retry=parsed("retry", _retry),
        thresholds=parsed("thresholds", _thresholds),
        alerts=parsed("alerts", alert_settings),
        status=parsed("status", status_settings),
        sources=sources,
        missing=by_section,
        raw=raw,
        audit=parsed("audit", audit_settings),
        purge=parsed("purge", purge_settings),
        readonly=read_only(context, env, name=name, path=path),
    )


def _apply_overrides(
    raw: dict[str, dict[str, Any]], sources: dict[str, str], overrides: Overrides, env: Mapping[str, str]
) -> set[str]:
    """Environment beats the file, flags beat both. Returns the dotted keys overridden."""
    changed: dict[str, tuple[str, str, str]] = {}  # dotted key -> (section, key, value)...
    if env.get("KAFKAOPS_DATABASE_URL"):
        changed["database.url"] = ("database", "url", env["KAFKAOPS_DATABASE_URL"])
        sources["database.url"] = "env KAFKAOPS_DATABASE_URL"
    if env.get("KAFKAOPS_BOOTSTRAP_SERVERS"):
        changed["kafka.bootstrap.servers"] = ("kafka", "bootstrap.servers", env["KAFKAOPS_BOOTSTRAP_SERVERS"])
        sources["kafka.bootstrap.servers"] = "env KAFKAOPS_BOOTSTRAP_SERVERS"
    for var, value in env.items():
        if var.startswith("KAFKAOPS_KAFKA_") and len(var) > len("KAFKAOPS_KAFKA_"):
            prop = var[len("KAFKAOPS_KAFKA_") :].lower().replace("_", ".")
            changed[f"kafka.{prop}"] = ("kafka", prop, value)
            sources[f"kafka.{prop}"] = f"env {var}"
    if overrides.database_url:
        changed["database.url"] = ("database", "url", overrides.database_url)
        sources["database.url"] = "flag --database-url"
    if overrides.bootstrap_servers:
        changed["kafka.bootstrap.servers"] = ("kafka", "bootstrap.servers", overrides.bootstrap_servers)
        sources["kafka.bootstrap.servers"] = "flag --bootstrap-servers"
    for section, key, value in changed.values():
        raw[section][key] = value
    return set(changed)


def _check_levels(thresholds: Mapping[str, Any]) -> None:
    for name, levels in THRESHOLD_LEVELS.items():
        value = thresholds.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"thresholds.{name} must be a mapping with {'/'.join(levels)}")
        check_keys(value, levels, f"thresholds.{name}")


def flatten(mapping: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        dotted = f"{prefix}.{key}"
        if isinstance(value, dict):
            items += flatten(value, dotted)
        else:
            items.append((dotted, value))
    return items


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
    columns = raw.get("columns") or {}
    if not all(isinstance(v, str) and v for v in columns.values()):
        raise ConfigError(
            "database.columns must map logical column names to physical ones (event_key: kafka_key)"
        )
    id_type = str(raw.get("id_type", "auto")).lower()
    if id_type not in {"auto", "bigint", "uuid"}:
        raise ConfigError(f"database.id_type must be auto, bigint or uuid, not {id_type!r}")
    from kafkaops.config.sections import positive_duration

    return DatabaseSettings(
        lock_timeout=positive_duration(raw, "lock_timeout", DatabaseSettings.lock_timeout, "database"),
        url=_text(raw, "url", "database", None),
        table=_text(raw, "table", "database", "failed_kafka_events") or "failed_kafka_events",
        schema=_text(raw, "schema", "database", None),
        id_type=id_type,
        columns={c: str(columns.get(c, c)) for c in LOGICAL_COLUMNS + OPTIONAL_COLUMNS},
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
        or not all(isinstance(s, str) and s.strip() for s in suffixes)
    ):
        raise ConfigError("retry.dlq_suffixes must be a non-empty list of suffixes (.dlq, -dlt, .DLT)")
    for key, value in (("dlq_suffix", suffix), *(("dlq_suffixes", s) for s in suffixes)):
        if not is_valid_topic_name(f"t{value}"):
            raise ConfigError(
                f"retry.{key} {value!r} has characters a Kafka topic name cannot have",
                hint="use a-z, A-Z, 0-9, '.', '_' and '-' (.dlq, -dlt, .DLT)",
            )
    from kafkaops.config.sections import positive_duration

    return RetrySettings(
        schedule=schedule,
        metrics_lock_timeout=positive_duration(
            raw, "metrics_lock_timeout", defaults.metrics_lock_timeout, "retry"
        ),
        max_retries=_int(raw, "max_retries", defaults.max_retries, "retry", 1),
        batch_size=_int(raw, "batch_size", defaults.batch_size, "retry", 1, MAX_BATCH_SIZE),
        dlq_suffix=suffix,
        delivery_timeout=_duration(raw, "delivery_timeout", defaults.delivery_timeout, "retry"),
        breaker_threshold=_int(raw, "breaker_threshold", defaults.breaker_threshold, "retry", 1),
        dlq_suffixes=tuple(dict.fromkeys(suffixes)),
    )


def _consumer_groups(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get(CONSUMER_GROUPS_KEY)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"kafka.{CONSUMER_GROUPS_KEY} must be a list of consumer group names or globs "
            "(casino-events-*), not " + repr(value)
        )
    return tuple(dict.fromkeys(v.strip() for v in value))


def _ratio(raw: Mapping[str, Any], key: str, default: float, section: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{section}.{key} must be a number above 0 and at most 1, not {value!r}")
    return float(value)


def _thresholds(raw: Mapping[str, Any]) -> Thresholds:
    d = Thresholds()

    def level(name: str) -> Mapping[str, Any]:
        return raw.get(name) or {}

    pending, age = level("pending_events"), level("oldest_pending_age")
    s = "thresholds"
    return Thresholds(
        pending_warning=_int(pending, "warning", d.pending_warning, f"{s}.pending_events"),
        pending_critical=_int(pending, "critical", d.pending_critical, f"{s}.pending_events"),
        oldest_pending_warning=_duration(age, "warning", d.oldest_pending_warning, f"{s}.oldest_pending_age"),
        oldest_pending_critical=_duration(
            age, "critical", d.oldest_pending_critical, f"{s}.oldest_pending_age"
        ),
        breaker_open_critical=_duration(
            level("circuit_breaker_open"), "critical", d.breaker_open_critical, f"{s}.circuit_breaker_open"
        ),
        dlq_failed_critical=_int(
            level("dlq_failed_count"), "critical", d.dlq_failed_critical, f"{s}.dlq_failed_count"
        ),
        thread_pool_queue_warning=_int(
            level("thread_pool_queue"), "warning", d.thread_pool_queue_warning, f"{s}.thread_pool_queue"
        ),
        thread_pool_queue_warning_ratio=_ratio(
            level("thread_pool_queue"),
            "warning_ratio",
            d.thread_pool_queue_warning_ratio,
            f"{s}.thread_pool_queue",
        ),
        **_publish_thresholds(level("publish_latency"), level("publish_error_ratio"), d),
        consumer_lag_warning=_duration(
            level("consumer_lag"), "warning", d.consumer_lag_warning, f"{s}.consumer_lag"
        ),
        consumer_lag_critical=_duration(
            level("consumer_lag"), "critical", d.consumer_lag_critical, f"{s}.consumer_lag"
        ),
        retry_last_run_warning=_duration(
            level("retry_last_run"), "warning", d.retry_last_run_warning, f"{s}.retry_last_run"
        ),
    )


def _publish_thresholds(
    latency: Mapping[str, Any], errors: Mapping[str, Any], d: Thresholds
) -> dict[str, Any]:
    s = "thresholds"
    lat, err = f"{s}.publish_latency", f"{s}.publish_error_ratio"
    latency_warning = _duration(latency, "warning", d.publish_latency_warning, lat)
    latency_critical = _duration(latency, "critical", d.publish_latency_critical, lat)
    ratio_warning = _percent(errors, "warning", d.publish_error_ratio_warning, err)
    ratio_critical = _percent(errors, "critical", d.publish_error_ratio_critical, err)
    if latency_warning > latency_critical:
        raise ConfigError(f"{lat}: warning must not be above critical")
    if ratio_warning > ratio_critical:
        raise ConfigError(f"{err}: warning must not be above critical")
    return {
        "publish_latency_warning": latency_warning,
        "publish_latency_critical": latency_critical,
        "publish_error_ratio_warning": ratio_warning,
        "publish_error_ratio_critical": ratio_critical,
    }


def _percent(raw: Mapping[str, Any], key: str, default: float, section: str) -> float:
    """A share: `1%`, `0.5 %` or a number above 0 and at most 1 (0.01)."""
    value = raw.get(key, default)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1])
        except ValueError:
            number = -1.0
        if not 0 < number <= 100:
            raise ConfigError(f"{section}.{key} must be a share above 0% and at most 100%, not {value!r}")
        return number / 100
    return _ratio(raw, key, default, section)
