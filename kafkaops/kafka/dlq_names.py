"""DLQ topic names: which topics are dead-letter topics and the DLQ topic of a source, by the
configured suffixes. Pure and cheap to import: the configuration builds its catalogue at load
time. What the database and the cluster say about DLQ topics is kafkaops/dlq/catalogue.py."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafkaops.kafka.topics import is_internal_topic

# kafkaops', Spring's newer and older defaults.
DEFAULT_DLQ_SUFFIXES = (".dlq", "-dlt", ".DLT")
DEFAULT_DLQ_SUFFIX = ".dlq"


def dlq_topic_for(topic: str, suffix: str) -> str:
    """The DLQ topic `retry` writes a failed event of `topic` to, by its `suffix`."""
    return f"{topic}{suffix}"


def is_dlq_topic(topic: str, suffixes: Sequence[str]) -> bool:
    """True when `topic` is named like a dead-letter topic (and is not only the suffix)."""
    return any(topic.endswith(s) and len(topic) > len(s) for s in suffixes)


def original_topic_by_name(topic: str, suffixes: Sequence[str]) -> str | None:
    """The topic a DLQ topic belongs to by its name; the longest matching suffix wins."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if topic.endswith(suffix) and len(topic) > len(suffix):
            return topic[: -len(suffix)]
    return None


@dataclass(frozen=True)
class DlqTopic:
    """A DLQ topic: the source it belongs to, whether it exists, its partition count and, once
    read, the `(low, high)` offsets of each partition (None: not read, or it does not exist)."""

    name: str
    source: str  # by its name, or the topic whose rows need it
    exists: bool = True
    partitions: int | None = None
    offsets: Mapping[int, tuple[int, int]] | None = None
    # The principal may not describe it (TOPIC_AUTHORIZATION_FAILED): whether it exists is
    # unknown; `exists` is then False.
    denied: bool = False

    @property
    def messages(self) -> int | None:
        if self.offsets is None:
            return None
        return sum(max(0, high - low) for low, high in self.offsets.values())


@dataclass(frozen=True)
class DlqCatalog:
    """The naming rules of one configuration (`DlqCatalog.of(settings.retry)`)."""

    write_suffix: str = DEFAULT_DLQ_SUFFIX
    configured_suffixes: tuple[str, ...] = DEFAULT_DLQ_SUFFIXES  # retry.dlq_suffixes

    @classmethod
    def of(cls, retry: Any) -> DlqCatalog:
        """From the `retry` section (`dlq_suffix`, `dlq_suffixes`)."""
        return cls(retry.dlq_suffix, tuple(retry.dlq_suffixes))

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Every suffix that names a DLQ topic: the configured ones and the one `retry` writes."""
        return tuple(dict.fromkeys((*self.configured_suffixes, self.write_suffix)))

    def is_dlq(self, topic: str) -> bool:
        return is_dlq_topic(topic, self.suffixes)

    def dlq_for(self, source: str) -> str:
        return dlq_topic_for(source, self.write_suffix)

    def source_of(self, dlq: str) -> str:
        """The source topic of a DLQ topic by its name (the longest matching suffix wins); a name
        with no DLQ suffix is its own."""
        return original_topic_by_name(dlq, self.suffixes) or dlq

    def dlq_topics(self, topics: Iterable[str]) -> list[str]:
        """The DLQ topics among `topics`, sorted."""
        return sorted(t for t in topics if self.is_dlq(t))

    def layout(self, metadata: Any) -> dict[str, list[int]]:
        """The DLQ topics of a metadata answer (`existing_topics`) and their partitions, by name."""
        names = sorted(t for t in existing_topics(metadata) if self.is_dlq(t))
        return {name: sorted(metadata.topics[name].partitions) for name in names}

    def missing(self, sources: Iterable[str], existing: Collection[str]) -> list[DlqTopic]:
        """The DLQ topics that `sources` (topics with rows that need one) lack on a cluster
        holding `existing`, in the order of `sources`. A source that is itself a DLQ needs none."""
        return [
            DlqTopic(self.dlq_for(s), s, exists=False)
            for s in dict.fromkeys(sources)
            if not self.is_dlq(s) and self.dlq_for(s) not in existing
        ]


def existing_topics(metadata: Any) -> set[str]:
    """The topics a metadata answer names, internal ones left out. One created a moment ago
    is among them even while it answers LEADER_NOT_AVAILABLE: it exists. One answered
    TOPIC_AUTHORIZATION_FAILED is not: the principal may not describe it (a broker leaves such
    topics out of a listing; librdkafka's mock cluster lists them with that error)."""
    return {
        name for name, topic in metadata.topics.items() if not is_internal_topic(name) and not _denied(topic)
    }


def _denied(topic: Any) -> bool:
    error = getattr(topic, "error", None)
    return error is not None and error.name() == "TOPIC_AUTHORIZATION_FAILED"
