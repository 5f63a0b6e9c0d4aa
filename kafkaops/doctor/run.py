"""`kafkaops doctor`: log in, find the topics at hand, tell each permission the named commands
need, then the database's side. Read-only: nothing is created, written or committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kafkaops.common.errors import UsageError
from kafkaops.doctor.acls import COMMANDS, DEFAULT_COMMANDS
from kafkaops.doctor.report import UNKNOWN, DoctorReport

if TYPE_CHECKING:
    from kafkaops.db.connections import Connections


def parse_commands(words: Sequence[str]) -> tuple[str, ...]:
    """The commands named (`retry`, `dlq replay`, or `replay` for short); when none, all but
    `probe` (DEFAULT_COMMANDS)."""
    if not words:
        return DEFAULT_COMMANDS
    joined = " ".join(words)
    found: list[str] = []
    rest = joined
    while rest:
        match = next(
            (c for c in sorted(COMMANDS, key=len, reverse=True) if rest == c or rest.startswith(c + " ")),
            None,
        )
        if match is None:
            word = rest.split(" ", 1)[0]
            short = f"dlq {word}"
            if short not in COMMANDS:
                named = " ".join(rest.split(" ", 2)[:2]) if word == "dlq" else word
                raise UsageError(
                    f"doctor knows no command {named!r}", hint=f"name any of: {', '.join(COMMANDS)}"
                )
            match, rest = short, rest[len(word) :].strip()
        else:
            rest = rest[len(match) :].strip()
        found.append(match)
    return tuple(dict.fromkeys(found))


def run_doctor(
    conns: Connections, commands: Sequence[str], topics: Sequence[str], timeout: float
) -> DoctorReport:
    from kafkaops.doctor.database import check_database
    from kafkaops.doctor.kafka_checks import NO_AUTO_CREATE, check_kafka
    from kafkaops.kafka.errors import principal
    from kafkaops.kafka.metadata import cluster_metadata
    from kafkaops.probe.model import PROBE_TOPIC

    settings = conns.settings
    props = settings.require_kafka()
    report = DoctorReport(principal(props), tuple(commands))
    targets = list(topics)
    if settings.database.url:
        db_checks, db_topics = check_database(conns)
        report.checks += db_checks
        targets += db_topics
    else:
        report.notes.append("no database configured: only the Kafka side was checked")
    # Logs in (a rejected login or TLS failure ends here, as an error) and lists what the
    # principal may see.
    _info, metadata, _client = cluster_metadata({**props, **NO_AUTO_CREATE}, timeout)
    catalog = settings.retry.dlq_catalog
    targets = list(dict.fromkeys(t for t in targets if not catalog.is_dlq(t)))
    dlqs = list(dict.fromkeys([*catalog.layout(metadata), *(catalog.dlq_for(t) for t in targets)]))
    originals = list(dict.fromkeys(catalog.source_of(d) for d in dlqs))
    names = {
        "target": targets,
        "source": targets,
        "dlq": dlqs,
        "original": originals,
        "probe": [PROBE_TOPIC],
    }
    # A replay writes to the topics its DLQ records came from.
    names_of = {c: {**names, "target": originals} if c == "dlq replay" else names for c in commands}
    if not targets and not dlqs:
        report.notes.append(
            "no topic to check: no rows need a DLQ and no DLQ topic is visible; name topics with --topic"
        )
    kafka_checks = check_kafka(conns, commands, names_of, catalog.write_suffix, timeout)
    report.checks = kafka_checks + report.checks
    if any(c.state == UNKNOWN and c.resource.startswith("transactional id") for c in kafka_checks):
        report.notes.append(
            "a literal ACL on a transactional id shows only to a principal that may read the ACLs "
            "(Describe on the cluster); a PREFIXED one (kafkaops-replay:) is told either way"
        )
    return report
