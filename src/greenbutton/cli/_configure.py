"""``greenbutton config init``: write a utility profile to the config file (DESIGN 3.7).

Thin: the profile comes from a simulator's state folder, an ESPI ApplicationInformation
document or answers to prompts; :func:`greenbutton.client.write_profile` checks and writes
it (secrets only as ``*_env`` / ``*_file``, atomic, mode 0600, never over an existing
profile without ``--force``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from ..client import (
    default_config_path,
    profile_settings,
    simulator_settings,
    write_profile,
)
from ..models import PGE, UtilityProfile
from . import cli

__all__ = ["config_group"]

_PATH = click.Path(dir_okay=False, path_type=Path)


@cli.group("config")
def config_group() -> None:
    """Utility profiles in the config file (TOML; secrets only as *_env / *_file)."""


def _secret_settings(
    key: str, env_var: str | None, file: Path | None, *, ask: bool, default_var: str
) -> dict[str, str]:
    if env_var and file:
        raise click.UsageError(f"choose one of --{key}-env and --{key}-file")
    if env_var:
        return {f"{key.replace('-', '_')}_env": env_var}
    if file:
        return {f"{key.replace('-', '_')}_file": str(file.expanduser().resolve())}
    if not ask:
        return {}
    how = click.prompt(
        f"Where is the {key.replace('-', ' ')} kept",
        type=click.Choice(["env", "file"]),
        default="env",
    )
    if how == "env":
        return {
            f"{key.replace('-', '_')}_env": click.prompt(
                "Environment variable", default=default_var
            )
        }
    path = click.prompt("File (mode 0600, the secret alone)", type=_PATH)
    return {f"{key.replace('-', '_')}_file": str(Path(path).expanduser().resolve())}


def _path(value: Path | None, prompt: str | None) -> str | None:
    if value is None and prompt is not None:
        value = click.prompt(prompt, type=_PATH)
    return None if value is None else str(value.expanduser().resolve())


@config_group.command("init")
@click.option("--profile", "name", required=True, help="Name of the profile to write.")
@click.option(
    "--config",
    "config_path",
    type=_PATH,
    help="Config file to write. [default: GREENBUTTON_CONFIG, else the user config]",
)
@click.option(
    "--simulator",
    "simulator_dir",
    type=click.Path(exists=True, path_type=Path),
    help="A simulator's state folder (its registration.json).",
)
@click.option(
    "--from-application-information",
    "appinfo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ESPI ApplicationInformation document your utility returned (XML).",
)
@click.option("--client-id", help="The client id the utility issued.")
@click.option("--client-secret-env", metavar="VAR", help="Environment variable holding the secret.")
@click.option("--client-secret-file", type=_PATH, help="File (0600) holding the secret.")
@click.option("--client-cert", type=_PATH, help="Your client certificate (PEM).")
@click.option("--client-key", type=_PATH, help="Its private key (PEM, mode 0600).")
@click.option("--key-password-env", metavar="VAR", help="Variable holding the key's password.")
@click.option("--key-password-file", type=_PATH, help="File holding the key's password.")
@click.option("--ca-cert", type=_PATH, help="The utility's CA bundle. [default: system store]")
@click.option("--redirect-uri", metavar="URL", help="Your registered redirect URI.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default profile.")
@click.option("--force", is_flag=True, help="Replace a profile of that name.")
def init_command(**options: Any) -> None:
    """Write a utility profile: from a simulator's state folder, from the
    ApplicationInformation document of your registration, or by answering prompts.

    The file gets URLs, the client id, certificate paths and where the client secret is
    (an environment variable or a 0600 file), never the secret itself. An existing
    profile is replaced only with --force.

    \b
    Examples:
      greenbutton config init --profile sim --simulator ~/.local/share/greenbutton/simulator
      greenbutton config init --profile pge --from-application-information appinfo.xml \\
          --client-secret-env PGE_CLIENT_SECRET --client-cert certs/client.crt \\
          --client-key certs/client.key
      greenbutton config init --profile pge        # asks for each setting
    """
    try:
        _init(**options)
    except click.Abort:  # stdin ended before every question was answered
        raise click.ClickException(
            "config init needs answers: pass --client-id, --client-secret-env or "
            "--client-secret-file, --client-cert and --client-key (or run it in a terminal "
            "to be asked)"
        ) from None


def _init(
    name: str,
    config_path: Path | None,
    simulator_dir: Path | None,
    appinfo: Path | None,
    client_id: str | None,
    client_secret_env: str | None,
    client_secret_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    key_password_env: str | None,
    key_password_file: Path | None,
    ca_cert: Path | None,
    redirect_uri: str | None,
    make_default: bool,
    force: bool,
) -> None:
    if simulator_dir is not None and appinfo is not None:
        raise click.UsageError("choose one of --simulator and --from-application-information")
    profile: UtilityProfile
    settings: dict[str, Any]
    if simulator_dir is not None:
        settings = simulator_settings(simulator_dir)
        profile = UtilityProfile.simulator(settings["registration"])
        profile = dataclasses.replace(profile, name=name)
        overrides = {
            "client_id": client_id,
            "client_cert": _path(client_cert, None),
            "client_key": _path(client_key, None),
            "ca_cert": _path(ca_cert, None),
            "redirect_uri": redirect_uri,
        }
        settings.update({k: v for k, v in overrides.items() if v is not None})
        if client_secret_env or client_secret_file:
            settings.pop("client_secret_file")
            settings.update(
                _secret_settings(
                    "client-secret",
                    client_secret_env,
                    client_secret_file,
                    ask=False,
                    default_var="",
                )  # fmt: skip
            )
    else:
        if appinfo is not None:
            from ..parse import parse

            document = parse(appinfo.read_bytes())
            profile = UtilityProfile.from_application_information(document, name=name)
            info = document.application_information[0]
            client_id = client_id or info.client_id
            redirect_uri = redirect_uri or (info.redirect_uris[0] if info.redirect_uris else None)
            if info.client_secret:
                click.echo(
                    "note: the document holds a client secret; it is not written to the "
                    "config file: keep it in an environment variable or a 0600 file",
                    err=True,
                )
        else:
            click.echo(f"New profile {name!r}; press Enter to keep PG&E's value.", err=True)
            authorize = click.prompt("Authorize URL (customers sign in)", default=PGE.authorize_url)
            token = click.prompt("Token URL", default=PGE.token_url)
            resource = click.prompt("ESPI resource URL", default=PGE.resource_url)
            if (authorize, token, resource.rstrip("/")) == (
                PGE.authorize_url,
                PGE.token_url,
                PGE.resource_url,
            ):
                profile = dataclasses.replace(PGE, name=name)
            else:
                profile = UtilityProfile(
                    name=name,
                    authorize_url=authorize,
                    token_url=token,
                    resource_url=resource.rstrip("/"),
                )
        ask = appinfo is None or not all((client_id, client_secret_env or client_secret_file))
        settings = profile_settings(profile)
        settings["client_id"] = client_id or click.prompt("Client id")
        settings.update(
            _secret_settings(
                "client-secret",
                client_secret_env,
                client_secret_file,
                ask=True,
                default_var=f"{name.upper().replace('-', '_')}_CLIENT_SECRET",
            )
        )
        settings["client_cert"] = _path(client_cert, "Client certificate (PEM)")
        settings["client_key"] = _path(client_key, "Client private key (PEM)")
        settings.update(
            _secret_settings(
                "key-password", key_password_env, key_password_file, ask=False, default_var=""
            )
        )
        ca = _path(ca_cert, None)
        if ca is None and ask and appinfo is None:
            answer = click.prompt(
                "Utility CA bundle (blank: the system store)", default="", show_default=False
            )
            ca = str(Path(answer).expanduser().resolve()) if answer else None
        if ca is not None:
            settings["ca_cert"] = ca
        if redirect_uri is None and appinfo is None:
            redirect_uri = click.prompt(
                "Your redirect URI (blank: none)", default="", show_default=False
            )
        if redirect_uri:
            settings["redirect_uri"] = redirect_uri
    path = write_profile(
        name, settings, config_path, force=force, make_default=make_default, profile=profile
    )
    click.echo(f"wrote profile {name!r} to {path}")
    for key in ("client_cert", "client_key", "ca_cert"):
        if key in settings and not Path(settings[key]).is_file():
            click.echo(f"warning: {key} {settings[key]} does not exist yet", err=True)
    for key in ("client_secret_env", "key_password_env"):
        if key in settings and not os.environ.get(settings[key]):
            click.echo(
                f"next: export {settings[key]}=...  (the {key[:-4].replace('_', ' ')})", err=True
            )
    where = "" if config_path is None and path == default_config_path() else f" --config {path}"
    click.echo(f"next: greenbutton status{where} --profile {name}", err=True)
