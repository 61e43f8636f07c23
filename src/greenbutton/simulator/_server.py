"""The simulator's two HTTPS listeners, served by uvicorn in one event loop.

* **portal**: server TLS only, like any website a customer's browser visits;
* **API**: ``CERT_REQUIRED`` against the simulator's CA, so a third party without a
  certificate from it is turned away at the TLS handshake, before any HTTP is read.

Both use TLS >= 1.2 with forward-secret AEAD ciphers only (GBA TC003/TC005). The sockets are
bound before the apps are built, so the real ports (port 0 = a free one) are known to the
apps and to ``registration.json``, which is written only once both listeners serve: scripts
can wait for that file instead of polling ports (DESIGN 3.6). It is removed again on a clean
stop, so its presence means "serving".

Signals are handled here rather than by each ``uvicorn.Server`` (two servers would each
install, and then restore, their own handlers): the first Ctrl-C stops both gracefully, a
second one forces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import shlex
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from .._errors import ConfigurationError
from .._util import write_private_json
from ..client import install_redaction
from ._binding import TLSScopeProtocol
from ._bootstrap import bootstrap
from ._config import SimulatorConfig
from ._simulator import Simulator
from ._state import registration_json

__all__ = [
    "AppFactory",
    "RunningSimulator",
    "SimulatorServer",
    "run_in_thread",
    "server_ssl_context",
    "startup_message",
]

AppFactory = Callable[[Simulator], Any]  # Simulator -> ASGI app
REGISTRATION_FILE = "registration.json"
# ECDHE key exchange with AES-GCM or ChaCha20 only: no NULL, export, CBC or static-RSA suites.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"
GRACEFUL_SHUTDOWN_S = 5


def server_ssl_context(sim: Simulator, *, require_client_cert: bool) -> ssl.SSLContext:
    """The SSLContext of one listener (TLS >= 1.2; client certificates from our CA only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.load_cert_chain(sim.server_cert, sim.server_key)
    if require_client_cert:
        ctx.load_verify_locations(cafile=sim.ca_cert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


PORTS_FILE = "ports.json"


def _remembered_ports(path: Path) -> dict[str, int]:
    """The ports the last run of this state folder listened on (DESIGN 3.7)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int) and 0 < v <= 65535}


def _bind_again(host: str, port: int, remembered: int | None) -> socket.socket:
    """``port`` when given; else the port this state folder had last time, so the URLs in
    ``registration.json`` (and a third party's configuration) stay the same across
    restarts; else, or when that port is taken now, a free one."""
    if port or remembered is None:
        return _bind(host, port)
    try:
        return _bind(host, remembered)
    except ConfigurationError:
        return _bind(host, 0)


def _bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket; port 0 gets a free one. Fails here, before anything serves."""
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"port {port} is out of range (0-65535)")
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve --host {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}"
        ) from exc
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    bare = host.strip("[]")
    if bare in ("0.0.0.0", ""):  # noqa: S104  (a URL for an all-interfaces bind)
        bare = "127.0.0.1"
    elif bare == "::":
        bare = "::1"
    shown = f"[{bare}]" if ":" in bare else bare
    return f"https://{shown}:{port}"


def _fixed_context(
    ctx: ssl.SSLContext,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """An uvicorn ``ssl_context_factory`` that ignores uvicorn's defaults for ours."""
    return lambda _config, _default: ctx


#: The API listener tells its app which client certificate each connection presented
#: (ASGI TLS extension: certificate-bound tokens, R31); the portal needs no such thing.
_PROTOCOLS: tuple[Any, Any] = ("auto", TLSScopeProtocol)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :class:`SimulatorServer`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _default_factories() -> tuple[AppFactory, AppFactory]:
    """The real apps (``_apps``), imported only when no test supplied its own."""
    apps = importlib.import_module("._apps", __package__)
    return apps.create_portal_app, apps.create_api_app


class SimulatorServer:
    """One simulator: state folder bootstrapped, sockets bound, apps built; not yet serving.

    ``portal_app`` / ``api_app`` build the ASGI apps from the Simulator (default: the
    factories of ``_apps``); tests may pass their own.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        portal_app: AppFactory | None = None,
        api_app: AppFactory | None = None,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self.sim = bootstrap(config)  # first: bad settings fail before anything else
        # The simulator's own loggers, uvicorn's (request lines) and httpx2's (notification
        # POSTs) are redacted in its own process too, not only where a client ran (R49).
        install_redaction()
        if portal_app is None or api_app is None:
            default_portal, default_api = _default_factories()
            portal_app = portal_app or default_portal
            api_app = api_app or default_api
        self.registration_path = self.sim.config.state_dir.expanduser().resolve() / (
            REGISTRATION_FILE
        )
        self.registration: dict[str, Any] = {}
        state_dir = self.sim.config.state_dir.expanduser().resolve()
        remembered = _remembered_ports(state_dir / PORTS_FILE)
        self._sockets = [_bind_again(config.host, config.portal_port, remembered.get("portal"))]
        try:
            self._sockets.append(_bind_again(config.host, config.api_port, remembered.get("api")))
            ports = {"portal": self._sockets[0].getsockname()[1]}
            ports["api"] = self._sockets[1].getsockname()[1]
            write_private_json(state_dir / PORTS_FILE, ports)
            self.sim.portal_url = _base_url(config.host, self._sockets[0])
            self.sim.api_url = _base_url(config.host, self._sockets[1])
            apps = (portal_app(self.sim), api_app(self.sim))
            contexts = (
                server_ssl_context(self.sim, require_client_cert=False),
                server_ssl_context(self.sim, require_client_cert=True),
            )
        except BaseException:
            self.close()
            raise
        self._servers = [
            _Server(
                uvicorn.Config(
                    app,
                    ssl_context_factory=_fixed_context(ctx),
                    http=protocol,
                    log_config=None,
                    log_level=log_level,
                    access_log=access_log,
                    server_header=False,
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                )
            )
            for app, ctx, protocol in zip(apps, contexts, _PROTOCOLS, strict=True)
        ]
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def portal_url(self) -> str:
        return self.sim.portal_url

    @property
    def api_url(self) -> str:
        return self.sim.api_url

    def close(self) -> None:
        """Release the sockets of a server that never served."""
        for sock in self._sockets:
            sock.close()

    def stop(self, *, force: bool = False) -> None:
        """Ask both listeners to stop (safe from any thread and from a signal handler)."""
        for server in self._servers:
            if force:
                server.force_exit = True
            server.should_exit = True

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop`; ``on_ready`` runs once both listeners accept."""
        self._loop = asyncio.get_running_loop()
        self.registration_path.unlink(missing_ok=True)  # a stale file would lie about ports
        tasks = [
            asyncio.create_task(self._serve_one(server, sock))
            for server, sock in zip(self._servers, self._sockets, strict=True)
        ]
        try:
            while not all(s.started for s in self._servers):
                if any(t.done() for t in tasks):  # one failed to start: stop the other
                    self.stop()
                    break
                await asyncio.sleep(0.01)
            else:
                self.registration = registration_json(
                    state=self.sim.state,
                    client_cert=self.sim.client_cert,
                    client_key=self.sim.client_key,
                    ca_cert=self.sim.ca_cert,
                    authorize_url=self.sim.authorize_url,
                    token_url=self.sim.token_url,
                    resource_url=self.sim.resource_url,
                    rate_limit=self.sim.config.rate_limit,
                )
                write_private_json(self.registration_path, self.registration)
                if on_ready is not None:
                    on_ready()
            await asyncio.gather(*tasks)
        finally:
            self.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.registration_path.unlink(missing_ok=True)
            self.close()

    @staticmethod
    async def _serve_one(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits when the app's lifespan startup fails
            raise RuntimeError(f"a simulator listener failed to start (exit {exc.code})") from exc

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C or SIGTERM (a second Ctrl-C forces)."""
        stopping = threading.Event()

        def handle(signum: int, frame: object) -> None:
            self.stop(force=stopping.is_set())
            stopping.set()

        previous = {sig: signal.signal(sig, handle) for sig in _SIGNALS}
        try:
            asyncio.run(self.serve(on_ready))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM) if sys.platform != "win32" else (signal.SIGINT,)


@dataclass(slots=True)
class RunningSimulator:
    """A simulator serving in a background thread (see :func:`run_in_thread`)."""

    server: SimulatorServer
    registration: dict[str, Any] = field(default_factory=dict, repr=False)  # client_secret

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    @property
    def portal_url(self) -> str:
        return self.server.portal_url

    @property
    def api_url(self) -> str:
        return self.server.api_url

    @property
    def registration_path(self) -> Path:
        return self.server.registration_path

    @property
    def state_dir(self) -> Path:
        return self.server.registration_path.parent


@contextlib.contextmanager
def run_in_thread(
    config: SimulatorConfig,
    *,
    portal_app: AppFactory | None = None,
    api_app: AppFactory | None = None,
    timeout: float = 30.0,
    log_level: str = "warning",
    access_log: bool = False,
) -> Iterator[RunningSimulator]:
    """Start a simulator in a thread, yield once ``registration.json`` is written, stop it
    (and wait for the thread) on exit. For tests and ``greenbutton demo``."""
    server = SimulatorServer(
        config,
        portal_app=portal_app,
        api_app=api_app,
        log_level=log_level,
        access_log=access_log,
    )
    ready = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(server.serve(ready.set))
        except BaseException as exc:  # reported to the starting thread below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=target, name="greenbutton-simulator", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout) or failure or not server.registration:
            server.stop(force=True)
            thread.join(timeout)
            if failure:
                raise RuntimeError("the simulator failed to start") from failure[0]
            raise RuntimeError(f"the simulator did not start within {timeout} s")
        yield RunningSimulator(server, dict(server.registration))
    finally:
        server.stop()
        thread.join(timeout)
        if thread.is_alive():
            server.stop(force=True)
            thread.join(timeout)


def startup_message(server: SimulatorServer) -> str:
    """What a user needs to start talking to the simulator (secrets stay in the file)."""
    sim, reg = server.sim, server.registration
    q = shlex.quote
    reg_path = str(server.registration_path)
    customers = reg["customers"]
    shown = customers[:5]
    width = max(len(c["username"]) for c in shown)
    logins = "\n".join(f"    {c['username']:<{width}}  {c['password']}" for c in shown)
    if len(customers) > len(shown):
        logins += f"\n    ... and {len(customers) - len(shown)} more in registration.json"
    lines = [
        "Green Button data custodian simulator is running.",
        "",
        f"  customer portal   {reg['authorize_url']}",
        f"  token endpoint    {reg['token_url']}  (client certificate required)",
        f"  ESPI resources    {reg['resource_url']}  (client certificate required)",
        "",
        f"Registered third party (all of it, secret included, in {reg_path}):",
        f"  client_id         {reg['client_id']}",
        f"  redirect_uri      {reg['redirect_uri']}",
        f"  notification_uri  {reg['notification_uri']}",
        f"  client cert       {reg['client_cert']}",
        f"  client key        {reg['client_key']}",
        f"  CA certificate    {reg['ca_cert']}",
        "",
        "Demo customer logins (username  password):",
        logins,
        "",
        "The portal's certificate comes from the simulator's own CA (above): a browser warns",
        "once; accept it, or trust that CA certificate in the browser.",
    ]
    if sim.config.bind_tokens:
        lines += [
            "",
            "Access tokens are bound to the client certificate they were issued over "
            "(RFC 8705): another certificate gets 401 invalid_token.",
        ]
    if sim.config.auto_approve:
        lines += [
            "",
            f"Auto-approve is on for {sim.config.auto_approve}: no login or consent page.",
        ]
    lines += [
        "",
        "Try it (a client-credentials token):",
        f"  SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))"
        f'["client_secret"])\' {q(reg_path)})',
        f"  curl --cacert {q(reg['ca_cert'])} \\",
        f"       --cert {q(reg['client_cert'])} --key {q(reg['client_key'])} \\",
        f'       -u {reg["client_id"]}:"$SECRET" -d grant_type=client_credentials \\',
        f"       {reg['token_url']}",
        "",
        "Its feeds are Green Button XML: save one and run `greenbutton inspect FILE`.",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)
