"""What `kafkaops config show` prints: every resolved value, masked, with where it came from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kafkaops.common.secrets import MASK, is_secret_key, is_url, mask_value
from kafkaops.config.settings import LOGICAL_COLUMNS, SECTIONS, VARIABLE, Settings, flatten
from kafkaops.kafka.tls import INLINE_CERTIFICATE_KEYS, certificates_summary


def describe(settings: Settings) -> list[dict[str, str]]:
    """The resolved values that matter to an operator, masked, each with its origin. A value
    that uses an unset variable is shown as written, the variable marked `<unset: ${VAR}>`."""
    rows: list[dict[str, str]] = [
        # First, in every format: which file was read decides everything below it.
        {
            "key": "config_file",
            "value": str(settings.config_path) if settings.config_path else "(none found)",
            "source": f"from {settings.config_origin}" if settings.config_origin else "lookup",
        },
        {"key": "context", "value": settings.context or "(none)", "source": "selection"},
        # Whether the commands that write are refused here, and what says so.
        {
            "key": "readonly",
            "value": "true" if settings.readonly.on else "false",
            "source": settings.readonly.why or "default",
        },
    ]

    def add(key: str, value: Any, source: str | None = None) -> None:
        shown = mask_value(key, value)
        if key.removeprefix("kafka.") in INLINE_CERTIFICATE_KEYS and isinstance(shown, str):
            shown = certificates_summary(shown)
        if isinstance(shown, list):
            shown = ", ".join(str(v) for v in shown)
        rows.append(
            {
                "key": key,
                "value": "" if shown is None else str(shown),
                "source": source or settings.sources.get(key, "default"),
            }
        )

    for section in SECTIONS:
        if section in settings.missing:
            unset = {m.key: m for m in settings.missing[section]}
            for key, value in flatten(settings.raw.get(section) or {}, section):
                top = ".".join(key.split(".")[:2])
                source = settings.sources.get(key) or settings.sources.get(top)
                if key in unset:
                    rows.append({"key": key, "value": _unset(key, value), "source": source or "default"})
                else:
                    add(key, value, source)
            continue
        _describe_section(settings, section, add)
    return rows


def _unset(key: str, template: Any) -> str:
    """`<unset: ${VAR}>` in place of each missing variable; the rest masked as usual."""
    if isinstance(template, list):
        return ", ".join(_unset(key, t) for t in template)
    text = str(template)
    names = " ".join(f"<unset: {m.group(0)}>" for m in VARIABLE.finditer(text))
    if is_secret_key(key) and not is_url(text):
        return names or MASK
    masked = mask_value(key, text)
    if masked != text:
        # Masked first: a variable inside a secret part disappears into ****, so say which.
        return f"{masked} {names}".strip()
    return VARIABLE.sub(lambda m: f"<unset: {m.group(0)}>", text)


def _describe_section(settings: Settings, section: str, add: Any) -> None:
    if section == "database":
        db = settings.database
        add("database.url", db.url)
        add("database.table", db.table)
        add("database.schema", db.schema)
        add("database.id_type", db.id_type)
        for logical in LOGICAL_COLUMNS:
            if db.physical(logical) != logical:
                add(
                    f"database.columns.{logical}",
                    db.physical(logical),
                    settings.sources.get("database.columns"),
                )
    elif section == "kafka":
        for key in sorted(settings.kafka):
            add(f"kafka.{key}", settings.kafka[key])
        if settings.consumer_groups:
            add("kafka.consumer_groups", ", ".join(settings.consumer_groups))
    elif section == "retry":
        r = settings.retry
        add("retry.schedule", ", ".join(_fmt(t) for t in r.schedule))
        add("retry.max_retries", r.max_retries)
        add("retry.batch_size", r.batch_size)
        add("retry.dlq_suffix", r.dlq_suffix)
        add("retry.dlq_suffixes", ", ".join(r.dlq_suffixes))
        add("retry.delivery_timeout", _fmt(r.delivery_timeout))
        add("retry.breaker_threshold", r.breaker_threshold)
    elif section == "thresholds":
        t = settings.thresholds
        src = settings.sources.get
        add(
            "thresholds.pending_events",
            f"warning > {t.pending_warning}, critical > {t.pending_critical}",
            src("thresholds.pending_events"),
        )
        add(
            "thresholds.oldest_pending_age",
            f"warning > {_fmt(t.oldest_pending_warning)}, critical > {_fmt(t.oldest_pending_critical)}",
            src("thresholds.oldest_pending_age"),
        )
        add(
            "thresholds.circuit_breaker_open",
            f"critical when OPEN > {_fmt(t.breaker_open_critical)}",
            src("thresholds.circuit_breaker_open"),
        )
        add(
            "thresholds.dlq_failed_count",
            f"critical > {t.dlq_failed_critical}",
            src("thresholds.dlq_failed_count"),
        )
        add(
            "thresholds.thread_pool_queue",
            f"warning > {t.thread_pool_queue_warning} or > {t.thread_pool_queue_warning_ratio:.0%} of capacity",
            src("thresholds.thread_pool_queue"),
        )
        add(
            "thresholds.publish_latency",
            f"p99 warning > {_fmt_ms(t.publish_latency_warning)}, critical > {_fmt_ms(t.publish_latency_critical)}",
            src("thresholds.publish_latency"),
        )
        add(
            "thresholds.publish_error_ratio",
            f"warning > {t.publish_error_ratio_warning:.1%}, critical > {t.publish_error_ratio_critical:.1%}",
            src("thresholds.publish_error_ratio"),
        )
        add(
            "thresholds.consumer_lag",
            f"warning > {_fmt(t.consumer_lag_warning)} behind, STOP when no commit for > "
            f"{_fmt(t.consumer_lag_critical)}",
            src("thresholds.consumer_lag"),
        )
        add(
            "thresholds.retry_last_run",
            f"warning > {_fmt(t.retry_last_run_warning)} ago while rows are due",
            src("thresholds.retry_last_run"),
        )
    else:  # app, alerts, status: shown as written, masked
        for key, value in flatten(settings.raw.get(section) or {}, section):
            add(key, value)


def _fmt_ms(delta: timedelta) -> str:
    return f"{delta.total_seconds() * 1000:g} ms"


def _fmt(delta: timedelta) -> str:
    from kafkaops.common.timeparse import format_duration

    return format_duration(delta)
