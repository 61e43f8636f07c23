"""greenbutton: the Python toolkit for Green Button Connect My Data (NAESB REQ.21 ESPI).

Read any Green Button file or API response::

    import greenbutton
    doc = greenbutton.parse("usage.xml")
    for row in greenbutton.iter_readings("usage.xml"):
        ...
    frame = greenbutton.read_frame("usage.xml")
"""

from ._breaker import CircuitBreaker
from ._client import AsyncClient, Client
from ._errors import (
    APIStatusError,
    AuthorizationError,
    CallbackError,
    CircuitOpenError,
    ConfigurationError,
    ConnectError,
    GreenButtonError,
    InvalidClientError,
    InvalidGrantError,
    NotFoundError,
    OAuthError,
    ParseError,
    QuotaExhaustedError,
    RequestDeferred,
    RequestTimeout,
    ServerError,
    TransportError,
    UnsafeXMLError,
    XMLLimitError,
)
from ._profile import UtilityProfile
from ._table import COLUMNS, Reading
from .frames import read_arrow, read_frame, to_arrow, to_pandas, write_parquet
from .models import Document
from .parse import Limits, iter_readings, parse

__all__ = [
    "APIStatusError",
    "AsyncClient",
    "AuthorizationError",
    "COLUMNS",
    "CallbackError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "ConfigurationError",
    "ConnectError",
    "Document",
    "GreenButtonError",
    "InvalidClientError",
    "InvalidGrantError",
    "Limits",
    "NotFoundError",
    "OAuthError",
    "ParseError",
    "QuotaExhaustedError",
    "Reading",
    "RequestDeferred",
    "RequestTimeout",
    "ServerError",
    "TransportError",
    "UnsafeXMLError",
    "UtilityProfile",
    "XMLLimitError",
    "iter_readings",
    "parse",
    "read_arrow",
    "read_frame",
    "to_arrow",
    "to_pandas",
    "write_parquet",
]
