"""Small helpers every layer may use; the lowest layer (STYLE 1 ``_util``): nothing here
imports another greenbutton module but the error tree. One copy each (issue 13.4):

* per-user folders: :func:`user_data_dir`, :func:`user_cache_dir`, :func:`user_config_dir`,
  from platformdirs (on Linux the same paths as before: the XDG variables, else
  ``~/.local/share``, ``~/.cache``, ``~/.config``, each + ``greenbutton``);
* atomic writes: :func:`atomic_file` (the readings writers, the simulator's certificates),
  :func:`write_private_json` (0600: token file, pending authorization, simulator state);
* ``Retry-After``: :func:`parse_retry_after`;
* loopback: :func:`is_loopback_ip` (where we send; the URL policy in :mod:`._urls` uses
  it) and :func:`is_loopback_host` (where we listen).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import errno
import ipaddress
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from ._errors import ConfigurationError

__all__ = [
    "MAX_RETRY_AFTER",
    "atomic_file",
    "is_loopback_host",
    "is_loopback_ip",
    "parse_retry_after",
    "read_json_file",
    "user_cache_dir",
    "user_config_dir",
    "user_data_dir",
    "write_private_json",
]


def is_loopback_ip(host: str) -> bool:
    """True only for an IP *literal* on loopback: ``127.0.0.0/8`` or ``::1`` (brackets
    allowed, ``[::1]``). The one test wherever plain ``http://`` may be sent (the URL
    policy in :mod:`._urls`, the simulator's notifications): a name, ``localhost``
    included, is False, since what it resolves to is not the URL's to say (STYLE 3); so is
    an IPv4-mapped ``::ffff:127.0.0.1``, on every Python (3.13 began calling it loopback).
    Of the former copies, one let ``localhost`` through for notifications: this, the
    stricter rule, won."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return False
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """:func:`is_loopback_ip`, or the name ``localhost`` (any case, trailing dot): only for
    an address *we* listen on (the simulator's bind host), where our own resolver answers
    for the name (RFC 6761 6.3) and no URL is trusted on its word. Never for where to send."""
    return host.lower().removesuffix(".") == "localhost" or is_loopback_ip(host)


#: The largest ``Retry-After`` believed, in seconds: RFC 9111 1.2.2's ceiling for a
#: delta-seconds value too large to represent (2**31, about 68 years).
MAX_RETRY_AFTER = 2.0**31


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 10.2.3); the one rule.

    * delta-seconds (ASCII digits only, surrounding blanks ignored): that many seconds,
      capped at :data:`MAX_RETRY_AFTER` (RFC 9111 1.2.2), however many digits;
    * an HTTP-date: its distance from ``now`` (epoch seconds, default the wall clock), a
      past date meaning 0. A date without a zone (the obsolete RFC 850 and asctime forms)
      is GMT, as every HTTP-date is (RFC 9110 5.6.7). The two former copies disagreed
      here (one ignored such a date); honouring the server's wait is the safer choice;
    * None when absent or anything else (``-3``, ``1.5``, ``abc``, non-ASCII digits):
      the caller's own backoff applies. Capping a long wait is the retry policy's job.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0") or "0"
        return MAX_RETRY_AFTER if len(digits) > 10 else min(float(digits), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    try:
        return min(max(0.0, when.timestamp() - current), MAX_RETRY_AFTER)
    except (OverflowError, OSError, ValueError):
        return None


APP_NAME = "greenbutton"
_Kind = Literal["data", "cache", "config"]
_XDG: dict[_Kind, str] = {
    "data": "XDG_DATA_HOME",
    "cache": "XDG_CACHE_HOME",
    "config": "XDG_CONFIG_HOME",
}


def _user_dir(kind: _Kind, env: Mapping[str, str] | None) -> Path:
    """``greenbutton`` in platformdirs' per-user folder of this ``kind`` (no author folder
    on Windows; config roams there, as it did). ``env``, an injected environment (as
    :func:`~greenbutton.load_config` takes one), supplies the XDG variable where
    platformdirs honours XDG (everywhere but Windows); platformdirs itself reads
    ``os.environ``. A relative XDG path is ignored, as the XDG spec says."""
    if env is not None and env is not os.environ and sys.platform != "win32":
        base = env.get(_XDG[kind], "")
        if os.path.isabs(base):
            return Path(base) / APP_NAME
    import platformdirs  # only when a folder is asked for: import greenbutton stays light

    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False, roaming=kind == "config")
    return Path(getattr(dirs, f"user_{kind}_dir"))


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder (platformdirs): ``$XDG_DATA_HOME/greenbutton``, else
    ``~/.local/share/greenbutton`` on Linux; tokens, the database, simulator state."""
    return _user_dir("data", env)


def user_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache folder (platformdirs): ``$XDG_CACHE_HOME/greenbutton``, else
    ``~/.cache/greenbutton`` on Linux; the shared rate-limit state."""
    return _user_dir("cache", env)


def user_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user config folder (platformdirs): ``$XDG_CONFIG_HOME/greenbutton``, else
    ``~/.config/greenbutton`` on Linux; ``config.toml``."""
    return _user_dir("config", env)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb", *, private: bool = False) -> Iterator[IO[Any]]:
    """A temporary file in ``path``'s folder, fsynced and renamed onto ``path`` only when
    the block succeeds (removed otherwise). ``private``: mode 0600 from the first byte
    (secrets, R50); else an ordinary file (0666 less the umask). A missing folder raises
    :class:`FileNotFoundError` naming the folder."""
    folder = path.parent if str(path.parent) else Path(".")
    missing = FileNotFoundError(
        errno.ENOENT, f"cannot write {path.name}: no such folder", str(folder)
    )
    if not folder.is_dir():
        raise missing
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except FileNotFoundError:  # the folder went away in between
        raise missing from None
    try:
        text = "b" not in mode
        options: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if text else {}
        with os.fdopen(fd, mode, **options) as fh:  # mkstemp: 0600
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if not private:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` atomically, mode 0600 from the first byte (R50); the folder
    is created 0700 when missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_file(path, "w", private=True) as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


def read_json_file(path: Path, what: str = "greenbutton token store") -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when there is no file. Anything else than a JSON
    object is a :class:`~greenbutton.ConfigurationError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise ConfigurationError(f"{path} is not a {what}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a {what}")
    return data
