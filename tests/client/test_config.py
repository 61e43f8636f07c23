"""Profiles and credentials from the TOML file and the environment (DESIGN 3.5, R50), the
simulator profile from registration.json (DESIGN 3.6) and profiles from ESPI
ApplicationInformation documents."""

# ruff: noqa: S105  (fixed test secrets)

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from greenbutton._errors import ConfigurationError
from greenbutton._secret import Secret
from greenbutton.client._config import (
    credentials_from_registration,
    default_config_path,
    default_simulator_dir,
    load_config,
)
from greenbutton.models._profile import PGE, UtilityProfile, read_registration
from greenbutton.parse import parse


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    return write(tmp_path / "secrets" / "pge", "file-secret\n", 0o600)


PGE_TOML = """
default_profile = "pge"

[profile.pge]
client_id = "12345"
client_secret_file = "secrets/pge"
client_cert = "certs/client.crt.pem"
client_key = "/abs/client.key.pem"
redirect_uri = "https://tp.example/OAuthCallback"
window_days = 14
"""


def test_file_profile_starts_from_builtin(tmp_path: Path, secret_file: Path) -> None:
    config = write(tmp_path / "config.toml", PGE_TOML)
    profile, creds = load_config(config, env={})
    assert profile == UtilityProfile(**{**_fields(PGE), "window_days": 14})
    assert creds.client_id == "12345"
    assert creds.client_secret == Secret("file-secret")
    assert creds.client_cert == tmp_path / "certs" / "client.crt.pem"  # relative to the file
    assert creds.client_key == Path("/abs/client.key.pem")
    assert creds.redirect_uri == "https://tp.example/OAuthCallback"
    assert creds.key_password is None and creds.ca_cert is None


def _fields(profile: UtilityProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in profile.__dataclass_fields__}


def test_environment_overrides_file(tmp_path: Path, secret_file: Path) -> None:
    config = write(tmp_path / "config.toml", PGE_TOML)
    env = {
        "GREENBUTTON_CLIENT_ID": "env-id",
        "GREENBUTTON_CLIENT_SECRET": "env-secret",
        "GREENBUTTON_CLIENT_CERT": "/env/cert.pem",
        "GREENBUTTON_CLIENT_KEY": "/env/key.pem",
        "GREENBUTTON_KEY_PASSWORD": "env-pass",
        "GREENBUTTON_CA_CERT": "/env/ca.pem",
    }
    _, creds = load_config(config, env=env)
    assert creds.client_id == "env-id"
    assert creds.client_secret.reveal() == "env-secret"
    assert creds.client_cert == Path("/env/cert.pem")
    assert creds.client_key == Path("/env/key.pem")
    assert creds.key_password == Secret("env-pass")
    assert creds.ca_cert == Path("/env/ca.pem")


def test_secret_from_named_variable(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config.toml",
        """[profile.pge]
client_id = "1"
client_secret_env = "MY_PGE_SECRET"
key_password_env = "MY_KEY_PASS"
client_cert = "c.pem"
client_key = "k.pem"
""",
    )
    _, creds = load_config(config, env={"MY_PGE_SECRET": "v1", "MY_KEY_PASS": "v2"})
    assert creds.client_secret.reveal() == "v1" and creds.key_password == Secret("v2")
    with pytest.raises(ConfigurationError, match="environment variable MY_PGE_SECRET"):
        load_config(config, env={})


@pytest.mark.parametrize("key", ["client_secret", "key_password"])
def test_inline_secret_refused(tmp_path: Path, key: str) -> None:
    config = write(tmp_path / "config.toml", f'[profile.pge]\n{key} = "hunter2"\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(config, env={})
    message = str(info.value)
    assert f"{key} must not be written in [profile.pge]" in message
    assert f'{key}_env = "VAR"' in message and f'{key}_file = "path"' in message
    assert "hunter2" not in message


def test_tokens_are_not_configuration(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", '[profile.pge]\nrefresh_token = "x"\n')
    with pytest.raises(ConfigurationError, match="token store"):
        load_config(config, env={})


def test_secret_file_must_be_private(tmp_path: Path, secret_file: Path) -> None:
    os.chmod(secret_file, 0o644)
    config = write(tmp_path / "config.toml", PGE_TOML)
    with pytest.raises(ConfigurationError, match=f"chmod 600 {secret_file}"):
        load_config(config, env={})


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"config file not found: .*nope\.toml"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigurationError, match="config file not found"):
        load_config(env={"GREENBUTTON_CONFIG": str(tmp_path / "other.toml")})


def test_default_file_is_optional(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "GREENBUTTON_PROFILE": "pge",
        "GREENBUTTON_CLIENT_ID": "1",
        "GREENBUTTON_CLIENT_SECRET": "s",
        "GREENBUTTON_CLIENT_CERT": "/c.pem",
        "GREENBUTTON_CLIENT_KEY": "/k.pem",
    }
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert default_config_path(env) == tmp_path / "greenbutton" / "config.toml"
    profile, creds = load_config(env=env)
    assert profile == PGE and creds.client_id == "1"
    del env["GREENBUTTON_CLIENT_SECRET"]
    with pytest.raises(ConfigurationError) as info:
        load_config(env=env)
    assert "profile 'pge' has no client_secret" in str(info.value)
    assert "GREENBUTTON_CLIENT_SECRET" in str(info.value)


def test_profile_choice(tmp_path: Path, secret_file: Path) -> None:
    two = PGE_TOML.replace('default_profile = "pge"', "") + (
        '\n[profile.acme]\nauthorize_url = "https://a.test/auth"\n'
        'token_url = "https://a.test/token"\nresource_url = "https://a.test/espi/1_1/resource/"\n'
        'client_id = "a"\nclient_secret_file = "secrets/pge"\n'
        'client_cert = "c.pem"\nclient_key = "k.pem"\npublished_format = "epoch"\n'
        "rate_limit_per_s = 2\n"
        '[profile.acme.authorize_params]\nverified = "true"\n'
    )
    config = write(tmp_path / "config.toml", two)
    with pytest.raises(ConfigurationError, match=r"no profile chosen.*known: acme, pge, simulator"):
        load_config(config, env={})
    acme, creds = load_config(config, env={"GREENBUTTON_PROFILE": "acme"})
    assert acme.name == "acme" and creds.client_id == "a"
    assert acme.resource_url == "https://a.test/espi/1_1/resource"
    assert acme.published_format == "epoch" and acme.rate_limit_per_s == 2
    assert acme.authorize_params == (("verified", "true"),)
    # The argument wins over the environment.
    pge, _ = load_config(config, profile="pge", env={"GREENBUTTON_PROFILE": "acme"})
    assert pge.name == "pge"
    with pytest.raises(ConfigurationError, match="unknown profile 'nope'"):
        load_config(config, profile="nope", env={})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[profile.pge]\nclient_idd = "1"\n', "unknown setting client_idd"),
        ("colour = 1\n", "unknown setting colour"),
        ('[profile.pge]\nwindow_days = "30"\n', "window_days in .* must be a int"),
        ("[profile.pge]\nwindow_days = 0\n", "must be positive"),
        ("[profile.pge]\nloopback_redirect_allowed = 1\n", "must be a bool"),
        ("[profile.pge]\nrate_limit_per_s = true\n", "must be a int or float"),
        ('[profile.pge]\npublished_format = "unix"\n', '"epoch" or "datetime"'),
        ('[profile.x]\nclient_id = "1"\n', "needs authorize_url, token_url, resource_url"),
        ('[profile.x]\nbase = "sce"\n', "base in .* must be one of pge, simulator"),
        ("[profile\n", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, words: str) -> None:
    config = write(tmp_path / "config.toml", body)
    with pytest.raises(ConfigurationError, match=words):
        load_config(config, profile="x" if "profile.x" in body else "pge", env={})


# -- the simulator profile -----------------------------------------------------------------

REGISTRATION = {
    "client_id": "sim-client",
    "client_secret": "sim-secret",
    "client_cert": "/state/client-cert.pem",
    "client_key": "/state/client-key.pem",
    "ca_cert": "/state/ca-cert.pem",
    "authorize_url": "https://127.0.0.1:4001/myAuthorization",
    "token_url": "https://127.0.0.1:4002/datacustodian/oauth/v2/token",
    "resource_url": "https://127.0.0.1:4002/GreenButtonConnect/espi/1_1/resource",
    "redirect_uri": "http://127.0.0.1:3000/OAuthCallback",
    "notification_uri": "http://127.0.0.1:3000/espi/1_1/Notification",
    "scope": "FB=1_3_4_5_13_14_39;IntervalDuration=3600",
    "customers": [{"username": "alice", "password": "x"}],
}


def test_simulator_profile_and_credentials(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write(state / "registration.json", json.dumps(REGISTRATION), 0o600)
    for source in (state, state / "registration.json", REGISTRATION):
        profile = UtilityProfile.simulator(source)
        assert profile.name == "simulator"
        assert profile.token_url == REGISTRATION["token_url"]
        assert profile.resource_url == REGISTRATION["resource_url"]
        assert profile.scope == REGISTRATION["scope"]
        assert profile.published_format == "datetime" and profile.loopback_redirect_allowed
        creds = credentials_from_registration(source)
        assert creds.client_id == "sim-client" and creds.client_secret.reveal() == "sim-secret"
        assert creds.ca_cert == Path("/state/ca-cert.pem")
        assert creds.redirect_uri == REGISTRATION["redirect_uri"]


def test_simulator_via_config(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write(state / "registration.json", json.dumps(REGISTRATION), 0o600)
    config = write(tmp_path / "config.toml", '[profile.sim]\nregistration = "state"\n')
    profile, creds = load_config(config, profile="sim", env={})
    assert profile.name == "sim" and profile.token_url == REGISTRATION["token_url"]
    assert creds.client_secret.reveal() == "sim-secret"
    # Built in: the simulator's default state folder, no table needed.
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "GREENBUTTON_CLIENT_ID": "override"}
    target = default_simulator_dir(env)
    with pytest.raises(ConfigurationError, match="simulator registration not found"):
        load_config(tmp_path / "config.toml", profile="simulator", env=env)
    write(target / "registration.json", json.dumps(REGISTRATION), 0o600)
    if os.name == "posix" and os.uname().sysname != "Darwin":
        profile, creds = load_config(config, profile="simulator", env=env)
        assert profile.name == "simulator" and creds.client_id == "override"


def test_registration_checked() -> None:
    broken = {k: v for k, v in REGISTRATION.items() if k != "token_url"}
    with pytest.raises(ConfigurationError, match="lacks token_url"):
        read_registration(broken)


# -- ApplicationInformation ----------------------------------------------------------------


def test_from_application_information_pge(fixtures_dir: Path) -> None:
    xml = (fixtures_dir / "pge_applicationinformation_entry.xml").read_bytes()
    profile = UtilityProfile.from_application_information(parse(xml), name="pge-app")
    assert profile.name == "pge-app"
    assert profile.token_url == "https://api.pge.com/datacustodian/oauth/v2/token"
    assert profile.resource_url == PGE.resource_url
    assert profile.authorize_url == PGE.authorize_url  # the customer portal, not api.pge.com
    assert profile.published_format == "epoch" and profile.rate_limit_per_s == 1.0
    assert profile.scope and profile.scope.startswith("FB=")


def test_from_application_information_generic(fixtures_dir: Path) -> None:
    xml = (fixtures_dir / "gba_applicationinformation_sample.xml").read_bytes()
    profile = UtilityProfile.from_application_information(parse(xml))
    assert profile.name == "custom"
    assert profile.authorize_url.endswith("/oauth/authorize")
    assert profile.published_format == "datetime" and profile.rate_limit_per_s is None


def test_from_application_information_incomplete(fixtures_dir: Path) -> None:
    xml = (fixtures_dir / "gba_cmdtest_applicationinformation_entry.xml").read_bytes()
    with pytest.raises(ConfigurationError, match="lacks authorizationServerAuthorizationEndpoint"):
        UtilityProfile.from_application_information(parse(xml))
    with pytest.raises(ConfigurationError, match="no ApplicationInformation"):
        UtilityProfile.from_application_information(
            parse(
                (fixtures_dir / "pge_applicationinformation_entry.xml")
                .read_bytes()
                .replace(b"ApplicationInformation", b"UsageSummary")
            )
        )


def test_builtin_pge_profile_is_reachable_from_the_class() -> None:
    from greenbutton import UtilityProfile

    pge = UtilityProfile.pge()
    assert pge.name == "pge"
    assert pge.token_url == "https://api.pge.com/datacustodian/oauth/v2/token"
    assert pge.resource_url.endswith("/GreenButtonConnect/espi/1_1/resource")
    assert pge.published_format == "epoch" and pge.rate_limit_per_s == 1.0
