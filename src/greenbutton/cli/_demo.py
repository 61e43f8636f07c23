"""``greenbutton demo``: the whole third-party loop on loopback (DESIGN 3.2, 3.6).

The simulator (the utility) and the web app (the third party) run in threads of this process,
each with its state in the work folder. The demo then plays the customer's browser through the
real pages (``/connect`` → portal login → consent → ``/OAuthCallback`` → account page, where
the app exchanges the code and stores a 30-day sync fetch), asks for an asynchronous batch
with the SDK client and the stored authorization and waits until the simulator's BatchList
notification has been ingested by the web app's worker, refreshes the token, and summarises
what storage holds, with a chart. Web modules are imported only when the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._errors import ConfigurationError, DemoError, GreenButtonError
from . import cli

if TYPE_CHECKING:
    import httpx2
    from rich.console import Console

    from ..models import TimeZoneInfo
    from ..simulator import RunningSimulator
    from ..storage import Store

__all__ = ["demo_command"]

FIRST_PULL_DAYS = 30  # what the web app's callback fetches (the "sync" call)
BATCH_DAYS = 60  # what the asynchronous batch adds before that
WAIT_S = 30.0  # bound on every wait (server start, notification + ingest)
_HIDDEN = re.compile(r'<input type="hidden" name="([\w-]+)" value="([^"<>]*)"')
_ACTION = re.compile(r'<form method="post" action="([^"<>]+)"')
_UNITS = {"Wh": ("kWh", 1e-3), "therm": ("therms", 1.0)}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, DemoError | GreenButtonError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(slots=True)
class _Step:
    name: str
    detail: str = ""
    seconds: float = 0.0


@dataclass(slots=True)
class _Steps:
    done: list[_Step] = field(default_factory=list)
    echo: Callable[[str], None] = click.echo

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[_Step]:
        """Time one step; the caller fills in ``detail``. A failure names the step."""
        step = _Step(name)
        started = time.perf_counter()
        try:
            yield step
        except DemoError as exc:
            raise DemoError(f"{name}: {exc}") from exc
        except Exception as exc:  # any failure ends the demo with one line
            raise DemoError(f"{name}: {_one_line(exc)}") from exc
        step.seconds = time.perf_counter() - started
        self.done.append(step)
        self.echo(f"  ✓ {name} ({step.seconds:.1f} s){': ' + step.detail if step.detail else ''}")


@cli.command("demo")
@click.option(
    "--keep-running",
    is_flag=True,
    help="After the loop, leave the simulator and the web app up and print the URL and a "
    "customer login to click through by hand (Ctrl-C stops).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the simulator state, database, key and chart (reused if it exists). "
    "[default: a new temporary folder, kept]",
)
@click.pass_context
def demo_command(ctx: click.Context, keep_running: bool, workdir: Path | None) -> None:
    """Run the whole third-party loop against a local simulated utility: customer login and
    consent, code exchange, sync fetch, async batch with its notification, token refresh,
    storage; then print a summary and write a chart.

    \b
    Examples:
      greenbutton demo
      greenbutton demo --workdir demo-out
      greenbutton demo --keep-running     # then click through it in a browser
    """
    try:
        import uvicorn  # noqa: F401

        from .. import analysis as charts  # noqa: F401
        from ..storage import Store  # noqa: F401
        from ..web import create_app  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the demo needs {exc.name}; install it with: pip install 'greenbutton[all]'"
        ) from exc
    folder = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="greenbutton-demo-"))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = folder.resolve()
    try:
        _run(folder, keep_running)
    except Exception as exc:  # one `error:` line; servers already stopped
        if ctx.meta.get("greenbutton.debug"):
            raise
        raise click.ClickException(f"demo failed: {_one_line(exc)} (files in {folder})") from exc


# -- the web app in a thread --------------------------------------------------------------------


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def _serve_in_thread(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` with uvicorn on the bound ``sock`` until the block exits."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the main thread keeps Ctrl-C
            yield

    server = Server(uvicorn.Config(app, log_config=None, log_level="warning", access_log=False))
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="greenbutton-demo-web", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                raise DemoError("the web app did not start")
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(WAIT_S)
        sock.close()


# -- the loop -----------------------------------------------------------------------------------


def _run(folder: Path, keep_running: bool) -> None:
    import httpx2
    from rich.console import Console

    from ..client import Client
    from ..simulator import SimulatorConfig, run_in_thread
    from ..storage import DatabaseTokenStore, Store
    from ..web import WebConfig, create_app

    console = Console(highlight=False)
    steps = _Steps(echo=lambda line: _say(console, line))
    _say(console, f"greenbutton demo: work folder {folder}")
    sock = _loopback_socket()
    web_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    db_url = f"sqlite:///{folder / 'greenbutton.db'}"
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        with steps.step("start the simulator and the web app") as step:
            try:
                sim = stack.enter_context(
                    run_in_thread(
                        SimulatorConfig(state_dir=folder / "simulator", third_party_url=web_url),
                        timeout=WAIT_S,
                    )
                )
            except RuntimeError as exc:
                raise DemoError(str(exc)) from exc
            store = stack.enter_context(Store.open(db_url, data_dir=folder))
            config = WebConfig.for_simulator(
                sim.state_dir, database_url=db_url, first_pull_days=FIRST_PULL_DAYS
            )
            stack.enter_context(_serve_in_thread(create_app(config, store), sock))
            step.detail = f"web app {web_url}, utility portal {sim.portal_url}, API {sim.api_url}"
        customer = sim.registration["customers"][0]
        browser = stack.enter_context(
            httpx2.Client(
                verify=ssl.create_default_context(cafile=sim.registration["ca_cert"]),
                trust_env=False,
                timeout=WAIT_S,
                follow_redirects=True,
            )
        )
        key = _connect(steps, browser, web_url, sim, store, customer)
        client = stack.enter_context(
            Client.for_simulator(sim.registration_path, token_store=DatabaseTokenStore(store))
        )
        _batch(steps, store, client, key)
        zone = _refresh(steps, client, key)
        with steps.step("read storage back and write the chart") as step:
            rows = _stored_rows(store, config.profile.name)
            chart = _chart(rows, folder / "usage.png", zone)
            step.detail = f"{len(rows):,} readings, {chart.name}"
        _summary(console, store, steps, rows, zone)
        _say(console, f"Chart: {chart}")
        if keep_running:
            _wait(console, web_url, customer)


def _form(page: httpx2.Response, what: str) -> tuple[str, dict[str, str]]:
    """The POST target and hidden fields of the page's form (simple regexes over our own
    templates: no HTML parser needed)."""
    action = _ACTION.search(page.text)
    if action is None:
        raise DemoError(f"no {what} form at {page.url.path} (HTTP {page.status_code})")
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
    if "csrf_token" not in fields:
        raise DemoError(f"the {what} form carries no CSRF token")
    return str(page.url.join(html.unescape(action.group(1)))), fields


def _connect(
    steps: _Steps,
    browser: httpx2.Client,
    web_url: str,
    sim: RunningSimulator,
    store: Store,
    customer: dict[str, str],
) -> str:
    """The customer's browser: connect, log in, consent. Returns the stored grant's key."""
    with steps.step("customer login at the utility portal") as step:
        page = browser.get(f"{web_url}/connect")
        if not str(page.url).startswith(sim.portal_url + "/"):
            raise DemoError(f"/connect did not lead to the utility portal but to {page.url}")
        action, fields = _form(page, "login")
        fields |= {"username": customer["username"], "password": customer["password"]}
        page = browser.post(action, data=fields)
        if page.status_code != 200 or "Share your energy data" not in page.text:
            raise DemoError(f"login as {customer['username']} failed (HTTP {page.status_code})")
        step.detail = f"signed in as {customer['username']}, consent page shown"
    with steps.step("approve → callback: code exchange + 30-day sync fetch") as step:
        action, fields = _form(page, "consent")
        page = browser.post(action, data=fields | {"decision": "approve"})
        if str(page.url) != f"{web_url}/account" or page.status_code != 200:
            raise DemoError(f"the browser ended at {page.url.path} (HTTP {page.status_code})")
        if "<svg" not in page.text:
            raise DemoError("the account page shows no chart")
        key = _latest_grant(store)
        count = _reading_count(store)
        if not count:
            raise DemoError("the first data pull stored no readings")
        step.detail = f"account page with chart, {count:,} readings stored"
    return key


def _latest_grant(store: Store) -> str:
    from ..storage import latest_authorization

    key = latest_authorization(store)
    if key is None:
        raise DemoError("the web app stored no authorization")
    return key


def _reading_count(store: Store) -> int:
    from ..storage import reading_count

    return reading_count(store)


def _batch(steps: _Steps, store: Store, client: Any, key: str) -> None:
    """PG&E's "async" call: 202 now; the BatchList reaches the web app, whose worker fetches
    and stores the notified data. Waits (bounded) until those jobs are done."""
    with steps.step(f"async batch ({BATCH_DAYS} earlier days) + BatchList notification") as step:
        before = _reading_count(store)
        since = time.time()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        end -= timedelta(days=FIRST_PULL_DAYS)
        accepted = client.request_subscription_async(
            key, start=end - timedelta(days=BATCH_DAYS), end=end
        )
        if accepted.status_code != 202:
            raise DemoError(f"the utility answered {accepted.status_code}, not 202 Accepted")
        jobs = _wait_for_jobs(store, since)
        added = _reading_count(store) - before
        if added <= 0:
            raise DemoError("the notified data added no readings")
        step.detail = f"202 Accepted, {jobs} notified job(s) ingested, +{added:,} readings"


def _wait_for_jobs(store: Store, since: float) -> int:
    from ..storage import jobs_since

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        jobs = jobs_since(store, since)
        failed = [error for state, error in jobs if state == "failed"]
        if failed:
            raise DemoError(f"the notified fetch failed: {failed[0]}")
        if jobs and all(state == "done" for state, _ in jobs):
            return len(jobs)
        time.sleep(0.05)
    raise DemoError(f"no notification was ingested within {WAIT_S:.0f} s")


def _refresh(steps: _Steps, client: Any, key: str) -> TimeZoneInfo | None:
    """Refresh now (rotation stored before use); prove the new token by reading the
    usage points and the time zone the charts and months use."""

    with steps.step("token refresh") as step:
        old = client.token_store.load(key)
        new = client.refresh(key)
        if old is None or new.access_token.reveal() == old.access_token.reveal():
            raise DemoError("the access token did not change")
        rotated = (
            new.refresh_token is not None
            and old.refresh_token is not None
            and new.refresh_token.reveal() != old.refresh_token.reveal()
        )
        doc = client.usage_points(key)
        points = len(doc.usage_points)
        if not points:
            raise DemoError("the refreshed token read no usage points")
        ltp = client.local_time_parameters(key)
        zone = ltp.local_time_parameters[0].time_zone if ltp.local_time_parameters else None
        step.detail = (
            f"new access token{' + rotated refresh token' if rotated else ''} stored "
            f"encrypted, reads {points} usage points"
        )
    return zone


# -- summary and chart --------------------------------------------------------------------------


def _stored_rows(store: Store, namespace: str) -> list[Any]:
    from ..storage import export_readings

    return list(export_readings(store, namespace=namespace))


def _chart(rows: list[Any], target: Path, zone: TimeZoneInfo | None) -> Path:
    import pandas as pd

    from .. import analysis as charts
    from ..models import COLUMNS

    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if zone is None:
        groups = charts.groups_from_frame(frame)
    else:
        groups = charts.groups_from_frame(frame, tz=zone.tzinfo, time_zone=_zone_name(zone))
    try:
        fig = charts.figure(groups, ("daily", "heatmap"))
    except ValueError as exc:
        raise DemoError("nothing stored to chart") from exc
    target.write_bytes(charts.render(fig, "png"))
    return target


def _zone_name(zone: TimeZoneInfo | None) -> str:
    return "UTC" if zone is None else zone.iana or "local time"


def _monthly(
    rows: list[Any], titles: dict[str, str], zone: TimeZoneInfo | None
) -> tuple[list[str], dict[str, dict[str, float]], set[str]]:
    """Months (local), {column: {month: amount}} in kWh and therms, and the months the
    stored data covers only in part."""
    tz = UTC if zone is None else zone.tzinfo
    totals: dict[tuple[str, str, str], dict[str, float]] = {}
    flows: dict[str, set[str]] = {}
    first: datetime | None = None
    last: datetime | None = None
    for r in rows:
        unit = _UNITS.get(str(r.uom))
        if unit is None or r.value is None:
            continue
        start = r.start.astimezone(tz)
        end = (r.start + timedelta(seconds=int(r.duration))).astimezone(tz)
        flows.setdefault(r.usage_point, set()).add(str(r.flow_direction))
        series = totals.setdefault((r.usage_point, str(r.flow_direction), unit[0]), {})
        month = start.strftime("%Y-%m")
        series[month] = series.get(month, 0.0) + r.value * unit[1]
        first = start if first is None or start < first else first
        last = end if last is None or end > last else last
    named: dict[str, dict[str, float]] = {}
    for (point, flow, unit_name), series in sorted(totals.items()):
        title = titles.get(point) or point.rpartition("/")[2]
        shown = {"forward": "import ", "reverse": "export "}.get(flow, f"{flow} ")
        named[f"{title}\n{shown if len(flows[point]) > 1 else ''}{unit_name}"] = series
    months = sorted({m for series in named.values() for m in series})
    partial: set[str] = set()
    if first is not None and last is not None:
        if (first.day, first.hour, first.minute) != (1, 0, 0):
            partial.add(first.strftime("%Y-%m"))
        if (last.day, last.hour, last.minute) != (1, 0, 0):
            partial.add(last.strftime("%Y-%m"))
    return months, named, partial


def _summary(
    console: Console, store: Store, steps: _Steps, rows: list[Any], zone: TimeZoneInfo | None
) -> None:
    from rich import box
    from rich.table import Table

    from ..storage import accounts

    stored = accounts(store)
    points = [p for acc in stored for p in acc.usage_points]
    total = sum(p.readings for p in points)
    console.print()
    _say(
        console,
        f"Stored: {len(stored)} account(s), {len(points)} usage point(s), {total:,} readings",
    )
    t = Table(
        title="Usage points",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
    )
    t.add_column("usage point")
    t.add_column("readings", justify="right")
    t.add_column("first day (UTC)")
    t.add_column("last day")
    for p in points:
        starts = [s.first for s in p.series if s.first is not None]
        ends = [s.last - 1 for s in p.series if s.last is not None]
        t.add_row(
            p.title or p.key.rpartition("/")[2],
            f"{p.readings:,}",
            _date(min(starts)) if starts else "-",
            _date(max(ends)) if ends else "-",
        )
    t.add_row("total", f"{total:,}", "", "", style="bold")
    console.print(t)

    titles = {p.key: p.title or "" for p in points}
    months, named, partial = _monthly(rows, titles, zone)
    t = Table(
        title=f"Energy per month ({_zone_name(zone)})",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
    )
    t.add_column("month")
    for label in named:
        t.add_column(label, justify="right")
    for month in months:
        cells = [f"{named[label].get(month, 0.0):,.1f}" for label in named]
        t.add_row(month + (" *" if month in partial else ""), *cells)
    console.print(t)
    if partial:
        _say(console, "* partly covered by the stored data")

    t = Table(title="Steps", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    t.add_column("step")
    t.add_column("time", justify="right")
    for step in steps.done:
        t.add_row(step.name, f"{step.seconds:.1f} s")
    t.add_row("total", f"{sum(s.seconds for s in steps.done):.1f} s", style="bold")
    console.print(t)


def _say(console: Console, line: str) -> None:
    """A plain line: no markup, never wrapped (paths and URLs stay copyable)."""
    console.print(line, markup=False, soft_wrap=True)


def _date(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _wait(console: Console, web_url: str, customer: dict[str, str]) -> None:
    """Keep both servers up until Ctrl-C."""
    console.print()
    _say(
        console,
        f"Both servers keep running. Open {web_url}/ and connect with",
    )
    _say(console, f"  username {customer['username']}  password {customer['password']}")
    _say(
        console,
        "(the utility portal's certificate comes from the simulator's own CA: accept the "
        "browser's warning). Ctrl-C stops both.",
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        _say(console, "stopping")
