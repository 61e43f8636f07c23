"""greenbutton: the Python toolkit for Green Button Connect My Data (NAESB REQ.21 ESPI).

Read any Green Button file or API response::

    import greenbutton
    doc = greenbutton.parse("usage.xml")
    for row in greenbutton.iter_readings("usage.xml"):
        ...
    frame = greenbutton.read_frame("usage.xml")

Fetch it from a utility, with the profile and credentials of a config file (DESIGN 3.5)::

    with greenbutton.Client.from_config(profile="pge") as client:
        doc = client.usage_points(authorization)

Every name here reports ``__module__ == "greenbutton"``: the private modules it comes from
are not an API (httpx does the same).

``import greenbutton`` stays light (issue 13.4): the parser, the readings table and the error
tree are imported with the package; the client stack (httpx2, anyio), the frames (pandas,
pyarrow, loaded only when a frame is built) and the token store, loopback callback and
writers are imported at their first use (PEP 562 ``__getattr__``), so parsing a file loads
no HTTP, database or dataframe library.
"""

import importlib as _importlib
import typing as _typing

from ._errors import (
    APIStatusError,
    AuthorizationError,
    CallbackError,
    CircuitOpenError,
    ConfigurationError,
    ConnectError,
    DemoError,
    EgressDenied,
    GreenButtonError,
    GreenButtonWarning,
    InvalidClientError,
    InvalidGrantError,
    JobRejected,
    NotFoundError,
    OAuthError,
    ParseError,
    QuotaExhaustedError,
    ReconciliationError,
    RejectedURI,
    RequestDeferred,
    RequestTimeout,
    SecretKeyError,
    ServerError,
    StorageError,
    TokenDecryptionError,
    TransportError,
    UnsafeXMLError,
    XMLLimitError,
)
from ._secret import Secret
from .models import Document
from .models._profile import Credentials, UtilityProfile
from .models._rows import COLUMNS, Reading
from .parse import Limits, iter_readings, parse

if _typing.TYPE_CHECKING:  # what mypy and IDEs see; imported at first use by __getattr__ below
    from .client._breaker import CircuitBreaker
    from .client._client import AsyncClient, AsyncClientOptions, Client, ClientOptions
    from .client._config import default_config_path, load_config
    from .client._loopback import LoopbackCallback
    from .oauth import FileTokenStore
    from .table._files import write_readings
    from .table._frames import read_arrow, read_frame, to_arrow, to_pandas, write_parquet

__all__ = [
    "APIStatusError",
    "AsyncClient",
    "AsyncClientOptions",
    "AuthorizationError",
    "COLUMNS",
    "CallbackError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "ClientOptions",
    "ConfigurationError",
    "ConnectError",
    "Credentials",
    "DemoError",
    "Document",
    "EgressDenied",
    "FileTokenStore",
    "GreenButtonError",
    "GreenButtonWarning",
    "InvalidClientError",
    "InvalidGrantError",
    "JobRejected",
    "Limits",
    "LoopbackCallback",
    "NotFoundError",
    "OAuthError",
    "ParseError",
    "QuotaExhaustedError",
    "Reading",
    "ReconciliationError",
    "RejectedURI",
    "RequestDeferred",
    "RequestTimeout",
    "Secret",
    "SecretKeyError",
    "ServerError",
    "StorageError",
    "TokenDecryptionError",
    "TransportError",
    "UnsafeXMLError",
    "UtilityProfile",
    "XMLLimitError",
    "default_config_path",
    "iter_readings",
    "load_config",
    "parse",
    "read_arrow",
    "read_frame",
    "to_arrow",
    "to_pandas",
    "write_parquet",
    "write_readings",
]

#: Public name -> the module that defines it, imported at the first access (PEP 562).
_LAZY = {
    "AsyncClient": ".client._client",
    "AsyncClientOptions": ".client._client",
    "CircuitBreaker": ".client._breaker",
    "Client": ".client._client",
    "ClientOptions": ".client._client",
    "FileTokenStore": ".oauth",
    "LoopbackCallback": ".client._loopback",
    "default_config_path": ".client._config",
    "load_config": ".client._config",
    "read_arrow": ".table._frames",
    "read_frame": ".table._frames",
    "to_arrow": ".table._frames",
    "to_pandas": ".table._frames",
    "write_parquet": ".table._frames",
    "write_readings": ".table._files",
}


def _claim(obj: object) -> None:
    """Public names report this package as their home (httpx __init__.py); constants such
    as COLUMNS have no __module__ to set."""
    if isinstance(obj, type) or callable(obj):
        obj.__module__ = "greenbutton"


def __getattr__(name: str) -> object:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    loaded = _importlib.import_module(module, __name__)
    for sibling, home in _LAZY.items():  # the module's other public names too, at once
        if home == module:
            obj = getattr(loaded, sibling)
            _claim(obj)
            globals()[sibling] = obj  # later lookups are ordinary attribute reads
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


for __name in __all__:
    if __name not in _LAZY:
        _claim(globals()[__name])
del __name
