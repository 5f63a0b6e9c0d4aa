"""What counts as a secret, and how it is masked before anything is shown or logged."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "****"

# librdkafka / Confluent property names and config keys whose values are secrets.
_SECRET_KEY = re.compile(r"(password|secret|token|credential|private\.key|\.key\.pem|jaas)", re.I)


def is_secret_key(key: str) -> bool:
    """True when a config key (e.g. ``sasl.password``) holds a secret."""
    return bool(_SECRET_KEY.search(key))


def mask_url(url: str) -> str:
    """The URL with its password replaced by a mask: ``postgresql://app:****@db/casino``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))


def url_without_password(url: str) -> str:
    """The URL with its password removed entirely, for naming a target in an error."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    scheme = parts.scheme.split("+", 1)[0]
    return urlunsplit(parts._replace(scheme=scheme, netloc=f"{user}@{hostinfo}"))


def mask_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a flat mapping with every secret value masked."""
    return {k: (MASK if is_secret_key(k) and v not in (None, "") else v) for k, v in values.items()}


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret value from free text (an error message from a driver)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
