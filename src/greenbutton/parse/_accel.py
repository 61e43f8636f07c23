"""The optional compiled accelerator of the parser, and the switch that turns it off.

``_cblocks`` is built from ``_cblocks.pyx`` at install time when a C compiler is there (see
``hatch_build.py``); without it every caller takes its pure-Python path, with the same
results. ``GREENBUTTON_PURE_PYTHON=1`` turns it off: :func:`refresh` reads the variable, and
``_xml.iter_elements`` calls it at the start of every document, so the switch can be
flipped between two parses in one process (the tests compare both paths that way). Reading
the environment per block or per subtree check would cost more than the checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lxml import etree

from ..models import ReadingColumns

__all__ = [
    "PURE_PYTHON_ENV",
    "available",
    "block_reader",
    "byte_counter",
    "enabled",
    "refresh",
    "why_missing",
    "subtree_checker",
]

PURE_PYTHON_ENV = "GREENBUTTON_PURE_PYTHON"

BlockReader = Callable[[etree._Element, int, ReadingColumns], tuple[int | None, int | None] | None]
ByteCounter = Callable[[bytes], tuple[int, int]]
SubtreeChecker = Callable[[etree._Element, int, int, int, int], bool]

_read_block: BlockReader | None = None
_count: ByteCounter | None = None
_within: SubtreeChecker | None = None
_missing: str | None = None  # why the extension is not there, for error messages
try:
    from . import _cblocks
except Exception as exc:  # not built (no compiler at install), or built for another lxml
    _missing = f"{type(exc).__name__}: {exc}"
else:
    _read_block = _cblocks.read_block
    _count = _cblocks.count_lines_and_equals
    _within = _cblocks.subtree_within

_on = False


def available() -> bool:
    """Whether the extension was built and imports (whatever the switch says)."""
    return _read_block is not None


def why_missing() -> str | None:
    """The import error that left the extension out, when it is out."""
    return _missing


def refresh() -> bool:
    """Re-read ``GREENBUTTON_PURE_PYTHON``; return whether the accelerator is in use."""
    global _on
    _on = available() and os.environ.get(PURE_PYTHON_ENV, "") in ("", "0")
    return _on


def enabled() -> bool:
    """Whether the accelerator is in use (as of the last :func:`refresh`)."""
    return _on


def block_reader() -> BlockReader | None:
    """``_cblocks.read_block``, or None when missing or switched off."""
    return _read_block if _on else None


def byte_counter() -> ByteCounter | None:
    """``_cblocks.count_lines_and_equals``, or None when missing or switched off."""
    return _count if _on else None


def subtree_checker() -> SubtreeChecker | None:
    """``_cblocks.subtree_within``, or None when missing or switched off."""
    return _within if _on else None


refresh()
