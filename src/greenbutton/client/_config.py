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

``greenbutton config init`` writes such a table (:func:`write_profile`): from a simulator's
state folder (:func:`simulator_settings`), from an ApplicationInformation document or from
answers to prompts (:func:`profile_settings`).

Environment variables override the file: ``GREENBUTTON_PROFILE``, ``GREENBUTTON_CLIENT_ID``,
``GREENBUTTON_CLIENT_SECRET``, ``GREENBUTTON_CLIENT_CERT``, ``GREENBUTTON_CLIENT_KEY``,
``GREENBUTTON_KEY_PASSWORD``, ``GREENBUTTON_CA_CERT``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._secret import Secret
from .._util import atomic_file, user_config_dir, user_data_dir
from ..models._profile import PGE, Credentials, UtilityProfile, loopback_literals, read_registration

__all__ = [
    "ENV_VARS",
    "PROFILE_NAME",
    "credentials_from_registration",
    "default_config_path",
    "default_simulator_dir",
    "load_config",
    "profile_settings",
    "simulator_settings",
    "write_profile",
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
    "quota_per_hour": (int,),
    "quota_per_day": (int,),
    "quota_day_reset": (list,),
    "loopback_redirect_allowed": (bool,),
    "local": (bool,),
}
_POSITIVE = ("rate_limit_per_s", "window_days", "max_body_bytes", "quota_per_hour", "quota_per_day")
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
        elif key == "quota_day_reset":
            if not (
                len(value) == 2
                and isinstance(value[0], str)
                and _has_type(value[1], (int,))
                and 0 <= value[1] <= 23
            ):
                raise ConfigurationError(
                    f'quota_day_reset in {table.where} must be ["IANA zone", hour 0-23]'
                )
            value = (value[0], value[1])
        elif key in _POSITIVE and value <= 0:
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
    if not config_path.is_file():
        raise ConfigurationError(
            f"nothing is configured yet (no config file at {config_path}): write a profile "
            "with `greenbutton config init --profile NAME` (--simulator DIR, "
            "--from-application-information FILE, or answer its prompts), or pass "
            "--simulator DIR"
        )
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

    utility, registration = _table_profile(table, env)
    fallback = credentials_from_registration(registration) if registration else None
    creds = _credentials(table, env, fallback, config_path)
    return utility, creds


def _table_profile(table: _Table, env: Mapping[str, str]) -> tuple[UtilityProfile, Path | None]:
    """The profile a checked table describes, and the simulator registration it used."""
    base, registration = _base_profile(table, env)
    changes = _profile_overrides(table)
    utility = dataclasses.replace(base, name=table.name, **changes)
    urls = (utility.authorize_url, utility.token_url, utility.resource_url)
    if "local" not in changes and not utility.local and loopback_literals(*urls):
        utility = dataclasses.replace(utility, local=True)
    return utility, registration


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


# -- writing a profile (``greenbutton config init``) --------------------------------------

#: Profile names ``write_profile`` accepts: TOML bare keys, so the table header needs no
#: quoting and the file stays easy to edit by hand.
PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEADER = re.compile(r"^\s*\[")


def profile_settings(profile: UtilityProfile) -> dict[str, Any]:
    """The ``[profile.NAME]`` keys that rebuild ``profile``: its three endpoints and every
    field that differs from a plain profile's default, as TOML values."""
    plain = UtilityProfile(
        name=profile.name,
        authorize_url=profile.authorize_url,
        token_url=profile.token_url,
        resource_url=profile.resource_url,
    )
    out: dict[str, Any] = {
        "authorize_url": profile.authorize_url,
        "token_url": profile.token_url,
        "resource_url": profile.resource_url,
    }
    for key in _PROFILE_FIELDS:
        value = getattr(profile, key)
        if key in out or value is None or value == getattr(plain, key):
            continue
        if key == "authorize_params":
            value = dict(value)
        elif key == "quota_day_reset":
            value = list(value)
        out[key] = value
    return out


def simulator_settings(state_dir: Path | str) -> dict[str, Any]:
    """A profile for the simulator whose state folder is ``state_dir``: its registration
    (endpoints, scope, rate limit follow the simulator), and the credentials as paths.

    The simulator's client secret is put in ``client_secret`` beside its
    ``registration.json`` (mode 0600, written once) and named by ``client_secret_file``, so
    this profile has the same shape as a real utility's and holds no secret itself."""
    folder = Path(state_dir).expanduser().resolve()
    if folder.is_file():
        folder = folder.parent
    reg = read_registration(folder)
    secret = folder / "client_secret"
    try:
        current = secret.read_text(encoding="utf-8").strip() if secret.is_file() else None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {secret}: {exc.strerror}") from None
    if current != reg["client_secret"]:
        with atomic_file(secret, "w", private=True) as fh:
            fh.write(reg["client_secret"] + "\n")
    out: dict[str, Any] = {
        "registration": str(folder),
        "client_id": reg["client_id"],
        "client_secret_file": str(secret),
        "client_cert": reg["client_cert"],
        "client_key": reg["client_key"],
        "ca_cert": reg["ca_cert"],
    }
    if isinstance(reg.get("redirect_uri"), str) and reg["redirect_uri"]:
        out["redirect_uri"] = reg["redirect_uri"]
    return out


def _toml_key(key: str) -> str:
    return key if PROFILE_NAME.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    """One TOML value. JSON's string escapes are all valid in a TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigurationError(f"cannot write {value} in a config file")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise ConfigurationError(f"cannot write a {type(value).__name__} in a config file")


def _without_table(text: str, name: str) -> str:
    """``text`` without the ``[profile.NAME]`` table (and its sub-tables)."""
    own = re.compile(
        rf'^\s*\[\s*profile\s*\.\s*(?:{re.escape(name)}|"{re.escape(name)}")\s*(?:\.[^\]]*)?\]'
    )
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            skipping = bool(own.match(line))
        if not skipping:
            out.append(line)
    return "".join(out)


def _with_default(text: str, name: str) -> str:
    line = f"default_profile = {json.dumps(name)}\n"
    lines = text.splitlines(keepends=True)
    for i, old in enumerate(lines):
        if _HEADER.match(old):
            break
        if re.match(r"^\s*default_profile\s*=", old):
            lines[i] = line
            return "".join(lines)
    return line + ("\n" if lines else "") + "".join(lines)


def _check_round_trip(
    name: str, settings: Mapping[str, Any], path: Path, intended: UtilityProfile | None
) -> None:
    """The table as ``load_config`` reads it must be the profile meant (a built-in name
    starts from its built-in profile, which the table cannot always undo)."""
    table = _Table(name, settings, path)
    _check_keys(table)
    loaded, _ = _table_profile(table, {})
    if intended is not None and loaded != intended:
        raise ConfigurationError(
            f"a profile named {name!r} starts from the built-in {name} profile and would "
            "not load as written; choose another name"
        )


def write_profile(
    name: str,
    settings: Mapping[str, Any],
    path: Path | None = None,
    *,
    force: bool = False,
    make_default: bool = False,
    profile: UtilityProfile | None = None,
    env: Mapping[str, str] = os.environ,
) -> Path:
    """Add ``[profile.NAME]`` with ``settings`` to the config file and return its path.

    ``path`` defaults to :func:`default_config_path` (its folder is created 0700). The rest
    of the file is kept as written (comments too); an existing profile of that name is
    replaced only with ``force``. ``make_default`` sets ``default_profile``. Secrets are
    refused (only ``*_env`` / ``*_file``, R50), like every unknown key; with ``profile``,
    the table must load back as exactly that profile. The file is written atomically,
    mode 0600 (it names where secrets are), and checked to parse to the same tables before
    it replaces the old one: nothing is half-written.
    """
    if not PROFILE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"profile name {name!r} may hold only letters, digits, '-' and '_' (at most 64)"
        )
    config_path = Path(path).expanduser() if path is not None else default_config_path(env)
    data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
    _check_round_trip(name, data, config_path, profile)
    old_text = ""
    if config_path.exists():
        doc = _read_toml(config_path)
        old_text = config_path.read_text(encoding="utf-8")
        tables = doc.get("profile", {})
        if isinstance(tables, dict) and name in tables and not force:
            raise ConfigurationError(
                f"profile {name!r} already exists in {config_path}; add --force to replace it"
            )
    else:
        doc = {}
    text = _without_table(old_text, name)
    if make_default:
        text = _with_default(text, name)
    body = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in data.items())
    text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + f"[profile.{name}]\n{body}"
    try:
        new_doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - our own output
        raise ConfigurationError(f"could not update {config_path} safely: {exc}") from None
    expected = {**doc, "profile": {**doc.get("profile", {}), name: data}}
    if make_default:
        expected["default_profile"] = name
    if new_doc != expected:
        raise ConfigurationError(
            f"could not update {config_path} safely (an unusual layout around "
            f"[profile.{name}]); edit it by hand"
        )
    config_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_file(config_path, "w", private=True) as fh:
        fh.write(text)
    return config_path
