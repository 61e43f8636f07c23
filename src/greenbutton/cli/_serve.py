"""``greenbutton serve``: the third-party web app in the foreground (DESIGN 3.2, 3.6).

Thin: options become a ``WebConfig`` (a simulator's state folder, or a config-file profile
as for ``sync``) and uvicorn runs ``create_app``. The web modules are
imported only when the command runs, so the rest of the CLI works without them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import click

from .._errors import ConfigurationError
from . import cli
from ._logging import log_options, stderr_line, uvicorn_options
from ._simulator import default_state_dir

__all__ = ["serve_command"]


@cli.command("serve")
@click.option(
    "--simulator",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State folder of the simulator to use as the utility (its registration.json). "
    "[default: the simulator's per-user data folder]",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (TOML) with the utility's profile, as for sync. "
    "[default: GREENBUTTON_CONFIG, else the user config]",
)
@click.option("--profile", help="Profile in the config file (greenbutton config init writes one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="Port."
)
@click.option(
    "--database",
    metavar="URL",
    help="SQLAlchemy database URL for tokens and readings. "
    "[default: $GREENBUTTON_DATABASE_URL, else SQLite in the data folder]",
)
@click.option("--https", "https", is_flag=True, help="Serve over TLS (needs --cert and --key).")
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM certificate (chain) of this server, for --https.",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM private key of --cert.",
)
@click.option(
    "--client-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA bundle the utility's client certificate must chain to; notifications from "
    "connections without such a certificate get 403 (browsers need none). Needs --https "
    "(or --client-cert-header behind a trusted proxy).",
)
@click.option(
    "--client-subject",
    metavar="NAME",
    help="Pin the client certificate further: its RFC 4514 subject or common name. "
    "Needs --client-ca.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    metavar="ADDR",
    multiple=True,
    help="IP or CIDR of a reverse proxy whose forwarding headers count (repeatable); "
    "other peers sending them get 403 on notifications.",
)
@click.option(
    "--client-cert-header",
    metavar="NAME",
    help="Header a trusted proxy puts the utility's certificate in (RFC 9440 "
    "Client-Cert, :base64-DER:); verified against --client-ca.",
)
@click.option(
    "--notify-allow",
    metavar="CIDR",
    multiple=True,
    help="Accept notifications only from these source addresses (repeatable).",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Send the session cookie as __Host-gb_session with Secure: for a TLS-terminating "
    "proxy in front (implied by --https).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Connections served at once; further requests get 503.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Close a connection whose request line and headers are not complete in time.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Answer 408 and close when a request body is not complete in time.",
)
@log_options()
def serve_command(
    state_dir: Path | None,
    config_path: Path | None,
    profile: str | None,
    host: str,
    port: int,
    database: str | None,
    https: bool,
    cert: Path | None,
    key: Path | None,
    client_ca: Path | None,
    client_subject: str | None,
    trusted_proxies: tuple[str, ...],
    client_cert_header: str | None,
    notify_allow: tuple[str, ...],
    secure_cookies: bool,
    max_connections: int,
    header_timeout: float,
    body_timeout: float,
) -> None:
    """Run the third-party web app: connect a utility account, see its charts, receive
    notifications. Ctrl-C stops it.

    The utility is the simulator of --simulator DIR (the default), or a profile of the
    config file (--config FILE --profile NAME, written by `greenbutton config init`).

    Tokens are stored encrypted with $GREENBUTTON_SECRET_KEY (or a 0600 key file in the
    data folder). With --https --cert --key it serves TLS; add --client-ca to accept
    notifications only over connections presenting a certificate from that CA. Behind a
    TLS-terminating proxy, --trusted-proxy and --client-cert-header take the certificate
    from the proxy's header instead; --notify-allow limits callers by address, and
    --secure-cookies marks the session cookie Secure (__Host-). Connections are bounded:
    --max-connections at once, --header-timeout and --body-timeout per request.

    \b
    Examples:
      greenbutton serve --simulator ~/.local/share/greenbutton/simulator
      greenbutton serve --config /etc/greenbutton/config.toml --profile pge \\
          --https --cert site.crt --key site.key --client-ca pge-ca.pem
      greenbutton serve --profile pge --trusted-proxy 10.0.0.2 --secure-cookies
      greenbutton serve --profile pge --log-format json --log-level info
    """
    if https and (cert is None or key is None):
        raise click.UsageError("--https needs --cert and --key")
    if not https and (cert is not None or key is not None):
        raise click.UsageError("--cert and --key need --https")
    if client_ca is not None and not https and client_cert_header is None:
        raise click.UsageError("--client-ca needs --https (or --client-cert-header)")
    if client_subject is not None and client_ca is None:
        raise click.UsageError("--client-subject needs --client-ca")
    if client_cert_header is not None and (not trusted_proxies or client_ca is None):
        raise click.UsageError("--client-cert-header needs --trusted-proxy and --client-ca")
    if trusted_proxies and client_cert_header is None and not notify_allow:
        raise click.UsageError("--trusted-proxy needs --client-cert-header or --notify-allow")
    try:
        import uvicorn

        from ..web import WebConfig, create_app, uvicorn_config
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the web app needs {exc.name}; install it with: pip install 'greenbutton[web]'"
        ) from exc
    use_config = config_path is not None or profile is not None
    if use_config and state_dir is not None:
        raise click.UsageError("--simulator cannot be combined with --config or --profile")
    options = {
        "database_url": database,
        "tls_cert": cert,
        "tls_key": key,
        "client_ca": client_ca,
        "client_subject": client_subject,
        "trusted_proxies": trusted_proxies,
        "client_cert_header": client_cert_header,
        "notify_allow": notify_allow,
        "secure_cookies": secure_cookies or https,
        "max_connections": max_connections,
        "head_timeout": header_timeout,
        "body_timeout": body_timeout,
    }
    if use_config:
        config = WebConfig.from_config(config_path, profile, **options)
    else:
        folder = state_dir if state_dir is not None else default_state_dir()
        if not (folder / "registration.json").is_file():
            raise ConfigurationError(
                f"no simulator registration in {folder}: start `greenbutton simulator "
                f"--state-dir {folder}` first, pass --simulator DIR, or serve a real utility "
                "with --config FILE --profile NAME (greenbutton config init writes one)"
            )
        config = WebConfig.for_simulator(folder, **options)
    scheme = "https" if https else "http"
    url = f"{scheme}://{host}:{port}"
    redirect = config.credentials.redirect_uri or ""
    if use_config and urlsplit(redirect).path.rstrip("/") != "/OAuthCallback":
        stderr_line(
            f"warning: the profile's redirect_uri {redirect} is not this app's "
            "…/OAuthCallback: customers would not come back here",
            logging.WARNING,
        )
    elif not use_config and urlsplit(redirect).netloc != urlsplit(url).netloc:
        stderr_line(
            f"warning: the simulator redirects to {redirect}; start it with "
            f"--third-party-url {url} to connect through this server",
            logging.WARNING,
        )
    if client_ca is None and not notify_allow:
        stderr_line(
            "warning: without --client-ca the notification endpoint does not check who "
            "calls it (SECURITY R40)",
            logging.WARNING,
        )
    app = create_app(config)
    # uvicorn's records (the access log at --log-level info) in our format, not its own
    server = uvicorn.Server(uvicorn_config(app, config, host=host, port=port, **uvicorn_options()))
    click.echo(f"Web app: {url}/  (Ctrl-C to stop)")
    server.run()
