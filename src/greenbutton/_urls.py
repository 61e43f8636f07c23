"""The URL policy (SECURITY R25, R49; STYLE 3), one copy: ``https://`` only, ``http://`` only to
a loopback IP literal (the simulator), never a user name or password in the URL; and the
form of a URL that may appear in logs and errors.

Its own module, below :mod:`._profile` and :mod:`._transport`: a profile built from an
ApplicationInformation document checks its endpoints here, and the transport checks every
request here, so neither imports the other (issue 13.4). :mod:`._transport` re-exports both
names. httpx2 parses the URL; :mod:`._profile` imports this module only when it checks one,
so ``import greenbutton`` does not load httpx2.
"""

from __future__ import annotations

import httpx2

from ._errors import ConfigurationError
from ._util import is_loopback_ip

__all__ = ["check_url", "safe_url"]


def check_url(url: str | httpx2.URL, *, what: str = "URL") -> None:
    """Refuse anything but ``https://`` (or ``http://`` to a loopback IP literal), and URLs
    carrying credentials. Raises :class:`ConfigurationError`."""
    try:
        parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(url)
    except httpx2.InvalidURL:
        raise ConfigurationError(f"{what} is not a valid URL") from None
    shown = safe_url(str(parsed))
    if parsed.userinfo:
        raise ConfigurationError(f"{what} must not carry a user name or password: {shown}")
    if not parsed.host:
        raise ConfigurationError(f"{what} has no host: {shown}")
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http" and is_loopback_ip(parsed.host):
        return
    raise ConfigurationError(
        f"{what} must use https:// (http:// only to 127.0.0.1 or [::1]): {shown}"
    )


def safe_url(url: str | httpx2.URL) -> str:
    """The URL without query, fragment or userinfo: what may appear in logs and errors."""
    try:
        parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(str(url))
        port = f":{parsed.port}" if parsed.port else ""
        host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
        cleaned = f"{parsed.scheme}://{host}{port}{parsed.path}" if parsed.scheme else parsed.path
    except (httpx2.InvalidURL, TypeError, ValueError):
        cleaned = str(url).split("?", 1)[0].split("#", 1)[0]
    # CR/LF (log injection, R49) never survive; the path is shown escaped.
    return cleaned.replace("\r", "%0D").replace("\n", "%0A")
