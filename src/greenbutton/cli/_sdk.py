"""``greenbutton status``, ``authorize`` and ``fetch``: thin wrappers over :class:`Client`.

The utility comes from ``--simulator DIR`` (that simulator's ``registration.json``) or from
the config file and environment (``--config``/``--profile``, see :mod:`greenbutton.client._config`);
secrets are never option values (SECURITY R50). Customer tokens live in the library's JSON
token store (:class:`greenbutton.oauth.FileTokenStore`: mode 0600, written atomically; tokens
only, never the client secret); the redirect is caught by its loopback listener
(:class:`greenbutton.client._loopback.LoopbackCallback`, R12).
"""

from __future__ import annotations

import contextlib
import os
import sys
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .._errors import ConfigurationError
from .._util import atomic_file, read_json_file, write_private_json
from ..client import (
    Client,
    LoopbackCallback,
    credentials_from_registration,
    load_config,
    loopback_address,
)
from ..models import Credentials, UtilityProfile
from ..oauth import AuthorizationRequest, FileTokenStore, Token
from ..table import ReadingsFormat
from . import cli
from ._files import write_table

__all__ = ["TokenFile", "authorize", "default_store_path", "fetch", "status"]

F = TypeVar("F", bound=Callable[..., Any])

#: The file token store moved into the library (``greenbutton.oauth.FileTokenStore``);
#: this name stays for code that imported it from here.
TokenFile = FileTokenStore


def default_store_path() -> Path:
    """``tokens.json`` in the per-user data folder (:meth:`FileTokenStore.default_path`)."""
    return FileTokenStore.default_path()


# -- common options -------------------------------------------------------------------------


def _utility_options(fn: F) -> F:
    options = [
        click.option(
            "--simulator",
            "simulator_dir",
            type=click.Path(exists=True, path_type=Path),
            help="Use the simulator whose state folder (or registration.json) this is.",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Config file (TOML). [default: GREENBUTTON_CONFIG, else the user config]",
        ),
        click.option(
            "--profile", help="Profile in the config file. [default: GREENBUTTON_PROFILE]"
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _store_option(fn: F) -> F:
    return click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Token store file (0600). [default: tokens.json in the user data folder]",
    )(fn)


def _utility(
    simulator_dir: Path | None, config_path: Path | None, profile: str | None
) -> tuple[UtilityProfile, Credentials]:
    if simulator_dir is not None:
        if config_path is not None or profile is not None:
            raise click.UsageError("--simulator cannot be combined with --config or --profile")
        return UtilityProfile.simulator(simulator_dir), credentials_from_registration(simulator_dir)
    return load_config(config_path, profile=profile)


def _client(utility: tuple[UtilityProfile, Credentials], store: FileTokenStore | None) -> Client:
    return Client(*utility, token_store=store)


# -- status ---------------------------------------------------------------------------------


@cli.command()
@_utility_options
@click.pass_context
def status(
    ctx: click.Context, simulator_dir: Path | None, config_path: Path | None, profile: str | None
) -> None:
    """Ask the data custodian whether its API is up (ESPI ReadServiceStatus).

    Uses a client-credentials token. Prints "available" and exits 0, or "unavailable" and
    exits 1.

    \b
    Examples:
      greenbutton status --simulator ~/.local/share/greenbutton/simulator
      greenbutton status --profile pge
    """
    with _client(_utility(simulator_dir, config_path, profile), None) as client:
        answer = client.service_status()
    click.echo("available" if answer.available else "unavailable")
    ctx.exit(0 if answer.available else 1)


# -- authorize ------------------------------------------------------------------------------


def _pending_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".pending")


def _save_pending(path: Path, pending: AuthorizationRequest, utility: str) -> None:
    write_private_json(
        path,
        {
            "utility": utility,
            "state": pending.state,
            "code_verifier": pending.code_verifier,
            "code_challenge": pending.code_challenge,
            "redirect_uri": pending.redirect_uri,
            "created_at": pending.created_at,
            "scope": pending.scope,
            "profile_name": pending.profile_name,
            "url": pending.url,
        },
    )


def _take_pending(path: Path, utility: str) -> AuthorizationRequest:
    """The pending request of the last ``authorize --no-listen``; removed (single use, R01)."""
    data = read_json_file(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    if not data or data.get("utility") != utility:
        raise ConfigurationError(
            "no authorization is pending for this utility: run greenbutton authorize first"
        )
    return AuthorizationRequest(
        url=data["url"],
        state=data["state"],
        code_verifier=data["code_verifier"],
        code_challenge=data["code_challenge"],
        redirect_uri=data["redirect_uri"],
        created_at=float(data["created_at"]),
        scope=data.get("scope"),
        profile_name=data.get("profile_name", ""),
    )


def _report(key: str, token: Token, store: FileTokenStore) -> None:
    click.echo(f"authorization: {key}")
    click.echo(f"subscription: {token.subscription_id or '-'}")
    if token.scope:
        click.echo(f"scope: {token.scope}")
    click.echo(f"token stored in {store.path}", err=True)


@cli.command()
@_utility_options
@_store_option
@click.option("--open", "open_browser", is_flag=True, help="Open the URL in a web browser.")
@click.option(
    "--listen/--no-listen",
    default=None,
    help="Catch the redirect on 127.0.0.1 (the redirect URI's port and path). "
    "[default: when the profile allows a loopback redirect]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the redirect when listening.",
)
@click.option(
    "--callback-url",
    metavar="URL",
    help="Finish a --no-listen authorization with the URL the browser was sent back to "
    "(its code is single-use and bound to this run's PKCE verifier); '-' reads it from stdin.",
)
def authorize(
    simulator_dir: Path | None,
    config_path: Path | None,
    profile: str | None,
    store_path: Path | None,
    open_browser: bool,
    listen: bool | None,
    timeout: float,
    callback_url: str | None,
) -> None:
    """Let a customer authorize access to their data (OAuth 2 code flow with PKCE).

    Prints the authorization URL (--open also opens it). Where the profile allows a loopback
    redirect (the simulator does) it waits for the redirect on 127.0.0.1, exchanges the
    code and stores the token; otherwise approve in the browser, then run again with
    --callback-url and the address you were redirected to. Prints the authorization key
    (for fetch --authorization) and the subscription id.

    \b
    Examples:
      greenbutton authorize --simulator DIR --open
      greenbutton authorize --profile pge --no-listen
      greenbutton authorize --profile pge --callback-url 'https://tp.example/OAuthCallback?...'
    """
    utility = _utility(simulator_dir, config_path, profile)
    if callback_url is not None and (listen or open_browser):
        raise click.UsageError("--callback-url finishes an authorization: drop --listen/--open")
    path = store_path or default_store_path()
    store = FileTokenStore(path, utility[0].resource_url)
    with _client(utility, store) as client:
        if callback_url is not None:
            if callback_url == "-":
                callback_url = sys.stdin.readline().strip()
            pending = _take_pending(_pending_path(path), store.utility)
            key, token = client.exchange_code(callback_url, pending)
            _report(key, token, store)
            return
        pending = client.authorization_url()
        loopback = loopback_address(pending.redirect_uri)
        if listen is None:
            listen = utility[0].loopback_redirect_allowed and loopback is not None
        elif listen and (loopback is None or not utility[0].loopback_redirect_allowed):
            raise click.UsageError(
                "--listen needs a profile that allows a loopback redirect and a redirect URI "
                "of http://127.0.0.1:PORT/... (or [::1])"
            )
        click.echo("Open this URL to authorize:", err=True)
        click.echo(pending.url)
        if not listen:
            _save_pending(_pending_path(path), pending, store.utility)
            click.echo(
                "Then run: greenbutton authorize --callback-url '<the URL you were sent to>'"
                " (with the same utility options)",
                err=True,
            )
            if open_browser:
                webbrowser.open(pending.url)
            return
        assert loopback is not None
        target = _catch(pending, timeout, open_browser)
        key, token = client.exchange_code(target, pending)
        _report(key, token, store)


def _catch(pending: AuthorizationRequest, timeout: float, open_browser: bool) -> str:
    """The redirect's request target, caught by the library's loopback listener (R12)."""
    try:
        listener = LoopbackCallback(pending).listen()
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc}, or use --no-listen") from None
    with listener:
        if open_browser:
            webbrowser.open(pending.url)
        click.echo(
            f"Waiting for the redirect on {listener.host} port {listener.port} ...", err=True
        )
        try:
            return listener.wait(timeout)
        except TimeoutError as exc:
            raise click.ClickException(f"{exc}; run greenbutton authorize again") from None


# -- fetch ----------------------------------------------------------------------------------

_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _pick_authorization(store: FileTokenStore, given: str | None) -> str:
    if given is not None:
        return given
    keys = store.keys()
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise ConfigurationError(
            f"no stored authorization for this utility in {store.path}: run greenbutton authorize"
        )
    raise ConfigurationError(f"{len(keys)} authorizations stored; choose with --authorization")


@cli.command()
@_utility_options
@_store_option
@click.option(
    "--authorization",
    metavar="KEY",
    help="Stored authorization to use (as printed by authorize). [default: the only one]",
)
@click.option("--start", type=_DATE, help="Window start, UTC. [default: 7 days before --end]")
@click.option("--end", type=_DATE, help="Window end (exclusive), UTC. [default: today 00:00]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xml", "csv", "jsonl", "parquet"]),
    help="xml: the feed as received; csv/jsonl/parquet: the readings table. "
    "[default: from the -o suffix, else csv]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout (required for parquet).",
)
def fetch(
    simulator_dir: Path | None,
    config_path: Path | None,
    profile: str | None,
    store_path: Path | None,
    authorization: str | None,
    start: datetime | None,
    end: datetime | None,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Fetch a window of a customer's usage data for a stored authorization.

    One "sync" call per usage point and date window. Writes the Atom feed (xml; several
    answers are merged into one feed) or the readings table (csv, jsonl, parquet; columns
    as in export). Progress goes to stderr.

    \b
    Examples:
      greenbutton fetch --simulator DIR -o usage.xml
      greenbutton fetch --profile pge --start 2024-01-01 --end 2024-02-01 -o jan.csv
    """
    end_at = _utc(end) or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_at = _utc(start) or end_at - timedelta(days=7)
    if start_at >= end_at:
        raise click.UsageError("--start must be before --end")
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        fmt = {"xml": "xml", "parquet": "parquet", "jsonl": "jsonl", "ndjson": "jsonl"}.get(
            suffix, "csv"
        )
    if fmt == "parquet" and output is None:
        raise click.UsageError("parquet output needs a file: add -o OUT.parquet")
    utility = _utility(simulator_dir, config_path, profile)
    store = FileTokenStore(store_path or default_store_path(), utility[0].resource_url)
    key = _pick_authorization(store, authorization)
    bodies: list[bytes] = []
    with _client(utility, store) as client:
        listing = client.usage_points(key)
        ids = list(dict.fromkeys(up.id for up in listing.usage_points if up.id))
        for n, up in enumerate(ids, 1):
            got = client.usage_point(key, up, start=start_at, end=end_at, raw=True)
            assert isinstance(got, list)
            bodies.extend(got)
            size = sum(len(b) for b in got)
            click.echo(
                f"usage point {n}/{len(ids)} ({up}): {len(got)} answer(s), {size:,} bytes",
                err=True,
            )
    if not bodies:
        click.echo("no data in this window (the custodian answered 204)", err=True)
    _write_fetched(bodies, fmt, output, utility[0])


def _write_fetched(
    bodies: list[bytes], fmt: str, output: Path | None, profile: UtilityProfile
) -> None:
    if fmt == "xml":
        if output is None:
            _write_xml(bodies, sys.stdout.buffer, profile)
            sys.stdout.flush()
            return
        with atomic_file(output, "wb") as fh:
            size = _write_xml(bodies, fh, profile)
        click.echo(f"wrote {size:,} bytes to {output}", err=True)
        return
    from ..parse import iter_readings

    rows = (row for body in bodies for row in iter_readings(body, cost_scale=profile.cost_scale))
    n = write_table(rows, cast(ReadingsFormat, fmt), output)
    click.echo(f"wrote {n} readings{f' to {output}' if output else ''}", err=True)


def _write_xml(bodies: list[bytes], out: Any, profile: UtilityProfile) -> int:
    """One answer verbatim; several merged into one feed (usage data only)."""
    if len(bodies) == 1:
        out.write(bodies[0])
        return len(bodies[0])
    from .. import parse
    from ..espi import merge_documents
    from ..table import write_feed

    merged = merge_documents(parse(body) for body in bodies)
    return write_feed(merged, out, base_url=profile.resource_url)
