"""``greenbutton config init`` (DESIGN 3.7): a profile from a simulator's state folder, from
an ApplicationInformation document or from prompts; it loads back with ``load_config`` into
the same profile, holds no secret, is written 0600 and atomically, and an existing profile
is replaced only with ``--force``. The simulator's profile then works for real:
``greenbutton status --config FILE --profile NAME`` over mutual TLS."""

# ruff: noqa: S106  (URLs named token_url)

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from greenbutton._errors import ConfigurationError
from greenbutton._secret import Secret
from greenbutton.cli import cli
from greenbutton.client import credentials_from_registration, load_config, write_profile
from greenbutton.models import PGE, UtilityProfile
from greenbutton.parse import parse
from tests.conftest import FIXTURES
from tests.simulator_harness import start_simulator


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def _table(path: Path, name: str) -> dict[str, object]:
    table = tomllib.loads(path.read_text())["profile"][name]
    assert isinstance(table, dict)
    return table


def test_simulator_profile_loads_back_and_works_over_mtls(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.toml"
    with start_simulator(tmp_path / "sim") as gb:
        r = run("config", "init", "--profile", "lab", "--config", str(config),
                "--simulator", str(gb.state_dir))  # fmt: skip
        assert r.exit_code == 0, r.output
        assert "wrote profile 'lab'" in r.output
        secret = gb.registration["client_secret"]
        text = config.read_text()
        assert secret not in text  # never the secret itself
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        table = _table(config, "lab")
        assert table["client_id"] == gb.registration["client_id"]
        assert table["client_cert"] == gb.registration["client_cert"]
        secret_file = Path(str(table["client_secret_file"]))
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

        profile, creds = load_config(config, profile="lab", env={})
        assert profile == dataclasses.replace(UtilityProfile.simulator(gb.state_dir), name="lab")
        assert creds == credentials_from_registration(gb.state_dir)
        assert creds.client_secret == Secret(secret)

        # the profile as written reaches the simulator (client certificate, token, status)
        r = run("status", "--config", str(config), "--profile", "lab")
        assert r.exit_code == 0, r.output
        assert r.output.strip().endswith("available")


def test_existing_profile_is_kept_without_force(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# my notes\n[profile.other]\nbase = "pge"\nclient_id = "o"\n')
    with start_simulator(tmp_path / "sim") as gb:
        args = ["config", "init", "--profile", "lab", "--config", str(config),
                "--simulator", str(gb.state_dir)]  # fmt: skip
        assert run(*args).exit_code == 0
        first = config.read_text()
        assert first.startswith("# my notes\n")  # the rest of the file is kept as written
        assert _table(config, "other") == {"base": "pge", "client_id": "o"}

        r = run(*args, "--client-id", "changed")
        assert r.exit_code == 1
        assert "already exists" in r.output and "--force" in r.output
        assert config.read_text() == first  # untouched

        r = run(*args, "--client-id", "changed", "--force", "--default")
        assert r.exit_code == 0, r.output
        doc = tomllib.loads(config.read_text())
        assert doc["default_profile"] == "lab"
        assert doc["profile"]["lab"]["client_id"] == "changed"
        assert list(doc["profile"]) == ["other", "lab"]
        assert config.read_text().count("[profile.lab]") == 1
        # the default profile is what load_config picks with no --profile
        assert load_config(config, env={})[1].client_id == "changed"


def test_from_application_information_pge(tmp_path: Path) -> None:
    appinfo = FIXTURES / "pge_applicationinformation_entry.xml"
    config = tmp_path / "config.toml"
    certs = tmp_path / "certs"
    r = run("config", "init", "--profile", "pge-prod", "--config", str(config),
            "--from-application-information", str(appinfo),
            "--client-secret-env", "PGE_SECRET", "--client-cert", str(certs / "c.pem"),
            "--client-key", str(certs / "k.pem"))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "export PGE_SECRET=" in r.output  # the next step: the variable is not set
    assert "does not exist yet" in r.output  # PG&E has not issued the certificate yet
    info = parse(appinfo.read_bytes()).application_information[0]
    expected = UtilityProfile.from_application_information(
        parse(appinfo.read_bytes()), name="pge-prod"
    )
    assert expected.quota_per_day == PGE.quota_per_day  # the PG&E quirks survive the file
    profile, creds = load_config(config, profile="pge-prod", env={"PGE_SECRET": "s3"})
    assert profile == expected
    assert creds.client_id == info.client_id
    assert creds.client_secret == Secret("s3")
    assert creds.client_cert == certs / "c.pem"
    if info.client_secret:
        assert info.client_secret not in config.read_text()


def test_prompts_write_a_pge_profile(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o600)
    answers = "\n".join([
        "", "", "",  # PG&E's three URLs
        "12345",  # client id
        "file", str(secret),
        str(tmp_path / "c.pem"), str(tmp_path / "k.pem"),
        "",  # CA: the system store
        "https://tp.example/OAuthCallback",
    ]) + "\n"  # fmt: skip
    r = run("config", "init", "--profile", "mine", "--config", str(config), input=answers)
    assert r.exit_code == 0, r.output
    profile, creds = load_config(config, profile="mine", env={})
    assert profile == dataclasses.replace(PGE, name="mine")
    assert creds.client_secret == Secret("from-file")
    assert creds.redirect_uri == "https://tp.example/OAuthCallback"
    assert creds.ca_cert is None


def test_refusals_leave_nothing_written(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    with pytest.raises(ConfigurationError, match="must not be written"):
        write_profile("x", {"base": "pge", "client_secret": "inline"}, config)
    with pytest.raises(ConfigurationError, match="letters, digits"):
        write_profile("a.b", {"base": "pge"}, config)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        write_profile("x", {"base": "pge", "colour": "green"}, config)
    # a built-in name starts from its built-in profile: a table that cannot undo it is refused
    plain = UtilityProfile(
        name="pge", authorize_url="https://a.example/authorize",
        token_url="https://a.example/token", resource_url="https://a.example/espi",
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="choose another name"):
        urls = {k: getattr(plain, k) for k in ("authorize_url", "token_url", "resource_url")}
        write_profile("pge", urls, config, profile=plain)
    assert not config.exists()
    assert not list(tmp_path.iterdir())  # no temporary file left either


def test_prompts_without_answers_say_which_options_to_pass(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    r = run("config", "init", "--profile", "mine", "--config", str(config), input="")
    assert r.exit_code == 1
    assert "config init needs answers: pass --client-id" in r.output
    assert not config.exists()
