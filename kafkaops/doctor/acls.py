"""The Kafka ACLs each command needs: one table, which docs/acls.md, `kafkaops doctor` and the
tests of the secure broker all read.

A permission names its resource by a template over the command's topics: ``{dlq}`` (a DLQ
topic), ``{target}`` (a topic `retry` or `dlq replay` writes to), ``{original}`` (the topic a
DLQ belongs to), ``{source}`` (the topic `dlq ensure` makes a DLQ for); ``{suffix}`` is the
DLQ suffix `retry` and `dlq ensure` write to (``retry.dlq_suffix``, `.dlq` by default). Read,
Write and Create imply Describe in Kafka, so no Describe is listed beside them.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafkaops.dlq.listing import REPLAY_GROUP_PREFIX, replay_group_for
from kafkaops.dlq.plan import ReplayRequest
from kafkaops.kafka.dlq_names import DEFAULT_DLQ_SUFFIX

__all__ = [
    "COMMANDS",
    "DEFAULT_COMMANDS",
    "PERMISSIONS",
    "REPLAY_GROUP",
    "REPLAY_TRANSACTIONAL_ID",
    "Binding",
    "Permission",
    "bindings",
    "markdown_table",
]

# `dlq replay`'s group and transactional.id for a DLQ topic, by their owner (kafkaops/dlq/):
# kafkaops-replay.<dlq> and kafkaops-replay:kafkaops-replay.<dlq>:<dlq> (`--group G` makes
# them G and kafkaops-replay:G:<dlq>).
REPLAY_GROUP = replay_group_for("{dlq}")
REPLAY_TRANSACTIONAL_ID = ReplayRequest(source="{dlq}").transactional_id
TRANSACTIONAL_ID_PREFIX = REPLAY_TRANSACTIONAL_ID.split(REPLAY_GROUP_PREFIX)[0]


@dataclass(frozen=True)
class Permission:
    """One ACL a command needs: ``operation`` on ``resource`` (topic, group,
    transactional_id) named by ``name`` (a template), and why; ``prefix`` is the PREFIXED
    ACL that covers every such name ({topics} when it is the user's own topic prefix)."""

    resource: str
    name: str
    operation: str
    why: str
    prefix: str = "{topics}"


@dataclass(frozen=True)
class Binding:
    """A permission for concrete names: what an ACL grants and what `doctor` checks."""

    command: str
    resource: str
    name: str
    operation: str
    why: str

    @property
    def principal_acl(self) -> str:
        """The `kafka-acls` options that grant it (after ``--allow-principal User:...``)."""
        option = {"topic": "--topic", "group": "--group", "transactional_id": "--transactional-id"}[
            self.resource
        ]
        return f"--operation {self.operation} {option} {self.name}"


PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    "status": (Permission("topic", "{dlq}", "Describe", "the DLQ topics and their offsets"),),
    "retry": (
        Permission("topic", "{target}", "Write", "publish each row to its topic"),
        Permission("topic", "{target}{suffix}", "Write", "send a row past its attempts to its DLQ"),
    ),
    "dlq list": (
        Permission("topic", "{dlq}", "Read", "count and read the DLQ records"),
        Permission(
            "topic", "{original}", "Describe", "tell whether the original topic exists (else: NOT AUTHORIZED)"
        ),
    ),
    "dlq tail": (Permission("topic", "{dlq}", "Read", "read the DLQ records"),),
    "dlq stats": (Permission("topic", "{dlq}", "Read", "read every DLQ record to count it"),),
    "dlq ensure": (
        Permission("topic", "{source}", "Describe", "see the source and its partitions"),
        Permission("topic", "{source}{suffix}", "Create", "create the missing DLQ topic"),
        Permission("topic", "{source}{suffix}", "Describe", "see whether the DLQ topic exists"),
    ),
    "dlq replay": (
        Permission("topic", "{dlq}", "Read", "read the DLQ records"),
        Permission("group", REPLAY_GROUP, "Read", "commit the replay's progress", REPLAY_GROUP_PREFIX),
        Permission(
            "transactional_id",
            REPLAY_TRANSACTIONAL_ID,
            "Write",
            "publish and commit in one transaction",
            TRANSACTIONAL_ID_PREFIX,
        ),
        Permission("topic", "{target}", "Write", "publish the records to their topic"),
    ),
    "probe": (
        Permission("topic", "{probe}", "Write", "write the probe records (Create too for --ensure)"),
        Permission("topic", "{probe}", "Read", "read them back"),
    ),
}

COMMANDS: tuple[str, ...] = tuple(PERMISSIONS)
# What `doctor` checks when no command is named: the pipeline's commands. `probe` writes to a
# topic of its own that a cluster need not have; it is checked when named.
DEFAULT_COMMANDS: tuple[str, ...] = tuple(c for c in COMMANDS if c != "probe")


def kind_of(template: str) -> str:
    """The one kind of topic a template names (``dlq``, ``target``, ...)."""
    (kind,) = {field for _, field, _, _ in string.Formatter().parse(template) if field} - {"suffix"}
    return kind


def bindings(
    command: str, names: Mapping[str, Iterable[str]], *, suffix: str = DEFAULT_DLQ_SUFFIX
) -> list[Binding]:
    """Every ACL ``command`` needs for the topics in ``names`` (``{"dlq": [...], "target":
    [...]}``), in the table's order; a permission whose kind is not given is left out."""
    result: list[Binding] = []
    for permission in PERMISSIONS[command]:
        kind = kind_of(permission.name)
        for value in dict.fromkeys(names.get(kind, ())):
            name = permission.name.format(**{kind: value, "suffix": suffix})
            result.append(Binding(command, permission.resource, name, permission.operation, permission.why))
    return result


_RESOURCE_WORDS = {"topic": "topic", "group": "group", "transactional_id": "transactional id"}


def markdown_table() -> str:
    """The table of docs/acls.md: command, resource, operation, literal name, prefixed name."""
    lines = [
        "| Command | Operation | Resource | Literal name | Prefixed alternative | Why |",
        "|---|---|---|---|---|---|",
    ]
    for command, permissions in PERMISSIONS.items():
        for p in permissions:
            name = p.name.replace("{suffix}", DEFAULT_DLQ_SUFFIX).replace("{", "<").replace("}", ">")
            prefix = p.prefix.replace("{", "<").replace("}", ">")
            lines.append(
                f"| `{command}` | {p.operation} | {_RESOURCE_WORDS[p.resource]} | `{name}` | "
                f"`{prefix}` | {p.why} |"
            )
    return "\n".join(lines) + "\n"


TABLE_START = "<!-- acl-table: generated from kafkaops/doctor/acls.py by `make docs` -->"
TABLE_END = "<!-- acl-table end -->"


def page_with_table(page: str) -> str:
    """``page`` (docs/acls.md) with the text between its table markers made ``markdown_table()``."""
    head, found, rest = page.partition(TABLE_START)
    _, found_end, tail = rest.partition(TABLE_END)
    if not found or not found_end:
        raise ValueError("the page has no ACL table markers")
    return f"{head}{TABLE_START}\n{markdown_table()}{TABLE_END}{tail}"
