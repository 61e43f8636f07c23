"""The readings table (DESIGN 4) as files and frames: CSV/JSONL/Parquet writers, pandas and
Arrow frames (pandas and pyarrow are imported only when a frame is built), and the ESPI XML
writer. The rows themselves (:class:`~greenbutton.models.Reading`, ``COLUMNS``) live in
``models/``, because the parser, one layer below, produces them."""

from ._espi import DEFAULT_BASE_URL, iter_feed_chunks, to_xml, write_feed
from ._files import ReadingsFormat, document_rows, format_for, write_readings
from ._frames import read_arrow, read_frame, to_arrow, to_pandas, write_parquet

__all__ = [
    "DEFAULT_BASE_URL",
    "ReadingsFormat",
    "document_rows",
    "format_for",
    "iter_feed_chunks",
    "read_arrow",
    "read_frame",
    "to_arrow",
    "to_pandas",
    "to_xml",
    "write_feed",
    "write_parquet",
    "write_readings",
]
