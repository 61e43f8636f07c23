"""``greenbutton simulator``: run the data-custodian simulator in the foreground (DESIGN 3.6).

Thin on purpose: options become a ``SimulatorConfig``; ``simulator._server`` does the work.
The simulator's modules are imported only when the command runs, so the rest of the CLI works
without the ``[sim]`` extra. Its uvicorn servers log as ``serve``'s does: through the one
handler of ``--log-format`` / ``--log-level`` (:func:`uvicorn_options`), so
``greenbutton --log-format json simulator`` writes JSON lines.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Literal

import click

from .._errors import ConfigurationError
from ..client import default_simulator_dir
from . import cli
from ._logging import configure_logging, log_options, stderr_line, uvicorn_options

__all__ = ["default_state_dir", "simulator_command"]

_SIM_MODULES = {"uvicorn", "starlette", "jinja2", "oauthlib", "itsdangerous", "multipart"}


def default_state_dir() -> Path:
    """``simulator`` in the per-user data folder (``_config.default_simulator_dir``)."""
    return default_simulator_dir()


_port = click.IntRange(0, 65535)


@cli.command("simulator")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the CA, certificates, registration and customers; reused on later "
    "starts. [default: the per-user data folder]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--portal-port", type=_port, default=0, help="Customer portal port. [default: free]")
@click.option("--api-port", type=_port, default=0, help="Token + ESPI API port. [default: free]")
@click.option(
    "--auto-approve",
    metavar="USERNAME",
    help="Skip login and consent for this customer and redirect straight back with a code.",
)
@click.option(
    "--third-party-url",
    default="http://127.0.0.1:3000",
    show_default=True,
    help="Base URL of the third party's web app (redirect and notification URIs).",
)
@click.option(
    "--notification-path",
    metavar="PATH",
    help="Where on the third party's web app the BatchList notifications go (appended to "
    "--third-party-url; registration.json's notification_uri). "
    "[default: /espi/1_1/Notification]",
)
@click.option(
    "--customers", type=click.IntRange(1), default=3, show_default=True, help="Demo customers."
)
@click.option(
    "--seed", type=int, default=20_240_101, show_default=True, help="Synthetic data seed."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Serve the ESPI files in this folder instead of synthetic data.",
)
@click.option(
    "--notify-every",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Send a 'new daily data' notification this often. [default: never]",
)
@click.option("--latency-ms", type=click.IntRange(0), default=0, help="Delay every API answer.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(0),
    default=0.0,
    metavar="PER_SECOND",
    help="The custodian's own limit: 429 + Retry-After above this many API requests in any "
    "second, written to registration.json so clients of the simulator profile keep under it "
    "(0 = none). GET /_simulator/stats shows what arrived.",
)
@click.option(
    "--fault-429-rate",
    type=click.FloatRange(0),
    default=0.0,
    metavar="PER_SECOND",
    help="Answer 429 + Retry-After above this API request rate (0 = off).",
)
@click.option(
    "--fault-5xx-burst",
    type=click.IntRange(0),
    default=0,
    metavar="N",
    help="Answer the first N API requests with 503.",
)
@click.option("--malformed-xml", is_flag=True, help="Truncate every XML body.")
@click.option("--drop-notifications", is_flag=True, help="Never POST BatchList notifications.")
@click.option("--duplicate-notifications", is_flag=True, help="POST every notification twice.")
@click.option(
    "--allow-non-loopback",
    is_flag=True,
    help="Allow a --host that is not loopback (fresh secrets are generated for it).",
)
@click.option(
    "--bind-tokens",
    is_flag=True,
    help="Bind access tokens to the client certificate they were issued over (RFC 8705).",
)
@click.option(
    "--strict-token-requests",
    is_flag=True,
    help="Refuse token requests with their parameters in the query string (PG&E accepts "
    "them, so by default the simulator does too).",
)
@click.option(
    "--style",
    type=click.Choice(["espi", "pge"]),
    default="espi",
    show_default=True,
    help="Wire format: clean ESPI 4.0, or PG&E's (ns0/ns1 prefixes, redundant namespace "
    "declarations, xsi:type, milliseconds, PG&E's customer element names).",
)
@click.option(
    "--server-key",
    type=click.Choice(["rsa", "ec"]),
    default=None,
    help="The simulator's own TLS key: RSA 2048 (what GBA TC008 and PG&E expect) or EC P-256; "
    "a different kind than the state folder's is re-issued. [default: the folder's, rsa]",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every request to stderr (lowers --log-level to info if it is above).",
)
@log_options()
def simulator_command(
    state_dir: Path | None,
    host: str,
    portal_port: int,
    api_port: int,
    auto_approve: str | None,
    third_party_url: str,
    notification_path: str | None,
    customers: int,
    seed: int,
    data_dir: Path | None,
    notify_every: float | None,
    latency_ms: int,
    rate_limit: float,
    fault_429_rate: float,
    fault_5xx_burst: int,
    malformed_xml: bool,
    drop_notifications: bool,
    duplicate_notifications: bool,
    allow_non_loopback: bool,
    bind_tokens: bool,
    strict_token_requests: bool,
    style: Literal["espi", "pge"],
    server_key: Literal["rsa", "ec"] | None,
    access_log: bool,
) -> None:
    """Run a Green Button data custodian on loopback: customer portal, OAuth server and ESPI
    API behind mutual TLS, with synthetic customers.

    Writes STATE_DIR/registration.json once it serves (client id and secret, certificate,
    key and CA paths, URLs, customer logins) and prints what to do next. Ctrl-C stops it.

    \b
    Examples:
      greenbutton simulator --state-dir sim --auto-approve alice
      greenbutton simulator --state-dir sim --style pge --rate-limit 1
      greenbutton simulator --state-dir sim --customers 2000 --fault-5xx-burst 3
    """
    try:
        from ..simulator import Faults, SimulatorConfig, SimulatorServer, startup_message
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in _SIM_MODULES:
            raise ConfigurationError(
                f"the simulator needs {exc.name}; install it with: pip install 'greenbutton[sim]'"
            ) from exc
        raise

    config = SimulatorConfig(
        state_dir=state_dir if state_dir is not None else default_state_dir(),
        host=host,
        portal_port=portal_port,
        api_port=api_port,
        auto_approve=auto_approve,
        third_party_url=third_party_url,
        customers=customers,
        seed=seed,
        data_dir=data_dir,
        notification_interval=notify_every,
        allow_insecure_bind=allow_non_loopback,
        bind_tokens=bind_tokens,
        rate_limit=rate_limit,
        strict_token_requests=strict_token_requests,
        style=style,
        server_key=server_key,
        faults=Faults(
            latency_ms=latency_ms,
            rate_limit_per_s=fault_429_rate,
            status_burst=fault_5xx_burst,
            malformed_xml=malformed_xml,
            drop_notifications=drop_notifications,
            duplicate_notifications=duplicate_notifications,
        ),
    )
    if notification_path is not None:  # unset: SimulatorConfig's default, written once
        config = dataclasses.replace(config, notification_path=notification_path)
    if access_log and uvicorn_options()["log_level"] > logging.INFO:
        configure_logging(level="info")  # request lines are INFO records
    # uvicorn's records (startup, errors, the access log) go to our handler, in its format
    level = logging.getLevelName(uvicorn_options()["log_level"]).lower()
    server = SimulatorServer(config, log_level=level, access_log=access_log)

    def ready() -> None:
        click.echo(startup_message(server))

    server.run(on_ready=ready)
    stderr_line("Simulator stopped.")
