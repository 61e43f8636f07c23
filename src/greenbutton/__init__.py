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
"""

from ._breaker import CircuitBreaker
from ._client import AsyncClient, AsyncClientOptions, Client, ClientOptions
from ._config import default_config_path, load_config
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
from ._loopback import LoopbackCallback
from ._profile import Credentials, UtilityProfile
from ._secret import Secret
from ._table import COLUMNS, Reading
from ._writers import write_readings
from .frames import read_arrow, read_frame, to_arrow, to_pandas, write_parquet
from .models import Document
from .oauth import FileTokenStore
from .parse import Limits, iter_readings, parse

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

# Public names report this package as their home (httpx __init__.py); constants such as
# COLUMNS have no __module__ to set.
__locals = locals()
for __name in __all__:
    __obj = __locals[__name]
    if isinstance(__obj, type) or callable(__obj):
        __obj.__module__ = "greenbutton"
del __locals, __name, __obj
