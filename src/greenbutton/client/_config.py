"""Where a utility profile and the third party's credentials come from: a TOML file and
environment variables, never code or command-line values (DESIGN 3.5, SECURITY R50).

The file (default ``$XDG_CONFIG_HOME/greenbutton/config.toml``, else
``~/.config/greenbutton/config.toml``; ``GREENBUTTON_CONFIG`` names another) holds one table
per profile::

    default_profile = "pge"

    [profile.pge]                       # starts from the built-in PG&E profile
    client_id = "12345"
    client_secret_env = "PGE_CLIENT_SECRET"     # or client_secret_file = "~/.secrets/pge"
    client_cert = "~/certs/client.crt.pem"
    client_key = "~/certs/client.key.pem"       # mode 0600
    key_password_env = "PGE_KEY_PASSWORD"       # or key_password_file (only if encrypted)
    ca_cert = "~/certs/pge-ca.pem"              # optional: the system store otherwise
    redirect_uri = "https://tp.example/OAuthCallback"

    [profile.sim]
    registration = "~/.local/share/greenbutton/simulator"   # a simulator's state folder

    [profile.acme]
    application_information = "acme-appinfo.xml"   # endpoints from ESPI ApplicationInformation
    scope = "FB=1_3_4_5_13_14_39;IntervalDuration=3600"

A table may also set any :class:`UtilityProfile` field (``token_url``, ``published_format``,
``rate_limit_per_s`` ...). ``local = true`` lets the client reach a custodian on loopback or
a private network (SECURITY R47); a table whose three endpoints are loopback IP literals
is local without saying so, every other one must resolve to public addresses only.
Secrets are never written in the file: ``client_secret`` and
``key_password`` are refused with a pointer to ``*_env`` / ``*_file``. Relative paths are
relative to the file. ``pge`` and ``simulator`` work without a table.

Environment variables override the file: ``GREENBUTTON_PROFILE``, ``GREENBUTTON_CLIENT_ID``,
``GREENBUTTON_CLIENT_SECRET``, ``GREENBUTTON_CLIENT_CERT``, ``GREENBUTTON_CLIENT_KEY``,
``GREENBUTTON_KEY_PASSWORD``, ``GREENBUTTON_CA_CERT``.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._secret import Secret
from .._util import user_config_dir, user_data_dir
from ..models._profile import PGE, Credentials, UtilityProfile, loopback_literals, read_registration

__all__ = [
    "ENV_VARS",
    "credentials_from_registration",
    "default_config_path",
    "default_simulator_dir",
    "load_config",
]

ENV_VARS = (
    "GREENBUTTON_CONFIG",
    "GREENBUTTON_PROFILE",
    "GREENBUTTON_CLIENT_ID",
    "GREENBUTTON_CLIENT_SECRET",
    "GREENBUTTON_CLIENT_CERT",
    "GREENBUTTON_CLIENT_KEY",
    "GREENBUTTON_KEY_PASSWORD",
    "GREENBUTTON_CA_CERT",
)

BUILT_IN = ("pge", "simulator")

_T = TypeVar("_T")

# Profile fields a table may set, with the TOML types each accepts.
_PROFILE_FIELDS: dict[str, tuple[type, ...]] = {
    "authorize_url": (str,),
    "token_url": (str,),
    "resource_url": (str,),
    "authorize_params": (dict,),
    "scope": (str,),
    "published_format": (str,),
    "cost_scale": (int,),
    "rate_limit_per_s": (int, float),
    "window_days": (int,),
    "max_body_bytes": (int,),
    "loopback_redirect_allowed": (bool,),
    "local": (bool,),
}
_CREDENTIAL_KEYS = (
    "client_id",
    "client_secret_env",
    "client_secret_file",
    "client_cert",
    "client_key",
    "key_password_env",
    "key_password_file",
    "ca_cert",
    "redirect_uri",
)
_SOURCE_KEYS = ("base", "registration", "application_information")
_INLINE_SECRETS = {
    "client_secret": "client_secret",
    "key_password": "key_password",
    "access_token": None,
    "refresh_token": None,
    "client_access_token": None,
}


def default_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """``GREENBUTTON_CONFIG``, else ``config.toml`` in the per-user config folder
    (:func:`greenbutton._util.user_config_dir`, platformdirs)."""
    if env.get("GREENBUTTON_CONFIG"):
        return Path(env["GREENBUTTON_CONFIG"]).expanduser()
    return user_config_dir(env) / "config.toml"


def default_simulator_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where ``greenbutton simulator`` keeps its state by default: ``simulator`` in the
    per-user data folder (:func:`greenbutton._util.user_data_dir`, platformdirs); the
    ``simulator`` profile's registration when no table names one."""
    return user_data_dir(env) / "simulator"


def credentials_from_registration(registration: Path | str | Mapping[str, Any]) -> Credentials:
    """The third party's credentials from a simulator's ``registration.json`` (DESIGN 3.6):
    a path to the file or its state folder, or the parsed mapping."""
    reg = read_registration(registration)
    redirect = reg.get("redirect_uri")
    return Credentials(
        client_id=reg["client_id"],
        client_secret=Secret(reg["client_secret"]),
        client_cert=Path(reg["client_cert"]),
        client_key=Path(reg["client_key"]),
        ca_cert=Path(reg["ca_cert"]),
        redirect_uri=redirect if isinstance(redirect, str) else None,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None


def _private_file(path: Path, what: str) -> str:
    """A secret kept in a file: readable by its owner only, like a private key (R29, R50)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} file {path}: {exc}") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigurationError(
            f"{what} file {path} is readable by group or others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    value = text.strip()
    if not value:
        raise ConfigurationError(f"{what} file {path} is empty")
    return value


class _Table:
    """One ``[profile.NAME]`` table, with typed access and messages that say where."""

    def __init__(self, name: str, data: Mapping[str, Any], config_path: Path | None):
        self.name = name
        self.data = data
        self.where = f"[profile.{name}] of {config_path}" if config_path else "the environment"
        self.base_dir = config_path.parent if config_path else Path.cwd()

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{key} in {self.where} must be a non-empty string")
        return value

    def path(self, key: str) -> Path | None:
        value = self.text(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def secret(self, key: str, env: Mapping[str, str]) -> Secret | None:
        var, file = self.text(f"{key}_env"), self.path(f"{key}_file")
        if var and file:
            raise ConfigurationError(f"{self.where} sets both {key}_env and {key}_file")
        if var:
            if not env.get(var):
                raise ConfigurationError(
                    f"environment variable {var} ({key}_env in {self.where}) is not set"
                )
            return Secret(env[var])
        if file:
            return Secret(_private_file(file, key.replace("_", " ")))
        return None


def _check_keys(table: _Table) -> None:
    for key, replacement in _INLINE_SECRETS.items():
        if key in table.data:
            hint = (
                f'use {replacement}_env = "VAR" or {replacement}_file = "path"'
                if replacement
                else "tokens live in the token store"
            )
            raise ConfigurationError(f"{key} must not be written in {table.where}; {hint}")
    allowed = set(_PROFILE_FIELDS) | set(_CREDENTIAL_KEYS) | set(_SOURCE_KEYS)
    unknown = sorted(set(table.data) - allowed)
    if unknown:
        raise ConfigurationError(
            f"unknown setting {', '.join(unknown)} in {table.where} "
            f"(known: {', '.join(sorted(allowed))})"
        )


def _base_profile(table: _Table, env: Mapping[str, str]) -> tuple[UtilityProfile, Path | None]:
    """The profile a table starts from, and the simulator registration it used (if any)."""
    registration = table.path("registration")
    appinfo = table.path("application_information")
    base = table.text("base") or (table.name if table.name in BUILT_IN else None)
    if sum(x is not None for x in (registration, appinfo, table.data.get("base"))) > 1:
        raise ConfigurationError(
            f"{table.where}: choose one of base, registration and application_information"
        )
    if registration is None and base == "simulator":
        registration = default_simulator_dir(env)
    if registration is not None:
        return UtilityProfile.simulator(registration), registration
    if appinfo is not None:
        try:
            xml = appinfo.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read application_information {appinfo}: {exc.strerror}"
            ) from None
        from ..parse import parse  # lxml: loaded only for this kind of profile

        return UtilityProfile.from_application_information(parse(xml), name=table.name), None
    if base == "pge":
        return PGE, None
    if base is not None:
        raise ConfigurationError(
            f"base in {table.where} must be one of {', '.join(BUILT_IN)}, not {base!r}"
        )
    missing = [k for k in ("authorize_url", "token_url", "resource_url") if k not in table.data]
    if missing:
        raise ConfigurationError(
            f"{table.where} needs {', '.join(missing)} "
            "(or base, registration or application_information to start from)"
        )
    return UtilityProfile(
        name=table.name,
        authorize_url=table.data["authorize_url"],
        token_url=table.data["token_url"],
        resource_url=table.data["resource_url"],
    ), None


def _has_type(value: object, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _profile_overrides(table: _Table) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, types in _PROFILE_FIELDS.items():
        if key not in table.data:
            continue
        value: Any = table.data[key]
        # bool is an int in Python; only the bool fields may be one.
        if not _has_type(value, types):
            kinds = " or ".join(t.__name__ for t in types)
            raise ConfigurationError(f"{key} in {table.where} must be a {kinds}")
        if key == "authorize_params":
            if not all(isinstance(v, str) for v in value.values()):
                raise ConfigurationError(f"authorize_params in {table.where} must map to strings")
            value = tuple(value.items())
        elif key == "published_format" and value not in ("epoch", "datetime"):
            raise ConfigurationError(
                f'published_format in {table.where} must be "epoch" or "datetime"'
            )
        elif key in ("rate_limit_per_s", "window_days", "max_body_bytes") and value <= 0:
            raise ConfigurationError(f"{key} in {table.where} must be positive")
        elif key == "resource_url":
            value = value.rstrip("/")
        changes[key] = value
    return changes


def _choose_profile(
    profile: str | None, env: Mapping[str, str], doc: Mapping[str, Any], config_path: Path
) -> str:
    if profile:
        return profile
    if env.get("GREENBUTTON_PROFILE"):
        return env["GREENBUTTON_PROFILE"]
    default = doc.get("default_profile")
    if default is not None:
        if not isinstance(default, str) or not default:
            raise ConfigurationError(f"default_profile in {config_path} must be a profile name")
        return default
    tables = list(doc.get("profile", {}))
    if len(tables) == 1:
        return str(tables[0])
    known = ", ".join(sorted(set(BUILT_IN) | set(tables)))
    raise ConfigurationError(
        "no profile chosen: set GREENBUTTON_PROFILE or default_profile in "
        f"{config_path} (known: {known})"
    )


def load_config(
    path: Path | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> tuple[UtilityProfile, Credentials]:
    """The chosen utility profile and the credentials to use with it.

    ``path`` defaults to :func:`default_config_path`; a missing default file is fine (built-in
    profiles and environment variables may be all there is), a missing explicit one is not.
    The profile is ``profile``, else ``GREENBUTTON_PROFILE``, else the file's
    ``default_profile``, else its only table. Raises :class:`ConfigurationError` with one
    line saying what is missing and where to set it.
    """
    explicit = path is not None
    config_path = Path(path).expanduser() if path is not None else default_config_path(env)
    if config_path.is_file():
        doc = _read_toml(config_path)
    elif explicit or env.get("GREENBUTTON_CONFIG"):
        raise ConfigurationError(f"config file not found: {config_path}")
    else:
        doc = {}
    unknown = sorted(set(doc) - {"default_profile", "profile"})
    if unknown:
        raise ConfigurationError(
            f"unknown setting {', '.join(unknown)} in {config_path} "
            "(known: default_profile, [profile.NAME] tables)"
        )
    tables = doc.get("profile", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigurationError(f"profiles in {config_path} must be [profile.NAME] tables")

    name = _choose_profile(profile, env, doc, config_path)
    if name not in tables and name not in BUILT_IN:
        known = ", ".join(sorted(set(BUILT_IN) | set(tables)))
        raise ConfigurationError(f"unknown profile {name!r} (known: {known}; see {config_path})")
    table = _Table(name, tables.get(name, {}), config_path if name in tables else None)
    _check_keys(table)

    base, registration = _base_profile(table, env)
    changes = _profile_overrides(table)
    utility = dataclasses.replace(base, name=name, **changes)
    urls = (utility.authorize_url, utility.token_url, utility.resource_url)
    if "local" not in changes and not utility.local and loopback_literals(*urls):
        utility = dataclasses.replace(utility, local=True)

    fallback = credentials_from_registration(registration) if registration else None
    creds = _credentials(table, env, fallback, config_path)
    return utility, creds


def _credentials(
    table: _Table, env: Mapping[str, str], fallback: Credentials | None, config_path: Path
) -> Credentials:
    def pick_path(env_var: str, key: str, default: Path | None) -> Path | None:
        if env.get(env_var):
            return Path(env[env_var]).expanduser()
        return table.path(key) or default

    client_id = env.get("GREENBUTTON_CLIENT_ID") or table.text("client_id")
    secret: Secret | None = (
        Secret(env["GREENBUTTON_CLIENT_SECRET"])
        if env.get("GREENBUTTON_CLIENT_SECRET")
        else table.secret("client_secret", env)
    )
    password: Secret | None = (
        Secret(env["GREENBUTTON_KEY_PASSWORD"])
        if env.get("GREENBUTTON_KEY_PASSWORD")
        else table.secret("key_password", env)
    )
    cert = pick_path(
        "GREENBUTTON_CLIENT_CERT", "client_cert", fallback.client_cert if fallback else None
    )
    key = pick_path(
        "GREENBUTTON_CLIENT_KEY", "client_key", fallback.client_key if fallback else None
    )
    ca = pick_path("GREENBUTTON_CA_CERT", "ca_cert", fallback.ca_cert if fallback else None)
    if fallback is not None:
        client_id = client_id or fallback.client_id
        secret = secret or fallback.client_secret
    redirect = table.text("redirect_uri") or (fallback.redirect_uri if fallback else None)

    where = f"[profile.{table.name}] of {config_path}"

    def need(value: _T | None, setting: str, env_var: str) -> _T:
        if not value:
            what = setting.split()[0].removesuffix("_env")
            raise ConfigurationError(
                f"profile {table.name!r} has no {what}: set {setting} in {where}, or {env_var}"
            )
        return value

    client_id = need(client_id, "client_id", "GREENBUTTON_CLIENT_ID")
    secret = need(secret, "client_secret_env or client_secret_file", "GREENBUTTON_CLIENT_SECRET")
    cert = need(cert, "client_cert", "GREENBUTTON_CLIENT_CERT")
    key = need(key, "client_key", "GREENBUTTON_CLIENT_KEY")
    return Credentials(
        client_id=client_id,
        client_secret=secret,
        client_cert=cert,
        client_key=key,
        key_password=password,
        ca_cert=ca,
        redirect_uri=redirect,
    )
