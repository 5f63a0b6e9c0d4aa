"""A small HTTP client on the standard library, for the service's endpoints and alert webhooks.

Every request has a real connect timeout and one deadline for the whole exchange (a server
that accepts and then says nothing, or trickles its answer, cannot hold it longer). Redirects
are not followed (credentials must not travel to another host), bodies are capped, and no
error ever carries a password, a token or a webhook's secret path.
"""

from __future__ import annotations

import base64
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from kafkaops.common.errors import KafkaopsError, UsageError
from kafkaops.common.secrets import mask_url

MAX_BODY = 16 * 1024 * 1024  # an actuator answer is a few kB; anything this big is not one


class HttpError(KafkaopsError):
    """A request that got no usable answer; `kind` says which way it failed."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # timeout | connect | http | protocol | too_large
        self.status = status


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    username: str | None
    password: str | None


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Auth:
    """Basic auth (username/password) or a bearer token; never shown."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def header(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None


def parse_url(url: str) -> ParsedUrl:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid URL {mask_url(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid URL {mask_url(url)}: expected http://host[:port]/path or https://...")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return ParsedUrl(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        target=target,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    auth: Auth | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    shown: str | None = None,
) -> Response:
    """One HTTP exchange that ends within `timeout` seconds, whatever the server does.

    Credentials in the URL's user info are sent as basic auth unless `auth` says otherwise.
    `shown` is how errors name the URL (default: the URL masked). The exchange runs in a daemon
    thread: socket timeouts bound each read, and the thread's deadline bounds a server that
    trickles its answer a byte at a time (or a host name that takes long to resolve).
    """
    import threading

    name = shown or mask_url(url)
    outcome: list[Response | BaseException] = []
    answered: list[int] = []  # the status, once the server's headers arrived

    def exchange() -> None:
        try:
            outcome.append(_request(method, url, timeout, auth, body, headers, name, answered))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=exchange, name="kafkaops-http", daemon=True)
    worker.start()
    worker.join(timeout + 0.25)
    if not outcome:
        raise _late(name, timeout, answered)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _request(
    method: str,
    url: str,
    timeout: float,
    auth: Auth | None,
    body: bytes | None,
    headers: dict[str, str] | None,
    name: str,
    answered: list[int],
) -> Response:
    import http.client
    import ssl

    parsed = parse_url(url)
    deadline = time.monotonic() + timeout
    send = dict(headers or {})
    send.setdefault("User-Agent", "kafkaops")
    send.setdefault("Accept", "*/*")
    if auth is None and parsed.username is not None:
        auth = Auth(username=parsed.username, password=parsed.password)
    authorization = auth.header() if auth else None
    if authorization:
        send["Authorization"] = authorization
    conn: http.client.HTTPConnection
    if parsed.scheme == "https":
        conn = http.client.HTTPSConnection(
            parsed.host, parsed.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=timeout)
    try:
        try:
            conn.connect()
        except TimeoutError:
            raise HttpError(f"{name}: no connection within {timeout:g}s", kind="timeout") from None
        except OSError as exc:
            raise HttpError(f"{name}: cannot connect: {_os_reason(exc)}", kind="connect") from None
        except UnicodeError:
            # The IDNA codec refuses an empty label (exa..mple) or one over 63 characters.
            raise HttpError(f"{name}: invalid host name", kind="connect") from None
        try:
            _set_timeout(conn, deadline, timeout, name)
            conn.request(method, parsed.target, body=body, headers=send)
            _set_timeout(conn, deadline, timeout, name)
            response = conn.getresponse()
            answered.append(response.status)
            chunks: list[bytes] = []
            size = 0
            while True:
                _set_timeout(conn, deadline, timeout, name)
                chunk = response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY:
                    raise HttpError(
                        f"{name}: answer larger than {MAX_BODY // 1024 // 1024} MiB", kind="too_large"
                    )
                chunks.append(chunk)
        except TimeoutError:
            raise _late(name, timeout, answered) from None
        except HttpError as error:
            if error.kind == "timeout":
                raise _late(name, timeout, answered) from None
            raise
        except http.client.HTTPException as exc:
            raise HttpError(
                f"{name}: not a valid HTTP answer ({type(exc).__name__})", kind="protocol"
            ) from None
        except OSError as exc:
            raise HttpError(f"{name}: connection failed: {_os_reason(exc)}", kind="connect") from None
        except UnicodeError:
            raise HttpError(
                f"{name}: cannot send the request: the URL or a header holds characters HTTP cannot "
                "carry (percent-encode the path)",
                kind="protocol",
            ) from None
        except ValueError:
            # http.client refuses a header value with a line break (a token pasted with its
            # newline); the value itself is a secret and is not repeated.
            raise HttpError(
                f"{name}: cannot send the request: a credential or header holds a line break",
                kind="protocol",
            ) from None
        content_type = response.getheader("Content-Type", "") or ""
        return Response(status=response.status, content_type=content_type, body=b"".join(chunks))
    finally:
        conn.close()


def _late(name: str, timeout: float, answered: list[int]) -> HttpError:
    """The deadline passed: before the server answered, or while its body was still arriving."""
    if answered:
        return HttpError(
            f"{name}: answered (HTTP {answered[0]}) but its body did not arrive within {timeout:g}s",
            kind="timeout",
        )
    return HttpError(f"{name}: no answer within {timeout:g}s", kind="timeout")


def _set_timeout(conn: object, deadline: float, timeout: float, name: str) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HttpError(f"{name}: no answer within {timeout:g}s", kind="timeout")
    sock = getattr(conn, "sock", None)
    if sock is not None:
        sock.settimeout(left)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    return exc.strerror or type(exc).__name__


def get(url: str, *, timeout: float, auth: Auth | None = None) -> Response:
    return request("GET", url, timeout=timeout, auth=auth)


def post_json(url: str, payload: bytes, *, timeout: float, shown: str | None = None) -> Response:
    return request(
        "POST",
        url,
        timeout=timeout,
        body=payload,
        headers={"Content-Type": "application/json"},
        shown=shown,
    )
