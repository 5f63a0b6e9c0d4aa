"""What Kafka accepts as a topic name, checked before a cluster is asked (the answer would
only be "Invalid topic"). Its own small module: the configuration checks DLQ suffixes with it
at load time, so it must cost nothing to import."""

from __future__ import annotations

import re

# org.apache.kafka.common.internals.Topic.validate, and not "." or "..".
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
TOPIC_NAME_RULE = "a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-' (and not '.' or '..')"


def is_valid_topic_name(name: str) -> bool:
    return bool(_TOPIC_NAME.fullmatch(name)) and name not in (".", "..")


def is_internal_topic(topic: str) -> bool:
    """True for Kafka's own topics (__consumer_offsets, __transaction_state, ...)."""
    return topic.startswith("__")
