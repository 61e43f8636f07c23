"""``greenbutton serve``: the third-party web app in the foreground (DESIGN 3.2, 3.6).

Thin: options become a ``WebConfig`` and uvicorn runs ``create_app``. The web modules are
imported only when the command runs, so the rest of the CLI works without them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from .._errors import ConfigurationError
from . import cli
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
def serve_command(state_dir: Path | None, host: str, port: int, database: str | None) -> None:
    """Run the third-party web app: connect a utility account, see its charts, receive
    notifications. Ctrl-C stops it.

    Tokens are stored encrypted with $GREENBUTTON_SECRET_KEY (or a 0600 key file in the
    data folder).
    """
    try:
        import uvicorn

        from ..web import WebConfig, create_app
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the web app needs {exc.name}; install it with: pip install 'greenbutton[web]'"
        ) from exc
    folder = state_dir if state_dir is not None else default_state_dir()
    if not (folder / "registration.json").is_file():
        raise ConfigurationError(
            f"no simulator registration in {folder}: start `greenbutton simulator "
            f"--state-dir {folder}` first, or pass --simulator DIR"
        )
    config = WebConfig.for_simulator(folder, database_url=database)
    url = f"http://{host}:{port}"
    redirect = config.credentials.redirect_uri or ""
    if urlsplit(redirect).netloc != urlsplit(url).netloc:
        click.echo(
            f"warning: the simulator redirects to {redirect}; start it with "
            f"--third-party-url {url} to connect through this server",
            err=True,
        )
    app = create_app(config)
    click.echo(f"Web app: {url}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
