"""What counts as a secret, and how it is masked before anything is shown or logged.

URLs are masked by position, not by searching for the secret's text: everything between `://`
and the last `@` is credentials, so an unencoded `@`, `:`, `#`, `?` or `/` in a password can
never leave part of it in clear. A database URL reaches the driver cut the same way
(`url_for_driver`): a driver that cut at the first `@` would connect to a "host" that is the end
of the password, and name it in its error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "****"

# Config keys (librdkafka properties, kafkaops settings, URL query parameters) holding secrets.
_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|credential|private[._-]?key|key[._-]pem|jaas|"
    r"api[._-]?key|access[._-]?key|passphrase|authorization|signature|user[._-]?info)",
    re.I,
)
# Keys whose value is a URL: masked as a URL (credentials, secret query values), not wholesale.
# Query parameters that carry credentials though their names say less: a SAS `sig`, an `auth`
# string, a bare `key` (API keys), `code`-less OAuth `access_token` is covered by token above.
_SECRET_QUERY = re.compile(r"^(sig|auth|key|apikey|k)$", re.I)
_URL_KEY = re.compile(r"(url|uri|endpoint|instances)$", re.I)
# Keys whose whole URL is a secret beyond its host: a Slack webhook's path is its token.
_WEBHOOK_KEY = re.compile(r"webhook", re.I)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)(\S*)@")
# `clientSecret=abc` inside a value such as librdkafka's sasl.oauthbearer.config.
_PAIR = re.compile(r"(?P<key>[A-Za-z0-9_.-]+)(?P<eq>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_DATABASE_SCHEMES = ("postgres", "postgresql", "sqlite", "mysql", "mariadb", "oracle", "mssql")


def is_secret_key(key: str) -> bool:
    """True when a config key (e.g. `sasl.password`, `app.token`, `api_key`) holds a secret."""
    return bool(_SECRET_KEY.search(key))


def _is_secret_query(key: str) -> bool:
    return is_secret_key(key) or bool(_SECRET_QUERY.match(key))


def is_url(value: str) -> bool:
    return bool(_SCHEME.match(value.strip()))


class _SplitURL:
    """A URL cut by its text: `scheme://userinfo@rest`, userinfo up to the *last* `@`."""

    def __init__(self, url: str) -> None:
        match = _SCHEME.match(url)
        self.scheme = match.group(0)[:-3] if match else ""
        body = url[match.end() :] if match else url
        self.userinfo: str | None = None
        self.rest = body
        if "@" in body and not self.scheme.lower().startswith("sqlite"):  # a path, no user
            self.userinfo, self.rest = body.rsplit("@", 1)
        user, sep, password = (self.userinfo or "").partition(":")
        if self.userinfo is not None and not sep and not self._is_database:
            # `https://TOKEN@host`: a lone user part of a web URL is often a token.
            user, password = "", self.userinfo
        self.user = user
        self.password = password if (sep or password) else None

    @property
    def _is_database(self) -> bool:
        return self.scheme.split("+", 1)[0].lower() in _DATABASE_SCHEMES

    def query_secrets(self) -> list[str]:
        _, _, query = self.rest.partition("?")
        query = query.split("#", 1)[0]
        values = []
        for part in query.split("&"):
            key, sep, value = part.partition("=")
            if sep and value and _is_secret_query(key):
                values.append(value)
        return values

    def rest_masked(self, *, drop_secret_query: bool) -> str:
        base, sep, query = self.rest.partition("?")
        if not sep:
            return base
        query, hash_sep, fragment = query.partition("#")
        kept = []
        for part in query.split("&"):
            key, eq, _value = part.partition("=")
            if eq and _is_secret_query(key):
                if not drop_secret_query:
                    kept.append(f"{key}={MASK}")
            else:
                kept.append(part)
        text = base + ("?" + "&".join(kept) if kept else "")
        return text + (hash_sep + fragment if hash_sep else "")


def mask_url(url: str, *, hide_path: bool = False) -> str:
    """The URL with its credentials and secret query values masked: `postgresql://app:****@db/x`.

    The user name stays when it is one (`user:password@`, or a database URL's `user@`); a web
    URL's lone `TOKEN@` is masked whole. `hide_path` also masks path and query (a webhook URL's
    path is its token).
    """
    parts = _SplitURL(url)
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    creds = ""
    if parts.userinfo is not None:
        if parts.password is not None:
            creds = f"{parts.user}:{MASK}@" if parts.user else f"{MASK}@"
        else:
            creds = f"{parts.user}@"
    rest = parts.rest_masked(drop_secret_query=False)
    if hide_path:
        host = re.split(r"[/?#]", parts.rest, maxsplit=1)[0]
        rest = host + (f"/{MASK}" if host != parts.rest else "")
    return f"{scheme}{creds}{rest}"


def url_without_password(url: str) -> str:
    """The URL without its password, secret query values or driver, to name a target in a
    message: `postgresql+psycopg://app:pw@db/x?password=y` -> `postgresql://app@db/x`."""
    parts = _SplitURL(url)
    scheme = f"{parts.scheme.split('+', 1)[0]}://" if parts.scheme else ""
    user = f"{parts.user}@" if parts.userinfo is not None and parts.user else ""
    return f"{scheme}{user}{parts.rest_masked(drop_secret_query=True)}"


def url_for_driver(url: str) -> str:
    """The URL with its user and password percent-encoded, so that a parser cutting at the first
    `@` (SQLAlchemy's, libpq's) reads the user, password and host that masking reads: for
    `postgresql://app:pw@x@db/casino` the password `pw@x` and the host `db`, never a host `x@db`.
    Already-encoded parts (`%40`) stay as they are."""
    from urllib.parse import quote, unquote

    parts = _SplitURL(url)
    if parts.userinfo is None:
        return url
    user, sep, password = parts.userinfo.partition(":")
    creds = quote(unquote(user), safe="") + (sep + quote(unquote(password), safe="") if sep else "")
    return f"{parts.scheme}://{creds}@{parts.rest}"


def url_secrets(url: str) -> list[str]:
    """The secret values inside a URL: its password (and each piece of it a parser might have
    split off at an `@` or `:`), and its secret query values."""
    parts = _SplitURL(url)
    values = parts.query_secrets()
    if parts.password:
        values.append(parts.password)
        values += [p for p in re.split(r"[@:/?#]", parts.password) if len(p) >= 4]
    return values


def mask_value(key: str, value: Any) -> Any:
    """A config value as `config show` may print it: secrets masked by key, URLs by content,
    `name=secret` pairs inside a value (sasl.oauthbearer.config) by their name."""
    if isinstance(value, (list, tuple)):
        return [mask_value(key, v) for v in value]
    if isinstance(value, Mapping):  # e.g. app.instances entries: {name, url}
        return {k: mask_value(f"{key}.{k}", v) for k, v in value.items()}
    if value is None or value == "":
        return value
    text = str(value)
    if _WEBHOOK_KEY.search(key):
        return mask_url(text, hide_path=True) if is_url(text) else MASK
    if _URL_KEY.search(key) or (is_url(text) and not is_secret_key(key)):
        return mask_url(text) if is_url(text) else mask_pairs(text)
    if is_secret_key(key):
        return MASK
    return mask_pairs(text)


def mask_pairs(text: str) -> str:
    """`clientId=app clientSecret=x` -> `clientId=app clientSecret=****`."""

    def sub(match: re.Match[str]) -> str:
        if not is_secret_key(match.group("key")):
            return match.group(0)
        return f"{match.group('key')}{match.group('eq')}{MASK}"

    return _PAIR.sub(sub, text)


def pair_secrets(text: str) -> list[str]:
    values = []
    for match in _PAIR.finditer(text):
        if is_secret_key(match.group("key")):
            values.append(match.group("value").strip("\"'"))
    return values


def secrets_of(key: str, value: Any) -> list[str]:
    """Every secret value a config entry holds, so free text can be scrubbed of them."""
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in secrets_of(key, v)]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in secrets_of(f"{key}.{k}", v)]
    if value is None or isinstance(value, bool):
        return []
    text = str(value)
    found = url_secrets(text) if is_url(text) else []
    if is_secret_key(key) and not _URL_KEY.search(key) and not is_url(text):
        found.append(text)
    if _WEBHOOK_KEY.search(key) and is_url(text):
        found.append(text.split("://", 1)[1].split("/", 1)[-1])
    return found + pair_secrets(text)


# A value this short is not searched for in free text: it would mask ordinary words. In a URL
# a secret is masked by position, whatever its length.
MIN_SEARCHED = 3


def redact(text: str, secrets: Iterable[str]) -> str:
    """Remove the credentials of any URL in free text (an error message from a driver), by
    position, and every known secret value of MIN_SEARCHED characters or more."""
    text = _URL_IN_TEXT.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SEARCHED:
            text = text.replace(secret, MASK)
    return text
