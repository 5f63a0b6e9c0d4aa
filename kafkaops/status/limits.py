"""How much of what a service (or the table) says `kafkaops status` keeps and prints.

A service is a source like any other: a scrape of 395,000 series, 2,000 executors or an 8 MB
label value must not become an 88 MB JSON document or a Nagios line Nagios cuts. Every bound
is here; what a bound leaves out is said in the check's message.
"""

from __future__ import annotations

import hashlib

# Lines of Prometheus text read per instance: a Spring Boot service exposes a few thousand;
# past this the rest is not parsed (parsing 20,000 lines takes about 0.3 s).
MAX_METRICS_LINES = 20_000
# Executors kept per instance, the busiest first: every one is judged, each shown in JSON.
MAX_EXECUTORS = 50
# Distinct label values kept per counter (published by status, errors by error_type); the
# others are summed under OTHER, so totals and the error ratio stay right.
MAX_LABEL_VALUES = 50
OTHER = "(other)"
# Characters of a service- or table-supplied string kept (a label value, a state, an age): a
# Kafka topic name (at most 249) fits whole.
MAX_TEXT = 256
# Notes (invalid figures, inconsistent series, duplicate keys) kept per instance.
MAX_NOTES = 10
# Nagios reads at most 8 KB of plugin output and cuts the rest, performance data included:
# the whole line stays under this, the text giving way to the performance data.
NAGIOS_MAX_BYTES = 8000
NAGIOS_MAX_PERFDATA_BYTES = 2000


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, at most `limit` characters: a cut one ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_label(text: str) -> str:
    """A label value of at most MAX_TEXT characters. A cut one ends with a short hash of the
    whole, so two long values sharing a prefix stay two series (a textfile with a series twice
    is refused whole by node_exporter)."""
    if len(text) <= MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{text[: MAX_TEXT - 9]}…{digest}"


def cut_bytes(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut at a character, an ellipsis marking the cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: max(0, limit - 3)].decode("utf-8", "ignore") + "…"
