"""The one copy of each small policy in ``greenbutton._util`` (STYLE 1, issue 13.4):
Retry-After parsing, atomic private writes, URL checks, loopback tests, per-user folders."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
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
    from greenbutton.client import _transport as _transport
    from greenbutton.oauth import _responses

    assert oauth.parse_retry_after is _util.parse_retry_after
    assert _transport.parse_retry_after is _util.parse_retry_after
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


# -- URL checks and loopback ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ip", "host_ok"),
    [
        ("127.0.0.1", True, True),
        ("127.8.9.10", True, True),
        ("::1", True, True),
        ("[::1]", True, True),
        ("localhost", False, True),  # a name: never trusted where we send, fine where we bind
        ("LOCALHOST.", False, True),
        ("localhost..", False, False),
        ("localhost.evil", False, False),
        ("127.0.0.1.evil.test", False, False),
        ("::ffff:127.0.0.1", False, False),  # IPv4-mapped: not loopback on any Python
        ("0.0.0.0", False, False),
        ("10.0.0.1", False, False),
        ("", False, False),
    ],
)
def test_loopback_tests(host: str, ip: bool, host_ok: bool) -> None:
    assert _util.is_loopback_ip(host) is ip
    assert _util.is_loopback_host(host) is host_ok


def test_the_simulator_uses_the_one_loopback_test() -> None:
    from greenbutton.simulator import _bootstrap, _notify

    assert _bootstrap.is_loopback is _util.is_loopback_host
    assert not hasattr(_notify, "_is_loopback")
    assert _notify._target_problem("http://127.0.0.1:9/n") is None
    assert _notify._target_problem("https://dc.example/n") is None
    assert _notify._target_problem("http://localhost:9/n")  # the stricter rule won


USERINFO = [
    "https://user:pw@dc.example/x",
    "https://user@dc.example/x",
    "http://127.0.0.1@evil.test/x",
    "http://pw@127.0.0.1:9/x",
]


@pytest.mark.parametrize("url", USERINFO)
def test_userinfo_refused_by_every_url_check(url: str) -> None:
    """Every entry point of the URL policy refuses a user name or password: the transport's
    check, the authorize URL, the token and the revocation request (issue 13.4)."""
    from dataclasses import replace

    from greenbutton._errors import ConfigurationError
    from greenbutton._secret import Secret
    from greenbutton.client._transport import check_url
    from greenbutton.models._profile import Credentials, UtilityProfile
    from greenbutton.oauth import authorization_request, client_credentials_request, revoke_request

    profile = UtilityProfile(
        name="t",
        authorize_url="https://dc.example/authorize",
        token_url="https://dc.example/token",  # noqa: S106 - a URL, not a secret
        resource_url="https://dc.example/espi/1_1/resource",
    )
    creds = Credentials(
        client_id="c",
        client_secret=Secret("s"),
        client_cert=Path("/nonexistent/c.pem"),
        client_key=Path("/nonexistent/k.pem"),
    )
    redirect = "https://tp.example/cb"
    authorization_request(profile, "c", redirect)  # the good profile passes
    checks = [
        lambda: check_url(url),
        lambda: authorization_request(replace(profile, authorize_url=url), "c", redirect),
        lambda: client_credentials_request(replace(profile, token_url=url), creds),
        lambda: revoke_request(profile, creds, Secret("rt"), url=url),
    ]
    for check in checks:
        with pytest.raises(ConfigurationError, match="user name or password") as info:
            check()
        assert "pw" not in str(info.value)


# -- per-user folders ----------------------------------------------------------------------

XDG = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG paths (Linux)")


@XDG
@pytest.mark.parametrize(
    ("var", "folder", "default"),
    [
        ("XDG_DATA_HOME", _util.user_data_dir, ".local/share"),
        ("XDG_CACHE_HOME", _util.user_cache_dir, ".cache"),
        ("XDG_CONFIG_HOME", _util.user_config_dir, ".config"),
    ],
)
def test_user_folders_honour_xdg(
    var: str,
    folder: Callable[..., Path],
    default: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(var, str(tmp_path / "xdg"))
    assert folder() == tmp_path / "xdg" / "greenbutton"
    # an injected environment's variable wins over os.environ's (load_config(env=...))
    assert folder({var: str(tmp_path / "other")}) == tmp_path / "other" / "greenbutton"
    for unset in ("", "relative/path"):  # the XDG spec: a relative path is ignored
        monkeypatch.setenv(var, unset)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert folder() == tmp_path / "home" / default / "greenbutton"
    monkeypatch.delenv(var)
    assert folder() == tmp_path / "home" / default / "greenbutton"
    assert not (tmp_path / "home").exists()  # asking creates nothing


@XDG
def test_every_folder_helper_is_the_util_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenbutton.client._config import default_config_path, default_simulator_dir
    from greenbutton.client._ratelimit import default_rate_dir
    from greenbutton.oauth import FileTokenStore

    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    data = tmp_path / "xdg_data_home" / "greenbutton"
    assert FileTokenStore.default_path() == data / "tokens.json"
    assert default_simulator_dir() == data / "simulator"
    assert default_rate_dir() == tmp_path / "xdg_cache_home" / "greenbutton" / "ratelimit"
    assert default_config_path() == tmp_path / "xdg_config_home" / "greenbutton" / "config.toml"
    try:
        from greenbutton.storage._store import default_data_dir
    except ImportError:  # the [db] extra
        return
    assert default_data_dir() == data and data.is_dir()


# -- namespaces ----------------------------------------------------------------------------


def test_one_home_for_the_xml_namespaces() -> None:
    """models/_namespaces.py is the only place the ESPI and Atom namespace URIs are spelled
    (the compiled accelerator's C string aside); the others import it."""
    import greenbutton

    src = Path(greenbutton.__file__).parent
    home = src / "models" / "_namespaces.py"
    for uri in ("http://naesb.org/espi", "http://www.w3.org/2005/Atom"):
        spelled = sorted(
            str(p.relative_to(src))
            for p in src.rglob("*.py")
            if f'= "{uri}"' in p.read_text(encoding="utf-8")  # a constant, not prose
        )
        assert spelled == [str(home.relative_to(src))], uri


def test_one_usual_interval_length() -> None:
    pytest.importorskip("matplotlib")
    from greenbutton.analysis import _charts as charts, _summary as _analysis

    assert not hasattr(charts, "_usual")
    assert charts._usual_length is _analysis._usual_length
    assert _analysis._usual_length([900, 3600, 3600, 900, 0, -5]) == 900  # tie: first seen
    assert _analysis._usual_length([0, -1]) == 0


@pytest.mark.parametrize("url", USERINFO)
def test_userinfo_refused_for_the_simulators_third_party(url: str) -> None:
    from greenbutton._errors import ConfigurationError
    from greenbutton.simulator._bootstrap import _third_party_url

    assert _third_party_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    with pytest.raises(ConfigurationError, match="user name or password") as info:
        _third_party_url(url)
    assert "pw" not in str(info.value)
