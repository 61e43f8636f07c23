"""The two ASGI apps of a running simulator, assembled from their parts.

``create_portal_app`` is what a customer's browser talks to; ``create_api_app`` is what the
third party's software talks to, behind mutual TLS. Both are built after the listeners are
bound (``_server``), so ``sim.portal_url``/``sim.api_url`` hold the real addresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount

from ._config import PATHS
from ._data import create_data_source
from ._faults import fault_middleware
from ._notify import Notifier
from ._oauth import token_route
from ._portal import portal_middleware, portal_routes
from ._resources import resource_routes
from ._simulator import Simulator

__all__ = ["create_api_app", "create_portal_app"]


def create_portal_app(sim: Simulator) -> Starlette:
    """Login, consent and the authorize endpoint (no client certificate, like a browser)."""
    return Starlette(routes=portal_routes(sim), middleware=portal_middleware(sim))


def create_api_app(sim: Simulator) -> Starlette:
    """Token endpoint, ESPI resources and the fault switchboard; starts the notifier."""
    if sim.data is None:
        sim.data = create_data_source(sim.config, sim.state)
    if sim.notifier is None:
        sim.notifier = Notifier(sim)
    notifier = sim.notifier

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notifier.start()
        try:
            yield
        finally:
            notifier.close()

    return Starlette(
        routes=[token_route(sim), Mount(PATHS.RESOURCE, routes=resource_routes(sim))],
        middleware=[fault_middleware(sim)],
        lifespan=lifespan,
    )
