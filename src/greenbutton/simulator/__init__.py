"""A Green Button Connect My Data data custodian on loopback (DESIGN 2.8, 3.6, 4).

Two HTTPS listeners share one :class:`Simulator`:

* the **portal** (:func:`create_portal_app`): customer login and consent pages and the
  authorize endpoint ``/myAuthorization``; no client certificate, like a browser;
* the **API** (:func:`create_api_app`): the token endpoint and the ESPI resource server,
  both behind mutual TLS (a client certificate signed by the simulator's CA is required at
  the handshake).

Module map: ``_config`` (settings, faults), ``_state`` (registration, customers, grants),
``_pki`` (CA and certificates), ``_bootstrap`` (first start of a state folder),
``_oauth`` (authorization server), ``_portal`` (login/consent pages), ``_data``
(synthetic or file-backed usage data), ``_resources`` (ESPI REST), ``_notify``
(BatchList notifications), ``_customer`` (retail-customer resources), ``_style`` (PG&E's
wire format, ``--style pge``), ``_faults`` (fault injection), ``_server`` (uvicorn listeners),
``_binding`` (certificate-bound tokens, RFC 8705; issuing a new client certificate).
The simulator imports the SDK; the SDK never imports it.
"""

from __future__ import annotations

from ._config import PATHS, Faults, SimulatorConfig
from ._server import RunningSimulator, SimulatorServer, run_in_thread, startup_message
from ._simulator import Simulator

__all__ = [
    "PATHS",
    "Faults",
    "RunningSimulator",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "run_in_thread",
    "startup_message",
]
