"""``greenbutton worker``: run the job engine's jobs, on as many machines as needed (DESIGN 3.7).

A thin command over :class:`greenbutton.storage.Worker`: on PostgreSQL the jobs go through
procrastinate (the ``workers`` extra), so any number of workers on any number of machines
share one database, one rate limit and one set of quotas; on SQLite one in-process loop.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..client import Client
from ..parse import BATCH_READINGS
from . import cli
from ._db import _database_errors
from ._logging import log_options, stderr_line
from ._sdk import _utility, _utility_options

__all__ = ["worker"]


@cli.command()
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    required=True,
    envvar="GREENBUTTON_DATABASE_URL",
    help="SQLAlchemy URL of the shared database (postgresql://... for many workers, or "
    "sqlite:///FILE). [default: GREENBUTTON_DATABASE_URL]",
)
@_utility_options
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs this worker runs at once (the utility's rate limit still bounds requests).",
)
@click.option("--until-idle", is_flag=True, help="Exit 0 once nothing is due.")
@click.option(
    "--bulk-part-readings",
    type=click.IntRange(1),
    default=BATCH_READINGS,
    show_default=True,
    metavar="N",
    help="A fetched Bulk file of more readings is split by usage point into parts of about "
    "N readings, stored in the database, that every worker ingests side by side.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics at http://127.0.0.1:N/metrics (greenbutton_jobs{state}, "
    "greenbutton_authorizations{status}, greenbutton_database_up).",
)
@log_options()
def worker(
    database_url: str,
    simulator_dir: Path | None,
    config_path: Path | None,
    profile: str | None,
    concurrency: int,
    until_idle: bool,
    bulk_part_readings: int,
    metrics_port: int | None,
) -> None:
    """Run fetch jobs (planned by sync --enqueue-only, notifications, the daily catch-up).

    Runs until SIGINT/SIGTERM (the jobs it is running finish first). Start one per machine
    (or more) against one PostgreSQL database: each job runs once, a worker that dies has
    its job taken over by another, and the utility's rate limit and quotas are shared by
    all of them. GREENBUTTON_HOST_ID names this machine (default: the host name).

    \b
    Examples:
      greenbutton worker --database postgresql://gb@db/gb --profile pge --concurrency 4
      greenbutton worker --database sqlite:///gb.db --simulator DIR --until-idle
      greenbutton worker --database postgresql://gb@db/gb --profile pge --metrics-port 9464
      greenbutton worker --database postgresql://gb@db/gb --profile pge --log-format json
    """
    from ..storage import DatabaseTokenStore, Store, Worker, shared_limits

    utility = _utility(simulator_dir, config_path, profile)
    with _database_errors(), Store.open(database_url) as store:
        tokens = DatabaseTokenStore(store)
        with shared_limits(store):  # PostgreSQL: the rate limit and quotas in the database
            client = Client(*utility, token_store=tokens)
        with client:
            runner = Worker(
                store, client, concurrency=concurrency, part_readings=bulk_part_readings
            )

            def stop(signum: int, _frame: FrameType | None) -> None:
                stderr_line(f"{signal.Signals(signum).name}: finishing running jobs")
                runner.stop()

            metrics = None if metrics_port is None else _serve_metrics(store, client, metrics_port)
            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                runner.run(until_idle=until_idle)
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
                if metrics is not None:
                    metrics.shutdown()
            tally = ", ".join(f"{n} {kind}" for kind, n in runner.tally.items())
            stderr_line(f"attempts made here: {tally}")


def _serve_metrics(store: Any, client: Any, port: int) -> Any:
    """The collectors ``serve``'s ``/metrics`` uses too — the database's job and
    authorization counts and this worker's client limits (rate, quotas, circuit, certificate
    expiry) — on loopback: put a scraper on the machine, or a proxy that guards it, in
    front; no global registry (STYLE 8)."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise click.UsageError(
            "--metrics-port needs prometheus-client: pip install 'greenbutton[workers]'"
        ) from None

    from ..storage import ClientCollector, StoreCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    registry.register(ClientCollector(client, client.credentials))
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return server
