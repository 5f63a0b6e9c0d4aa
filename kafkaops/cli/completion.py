"""Shell completion of option values: statuses, grouping keys, and context names read from the
config file without a YAML parser (completion runs on every Tab)."""

from __future__ import annotations

import os
import re
from typing import Any

import click


def complete_statuses(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import STATUSES

    return _complete_list(STATUSES, incomplete, upper=True)


def complete_group_by(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import GROUP_KEYS

    return _complete_list(GROUP_KEYS, incomplete)


def complete_purgeable(ctx: click.Context, incomplete: str) -> list[str]:
    from kafkaops.db.statuses import PURGEABLE, PURGEABLE_WHEN_NAMED

    return _complete_list(PURGEABLE + PURGEABLE_WHEN_NAMED, incomplete, upper=True)


def _complete_list(values: tuple[str, ...], incomplete: str, *, upper: bool = False) -> list[str]:
    """`DLQ,PEN` completes to `DLQ,PENDING`: comma-separated lists complete their last item."""
    head, _, last = incomplete.rpartition(",")
    prefix = head + "," if head else ""
    last = last.upper() if upper else last.lower()
    done = set(head.upper().split(",") if upper else head.lower().split(","))
    return [prefix + v for v in values if v.startswith(last) and v not in done]


def complete_contexts(ctx: click.Context, incomplete: str) -> list[str]:
    """Context names from the config file kafkaops would read (found by the one lookup, and
    only if it is trusted), those `--context` can select; nothing when there is none."""
    from kafkaops.cli.state import AppState
    from kafkaops.common.errors import ConfigError
    from kafkaops.config.file import find_config_file, running_uid, selectable_contexts

    try:
        app = ctx.find_root().obj
        # --config, before or after the subcommand (taken while completing too)
        explicit = app.overrides.config_path if isinstance(app, AppState) else None
        found = find_config_file(explicit, os.environ)
        if found is None:
            return []
        names = context_names_of(_trusted_text(found.path, running_uid()))
    except (OSError, ConfigError):
        return []
    return [n for n in selectable_contexts(names) if n.startswith(incomplete)]


def _trusted_text(path: Any, uid: int | None) -> str:
    """The file's text, read only if `distrust` finds nothing against it."""
    from kafkaops.config.file import decode, distrust

    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if uid is not None and distrust(st.st_mode, st.st_uid, uid):
            return ""
        return decode(fh.read(), path)


def context_names_of(text: str) -> list[str]:
    """The keys under the top-level `contexts:` of a config file, in block style, found with a
    line scan: importing a YAML parser costs more than this."""
    names: list[str] = []
    inside, indent = False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#", 1)[0].rstrip() == "contexts:"
            indent = None
            continue
        if not inside:
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width == indent:
            match = re.match(r"\s*(\"[^\"]+\"|'[^']+'|[^:#]+?)\s*:(\s|$)", line)
            if match:
                names.append(match.group(1).strip("\"'"))
    return names


# -- values from the cluster and the table: bounded, silent ----------------------------------

COMPLETION_SECONDS = 2.0  # a Tab that waits longer than this offers nothing instead
COMPLETION_IDS = 100


def complete_dlq_topics(ctx: click.Context, incomplete: str) -> list[str]:
    """The cluster's DLQ topics (named by retry.dlq_suffixes), for `dlq tail` and `dlq replay`."""
    return _bounded(lambda: _topics(ctx, incomplete, dlq=True))


def complete_source_topics(ctx: click.Context, incomplete: str) -> list[str]:
    """The cluster's topics that are not DLQs, for `dlq ensure`."""
    return _bounded(lambda: _topics(ctx, incomplete, dlq=False))


def complete_event_ids(ctx: click.Context, incomplete: str) -> list[str]:
    """Ids from the failed-events table starting with what was typed, those needing attention
    first (at most COMPLETION_IDS)."""
    return _bounded(lambda: _event_ids(ctx, incomplete))


def _bounded(find: Any) -> list[str]:
    """`find()` in a daemon thread, given COMPLETION_SECONDS; nothing when it fails or is late,
    and nothing logged: a completion that printed an error would land in the user's prompt."""
    import logging
    import threading

    logging.disable(logging.CRITICAL)
    found: list[list[str]] = []

    def run() -> None:
        try:
            found.append(find())
        except Exception:  # any failure: no completion, never a message
            found.append([])

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(COMPLETION_SECONDS)
    return found[0] if found else []


def _settings(ctx: click.Context) -> Any:
    """The settings the command would use (its --context and --config), without the warnings
    a command prints about its config file."""
    from kafkaops.cli.state import AppState
    from kafkaops.config.file import open_config_file, running_uid
    from kafkaops.config.settings import Overrides, settings_from

    app = ctx.find_root().obj
    overrides = app.overrides if isinstance(app, AppState) else Overrides()
    file = open_config_file(overrides.config_path, os.environ)
    return settings_from(file, overrides, os.environ, uid=running_uid())


def _topics(ctx: click.Context, incomplete: str, *, dlq: bool) -> list[str]:
    from kafkaops.kafka.metadata import topic_names

    settings = _settings(ctx)
    props = settings.require_kafka()
    catalog = settings.retry.dlq_catalog
    names = topic_names(props, timeout=COMPLETION_SECONDS)
    return [n for n in names if n.startswith(incomplete) and catalog.is_dlq(n) == dlq]


def _event_ids(ctx: click.Context, incomplete: str) -> list[str]:
    import sqlalchemy as sa

    from kafkaops.db.connections import Connections
    from kafkaops.db.failed_events import severity_order

    conns = Connections(_settings(ctx))
    try:
        table = conns.table
        query = sa.select(table.c.id).order_by(severity_order(table), table.c.id.desc())
        if incomplete:
            query = query.where(sa.cast(table.c.id, sa.String).startswith(incomplete, autoescape=True))
        with conns.connect() as conn:
            return [str(i) for i in conn.execute(query.limit(COMPLETION_IDS)).scalars()]
    finally:
        conns.close()
