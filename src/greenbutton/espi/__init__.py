"""The ESPI REST surface (ESPI_NOTES 1): URL templates (``_paths``) and one sans-IO flow per
resource (``_operations``) that :class:`greenbutton.Client` and ``AsyncClient`` run."""

from ._identity import authorization_key, parse_authorization_key, subscription_of
from ._operations import Accepted, merge_documents
from ._paths import Paths, format_time, segment, split_windows

__all__ = [
    "Accepted",
    "Paths",
    "authorization_key",
    "format_time",
    "merge_documents",
    "parse_authorization_key",
    "segment",
    "split_windows",
    "subscription_of",
]
