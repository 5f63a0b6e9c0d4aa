"""What counts as a secret, and how it is masked before anything is shown or logged."""

from __future__ import annotations

import re
from typing import Any

MASK = "****"

# librdkafka / Confluent property names and config keys whose values are secrets.
_SECRET_KEY = re.compile(r"(password|secret|token|credential|private\.key|\.key\.pem|jaas)", re.I)


def is_secret_key(key: str) -> bool:
    """True when a config key (e.g. ``sasl.password``) holds a secret."""
    return bool(_SECRET_KEY.search(key))


def mask_url(url: str) -> str:
    """The URL with its password (and secret query parameters) masked: `postgresql://app:****@db/x`.

    Parsed the way SQLAlchemy parses it, so an unencoded `#`, `?` or `/` in a password is still
    recognised as part of it.
    """
    parsed = _parse(url)
    if parsed is None:
        return "<unparseable URL>"
    secret_keys = [k for k in parsed.query if is_secret_key(k)]
    text = parsed.difference_update_query(secret_keys).render_as_string(hide_password=True)
    text = text.replace(":***@", f":{MASK}@", 1)
    if secret_keys:
        text += ("&" if "?" in text else "?") + "&".join(f"{k}={MASK}" for k in secret_keys)
    return text


def url_without_password(url: str) -> str:
    """The URL without its password, secret query parameters or driver, to name a target."""
    parsed = _parse(url)
    if parsed is None:
        return "<unparseable URL>"
    secret_keys = [k for k in parsed.query if is_secret_key(k)]
    # URL.set() treats None as "leave as is"; the NamedTuple's _replace really drops it.
    shown = parsed.difference_update_query(secret_keys)._replace(
        password=None, drivername=parsed.get_backend_name()
    )
    return str(shown.render_as_string(hide_password=False))


def url_secrets(url: str) -> list[str]:
    """The secret values inside a URL: its password and secret query parameters."""
    parsed = _parse(url)
    if parsed is None:
        return [url]  # cannot tell which part is secret: treat the whole URL as one
    values = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if is_secret_key(key):
            values += [value] if isinstance(value, str) else list(value)
    return values


def _parse(url: str) -> Any:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # ArgumentError, ValueError (a bad port), TypeError: all mean unparseable
        return None


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret value from free text (an error message from a driver)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
