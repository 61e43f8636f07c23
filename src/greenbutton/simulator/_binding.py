"""Certificate-bound access tokens (RFC 8705 §3), and issuing the third party a new
client certificate so tests and users can rotate one (SECURITY R31).

The API listener puts the connection's TLS details into each request scope (ASGI TLS
extension, see ``greenbutton._asgi_tls``); nothing here reads request headers. With
``SimulatorConfig.bind_tokens`` the token endpoint records, per issued access token, the
``x5t#S256`` thumbprint (unpadded base64url SHA-256 of the DER certificate) of the
certificate on that connection, and the resource server answers 401 ``invalid_token`` when
a bound token arrives over a connection with another certificate.

Refresh tokens are not bound: RFC 8705 §7.1 says a refresh token issued to a confidential
client is bound to that client through client authentication (here ``client_secret_basic``),
which is what lets a client refresh with its *new* certificate after a rotation (§6).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.types import Scope

from .._asgi_tls import TLSScopeProtocol, thumbprint
from ._pki import (
    CLIENT_DAYS,
    CLIENT_RSA_BITS,
    CertKey,
    PKIFiles,
    issue_certificate,
    load_pair,
    write_cert,
    write_key,
)
from ._simulator import Simulator

__all__ = [
    "BindingRejection",
    "TLSScopeProtocol",
    "issue_client_certificate",
    "peer_thumbprint",
    "thumbprint",
]


@dataclass(frozen=True, slots=True)
class BindingRejection:
    """A resource request refused because its token is bound to another certificate."""

    path: str
    presented: str | None  # thumbprint of the connection's certificate
    bound: str  # thumbprint the token was issued for


def peer_thumbprint(scope: Scope) -> str | None:
    """The thumbprint of the client certificate of this request's connection, if any."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return None
    value = tls.get("client_cert_sha256")
    return value if isinstance(value, str) else None


def issue_client_certificate(
    sim: Simulator,
    cert_path: Path | None = None,
    key_path: Path | None = None,
    *,
    days: int = CLIENT_DAYS,
    rsa_bits: int | None = CLIENT_RSA_BITS,
) -> str:
    """Issue the registered third party a new client certificate from the simulator's CA
    and write it (key first, each file atomically) over ``cert_path``/``key_path`` (default:
    the files ``registration.json`` names). Returns the new certificate's thumbprint.

    The old certificate stays valid for the TLS handshake (same CA, as during a real
    rotation overlap); only tokens bound to it stop working over the new one and vice versa.
    ``rsa_bits=None`` makes an EC P-256 key (quicker, for tests).
    """
    ca = load_pair(sim.ca_cert, PKIFiles.in_dir(sim.ca_cert.parent).ca_key)
    if ca is None:
        raise RuntimeError(f"the simulator CA next to {sim.ca_cert} cannot be loaded")
    old = load_pair(sim.client_cert, sim.client_key)
    names = [] if old is None else old.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else "greenbutton third party"
    pair: CertKey = issue_certificate(ca, name, client=True, rsa_bits=rsa_bits, days=days)
    write_key(key_path or sim.client_key, pair)
    write_cert(cert_path or sim.client_cert, pair)
    return thumbprint(pair.cert.public_bytes(serialization.Encoding.DER))
