"""The ESPI REST surface (ESPI_NOTES 1): URL templates (``_paths``) and one sans-IO flow per
resource (``_operations``) that :class:`greenbutton.Client` and ``AsyncClient`` run."""

from ._operations import Accepted, merge_documents
from ._paths import Paths, format_time, segment, split_windows

__all__ = ["Accepted", "Paths", "format_time", "merge_documents", "segment", "split_windows"]
