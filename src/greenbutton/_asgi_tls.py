"""The ASGI TLS extension for uvicorn, shared by the two servers (web app and simulator).

uvicorn (0.54) does not fill ``scope["extensions"]["tls"]``, and both servers need the
client certificate of the *connection* — the web app to authenticate notifications (R32),
the simulator to bind tokens to a certificate (R31) — never a request header. So
:class:`TLSScopeProtocol`, uvicorn's h11 protocol with one override, computes the extension
once per connection and adds it to every request scope of that connection. (With it, an
HTTPS server always speaks h11; httptools is not installed here anyway.)

Only the servers import this module (it needs uvicorn); the SDK never does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from typing import Any

from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["TLSScopeProtocol", "thumbprint", "tls_extension"]


def thumbprint(der: bytes) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: unpadded base64url of SHA-256 over the DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection (None when it is plain HTTP).

    Besides the ASGI keys it carries ``client_cert_name`` (RFC 4514 subject) and
    ``client_cert_sha256`` (the thumbprint); a certificate the handshake did not verify
    is never reported as good (``client_cert_error``)."""
    sslobj = transport.get_extra_info("ssl_object")
    if not isinstance(sslobj, ssl.SSLObject):
        return None
    der = sslobj.getpeercert(binary_form=True)
    verified = sslobj.context.verify_mode in (ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED)
    cipher = sslobj.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": (
            x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
        ),
        "client_cert_sha256": thumbprint(der) if der else None,
        "client_cert_error": None if verified or not der else "not verified",
        "tls_version": sslobj.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


class _WithTLS:
    """Sets ``scope["extensions"]["tls"]`` for every request of one connection."""

    def __init__(self, app: ASGIApp, info: dict[str, Any] | None) -> None:
        self.app = app
        self.info = info

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("tls", None)  # whatever was there did not come from this connection
        if self.info is not None:
            extensions["tls"] = dict(self.info)
        scope["extensions"] = extensions
        await self.app(scope, receive, send)


class TLSScopeProtocol(H11Protocol):
    """uvicorn's h11 protocol, adding the connection's TLS details to each request scope."""

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.app = _WithTLS(self.config.loaded_app, tls_extension(transport))
