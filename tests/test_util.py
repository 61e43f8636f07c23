"""The one copy of each small policy in ``greenbutton._util`` (STYLE 1, issue 13.4):
Retry-After parsing, atomic private writes, URL checks, loopback tests, per-user folders."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from greenbutton import _util
from greenbutton._util import MAX_RETRY_AFTER, parse_retry_after

NOW = 1_700_000_000.0

# -- Retry-After ---------------------------------------------------------------------------


def _date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("0009", 9.0),
        ("86400", 86400.0),
        (_date(30), 30.0),
        (_date(-30), 0.0),  # a past date: now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850
        ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime: no zone, GMT (the safer rule)
        ("9" * 30, MAX_RETRY_AFTER),  # huge: RFC 9111 1.2.2's ceiling, no OverflowError
        ("9" * 5000, MAX_RETRY_AFTER),  # beyond int()'s digit limit
        ("Wed, 21 Oct 9999 07:28:00 GMT", MAX_RETRY_AFTER),
    ],
)
def test_retry_after_understood(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [None, "", "-3", "-0", "+5", "1.5", "1e3", "abc", "\u00b2", "\u0663", "Wed, 32 Oct 2015"],
)
def test_retry_after_garbage_and_negative_are_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_every_caller_uses_the_one_rule() -> None:
    from greenbutton import oauth
    from greenbutton.oauth import _responses

    assert oauth.parse_retry_after is _util.parse_retry_after
    assert _responses.parse_retry_after is _util.parse_retry_after
    naive = "Sun Nov  6 08:49:37 2093"  # asctime, far ahead: honoured, not ignored
    assert oauth.parse_retry_after(naive, now=NOW) == _util.parse_retry_after(naive, now=NOW)
    assert oauth.parse_retry_after(naive, now=NOW)


def test_retry_after_defaults_to_the_wall_clock() -> None:
    wait = parse_retry_after(format_datetime(datetime.now(UTC), usegmt=True))
    assert wait is not None and wait <= 1.0


# -- atomic private writes -----------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_simulator_files_are_written_through_util(tmp_path: Path) -> None:
    """The simulator's keys, state and registration go through ``_util``'s atomic write:
    keys and state 0600, certificates ordinary files, no temporary file left behind."""
    from greenbutton.simulator import _pki, _state

    pair = _pki.new_ca()
    _pki.write_key(tmp_path / "k.pem", pair)
    _pki.write_cert(tmp_path / "c.pem", pair)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c.pem").stat().st_mode) == 0o666 & ~_util._umask()
    assert not hasattr(_pki, "_atomic_write") and not hasattr(_state, "_write_private")
    _util.write_private_json(tmp_path / "state.json", {"a": 1})
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem", "state.json"]
