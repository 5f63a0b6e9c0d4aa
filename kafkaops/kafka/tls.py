"""Why a TLS handshake with a broker failed, in plain words. librdkafka says only "certificate
verify failed" for every reason OpenSSL had (an unknown CA, an expired certificate, a
certificate that does not name the host or IP address the broker was reached by); a handshake
of kafkaops' own with the same trust settings asks OpenSSL which one it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The broker a librdkafka error is about: "ssl://127.0.0.1:9093/bootstrap: ..." or
# "sasl_ssl://[::1]:9093/1: ...".
_BROKER = re.compile(r"^(?:\w+://)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^\s/:]+)):(?P<port>\d+)/")
_VERIFY_FAILED = "certificate verify failed"
# The properties a handshake of kafkaops' own copies.
TLS_KEYS = ("ssl.ca.location", "ssl.ca.pem", "ssl.endpoint.identification.algorithm")
_PROBE_TIMEOUT = 2.0


def tls_settings(conf: Mapping[str, Any]) -> dict[str, str]:
    """The trust settings of a client's configuration (what `verify_failure` needs)."""
    return {k: str(conf[k]) for k in TLS_KEYS if conf.get(k) is not None}


def explain(raw: str, reason: str, settings: Mapping[str, str]) -> tuple[str, str]:
    """The reason for a failed handshake and the hint to fix it. ``raw`` is librdkafka's
    error text with the broker it names, ``reason`` the same without it."""
    if _VERIFY_FAILED not in raw:
        if "Disconnected" in raw or "wrong version number" in raw or "packet length too long" in raw:
            return (
                reason,
                "the listener may not speak TLS: check security.protocol and the port in bootstrap.servers",
            )
        return reason, "check the ssl.* settings and the broker's listener"
    where = broker_of(raw)
    why = verify_failure(where[0], where[1], settings) if where else None
    if why is None:
        return reason, _TRUST_HINT
    host = where[0] if where else "?"
    if "IP address mismatch" in why:
        return (
            f"the broker's certificate does not name the IP address {host} it was reached by ({why})",
            "reach the broker by a host name its certificate names (bootstrap.servers, and the "
            "broker's advertised.listeners), or issue the certificate for that IP address too",
        )
    if "Hostname mismatch" in why:
        return (
            f"the broker's certificate does not name the host {host} it was reached by ({why})",
            "reach the broker by a name its certificate names, or issue the certificate for that name",
        )
    return f"the broker's certificate could not be verified: {why}", _TRUST_HINT


_TRUST_HINT = "ssl.ca.location (or ssl.ca.pem) must hold the CA that signed the broker's certificate"


def broker_of(raw: str) -> tuple[str, int] | None:
    match = _BROKER.match(raw)
    if match is None:
        return None
    return match["v6"] or match["host"], int(match["port"])


def verify_failure(host: str, port: int, settings: Mapping[str, str]) -> str | None:
    """OpenSSL's reason for not trusting ``host:port``'s certificate under the same trust
    settings (None when this handshake succeeds or fails for another reason)."""
    import socket
    import ssl

    location = settings.get("ssl.ca.location")
    try:
        if settings.get("ssl.ca.pem"):
            context = ssl.create_default_context(cadata=settings["ssl.ca.pem"])
        elif location and location != "probe":
            import os

            if os.path.isdir(location):
                context = ssl.create_default_context(capath=location)
            else:
                context = ssl.create_default_context(cafile=location)
        else:
            context = ssl.create_default_context()
        if settings.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
            context.check_hostname = False
        with (
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or exc)
    except (OSError, ValueError):
        return None


# Properties holding certificates inline (PEM): shown by their subject and fingerprint.
INLINE_CERTIFICATE_KEYS = ("ssl.ca.pem", "ssl.certificate.pem")
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)


def certificates_summary(pem: str) -> str:
    """An inline PEM as one short line: each certificate's subject and SHA-256 fingerprint
    (`config show` would otherwise print 1,300 characters of base64 in one column)."""
    blocks = _PEM_CERT.findall(pem)
    if not blocks:
        return f"(no PEM certificate in {len(pem)} characters)"
    shown = [_certificate_line(block) for block in blocks]
    prefix = f"{len(blocks)} certificates: " if len(blocks) > 1 else ""
    return prefix + "; ".join(shown)


def _certificate_line(block: str) -> str:
    import hashlib
    import ssl

    try:
        der = ssl.PEM_cert_to_DER_cert(block)
    except ValueError:
        return "(not a readable certificate)"
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    subject = _subject(block)
    return f"{subject + ', ' if subject else ''}SHA-256 {fingerprint}"


def _subject(block: str) -> str | None:
    """The certificate's subject ("CN=kafkaops test CA, O=..."), through the decoder the
    standard library tests with (it reads a file); None when it cannot."""
    import os
    import ssl
    import tempfile

    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(block + "\n")
        decoded = decode(path)
    except Exception:  # a private decoder: any failure means no subject
        return None
    finally:
        os.unlink(path)
    parts = [f"{_SHORT.get(k, k)}={v}" for rdn in decoded.get("subject", ()) for k, v in rdn]
    return ", ".join(parts) or None


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
}
