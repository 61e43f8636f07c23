"""``greenbutton status``, ``authorize`` and ``fetch``: thin wrappers over :class:`Client`.

The utility comes from ``--simulator DIR`` (that simulator's ``registration.json``) or from
the config file and environment (``--config``/``--profile``, see :mod:`greenbutton._config`);
secrets are never option values (SECURITY R50). Customer tokens live in a JSON token store
(mode 0600, written atomically; tokens only, never the client secret).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from .._client import Client
from .._config import credentials_from_registration, load_config
from .._errors import CallbackError, ConfigurationError
from .._profile import Credentials, UtilityProfile
from .._secret import Secret
from ..oauth import Token
from ..oauth._authorize import AuthorizationRequest, parse_callback
from . import cli
from ._files import _atomic, _write_csv, _write_jsonl, _write_parquet

__all__ = ["TokenFile", "authorize", "fetch", "status"]

F = TypeVar("F", bound=Callable[..., Any])

_TOKEN_FIELDS = (
    "kind",
    "token_type",
    "expires_at",
    "scope",
    "resource_uri",
    "authorization_uri",
    "customer_resource_uri",
)


def default_store_path() -> Path:
    """``tokens.json`` in the per-user data folder (platformdirs' ``user_data_dir``)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "greenbutton" / "tokens.json"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` atomically, mode 0600 from the first byte (R50)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp: 0600
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise ConfigurationError(f"{path} is not a greenbutton token store") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a greenbutton token store")
    return data


class TokenFile:
    """A :class:`~greenbutton.oauth.TokenStore` in a 0600 JSON file, one section per
    utility (its resource URL). Customer tokens are saved durably (rotation persisted before
    use, R20); client-credentials tokens stay in memory (R19 caches them per run)."""

    def __init__(self, path: Path, utility: str) -> None:
        self.path = path
        self.utility = utility
        self._lock = threading.Lock()
        self._memory: dict[str, Token] = {}

    def _section(self) -> dict[str, Any]:
        section = _read_json(self.path).get("tokens", {}).get(self.utility, {})
        return section if isinstance(section, dict) else {}

    def load(self, key: str) -> Token | None:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            raw = self._section().get(key)
        if not isinstance(raw, dict):
            return None
        try:
            refresh = raw.get("refresh_token")
            fields: dict[str, Any] = {k: raw[k] for k in _TOKEN_FIELDS if raw.get(k) is not None}
            return Token(
                access_token=Secret(raw["access_token"]),
                refresh_token=Secret(refresh) if refresh else None,
                **fields,
            )
        except (KeyError, TypeError):
            raise ConfigurationError(f"{self.path}: unreadable token for {key}") from None

    def save(self, key: str, token: Token) -> None:
        with self._lock:
            if token.kind != "access":
                self._memory[key] = token
                return
            data = _read_json(self.path)
            data["version"] = 1
            section = data.setdefault("tokens", {}).setdefault(self.utility, {})
            entry = {k: getattr(token, k) for k in _TOKEN_FIELDS}
            entry["access_token"] = token.access_token.reveal()
            entry["refresh_token"] = token.refresh_token.reveal() if token.refresh_token else None
            entry["saved_at"] = time.time()
            section[key] = entry
            _write_private(self.path, data)

    def delete(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)
            data = _read_json(self.path)
            section = data.get("tokens", {}).get(self.utility, {})
            if key in section:
                del section[key]
                _write_private(self.path, data)

    def keys(self) -> list[str]:
        """Stored customer authorizations of this utility."""
        with self._lock:
            return sorted(self._section())

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, keys={self.keys()!r})"


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


def _client(utility: tuple[UtilityProfile, Credentials], store: TokenFile | None) -> Client:
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
    assert not isinstance(answer, bytes)
    click.echo("available" if answer.available else "unavailable")
    ctx.exit(0 if answer.available else 1)


# -- authorize ------------------------------------------------------------------------------


def _pending_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".pending")


def _save_pending(path: Path, pending: AuthorizationRequest, utility: str) -> None:
    _write_private(
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
    data = _read_json(path)
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


def _loopback(redirect_uri: str) -> tuple[str, int, str] | None:
    """(IP literal, port, path) when the redirect URI is plain http on a loopback IP."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or not parts.port:
        return None
    return parts.hostname, parts.port, parts.path or "/"


class _CallbackServer(HTTPServer):
    """Serves one flow: 404 elsewhere, 400 for a wrong ``state``; stops at the first
    callback that carries this flow's state (a code or the custodian's error)."""

    def __init__(self, address: tuple[str, int], pending: AuthorizationRequest, path: str):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.pending = pending
        self.callback_path = path
        self.target: str | None = None
        super().__init__(address, _CallbackHandler)


class _CallbackHandler(BaseHTTPRequestHandler):
    timeout = 10  # a client that connects and says nothing does not hold the flow

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _CallbackServer)
        if urlsplit(self.path).path != server.callback_path:
            self._answer(404, "Not found.")
            return
        try:
            parse_callback(self.path, server.pending, now=time.time())
        except CallbackError as exc:
            if exc.error == "state_mismatch":  # not our flow: ignore it, keep waiting
                self._answer(400, "This is not the authorization this terminal started.")
                return
        server.target = self.path
        self._answer(200, "Authorization received. You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>greenbutton</title><p>{text}</p>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code
        pass


def _listen(
    address: tuple[str, int], path: str, pending: AuthorizationRequest, timeout: float
) -> Generator[str, None, None]:
    """Bind the loopback listener, yield once it listens (to open the browser), then wait
    for this flow's callback; returns its request target. Closed on the way out (R12)."""
    try:
        server = _CallbackServer(address, pending, path)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {address[0]} port {address[1]} for the redirect "
            f"({exc.strerror or exc}); free it or use --no-listen"
        ) from None
    with server:
        yield ""
        deadline = time.monotonic() + timeout
        while server.target is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise click.ClickException(
                    f"no redirect arrived within {timeout:g} s; run greenbutton authorize again"
                )
            server.timeout = left
            server.handle_request()
        yield server.target


def _report(key: str, token: Token, store: TokenFile) -> None:
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
    store = TokenFile(path, utility[0].resource_url)
    with _client(utility, store) as client:
        if callback_url is not None:
            if callback_url == "-":
                callback_url = sys.stdin.readline().strip()
            pending = _take_pending(_pending_path(path), store.utility)
            key, token = client.exchange_code(callback_url, pending)
            _report(key, token, store)
            return
        pending = client.authorization_url()
        loopback = _loopback(pending.redirect_uri)
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
        host, port, cb_path = loopback
        steps = _listen((host, port), cb_path, pending, timeout)
        next(steps)  # listening
        if open_browser:
            webbrowser.open(pending.url)
        click.echo(f"Waiting for the redirect on {host} port {port} ...", err=True)
        target = next(steps)
        steps.close()
        key, token = client.exchange_code(target, pending)
        _report(key, token, store)


# -- fetch ----------------------------------------------------------------------------------

_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _pick_authorization(store: TokenFile, given: str | None) -> str:
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
    store = TokenFile(store_path or default_store_path(), utility[0].resource_url)
    key = _pick_authorization(store, authorization)
    bodies: list[bytes] = []
    with _client(utility, store) as client:
        listing = client.usage_points(key)
        assert not isinstance(listing, bytes)
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
        with _atomic(output, "wb") as (fh, _tmp):
            size = _write_xml(bodies, fh, profile)
        click.echo(f"wrote {size:,} bytes to {output}", err=True)
        return
    from ..parse import iter_readings

    rows = (row for body in bodies for row in iter_readings(body, cost_scale=profile.cost_scale))
    if fmt == "parquet":
        assert output is not None
        with _atomic(output, "wb") as (fh, tmp):
            fh.close()
            n = _write_parquet(rows, tmp)
    elif output is None:
        write = _write_csv if fmt == "csv" else _write_jsonl
        n = write(rows, sys.stdout)
        sys.stdout.flush()
    else:
        with _atomic(output, "w") as (fh, _tmp):
            n = (_write_csv if fmt == "csv" else _write_jsonl)(rows, fh)
    click.echo(f"wrote {n} readings{f' to {output}' if output else ''}", err=True)


def _write_xml(bodies: list[bytes], out: Any, profile: UtilityProfile) -> int:
    """One answer verbatim; several merged into one feed (usage data only)."""
    if len(bodies) == 1:
        out.write(bodies[0])
        return len(bodies[0])
    from .. import parse
    from .._writer import write_feed
    from ..espi import merge_documents

    merged = merge_documents(parse(body) for body in bodies)
    return write_feed(merged, out, base_url=profile.resource_url)
