"""The simulator's small PKI: its CA, its server certificate and the third party's client
certificate, kept in the state folder and reused on later starts.

A real data custodian only talks to third parties whose client certificate it trusts (ESPI
mutual TLS), so the simulator plays both roles a real deployment splits: it is the CA that
issues the third party's certificate, and it checks that certificate at the API handshake.

Choices: EC P-256 for the CA (fast to generate, widely supported); RSA 2048 for the server
(GBA TC008 and PG&E practice: RSA >= 2048 on the custodian's side, and some third-party
stacks offer only RSA cipher suites; 2048 rather than 3072 because every test start may make
one) and RSA 3072 for the client key (TC008, and some utilities accept RSA only);
SHA-256 signatures throughout. The server certificate also carries ``clientAuth`` so the
notifier can present it when it POSTs BatchLists to the third party. Private keys are written
0600 and atomically, so a crash never leaves a half-written or world-readable key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .._util import atomic_file

__all__ = [
    "CertKey",
    "PKIFiles",
    "ensure_pki",
    "issue_certificate",
    "load_pair",
    "new_ca",
    "write_cert",
    "write_key",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_DAYS = 3650
SERVER_DAYS = 397  # the CA/Browser Forum ceiling for server certificates
CLIENT_DAYS = 730
RENEW_BEFORE = dt.timedelta(days=1)  # regenerate what expires sooner than this
CLIENT_RSA_BITS = 3072
SERVER_RSA_BITS = 2048
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class CertKey:
    """A certificate and its private key, in memory."""

    cert: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class PKIFiles:
    """Where the PKI of one state folder lives (absolute paths)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def in_dir(cls, state_dir: Path) -> PKIFiles:
        d = state_dir.resolve()
        return cls(
            ca_cert=d / "ca-cert.pem",
            ca_key=d / "ca-key.pem",
            server_cert=d / "server-cert.pem",
            server_key=d / "server-key.pem",
            client_cert=d / "client-cert.pem",
            client_key=d / "client-key.pem",
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "greenbutton simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str = "greenbutton simulator CA", *, days: int = CA_DAYS) -> CertKey:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = _ec_key()
    name = _name(common_name)
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert, key)


def issue_certificate(
    ca: CertKey,
    common_name: str,
    *,
    server_names: Sequence[str] = (),
    client: bool = False,
    rsa_bits: int | None = None,
    days: int = CLIENT_DAYS,
    not_before: dt.datetime | None = None,
) -> CertKey:
    """An end-entity certificate signed by ``ca``, valid ``days`` from ``not_before``
    (default: a few minutes ago, to tolerate clock skew).

    ``server_names`` (DNS names or IP addresses) become SANs and add ``serverAuth``;
    ``client`` adds ``clientAuth``. ``rsa_bits`` picks an RSA key, else EC P-256.
    Tests use this with a second CA, or a past ``not_before``, to build certificates the
    simulator must reject or replace.
    """
    key: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        if rsa_bits
        else _ec_key()
    )
    usages = []
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    start = not_before if not_before is not None else _now() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]),
            critical=False,
        )
    return CertKey(builder.sign(ca.key, hashes.SHA256()), key)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


# -- files ---------------------------------------------------------------------------------


def write_cert(path: Path, pair: CertKey) -> None:
    """Certificates are public: an ordinary file (0666 less the umask), written atomically."""
    with atomic_file(path) as fh:
        fh.write(pair.cert_pem())


def write_key(path: Path, pair: CertKey) -> None:
    """Private keys are readable by their owner only, from the first byte (SECURITY R29)."""
    with atomic_file(path, private=True) as fh:
        fh.write(pair.key_pem())


def load_pair(cert_path: Path, key_path: Path) -> CertKey | None:
    """The pair stored at these paths, or None when missing, unreadable or mismatched."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return None
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return None
    return CertKey(cert, key)


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _fresh(pair: CertKey) -> bool:
    now = _now()
    return pair.cert.not_valid_before_utc <= now and now + RENEW_BEFORE < (
        pair.cert.not_valid_after_utc
    )


def _rsa_at_least(pair: CertKey, bits: int) -> bool:
    key = pair.cert.public_key()
    return isinstance(key, rsa.RSAPublicKey) and key.key_size >= bits


def _is_kind(pair: CertKey, kind: Literal["rsa", "ec"]) -> bool:
    if kind == "rsa":
        return _rsa_at_least(pair, SERVER_RSA_BITS)
    return isinstance(pair.cert.public_key(), ec.EllipticCurvePublicKey)


def _signed_by(pair: CertKey, ca: CertKey) -> bool:
    try:
        pair.cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _san_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return names | set(san.get_values_for_type(x509.DNSName))


def ensure_pki(
    state_dir: Path,
    *,
    server_names: Sequence[str] = LOOPBACK_NAMES,
    client_name: str = "greenbutton third party",
    fresh: bool = False,
    server_key: Literal["rsa", "ec"] = "rsa",
) -> PKIFiles:
    """Create what is missing, expired or no longer matching in ``state_dir``; reuse the rest.

    A new CA re-issues both leaf certificates (the old ones would no longer verify); a server
    certificate lacking one of ``server_names`` or of another kind than ``server_key`` (RSA
    2048 for GBA TC008, or EC P-256) is re-issued. ``fresh`` replaces everything (used when a
    state folder made for loopback is started on a network address, R69).
    """
    files = PKIFiles.in_dir(state_dir)
    ca = None if fresh else load_pair(files.ca_cert, files.ca_key)
    new_ca_made = ca is None or not _fresh(ca)
    if ca is None or new_ca_made:
        ca = new_ca()
        write_key(files.ca_key, ca)
        write_cert(files.ca_cert, ca)

    server = None if new_ca_made else load_pair(files.server_cert, files.server_key)
    if (
        server is None
        or not _fresh(server)
        or not _signed_by(server, ca)
        or not set(server_names) <= _san_names(server.cert)
        or not _is_kind(server, server_key)
    ):
        server = issue_certificate(
            ca,
            "greenbutton simulator",
            server_names=server_names,
            client=True,  # the notifier presents it to the third party
            rsa_bits=SERVER_RSA_BITS if server_key == "rsa" else None,
            days=SERVER_DAYS,
        )
        write_key(files.server_key, server)
        write_cert(files.server_cert, server)

    client = None if new_ca_made else load_pair(files.client_cert, files.client_key)
    if (
        client is None
        or not _fresh(client)
        or not _signed_by(client, ca)
        or client.cert.subject != _name(client_name)
    ):
        client = issue_certificate(
            ca, client_name, client=True, rsa_bits=CLIENT_RSA_BITS, days=CLIENT_DAYS
        )
        write_key(files.client_key, client)
        write_cert(files.client_cert, client)
    for key_path in (files.ca_key, files.server_key, files.client_key):
        if key_path.stat().st_mode & 0o077:  # someone loosened it; the key is still good
            os.chmod(key_path, 0o600)
    return files
