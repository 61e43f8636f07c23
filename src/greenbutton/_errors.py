"""The exception tree of greenbutton: every class is defined here (STYLE 5).

Every error the package raises on purpose is a :class:`GreenButtonError`, so callers (and the
CLI, which turns them into one ``error: ...`` line) can catch one class::

    GreenButtonError
     +- ConfigurationError      bad settings, certificates or credentials, found at start-up
     +- TransportError          the request did not get an HTTP answer: .url (no secrets)
     |   +- ConnectError        includes TLS failures (hint: check the client certificate)
     |   |   +- EgressDenied    the host resolves to a non-public address, profile not local (R47)
     |   +- RequestTimeout      a timeout or the overall deadline
     |   +- RequestDeferred     not sent; try again after .retry_after seconds
     |       +- CircuitOpenError    failing fast after repeated failures: .failures (R59)
     |       +- QuotaExhaustedError an hourly or daily request quota is used up: .quota (R58)
     +- OAuthError              RFC 6749 5.2 error: .error .description .uri .status_code
     |   +- InvalidGrantError   code or refresh token rejected: the customer must re-authorize
     |   +- InvalidClientError  client id, secret or certificate not accepted
     |   +- CallbackError       the authorization redirect was an error or is not ours
     +- APIStatusError          non-2xx from the resource server: .status_code .url .excerpt
     |   +- AuthorizationError  401/403: expired, revoked, or outside the grant's scope
     |   +- NotFoundError       404
     |   +- ServerError         5xx/429: .retry_after
     +- ParseError              malformed or unexpected XML: .line, .resource
     |   +- UnsafeXMLError      DTDs, entities, XInclude: refused by policy (SECURITY R34)
     |   +- XMLLimitError       depth, text size or element counts above the limits (R36)
     +- StorageError            the database refused or failed an operation
     |   +- SecretKeyError      the encryption key is missing, malformed or readable by others
     |   +- TokenDecryptionError    a stored secret does not decrypt: wrong key or tampered
     |   +- ReconciliationError the stored readings do not add up to the document's (R64)
     +- JobRejected             a stored job cannot run: its URI is not the custodian's, or
     |                          its authorization is gone
     +- RejectedURI             a notified URI failed validation, never fetched (R41); also
     |                          a ValueError
     +- DemoError               a step of ``greenbutton demo`` did not do what it should

Import them from ``greenbutton`` (the storage errors also from ``greenbutton.storage``); the
modules that defined some of them before keep re-exporting them. Messages say what is wrong,
where (line) and what to do; they never quote secrets.

Warnings (``warnings.warn``) are :class:`GreenButtonWarning`, a ``UserWarning``: something works
now but needs attention soon (a client certificate close to expiry).
"""

from __future__ import annotations

__all__ = [
    "APIStatusError",
    "AuthorizationError",
    "CallbackError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectError",
    "DemoError",
    "EgressDenied",
    "GreenButtonError",
    "GreenButtonWarning",
    "InvalidClientError",
    "InvalidGrantError",
    "JobRejected",
    "NotFoundError",
    "OAuthError",
    "ParseError",
    "QuotaExhaustedError",
    "ReconciliationError",
    "RejectedURI",
    "RequestDeferred",
    "RequestTimeout",
    "SecretKeyError",
    "ServerError",
    "StorageError",
    "TokenDecryptionError",
    "TransportError",
    "UnsafeXMLError",
    "XMLLimitError",
]


class GreenButtonError(Exception):
    """Base class of every error raised by greenbutton."""


class GreenButtonWarning(UserWarning):
    """Works now, needs attention soon (e.g. a client certificate that expires within days)."""


class ConfigurationError(GreenButtonError):
    """A setting, path or credential is wrong; raised before any request or parse starts."""


class ParseError(GreenButtonError):
    """A document could not be read as Green Button (Atom/ESPI) XML.

    ``line`` is the 1-based line of the problem when known; ``resource`` names the source
    (a file name or URL) when the caller gave one.
    """

    def __init__(self, message: str, *, line: int | None = None, resource: str | None = None):
        self.message = message
        self.line = line
        self.resource = resource
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.resource:
            where.append(self.resource)
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class UnsafeXMLError(ParseError):
    """The document uses a feature refused by policy (DOCTYPE, entities, XInclude)."""


class XMLLimitError(ParseError):
    """The document exceeds a safety limit (nesting depth, text size, element counts)."""


class TransportError(GreenButtonError):
    """No HTTP answer: connection, TLS or timeout. ``url`` never carries a token."""

    def __init__(self, message: str, *, url: str | None = None):
        self.url = url
        super().__init__(message)


class ConnectError(TransportError):
    """Could not connect or complete the TLS handshake (check the client certificate)."""


class EgressDenied(ConnectError):
    """Not connected: the custodian host resolves to an address that is not public and its
    profile is not marked ``local`` (SECURITY R47)."""


class RequestTimeout(TransportError):
    """A timeout, or the call's overall deadline passed."""


class RequestDeferred(TransportError):
    """Not sent, on purpose: try again after ``retry_after`` seconds (from when it was raised).

    The common base of the client's own refusals, so a job runner catches one class and
    defers the job instead of counting it as a failure or sleeping inside the request.
    """

    def __init__(self, message: str, *, url: str | None = None, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message, url=url)


class CircuitOpenError(RequestDeferred):
    """Not sent: the data custodian failed ``failures`` operations in a row, so the client's
    circuit breaker fails fast instead of adding load (SECURITY R59).

    ``retry_after`` is how many seconds from when it was raised until the breaker lets a
    probe request through; a job runner should defer the work at least that long.
    """

    def __init__(self, message: str, *, url: str | None = None, retry_after: float, failures: int):
        self.failures = failures
        super().__init__(message, url=url, retry_after=retry_after)


class QuotaExhaustedError(RequestDeferred):
    """Not sent: the client id's ``quota`` (``"hour"`` or ``"day"``) of ``limit`` requests is
    used up on this machine (SECURITY R58; PG&E: 2,000/h, 20,000/day).

    ``retry_after`` is how many seconds from when it was raised until the window frees a
    request; a job runner should defer the work that long rather than hold a request open.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        retry_after: float,
        quota: str,
        limit: int,
    ):
        self.quota = quota
        self.limit = limit
        super().__init__(message, url=url, retry_after=retry_after)


class OAuthError(GreenButtonError):
    """An RFC 6749 section 5.2 error from the token endpoint."""

    def __init__(
        self,
        error: str,
        description: str | None = None,
        *,
        uri: str | None = None,
        status_code: int | None = None,
    ):
        self.error = error
        self.description = description
        self.uri = uri
        self.status_code = status_code
        text = f"{error}: {description}" if description else error
        super().__init__(f"token endpoint answered {status_code or '?'} {text}")


class InvalidGrantError(OAuthError):
    """The code or refresh token was rejected: the customer must authorize again."""


class InvalidClientError(OAuthError):
    """The client id, secret or certificate was not accepted."""


class CallbackError(OAuthError):
    """The authorization redirect (RFC 6749 4.1.2) cannot give a code.

    ``from_server`` is True when the authorization server sent ``error=`` (``access_denied``
    when the customer said no); otherwise ``error`` names the local check that failed
    (``invalid_callback``, ``state_mismatch``, ``expired``, ``redirect_mismatch``). The
    description is plain text, never HTML: escape it before showing it in a page (R06).
    """

    def __init__(
        self,
        error: str,
        description: str | None = None,
        *,
        uri: str | None = None,
        from_server: bool = False,
    ):
        super().__init__(error, description, uri=uri)
        self.from_server = from_server
        text = f"{error}: {description}" if description else error
        origin = "the authorization server answered" if from_server else "rejected callback"
        self.args = (f"authorization failed, {origin} {text}",)


class APIStatusError(GreenButtonError):
    """A non-2xx answer from the resource server."""

    def __init__(self, message: str, *, status_code: int, url: str, excerpt: str = ""):
        self.status_code = status_code
        self.url = url
        self.excerpt = excerpt
        super().__init__(message)


class AuthorizationError(APIStatusError):
    """401/403: the token is expired, revoked, or does not cover the resource."""


class NotFoundError(APIStatusError):
    """404: no such resource."""


class ServerError(APIStatusError):
    """5xx or 429; ``retry_after`` (seconds) when the server said."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str,
        excerpt: str = "",
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, status_code=status_code, url=url, excerpt=excerpt)


class StorageError(GreenButtonError):
    """The database refused or failed an operation (locked, full, unreachable, corrupt)."""


class SecretKeyError(StorageError):
    """The encryption key is missing, malformed, or in a file others can read."""


class TokenDecryptionError(StorageError):
    """A stored secret cannot be decrypted: wrong key or tampered ciphertext."""


class ReconciliationError(StorageError):
    """The stored readings do not add up to the document's (SECURITY R64); rolled back."""


class JobRejected(GreenButtonError):
    """The job cannot be run as stored: its URI is not the custodian's, or its
    authorization is gone. Recorded on the job like any failure."""


class RejectedURI(GreenButtonError, ValueError):
    """A notified URI that fails validation; never fetched (R41). Still a ``ValueError``,
    as it was before it joined the tree."""


class DemoError(GreenButtonError):
    """A step of the ``greenbutton demo`` loop did not do what it should; the message says
    which."""
