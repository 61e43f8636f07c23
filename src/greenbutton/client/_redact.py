"""Keep secrets out of log records (SECURITY R49).

Tokens, client secrets, codes and ``Authorization`` header values must never reach a log,
whoever logs them: our own modules, httpx2 (its INFO line carries the full URL, query
included) or httpcore2. :class:`RedactingFilter` rewrites a record in place before any
handler formats it: the message with its arguments merged, a traceback (formatted once, here)
and ``stack_info``.

A filter attached to a *logger* only sees records created on that very logger, not those
propagated from its children, so :func:`install_redaction` attaches one filter to the
``greenbutton`` logger, to every ``greenbutton.*`` logger that exists, to the httpx2 and
httpcore2 loggers, and to any handlers you pass (a handler filter sees everything it emits;
pass your root handler to cover loggers created later). :func:`get_logger` is how the package
creates its own loggers, so they carry the filter from the start.

URLs lose their query (R49: "URLs are logged without query"): ``scheme://host/path?...``
anywhere in a message (httpx2's ``HTTP Request: GET https://...?...`` line, a ``Location``
header in httpcore2's trace) and the request target of an HTTP request line (uvicorn's
access log, ``"GET /path?... HTTP/1.1"``). A bare ``?a=b&c=d`` without a URL before it keeps
its keys, with the secret values masked.

Redaction works on shapes, not on known values: ``Authorization: <scheme> <credential>``,
``key=value`` (forms, queries), ``"key": "value"`` (JSON, dict reprs) for the keys in
:data:`SECRET_KEYS`. A secret printed bare, without its key, cannot be recognised: code must
not do that, and :class:`greenbutton.Secret` makes it hard to do by accident.

:func:`redact` is idempotent (a mask is never masked again, ``Bearer [REDACTED]]``): a
record may meet more than one filter, and a formatter may redact what a filter already did.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "DropDebugFilter",
    "RedactingFilter",
    "get_logger",
    "install_redaction",
    "quiet_debug",
    "redact",
]

MASK = "[REDACTED]"

#: Parameter and JSON member names whose values are secrets (RFC 6749, RFC 7636, ESPI, PG&E).
SECRET_KEYS = (
    "access_token",
    "refresh_token",
    "client_access_token",
    "registration_access_token",
    "id_token",
    "client_secret",
    "code",
    "code_verifier",
    "state",
    "password",
    "key_password",
)

_KEYS = "|".join(SECRET_KEYS)

_Replacement = str | Callable[[re.Match[str]], str]


def _containers(depth: int) -> str:
    """A regex for a ``{...}`` or ``[...]`` nested up to ``depth`` deep, its quoted strings
    (brackets in them included) skipped whole: a secret's value may be a dict or a list."""
    string = r"""(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
    other = r"""[^\[\]{}'"]"""
    inner = ""
    for _ in range(depth):
        body = f"(?:{string}|{other}{'|' + inner if inner else ''})*"
        inner = rf"(?:\{{{body}\}}|\[{body}\])"
    return inner


_CONTAINER = _containers(3)

_PATTERNS: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    # URLs without their query: https://h/p?code=x -> https://h/p (fragments are never sent).
    (re.compile(r"""(?i)\b([a-z][a-z0-9+.-]*://[^\s?#'"<>\\]*)\?[^\s#'"<>\\]*"""), r"\1"),
    # The target of an HTTP request line: "GET /p?state=x HTTP/1.1" -> "GET /p HTTP/1.1".
    (
        re.compile(r"""\b((?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) /[^\s?#'"]*)\?[^\s'"]*"""),
        r"\1",
    ),
    # Authorization / Proxy-Authorization headers in any rendering: "Authorization: Bearer x",
    # "'authorization': 'Basic x'", "(b'Authorization', b'Bearer x')". The scheme is kept.
    (
        re.compile(
            r"""(?ix)
            ((?>\b(?:proxy-)?authorization\b  # atomic: no shorter prefix to retry after a mask
             (?:['"]?\s*[:=]\s*(?:b?['"])?|['"]\s*,\s*b?['"])\s*))
            (?!(?:(?:bearer|basic|digest|negotiate|token)\s+)?\[REDACTED\])  # masked already
            (?:(bearer|basic|digest|negotiate|token)\s+)?
            ([^\s'",;)}\]]+)
            """
        ),
        lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{MASK}",
    ),
    # JSON members and dict reprs: "access_token": "x", 'code': 'x', b'state': b'x'.
    (
        re.compile(rf"""(?i)(['"](?:{_KEYS})['"]\s*:\s*b?)(['"])((?:\\.|(?!\2).)*)\2"""),
        rf"\1\2{MASK}\2",
    ),
    # A dict or list under a secret key, whole: "state": {"x": "y"}, 'password': ['a'].
    (re.compile(rf"""(?i)(['"](?:{_KEYS})['"]\s*:\s*){_CONTAINER}"""), rf"\1{MASK}"),
    # Unquoted JSON-ish numbers/literals after a secret key: "code": 12345.
    (
        re.compile(rf"""(?i)(['"](?:{_KEYS})['"]\s*:\s*)(?!['"b\s]|\[REDACTED\])([^\s,}}\]]+)"""),
        rf"\1{MASK}",
    ),
    # Form bodies and query strings: access_token=x&code=y (also keyword reprs code='x').
    (
        re.compile(rf"""(?i)(?<![\w-])((?:{_KEYS})\s*=\s*)(['"])(?:\\.|(?!\2).)*\2"""),
        rf"\1\2{MASK}\2",
    ),
    (re.compile(rf"""(?i)(?<![\w-])((?:{_KEYS})\s*=\s*)(?!['"])[^&\s'"#,)]+"""), rf"\1{MASK}"),
    # Prose such as oauthlib's "Invalid refresh token, <value>": a token word followed by
    # a long opaque string (16+ token characters; ordinary words are shorter).
    (
        re.compile(
            r"(?i)\b((?:access|refresh|bearer|client access|registration access)[ _]token"
            r"(?:\s*[,:]\s*|\s+))"
            r"(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{16,}"
        ),
        rf"\1{MASK}",
    ),
)


def redact(text: str) -> str:
    """``text`` with every recognisable secret value replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _access_arg(value: object) -> object:
    if not isinstance(value, str):
        return value
    if value.startswith("/"):  # the request target
        value = value.split("?", 1)[0]
    return redact(value).replace("\r", "%0D").replace("\n", "%0A")


class RedactingFilter(logging.Filter):
    """Rewrites each record so no handler can print a secret; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_greenbutton_redacted", False):
            return True  # already done by a filter nearer the source
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            # uvicorn's AccessFormatter unpacks the arguments (client, method, path, version,
            # status): keep them a tuple, the path without its query.
            record.args = tuple(_access_arg(a) for a in record.args)
            record.msg = redact(str(record.msg))
            record._greenbutton_redacted = True
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we can see, safely
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # Handlers format exc_info lazily and reuse exc_text when set: format it now,
            # redacted, so exception messages and reprs cannot leak (httpx2 errors, R49).
            # exc_info is then dropped: a formatter that re-renders it would bypass us.
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._greenbutton_redacted = True
        return True


_FILTER = RedactingFilter()

_HTTPCORE_PARTS = ("connection", "http11", "http2", "proxy", "socks")

#: Loggers of the libraries under us (and under the simulator): their records carry URLs
#: with queries, request bodies, or (oauthlib at DEBUG) token values.
_LIBRARY_LOGGERS = (
    "httpx2",
    "httpcore2",
    "httpx",
    "httpcore",
    "oauthlib",
    "uvicorn",
    "uvicorn.access",  # request lines with their query strings
    "uvicorn.error",
    # httpcore's modules make these when first imported (often after us): made here first,
    # so they carry the filter; httpcore2.http11 logs response headers (Location: ?code=).
    *(f"{lib}.{part}" for lib in ("httpcore2", "httpcore") for part in _HTTPCORE_PARTS),
)


def _attach(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redaction filter attached (package modules use it)."""
    logger = logging.getLogger(name)
    _attach(logger)
    return logger


def install_redaction(handlers: Iterable[logging.Handler] = ()) -> RedactingFilter:
    """Attach the redaction filter where records are made and, if given, to ``handlers``.

    Idempotent. Returns the filter so callers can attach it elsewhere too.
    """
    _attach(logging.getLogger("greenbutton"))
    prefixes = tuple(f"{name}." for name in ("greenbutton", *_LIBRARY_LOGGERS))
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(prefixes):
            _attach(logging.getLogger(name))
    for name in _LIBRARY_LOGGERS:
        _attach(logging.getLogger(name))
    for handler in handlers:
        _attach(handler)
    return _FILTER


class DropDebugFilter(logging.Filter):
    """Drops DEBUG records: for libraries whose DEBUG lines are secrets in the clear.

    oauthlib logs grants (``{'code': ..., 'state': ...}``), issued token dicts, refresh
    token values in prose and ``request.client`` with ``%r`` at DEBUG (R49); the simulator
    logs its own events at INFO, so nothing it needs is lost.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_DROP_DEBUG = DropDebugFilter()


def quiet_debug(name: str) -> None:
    """Attach :class:`DropDebugFilter` to logger ``name`` and every ``name.*`` logger that
    exists now (a logger's filters do not see its children's records). Idempotent."""
    prefix = f"{name}."
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(prefix)]
    for logger_name in (name, *names):
        logger = logging.getLogger(logger_name)
        if not any(isinstance(f, DropDebugFilter) for f in logger.filters):
            logger.addFilter(_DROP_DEBUG)
