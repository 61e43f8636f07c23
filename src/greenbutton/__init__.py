"""greenbutton: the Python toolkit for Green Button Connect My Data (NAESB REQ.21 ESPI).

Read any Green Button file or API response::

    import greenbutton
    doc = greenbutton.parse("usage.xml")
    for row in greenbutton.iter_readings("usage.xml"):
        ...
    frame = greenbutton.read_frame("usage.xml")
"""

from ._errors import (
    ConfigurationError,
    GreenButtonError,
    ParseError,
    UnsafeXMLError,
    XMLLimitError,
)
from ._table import COLUMNS, Reading
from .frames import read_arrow, read_frame, to_arrow, to_pandas, write_parquet
from .models import Document
from .parse import Limits, iter_readings, parse

__all__ = [
    "COLUMNS",
    "ConfigurationError",
    "Document",
    "GreenButtonError",
    "Limits",
    "ParseError",
    "Reading",
    "UnsafeXMLError",
    "XMLLimitError",
    "iter_readings",
    "parse",
    "read_arrow",
    "read_frame",
    "to_arrow",
    "to_pandas",
    "write_parquet",
]
