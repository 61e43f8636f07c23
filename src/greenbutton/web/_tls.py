"""Serving the web app over HTTPS, with an inbound client-certificate check (SECURITY R32, R40).

The TLS layer asks for a client certificate (``CERT_OPTIONAL``: browsers have none) and
verifies any certificate presented against the configured CA, so a certificate from another
CA fails the handshake. uvicorn does not put the TLS details into the ASGI scope, so
:class:`ClientCertProtocol` (an h11 protocol) adds the ASGI TLS extension,
``scope["extensions"]["tls"]``, from the connection itself. Nothing in it comes from request
headers. Behind a TLS-terminating proxy, :func:`forwarded_certificate` reads the RFC 9440
``Client-Cert`` header instead; the app calls it only for a trusted proxy's requests (R32).
"""

from __future__ import annotations

import base64
import binascii
import ssl
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Scope

from .._asgi_tls import TLSScopeProtocol, guarded_protocol
from .._errors import ConfigurationError
from ._config import WebConfig

__all__ = [
    "ClientCertProtocol",
    "client_certificate",
    "forwarded_certificate",
    "load_client_cas",
    "server_ssl_context",
    "uvicorn_config",
]

CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"


def server_ssl_context(config: WebConfig) -> ssl.SSLContext:
    """TLS >= 1.2 with the app's certificate; client certificates from ``client_ca`` only."""
    if config.tls_cert is None or config.tls_key is None:
        raise ConfigurationError("HTTPS needs a certificate and its key (--cert, --key)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
        if config.client_ca is not None:
            ctx.load_verify_locations(cafile=str(config.client_ca))
            ctx.verify_mode = ssl.CERT_OPTIONAL  # browsers present none; a bad one fails
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the TLS files: {exc}") from exc
    return ctx


#: The h11 protocol that puts the connection's TLS details into each request scope.
ClientCertProtocol = TLSScopeProtocol


def client_certificate(scope: Scope, pin: str | None = None) -> str | None:
    """The verified client certificate's subject, or None when the connection had none.

    ``pin`` (a full RFC 4514 subject or a common name) must then match as well.
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return None
    if not tls.get("client_cert_chain") or tls.get("client_cert_error") is not None:
        return None
    name = tls.get("client_cert_name")
    if not isinstance(name, str):
        return None
    return name if _pinned(name, pin) else None


def _pinned(name: str, pin: str | None) -> bool:
    """Whether subject ``name`` matches ``pin`` (a full RFC 4514 subject or a common name)."""
    if pin is None or pin == name:
        return True
    try:
        parsed = x509.Name.from_rfc4514_string(name)
    except ValueError:
        return False
    return [a.value for a in parsed.get_attributes_for_oid(NameOID.COMMON_NAME)] == [pin]


def load_client_cas(path: Path) -> list[x509.Certificate]:
    """The CA certificates of a PEM bundle (for forwarded certificates)."""
    try:
        cas = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot load the client CA bundle {path}: {exc}") from exc
    return cas


def forwarded_certificate(
    value: str | None, cas: list[x509.Certificate], now: datetime, pin: str | None = None
) -> str | None:
    """The subject of the certificate in an RFC 9440 ``Client-Cert`` header value
    (``:base64-DER:``) when a CA of ``cas`` issued it directly, it is valid at ``now`` and
    matches ``pin``; else None. Only for requests from a trusted proxy (R32)."""
    if value is None or len(value) > 16384:
        return None
    value = value.strip()
    if len(value) < 3 or value[0] != ":" or value[-1] != ":":
        return None
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(value[1:-1], validate=True))
    except (binascii.Error, ValueError):
        return None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        name = cert.subject.rfc4514_string()
        return name if _pinned(name, pin) else None
    return None


def uvicorn_config(app: ASGIApp, config: WebConfig, **options: Any) -> uvicorn.Config:
    """An uvicorn config serving ``app``: over HTTPS when ``config`` has a certificate.

    uvicorn's proxy headers are off: the scope's client stays the TCP peer, and the app
    itself decides which forwarded headers count (``WebConfig.trusted_proxies``).

    Connections are bounded (SECURITY R39, b7): the h11 protocol is a
    :class:`~greenbutton._asgi_tls.GuardedProtocol` (head and body deadlines, request line
    and header count; it also fills the ASGI TLS extension), at most
    ``config.max_connections`` are served at once (uvicorn answers 503 beyond), an idle
    kept-alive connection closes after ``config.keep_alive_timeout`` and the head's size is
    capped by h11.
    """
    options.setdefault("log_level", "warning")
    options.setdefault("proxy_headers", False)
    options.setdefault("server_header", False)
    options.setdefault("limit_concurrency", config.max_connections)
    options.setdefault("timeout_keep_alive", config.keep_alive_timeout)
    options.setdefault("h11_max_incomplete_event_size", config.max_head_bytes)
    options.setdefault(
        "http",
        guarded_protocol(
            head_timeout=config.head_timeout,
            body_timeout=config.body_timeout,
            max_head_bytes=config.max_head_bytes,
        ),
    )
    if config.https:
        http = options["http"]
        if not (isinstance(http, type) and issubclass(http, TLSScopeProtocol)):
            # the notification check reads the connection's certificate from the scope (R32)
            raise ConfigurationError("over HTTPS the protocol must be a TLSScopeProtocol")
        ctx = server_ssl_context(config)
        options["ssl_context_factory"] = lambda _config, _default: ctx
    return uvicorn.Config(app, **options)
