"""The columns of tabular output (`Field`) and how a status is coloured: what commands declare
and both the output layer and the table renderer read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One column of tabular output.

    `kind` says how a table shows it: `text`, `long` (free text that gives way first on a narrow
    terminal), `topic` (gives way last, cut in the middle), `int` (a count), `id`, `status`
    (coloured), `exists` (a flag shown `yes` or `MISSING`, as `status` shows it), `time`, `age` (computed from `source`, a time column; left out of machine
    formats). A `text` field named `status`, `id`/`*_id`, `count` or `topic`/`*_topic` is taken
    as that kind. A table shows `header`, else the name in capitals.
    """

    name: str
    header: str | None = None
    kind: str = "text"
    source: str | None = None  # for `age`: the time column it is computed from

    @property
    def title(self) -> str:
        return self.header or self.name.upper().replace("_", " ")

    @property
    def role(self) -> str:
        if self.kind != "text":
            return self.kind
        if self.name == "status":
            return "status"
        if self.name == "id" or self.name.endswith("_id"):
            return "id"
        if self.name == "count":
            return "int"
        if self.name == "topic" or self.name.endswith("_topic"):
            return "topic"
        return "text"


def exists_word(exists: bool | None) -> str:
    """How a table says whether a topic exists, in `status` and in `dlq list` alike. None: the
    principal may not describe it, so whether it exists is unknown."""
    if exists is None:
        return "NOT AUTHORIZED"
    return "yes" if exists else "MISSING"


EXISTS_STYLES = {"MISSING": "yellow", "NOT AUTHORIZED": "yellow"}
STATUS_STYLES = {"DLQ_FAILED": "bold red", "PENDING": "yellow", "DLQ": "magenta", "RESOLVED": "green"}
