"""The settings of what kafkaops keeps of its own acts: the `audit:` section (the journal's
sinks and whether a command may act without it), the `purge:` section (where purges archive
what they delete) and a context's `readonly: true` (or `$KAFKAOPS_READONLY`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkaops.common.errors import ConfigError
from kafkaops.kafka.topics import TOPIC_NAME_RULE, is_valid_topic_name

READONLY_KEY = "readonly"
READONLY_ENV = "KAFKAOPS_READONLY"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class AuditSettings:
    """`audit:`: the journal. The table `kafkaops_audit` always; `file` adds a JSON Lines file,
    `topic` a Kafka topic (the context's cluster). `required: false` lets a command act when its
    record cannot be written (with a warning)."""

    required: bool = True
    file: Path | None = None
    topic: str | None = None


@dataclass(frozen=True)
class PurgeSettings:
    """`purge:`: `archive_dir`, the folder `failed purge` archives into when no --archive."""

    archive_dir: Path | None = None


@dataclass(frozen=True)
class ReadOnly:
    """Whether this context refuses every command that writes to the database or Kafka, and
    what said so (shown in the refusal's hint)."""

    on: bool = False
    why: str = ""


def audit_settings(raw: Mapping[str, Any]) -> AuditSettings:
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise ConfigError(f"audit.required must be true or false, not {required!r}")
    topic = raw.get("topic")
    if topic is not None and (not isinstance(topic, str) or not is_valid_topic_name(topic)):
        raise ConfigError(f"audit.topic must be a Kafka topic name ({TOPIC_NAME_RULE}), not {topic!r}")
    return AuditSettings(required=required, file=_path(raw, "file", "audit"), topic=topic or None)


def purge_settings(raw: Mapping[str, Any]) -> PurgeSettings:
    return PurgeSettings(archive_dir=_path(raw, "archive_dir", "purge"))


def read_only(
    context: Mapping[str, Any], env: Mapping[str, str], *, name: str | None, path: Path | None
) -> ReadOnly:
    """`readonly: true` on the context, or $KAFKAOPS_READONLY set true. Either one is enough:
    the environment can make a context read-only, never lift what its file says."""
    value = context.get(READONLY_KEY, False)
    if not isinstance(value, bool):
        raise ConfigError(f"readonly in context {name!r} must be true or false, not {value!r}")
    if value:
        return ReadOnly(True, f"readonly: true in {path} (context {name})")
    raw = env.get(READONLY_ENV)
    if raw is None or raw.strip().lower() in _FALSE:
        return ReadOnly()
    if raw.strip().lower() in _TRUE:
        return ReadOnly(True, f"${READONLY_ENV} is set ({raw.strip()})")
    raise ConfigError(f"${READONLY_ENV} must be 1 or 0 (true or false), not {raw!r}")


def _path(raw: Mapping[str, Any], key: str, section: str) -> Path | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key} must be a path, not {value!r}")
    return Path(value).expanduser()
