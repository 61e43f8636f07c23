"""Operations endpoints (DESIGN 3.7): ``/healthz``, ``/readyz`` and ``/metrics``.

* ``/healthz`` answers 200 while the process serves requests, and checks nothing else: a
  liveness probe that restarts the process must not fire because the database is down.
* ``/readyz`` answers 200 when the database answers a query and the utility's token
  endpoint accepts a TCP connection, each within ``READY_TIMEOUT`` seconds; else 503 with
  what failed. The utility check is a connection, not a request: a probe every few seconds
  must not spend the utility's request quota (PG&E: 2,000/h) or its rate-limit slots. The
  answer is kept for ``READY_CACHE`` seconds, so probes from many load balancers cost one
  check.
* ``/metrics`` is the Prometheus text format: the database's counts
  (:class:`greenbutton.storage.StoreCollector`: ``greenbutton_jobs{state}``,
  ``greenbutton_rows_ingested_total``, ``greenbutton_authorizations{status}``,
  ``greenbutton_revocations_owed``, ``greenbutton_database_up``) and this process's client
  (:class:`greenbutton.storage.ClientCollector`: ``greenbutton_circuit_state{state}``,
  ``greenbutton_circuit_failures``, ``greenbutton_quota_used{period}`` / ``_limit`` /
  ``_remaining``, ``greenbutton_rate_limit_per_second``, the histograms
  ``greenbutton_fetch_seconds`` and ``greenbutton_rate_limit_wait_seconds``,
  ``greenbutton_client_certificate_expiry_seconds``).
  A registry per app, no global one (STYLE 8). The counts are shared state any process can
  serve; put the endpoint behind the network policy that guards other internal endpoints.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..models import Credentials, UtilityProfile
from ..storage import ClientCollector, Store, StoreCollector

__all__ = ["READY_CACHE", "READY_TIMEOUT", "Ops"]

READY_TIMEOUT = 3.0  # s for each readiness check
READY_CACHE = 5.0  # s a readiness answer is reused


class Ops:
    """The three endpoints for one app: ``routes`` to mount."""

    def __init__(
        self, store: Store, client: Any, profile: UtilityProfile, credentials: Credentials
    ) -> None:
        from prometheus_client import CollectorRegistry

        self.store = store
        self.profile = profile
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store))
        self.registry.register(ClientCollector(client, credentials))
        self._ready: tuple[float, int, dict[str, str]] | None = None

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, name="healthz"),
            Route("/readyz", self.readyz, name="readyz"),
            Route("/metrics", self.metrics, name="metrics"),
        ]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    def _database(self) -> None:
        with self.store.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    async def _check_database(self) -> str:
        try:
            with anyio.fail_after(READY_TIMEOUT):
                # abandon_on_cancel: a hung connect must not hold the probe past its timeout
                await anyio.to_thread.run_sync(self._database, abandon_on_cancel=True)
        except TimeoutError:
            return f"no answer within {READY_TIMEOUT:g} s"
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ok"

    async def _check_utility(self) -> str:
        url = urlsplit(self.profile.token_url)
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with anyio.fail_after(READY_TIMEOUT):
                stream = await anyio.connect_tcp(host, port)
                await stream.aclose()
        except TimeoutError:
            return f"token endpoint {host}:{port}: no connection within {READY_TIMEOUT:g} s"
        except OSError as exc:
            return f"token endpoint {host}:{port}: {exc.strerror or type(exc).__name__}"
        return "ok"

    async def readyz(self, request: Request) -> Response:
        now = time.monotonic()
        if self._ready is None or now - self._ready[0] > READY_CACHE:
            checks: dict[str, str] = {}

            async def run(name: str, check: Any) -> None:
                checks[name] = await check()

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "database", self._check_database)
                tg.start_soon(run, "utility", self._check_utility)
            status = 200 if all(v == "ok" for v in checks.values()) else 503
            self._ready = (now, status, dict(sorted(checks.items())))
        _, status, checks = self._ready
        return JSONResponse({"ready": status == 200, **checks}, status_code=status)

    async def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = await anyio.to_thread.run_sync(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
