"""The object every part of a running simulator shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import PATHS, Faults, SimulatorConfig
from ._state import SimulatorState

__all__ = ["Simulator"]


@dataclass(slots=True, kw_only=True)
class Simulator:
    """Config, state, live faults and addresses of one simulator.

    ``portal_url`` and ``api_url`` are the listeners' base URLs (``https://127.0.0.1:PORT``),
    known once the sockets are bound; in-process tests may set them to anything.
    ``data`` is the usage-data source (``_data.DataSource``); ``notifier`` sends BatchLists
    (``_notify.Notifier``). Both are typed loosely here so this module stays import-light.
    """

    config: SimulatorConfig
    state: SimulatorState
    faults: Faults
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    portal_url: str = "https://127.0.0.1"
    api_url: str = "https://127.0.0.1"
    data: Any = None
    notifier: Any = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # the OAuth server
    # RFC 8705 certificate binding (``config.bind_tokens``, see ``_binding``): access token
    # value -> x5t#S256 of the certificate it was issued over; refused resource requests.
    token_bindings: dict[str, str] = field(default_factory=dict, repr=False)  # keys: tokens
    binding_rejections: list[Any] = field(default_factory=list)

    @property
    def authorize_url(self) -> str:
        return self.portal_url + PATHS.AUTHORIZE

    @property
    def token_url(self) -> str:
        return self.api_url + PATHS.TOKEN

    @property
    def resource_url(self) -> str:
        return self.api_url + PATHS.RESOURCE
