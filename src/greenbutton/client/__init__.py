"""The HTTP side of the SDK (STYLE 1): :class:`Client` / :class:`AsyncClient`, the drivers
that run espi's sans-IO flows (``_flows``, the only code that sends), the guarded transport,
the rate limit and quotas, the circuit breaker, certificate rotation, config files, log
redaction and the OAuth loopback callback listener. Importing it loads httpx2 and anyio;
``import greenbutton`` alone does not.
"""

from ._breaker import CircuitBreaker
from ._client import AsyncClient, AsyncClientOptions, Client, ClientOptions
from ._config import (
    credentials_from_registration,
    default_config_path,
    default_simulator_dir,
    load_config,
    profile_settings,
    simulator_settings,
    write_profile,
)
from ._limits import ClientLimits, QuotaUse, certificate_expiry, client_limits
from ._loopback import LoopbackCallback, loopback_address
from ._redact import get_logger, install_redaction, quiet_debug, redact

__all__ = [
    "AsyncClient",
    "AsyncClientOptions",
    "CircuitBreaker",
    "Client",
    "ClientLimits",
    "ClientOptions",
    "LoopbackCallback",
    "QuotaUse",
    "certificate_expiry",
    "client_limits",
    "credentials_from_registration",
    "default_config_path",
    "default_simulator_dir",
    "get_logger",
    "install_redaction",
    "load_config",
    "loopback_address",
    "profile_settings",
    "quiet_debug",
    "redact",
    "simulator_settings",
    "write_profile",
]
