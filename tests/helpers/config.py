"""Writing kafkaops config files: the one way every test makes one."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tests.conftest import TestDatabase


def write_config(
    path: Path,
    db: TestDatabase | None = None,
    *,
    kafka: dict[str, Any] | None = None,
    text: str | None = None,
    contexts: dict[str, Any] | None = None,
    current: str | None = "test",
    **sections: Any,
) -> Path:
    """Write the config file `path` and return it.

    By default one context, `test` (current): `database` pointing at `db` (its URL, schema,
    table and renamed columns), `kafka` as its librdkafka properties, and each of `sections`
    (`database={"lock_timeout": "1s"}` adds to what `db` gave). `contexts` gives every context
    whole instead (`current=None` leaves `current-context` out), and `text` the file's exact
    text (dedented), for what only raw YAML can say: syntax errors, duplicate keys, tags.
    """
    if text is not None:
        path.write_text(textwrap.dedent(text))
        return path
    if contexts is None:
        context: dict[str, Any] = {}
        if db is not None:
            context["database"] = {"url": db.url, "schema": db.schema, "table": db.settings.table}
            renamed = {k: v for k, v in db.settings.columns.items() if k != v}
            if renamed:
                context["database"]["columns"] = renamed
        if kafka:
            context["kafka"] = kafka
        for name, value in sections.items():
            both = isinstance(value, dict) and isinstance(context.get(name), dict)
            context[name] = {**context[name], **value} if both else value
        contexts = {current or "test": context}
    doc: dict[str, Any] = (
        {"contexts": contexts} if current is None else {"current-context": current, "contexts": contexts}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
