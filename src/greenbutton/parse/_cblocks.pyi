"""Type stub of the compiled accelerator ``_cblocks.pyx`` (present only when it was built)."""

from lxml import etree

from ..models import ReadingColumns

def read_block(
    block: etree._Element, max_readings: int, cols: ReadingColumns
) -> tuple[int | None, int | None] | None:
    """Append the block's readings to ``cols`` and return ``(interval start, duration)``.

    None, with ``cols`` untouched, when the block is anything but the plain shape.
    """

def count_lines_and_equals(data: bytes) -> tuple[int, int]:
    """``(data.count(b"\\n"), data.count(b"="))`` in one pass."""

def subtree_within(
    el: etree._Element, depth: int, max_depth: int, max_text: int, max_attributes: int
) -> bool:
    """True when ``_xml.check_subtree`` certainly passes; False: ask it."""
